"""Data preparation on a tiny generated TIMIT-layout corpus, and every bad-input case."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from speechbrain_fdnf.data.frames import FrameDataError, FrameSet, build_encoders, featurize
from speechbrain_fdnf.data.phones import FOLD_61_TO_39, TIMIT39, espeak_to_timit
from speechbrain_fdnf.data.synthesize import CorpusOptions, plan_corpus, synthesize_corpus
from speechbrain_fdnf.data.timit import TimitError, prepare_timit

HOP = 160


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus") / "timit"
    synthesize_corpus(root, CorpusOptions.small())
    return root


@pytest.fixture(scope="module")
def prepared(corpus, tmp_path_factory):
    save = tmp_path_factory.mktemp("prep")
    outputs = prepare_timit(corpus, save)
    return save, {split: json.loads(Path(path).read_text()) for split, path in outputs.items()}


@pytest.fixture()
def corpus_copy(corpus, tmp_path):
    copy = tmp_path / "timit"
    shutil.copytree(corpus, copy)
    return copy


def first_utterance(root):
    return sorted((root / "TRAIN").glob("DR*/*/SX*.WAV"))[0]


def test_corpus_has_timit_layout(corpus):
    speakers = sorted(p.name for p in corpus.glob("TRAIN/DR*/*"))
    assert len(speakers) == 4 and all(s[0] in "FM" and len(s) == 5 for s in speakers)
    assert len(list(corpus.glob("TEST/DR*/*"))) == 2
    wav = first_utterance(corpus)
    info = soundfile.info(str(wav))
    assert info.samplerate == 16000 and info.channels == 1
    assert wav.with_suffix(".PHN").exists() and wav.with_suffix(".TXT").exists()
    lines = [line.split() for line in wav.with_suffix(".PHN").read_text().splitlines()]
    assert int(lines[0][0]) == 0 and int(lines[-1][1]) == info.frames  # covers the audio
    assert all(int(a[1]) == int(b[0]) for a, b in zip(lines, lines[1:]))  # contiguous
    assert lines[-1][2] == "h#"  # eSpeak ends in a pause; it may start speaking at sample 0
    assert all(line[2] != "h#" for line in lines[1:-1])  # inside an utterance pauses are "pau"


def test_synthesis_is_deterministic(corpus, tmp_path):
    plan = plan_corpus(CorpusOptions.small(seed=7))
    assert plan == plan_corpus(CorpusOptions.small(seed=7))
    assert plan != plan_corpus(CorpusOptions.small(seed=8))
    again = tmp_path / "again"
    synthesize_corpus(again, CorpusOptions.small(), workers=1)  # the fixture used one per core
    files = sorted(p.relative_to(corpus) for p in corpus.rglob("*") if p.suffix in (".WAV", ".PHN"))
    assert files and files == sorted(p.relative_to(again) for p in again.rglob("*") if p.suffix in (".WAV", ".PHN"))
    assert all((corpus / f).read_bytes() == (again / f).read_bytes() for f in files)


def test_corpus_is_reused_and_other_options_refused(corpus):
    manifest = synthesize_corpus(corpus, CorpusOptions.small())
    assert manifest["utterances"] == 6 * 8
    with pytest.raises(FileExistsError, match="other options"):
        synthesize_corpus(corpus, CorpusOptions.small(seed=99))


def test_unknown_espeak_phoneme_is_an_error_not_unknown():
    with pytest.raises(KeyError, match="no TIMIT-61 mapping"):
        espeak_to_timit("Q!")


def test_folding_to_39_classes():
    assert len(TIMIT39) == 39 and len(FOLD_61_TO_39) == 61
    for phone61, phone39 in [("ix", "ih"), ("ax-h", "ah"), ("el", "l"), ("zh", "sh"), ("pau", "sil"),
                             ("h#", "sil"), ("bcl", "sil"), ("ao", "aa"), ("nx", "n"), ("iy", "iy")]:
        assert FOLD_61_TO_39[phone61] == phone39


def test_preparation_splits(prepared):
    _, data = prepared
    train, heldout, test = data["train"], data["heldout"], data["test"]
    assert not any(e["utterance"].startswith("SA") for split in data.values() for e in split.values())
    names = list(data)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not set(data[a]) & set(data[b]), (a, b)
    train_speakers = {e["speaker"] for e in train.values()}
    assert {e["speaker"] for e in heldout.values()} == train_speakers
    assert {e["speaker"] for e in data["valid"].values()} == train_speakers
    assert not train_speakers & {e["speaker"] for e in test.values()}
    for speaker in train_speakers:
        assert sum(e["speaker"] == speaker for e in heldout.values()) == 2
    entry = next(iter(train.values()))
    assert entry["phones39"] == [FOLD_61_TO_39[p] for p in entry["phones61"]]
    assert entry["gender"] == entry["speaker"][0] and entry["dialect"].startswith("DR")


def test_sa_sentences_can_be_kept(corpus, tmp_path):
    outputs = prepare_timit(corpus, tmp_path, exclude_sa=False)
    train = {}
    for split in ("train", "valid", "heldout"):
        train |= json.loads(outputs[split].read_text())
    assert sum(e["utterance"] in ("SA1", "SA2") for e in train.values()) == 8


def test_preparation_skips_when_up_to_date_and_redoes_on_new_options(corpus, tmp_path):
    outputs = prepare_timit(corpus, tmp_path)
    stamp = outputs["train"].stat().st_mtime_ns
    prepare_timit(corpus, tmp_path)
    assert outputs["train"].stat().st_mtime_ns == stamp
    prepare_timit(corpus, tmp_path, heldout_per_speaker=3)
    heldout = json.loads(outputs["heldout"].read_text())
    assert len(heldout) == 4 * 3


def test_frames_carry_phone_and_speaker_labels_matching_phn_durations(prepared):
    save, data = prepared
    encoders = build_encoders(save / "train.json", save)
    assert (save / "speaker_encoder.txt").exists()
    cache = featurize(save / "train.json", save / "train.pt", encoders)
    labels = cache["labels"]
    assert all((labels[name] >= 0).all() for name in labels)
    assert len(cache["feats"]) == len(labels["phone"]) == len(labels["speaker"])
    # per utterance and phone, frame counts equal the frame centres t*hop inside each segment
    phone_enc, speaker_enc = encoders["phone"], encoders["speaker"]
    for u, utt_id in enumerate(cache["utterances"]):
        entry = data["train"][utt_id]
        num_frames = entry["num_samples"] // HOP + 1
        expected = {}
        for start, end, phone in zip(entry["starts"], entry["ends"], entry["phones39"]):
            first, last = -(-start // HOP), min(-(-end // HOP), num_frames)
            expected[phone] = expected.get(phone, 0) + max(last - first, 0)
        mine = cache["utterance"] == u
        got = {}
        for index in labels["phone"][mine].tolist():
            got[phone_enc.ind2lab[index]] = got.get(phone_enc.ind2lab[index], 0) + 1
        assert got == {k: v for k, v in expected.items() if v}
        assert set(labels["speaker"][mine].tolist()) == {speaker_enc.lab2ind[entry["speaker"]]}
    # the cache is reused, not recomputed
    assert featurize(save / "train.json", save / "train.pt", encoders)["digest"] == cache["digest"]


def test_unseen_speakers_are_an_error_unless_allowed(prepared):
    save, _ = prepared
    encoders = build_encoders(save / "train.json")
    with pytest.raises(FrameDataError, match="label.*never seen in training"):
        featurize(save / "test.json", save / "test.pt", encoders, allow_unknown=("dialect",))
    cache = featurize(save / "test.json", save / "test.pt", encoders, allow_unknown=("speaker", "dialect"))
    assert (cache["labels"]["speaker"] == -1).all() and (cache["labels"]["phone"] >= 0).all()


def test_frameset_silence_exclusion_and_context(prepared):
    save, _ = prepared
    encoders = build_encoders(save / "train.json")
    cache = featurize(save / "train.json", save / "train.pt", encoders)
    sil = encoders["phone"].lab2ind["sil"]
    frames = FrameSet(cache, context=3, exclude_silence=True, silence_index=sil)
    batch = frames.all()
    assert (batch.labels["phone"] != sil).all() and len(frames) < len(cache["feats"])
    assert batch.feats.shape == (len(frames), 40 * 7)
    centre = batch.feats[:, 3 * 40 : 4 * 40]
    assert torch.equal(centre, cache["feats"][frames.rows])
    # neighbours never cross an utterance boundary
    first_rows = torch.searchsorted(cache["utterance"], cache["utterance"][frames.rows])
    assert (frames._first == first_rows).all()


def test_nan_features_are_reported_with_the_utterance(corpus_copy, tmp_path):
    wav = first_utterance(corpus_copy)
    audio, rate = soundfile.read(str(wav), dtype="float32")
    audio[100:200] = np.nan
    soundfile.write(str(wav), audio, rate, subtype="FLOAT", format="WAV")
    save = tmp_path / "prep"
    prepare_timit(corpus_copy, save)
    encoders = build_encoders(save / "train.json")
    utt = f"{wav.parent.name}_{wav.stem}"
    split = next(s for s in ("train", "valid", "heldout") if utt in json.loads((save / f"{s}.json").read_text()))
    with pytest.raises(FrameDataError, match=f"utterance {utt}.*NaN or Inf"):
        featurize(save / f"{split}.json", save / "x.pt", encoders)
    cache = featurize(save / f"{split}.json", save / "y.pt", encoders, on_nonfinite="skip")
    assert cache["stats"]["skipped_nonfinite"] == [utt] and torch.isfinite(cache["feats"]).all()


def test_lowercase_layout_and_nist_sphere_audio(corpus, tmp_path):
    lower = tmp_path / "timit"
    for path in sorted(corpus.rglob("*")):
        target = lower / Path(*[part.lower() for part in path.relative_to(corpus).parts])
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.suffix.upper() == ".WAV":
            audio, rate = soundfile.read(str(path), dtype="int16")
            soundfile.write(str(target), audio, rate, subtype="PCM_16", format="NIST")
        else:
            shutil.copy(path, target)
    outputs = prepare_timit(lower, tmp_path / "prep")
    train = json.loads(outputs["train"].read_text())
    assert len(train) == 4 * 3 and all(e["speaker"].isupper() for e in train.values())
    encoders = build_encoders(outputs["train"])
    assert len(featurize(outputs["train"], tmp_path / "t.pt", encoders)["feats"]) > 0


def _break_phn(path, edit):
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda l: l[:2] + ["1 x5 ah"] + l[3:], "boundaries must be integers"),
        (lambda l: l[:2] + [f"{l[2].split()[0]} 99999999 ah"] + l[3:], "past the audio"),
        (lambda l: l[:2] + [f"0 {l[2].split()[1]} ah"] + l[3:], "before the previous one ends"),
        (lambda l: l[:2] + [l[2].rsplit(" ", 1)[0] + " xyz"] + l[3:], "unknown phone 'xyz'"),
        (lambda l: l[:2] + ["garbage"] + l[3:], "expected 'start end phone'"),
        (lambda l: [], "no phone segments"),
    ],
)
def test_bad_phn_files_are_named_with_the_problem(corpus_copy, tmp_path, edit, message):
    phn = first_utterance(corpus_copy).with_suffix(".PHN")
    _break_phn(phn, edit)
    with pytest.raises(TimitError, match=message) as err:
        prepare_timit(corpus_copy, tmp_path / "prep")
    assert str(phn) in str(err.value)


def test_bad_audio_and_layout_errors(corpus_copy, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        prepare_timit(tmp_path / "nowhere", tmp_path / "prep")
    not_timit = tmp_path / "music"
    not_timit.mkdir()
    with pytest.raises(TimitError, match="not TIMIT-shaped"):
        prepare_timit(not_timit, tmp_path / "prep")

    wav = first_utterance(corpus_copy)
    audio, _ = soundfile.read(str(wav), dtype="int16")
    soundfile.write(str(wav), audio[::2], 8000, subtype="PCM_16", format="WAV")
    with pytest.raises(TimitError, match="sample rate 8000 Hz, expected 16000") as err:
        prepare_timit(corpus_copy, tmp_path / "prep")
    assert str(wav) in str(err.value)

    wav.write_bytes(b"not audio at all")
    with pytest.raises(TimitError, match="unreadable audio"):
        prepare_timit(corpus_copy, tmp_path / "prep")

    wav.with_suffix(".PHN").unlink()
    wav.unlink()
    other = first_utterance(corpus_copy)
    other.with_suffix(".PHN").unlink()
    with pytest.raises(TimitError, match="no matching .PHN"):
        prepare_timit(corpus_copy, tmp_path / "prep")


def test_bad_files_can_be_skipped_and_recorded(corpus_copy, tmp_path):
    phn = first_utterance(corpus_copy).with_suffix(".PHN")
    _break_phn(phn, lambda l: l[:1] + ["0 10 qq"] + l[2:])
    prepare_timit(corpus_copy, tmp_path / "prep", on_error="skip")
    record = json.loads((tmp_path / "prep" / "prepare_options.json").read_text())
    assert len(record["skipped"]) == 1 and str(phn) in record["skipped"][0]
    assert not list((tmp_path / "prep").glob("*.tmp"))


def test_other_wavs_in_a_speaker_folder_are_not_utterances(corpus_copy, tmp_path, prepared):
    wav = first_utterance(corpus_copy)
    shutil.copy(wav, wav.with_name(f"{wav.stem}_speaker-MABC0.wav"))  # what the converter writes
    outputs = prepare_timit(corpus_copy, tmp_path / "prep")
    counts = {split: len(json.loads(Path(path).read_text())) for split, path in outputs.items()}
    assert counts == {split: len(entries) for split, entries in prepared[1].items()}


def _truncate_riff(wav):
    wav.write_bytes(wav.read_bytes()[: wav.stat().st_size // 2])


def _truncate_sphere(wav):
    audio, rate = soundfile.read(str(wav), dtype="int16")
    soundfile.write(str(wav), audio, rate, subtype="PCM_16", format="NIST")
    wav.write_bytes(wav.read_bytes()[:-1000])


@pytest.mark.parametrize(
    "damage,message",
    [
        (_truncate_riff, "truncated audio .*header promises more"),
        (_truncate_sphere, "truncated audio .*header has \\d+ samples"),
        (lambda wav: wav.write_bytes(b""), "empty file \\(0 bytes\\)"),
        (lambda wav: wav.write_bytes(wav.read_bytes()[:30]), "unreadable audio"),
        (lambda wav: soundfile.write(str(wav), np.zeros(0, dtype="int16"), 16000), "empty audio"),
        (lambda wav: wav.with_suffix(".PHN").write_bytes(bytes(range(256)) * 4), "cannot be read as a text phone file"),
    ],
)
def test_hostile_files_give_one_error_and_leave_no_annotation(corpus_copy, tmp_path, damage, message):
    wav = first_utterance(corpus_copy)
    damage(wav)
    save = tmp_path / "prep"
    with pytest.raises(TimitError, match=message) as err:
        prepare_timit(corpus_copy, save)
    assert str(wav.with_suffix(".PHN") if "phone file" in message else wav) in str(err.value)
    assert "\n" not in str(err.value)
    assert not save.exists() or not list(save.iterdir())  # nothing partial written


def test_unlistable_folder_and_overlong_path(corpus_copy, tmp_path, monkeypatch):
    speaker_dir = first_utterance(corpus_copy).parent
    if os.geteuid() != 0:  # a real permission problem where the test can make one ...
        speaker_dir.chmod(0)
    else:  # ... root reads anything, so the listing fails the way the OS would fail it
        real_iterdir = Path.iterdir

        def iterdir(self):
            if self == speaker_dir:
                raise PermissionError(13, "Permission denied", str(self))
            return real_iterdir(self)

        monkeypatch.setattr(Path, "iterdir", iterdir)
    try:
        with pytest.raises(TimitError, match=f"{speaker_dir}: cannot be listed \\(Permission denied\\)"):
            prepare_timit(corpus_copy, tmp_path / "prep")
    finally:
        speaker_dir.chmod(0o755)
    assert not (tmp_path / "prep").exists()
    # a million-byte path (no file system has such a name): a short, clear error
    overlong = tmp_path / ("x" * 1_000_000)
    with pytest.raises(TimitError, match="File name too long") as err:
        prepare_timit(overlong, tmp_path / "prep")
    assert f"({len(str(overlong).encode())}-byte path)" in str(err.value) and len(str(err.value)) < 400


def test_nan_frames_in_a_cache_are_refused():
    cache = {"feats": torch.tensor([[0.0, 1.0], [float("nan"), 1.0]]), "utterance": torch.tensor([0, 1]),
             "utterances": ["FAKS0_SX1", "MABC0_SX2"], "labels": {"phone": torch.tensor([1, 1])}}
    with pytest.raises(FrameDataError, match="1 frames with NaN or Inf.*MABC0_SX2"):
        FrameSet(cache)
