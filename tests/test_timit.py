"""TIMIT preparation on a tiny generated TIMIT-layout corpus, and every bad-input case."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import FBANK, first_utterance

from speechbrain_fdnf.data.frames import build_encoders, featurize
from speechbrain_fdnf.data.phones import FOLD_61_TO_39
from speechbrain_fdnf.data.timit import TimitError, prepare_timit


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


def train_speakers(corpus):
    return len(list(corpus.glob("TRAIN/DR*/*")))


def test_sa_sentences_can_be_kept(corpus, tmp_path):
    outputs = prepare_timit(corpus, tmp_path, exclude_sa=False)
    train = {}
    for split in ("train", "valid", "heldout"):
        train |= json.loads(outputs[split].read_text())
    assert sum(e["utterance"] in ("SA1", "SA2") for e in train.values()) == 2 * train_speakers(corpus)


def test_preparation_skips_when_up_to_date_and_redoes_on_new_options(corpus, tmp_path):
    outputs = prepare_timit(corpus, tmp_path)
    stamp = outputs["train"].stat().st_mtime_ns
    prepare_timit(corpus, tmp_path)
    assert outputs["train"].stat().st_mtime_ns == stamp
    prepare_timit(corpus, tmp_path, heldout_per_speaker=3)
    heldout = json.loads(outputs["heldout"].read_text())
    assert len(heldout) == train_speakers(corpus) * 3


def test_lowercase_layout_and_nist_sphere_audio(corpus, tmp_path):
    lower = tmp_path / "timit"
    for path in sorted(corpus.rglob("*")):
        target = lower / Path(*[part.lower() for part in path.relative_to(corpus).parts])
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.suffix.upper() == ".WAV":
            audio, rate = soundfile.read(str(path), dtype="int16")
            soundfile.write(str(target), audio, rate, subtype="PCM_16", format="NIST")
        else:
            shutil.copy(path, target)
    outputs = prepare_timit(lower, tmp_path / "prep")
    train = json.loads(outputs["train"].read_text())
    non_sa = len(list(first_utterance(corpus).parent.glob("S[IX]*.WAV")))
    assert len(train) == train_speakers(corpus) * (non_sa - 3) and all(e["speaker"].isupper() for e in train.values())
    encoders = build_encoders(outputs["train"])
    assert len(featurize(outputs["train"], tmp_path / "t.pt", encoders, FBANK)["feats"]) > 0


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


def test_an_utterance_without_speech_is_refused_or_skipped_by_name(corpus_copy, tmp_path):
    wav = first_utterance(corpus_copy)
    phn = wav.with_suffix(".PHN")
    samples = soundfile.info(str(wav)).frames
    phn.write_text(f"0 {samples // 2} h#\n{samples // 2} {samples} pau\n")  # every segment silence
    with pytest.raises(TimitError, match=r"no speech \(every segment of .* is silence") as err:
        prepare_timit(corpus_copy, tmp_path / "prep")
    assert str(wav) in str(err.value)
    prepare_timit(corpus_copy, tmp_path / "skipping", on_error="skip")
    record = json.loads((tmp_path / "skipping" / "prepare_options.json").read_text())
    assert len(record["skipped"]) == 1 and "no speech" in record["skipped"][0]


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
