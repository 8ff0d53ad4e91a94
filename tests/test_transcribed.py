"""Transcribed corpora: layouts, MFA TextGrids, forced alignment and preparation into the prepared-split contract."""

import itertools
import json
import shutil

import numpy as np
import pytest
import soundfile

from speechbrain_fdnf.corpus.layouts import EXACT_ALIGNMENTS
from speechbrain_fdnf.data.forced_alignment import (AlignmentGraph, AlignmentItem, align_corpus, boundary_errors,
                                                    frame_agreement, read_cache_lines, viterbi_path)
from speechbrain_fdnf.data.layouts import CorpusError, scan_librispeech, scan_manifest, scan_vctk
from speechbrain_fdnf.data.lexicon import Lexicon, normalise_text
from speechbrain_fdnf.data.phones import ARPABET, TIMIT39, fold_phone
from speechbrain_fdnf.data.textgrid import TextGridError, read_textgrid_phones, save_textgrid
from speechbrain_fdnf.data.transcribed import prepare_transcribed
from speechbrain_fdnf.files import PREPARED_SPLITS


@pytest.fixture(scope="session")
def prepared_librispeech(librispeech, tmp_path_factory):
    save = tmp_path_factory.mktemp("prep_librispeech")
    outputs = prepare_transcribed("librispeech", librispeech, save, align_rounds=1, progress=False)
    return save, {split: json.loads(path.read_text()) for split, path in outputs.items()}


def _copy(root, tmp_path):
    copy = tmp_path / root.name
    shutil.copytree(root, copy)
    return copy


# ---- phones and words ------------------------------------------------------------------------------


def test_aligner_labels_fold_to_the_39_classes_and_unknown_ones_are_refused():
    assert {fold_phone(p) for p in ARPABET} <= set(TIMIT39)
    assert {fold_phone(p + "1") for p in ARPABET} == {fold_phone(p) for p in ARPABET}
    assert [fold_phone(x) for x in ("sil", "sp", "spn", "", "h#", "kcl")] == ["sil"] * 6
    for label in ("ɑː", "XX", "AH7"):
        with pytest.raises(KeyError, match="neither TIMIT-61, ARPAbet"):
            fold_phone(label)


def test_the_lexicon_uses_cmudict_and_espeak_only_where_asked():
    assert normalise_text("It's 'Mr. O'Brien', isn't it?") == ["it's", "mr", "o'brien", "isn't", "it"]
    lexicon = Lexicon()
    assert lexicon.pronunciations("cat") == [["K", "AE", "T"]]  # pocketsphinx's CMUdict: no stress digits
    made_up = lexicon.pronunciations("zorblatt")  # not in CMUdict: eSpeak NG's pronunciation
    assert len(made_up) == 1 and made_up[0][0] == "Z" and set(made_up[0]) <= set(ARPABET)
    assert Lexicon(espeak="none").pronunciations("zorblatt") == []
    with_variants = Lexicon(espeak="variant").pronunciations("tomato")
    assert with_variants[: len(lexicon.pronunciations("tomato"))] == lexicon.pronunciations("tomato")
    with pytest.raises(ValueError, match="espeak must be one of"):
        Lexicon(espeak="always")


# ---- alignment mechanics ---------------------------------------------------------------------------


def _scores(labels, sharpness=4.0):
    """Frame log-likelihoods that favour ``labels`` (class indices), one row per frame."""
    scores = np.zeros((len(labels), len(TIMIT39)))
    scores[np.arange(len(labels)), labels] = sharpness
    return scores


def test_viterbi_recovers_a_segmentation_and_chooses_the_pronunciation_the_frames_support():
    index = {p: i for i, p in enumerate(TIMIT39)}
    truth = ["sil"] * 3 + ["dh"] * 2 + ["ah"] * 4 + ["k"] * 3 + ["ae"] * 5 + ["t"] * 2 + ["sil"] * 2
    graph = AlignmentGraph.of_words([[["dh", "iy"], ["dh", "ah"]], [["k", "ae", "t"]]])
    path = viterbi_path(_scores([index[p] for p in truth]), graph)
    assert [TIMIT39[graph.phones[s]] for s in path] == truth
    # silence is optional: none before the first word nor after the last
    tight = ["dh"] * 2 + ["iy"] * 3 + ["k", "ae", "t"]
    path = viterbi_path(_scores([index[p] for p in tight]), graph)
    assert [TIMIT39[graph.phones[s]] for s in path] == tight
    # every phone needs a frame
    assert viterbi_path(_scores([index["dh"]] * 3), graph) is None


def test_a_minimum_phone_duration_holds_against_frames_that_favour_a_shorter_phone():
    index = {p: i for i, p in enumerate(TIMIT39)}
    # the frames favour "ae" for one frame only, then "t"
    frames = ["sil"] * 2 + ["k"] * 4 + ["ae"] + ["t"] * 5 + ["sil"] * 2
    scores = _scores([index[p] for p in frames])
    for min_frames in (1, 2, 3):
        graph = AlignmentGraph.of_words([[["k", "ae", "t"]]], min_frames=min_frames)
        labels = [TIMIT39[graph.phones[s]] for s in viterbi_path(scores, graph)]
        runs = [len(list(group)) for _, group in itertools.groupby(labels)]
        assert min(runs) >= min_frames and labels.count("ae") == max(1, min_frames)
        if min_frames == 1:
            assert labels == frames
    # too few frames for three phones of three frames each
    assert viterbi_path(scores[:8], AlignmentGraph.of_words([[["k", "ae", "t"]]], min_frames=3)) is None
    with pytest.raises(ValueError, match="at least 1"):
        AlignmentGraph.of_words([[["k"]]], min_frames=0)

def test_boundary_errors_and_frame_agreement_measure_what_they_say():
    exact = [(0, 1600, "sil"), (1600, 4800, "aa"), (4800, 8000, "s"), (8000, 9600, "sil")]
    assert boundary_errors(exact, exact).tolist() == [0, 0, 0]
    shifted = [(0, 1920, "sil"), (1920, 4800, "aa"), (4800, 8000, "s"), (8000, 9600, "sil")]
    assert boundary_errors(exact, shifted).tolist() == [320, 0, 0]
    wrong = [(0, 1600, "sil"), (1600, 8000, "aa"), (8000, 9600, "sil")]  # "s" missed
    assert np.isinf(boundary_errors(exact, wrong)[1:]).all()
    # no silence at the edges: the edges are where the hypothesis puts speech's start and end
    assert boundary_errors(exact, [(0, 4800, "aa"), (4800, 9600, "s")]).tolist() == [1600, 0, 1600]
    assert frame_agreement(exact, exact, 160) == (40, 40)
    assert frame_agreement(exact, wrong, 160) == (20, 40)


# ---- TextGrids -------------------------------------------------------------------------------------


def test_textgrids_as_mfa_writes_them_round_trip_and_bad_ones_are_named(tmp_path):
    segments = [(0, 800, "sil"), (800, 2400, "HH"), (2400, 4000, "AY1"), (4000, 4800, "spn")]
    path = tmp_path / "utt.TextGrid"
    save_textgrid(path, segments, 16000, words=[(800, 4000, "hi")])
    assert read_textgrid_phones(path, 16000, 4800) == [(0, 800, "sil"), (800, 2400, "hh"), (2400, 4000, "ay"),
                                                       (4000, 4800, "sil")]
    # audio a little longer than the grid: silence to the end
    assert read_textgrid_phones(path, 16000, 5000)[-1] == (4000, 5000, "sil")
    no_phones = tmp_path / "words_only.TextGrid"
    from praatio import textgrid
    from praatio.data_classes.interval_tier import IntervalTier
    grid = textgrid.Textgrid()
    grid.addTier(IntervalTier("words", [(0.05, 0.25, "hi")], 0, 0.3))
    grid.save(str(no_phones), format="long_textgrid", includeBlankSpaces=True)
    with pytest.raises(TextGridError, match=r"words_only.TextGrid: no phones tier \(tiers: words\)"):
        read_textgrid_phones(no_phones, 16000, 4800)
    unknown = tmp_path / "ipa.TextGrid"
    save_textgrid(unknown, [(0, 800, "sil"), (800, 2400, "ɑː")], 16000)
    with pytest.raises(TextGridError, match="ipa.TextGrid: phone label 'ɑː'"):
        read_textgrid_phones(unknown, 16000, 2400)
    garbage = tmp_path / "garbage.TextGrid"
    garbage.write_text("not a textgrid")
    with pytest.raises(TextGridError, match="garbage.TextGrid: not a readable TextGrid"):
        read_textgrid_phones(garbage, 16000, 2400)


# ---- layouts ---------------------------------------------------------------------------------------


def test_librispeech_and_vctk_layouts_are_read_with_speakers_genders_and_splits(corpus, librispeech, vctk):
    timit_utterances = len(list(corpus.glob("*/*/*/*.WAV")))
    books = scan_librispeech(librispeech)
    assert len(books) == timit_utterances and all(r.text and r.text.isupper() for r in books)
    assert {r.split for r in books} == {"train", "test"}
    assert {r.gender for r in books} == {"F", "M"}
    assert len({r.speaker for r in books if r.split == "test"} & {r.speaker for r in books if r.split == "train"}) == 0
    readings = scan_vctk(vctk)
    assert len(readings) == timit_utterances and {r.split for r in readings} == {None}
    assert soundfile.info(readings[0].audio).samplerate == 48000
    assert {r.dialect for r in readings} <= {f"DR{n}" for n in range(1, 9)}


def test_missing_counterparts_are_errors_that_name_the_file(librispeech, vctk, tmp_path):
    books = _copy(librispeech, tmp_path)
    victim = sorted(books.glob("train-clean-100/*/*/*.flac"))[0]
    victim.unlink()
    with pytest.raises(CorpusError, match=rf"trans.txt, line \d+: transcript of {victim.stem} has no audio"):
        scan_librispeech(books)
    readings = _copy(vctk, tmp_path)
    text = sorted(readings.glob("txt/*/*.txt"))[0]
    text.unlink()
    with pytest.raises(CorpusError, match=rf"{text.stem}_mic1.flac: audio without a transcript"):
        scan_vctk(readings)
    with pytest.raises(CorpusError, match="is not VCTK-shaped"):
        scan_vctk(librispeech)
    with pytest.raises(CorpusError, match="is not LibriSpeech-shaped"):
        scan_librispeech(vctk)


def test_a_manifest_names_its_audio_speakers_and_transcripts_or_alignments(librispeech, tmp_path):
    books = scan_librispeech(librispeech)
    rows = ["ID,wav,spk_id,wrd,split"] + [f"{r.key},{r.audio},{r.speaker},{r.text.lower()},{r.split}" for r in books]
    manifest = tmp_path / "data.csv"
    manifest.write_text("\n".join(rows) + "\n")
    read = scan_manifest(manifest)
    assert [(r.key, r.speaker, r.split) for r in read] == [(r.key, r.speaker, r.split) for r in books]
    aligned = tmp_path / "aligned.json"
    aligned.write_text(json.dumps({"u1": {"wav": books[0].audio, "spk_id": "s1",
                                          "alignment": f"../{librispeech.name}/{EXACT_ALIGNMENTS}/{books[0].key}.TextGrid"}}))
    assert scan_manifest(aligned)[0].alignment.endswith(f"{books[0].key}.TextGrid")
    (tmp_path / "bad.csv").write_text("ID,wav,spk_id\nu1,a.wav,s1\n")
    with pytest.raises(CorpusError, match=r"bad.csv, row u1: needs wav, spk_id and wrd or alignment"):
        scan_manifest(tmp_path / "bad.csv")


# ---- preparation -----------------------------------------------------------------------------------


def test_forced_alignment_prepares_the_same_contract_as_timit(prepared_librispeech, librispeech):
    save, splits = prepared_librispeech
    assert set(splits) == set(PREPARED_SPLITS)
    train_speakers = {e["speaker"] for split in ("train", "valid", "heldout") for e in splits[split].values()}
    assert train_speakers.isdisjoint({e["speaker"] for e in splits["test"].values()})
    assert {e["speaker"] for e in splits["test"].values()} == {r.speaker for r in scan_librispeech(librispeech)
                                                              if r.split == "test"}
    exact = {}
    for split in splits.values():
        for key, entry in split.items():
            assert entry["starts"][0] == 0 and entry["ends"][-1] == entry["num_samples"]
            assert entry["starts"][1:] == entry["ends"][:-1] and set(entry["phones39"]) <= set(TIMIT39)
            exact[key] = read_textgrid_phones(librispeech / EXACT_ALIGNMENTS / f"{key}.TextGrid", 16000,
                                              entry["num_samples"])
    aligned = {key: list(zip(e["starts"], e["ends"], e["phones39"])) for s in splits.values() for key, e in s.items()}
    agree = np.array([frame_agreement(exact[key], aligned[key], 160) for key in aligned]).sum(0)
    assert agree[0] / agree[1] > 0.5  # most speech frames get eSpeak's own phone (the benchmark measures it)
    options = json.loads((save / "prepare_options.json").read_text())
    assert options["forced_alignment"]["utterances"] == len(aligned) and options["skipped"] == []
    # parallel readings: one normalised text read by several speakers
    texts = [e["text"] for e in splits["train"].values()]
    assert max(texts.count(t) for t in texts) > 1


def test_exact_textgrids_bypass_the_aligner_and_preparation_is_skipped_when_up_to_date(librispeech, tmp_path):
    save = tmp_path / "prep"
    outputs = prepare_transcribed("librispeech", librispeech, save, alignments=librispeech / EXACT_ALIGNMENTS,
                                  progress=False)
    entry = next(iter(json.loads(outputs["heldout"].read_text()).values()))
    exact = read_textgrid_phones(librispeech / EXACT_ALIGNMENTS / f"{entry['utterance']}.TextGrid", 16000,
                                 entry["num_samples"])
    assert list(zip(entry["starts"], entry["ends"], entry["phones39"])) == exact
    assert not (save / "alignment").exists()
    stamp = outputs["train"].stat().st_mtime_ns
    prepare_transcribed("librispeech", librispeech, save, alignments=librispeech / EXACT_ALIGNMENTS, progress=False)
    assert outputs["train"].stat().st_mtime_ns == stamp


def test_vctk_audio_is_resampled_once_and_test_speakers_are_drawn(vctk, tmp_path):
    save = tmp_path / "prep"
    outputs = prepare_transcribed("vctk", vctk, save, alignments=vctk / EXACT_ALIGNMENTS, test_speakers=2,
                                  progress=False)
    splits = {split: json.loads(path.read_text()) for split, path in outputs.items()}
    assert len({e["speaker"] for e in splits["test"].values()}) == 2
    entry = next(iter(splits["train"].values()))
    assert entry["wav"].startswith(str(save / "audio")) and soundfile.info(entry["wav"]).samplerate == 16000


def test_bad_transcribed_input_is_a_named_error_or_a_counted_skip(librispeech, tmp_path):
    books = _copy(librispeech, tmp_path)
    # an 8 kHz recording
    low = sorted(books.glob("train-clean-100/*/*/*.flac"))[0]
    samples, rate = soundfile.read(low)
    soundfile.write(low, samples[::2], rate // 2)
    # an empty transcript
    transcript = sorted(books.glob("train-clean-100/*/*/*.trans.txt"))[1]
    lines = transcript.read_text().splitlines()
    empty_key = lines[0].split()[0]
    transcript.write_text("\n".join([empty_key] + lines[1:]) + "\n")
    alignments = books / EXACT_ALIGNMENTS
    (alignments / f"{empty_key}.TextGrid").unlink()  # so that it needs the aligner
    with pytest.raises(CorpusError, match=rf"{low.name}: sample rate 8000 Hz, below the 16000 Hz"):
        prepare_transcribed("librispeech", books, tmp_path / "prep", alignments=alignments, progress=False)
    low.unlink()
    lines = [line for line in (low.parent / f"{low.parent.parent.name}-{low.parent.name}.trans.txt").read_text().splitlines()
             if not line.startswith(low.stem)]
    (low.parent / f"{low.parent.parent.name}-{low.parent.name}.trans.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(CorpusError, match=rf"{empty_key}.flac: unalignable utterance \(empty transcript\)"):
        prepare_transcribed("librispeech", books, tmp_path / "prep", alignments=alignments, progress=False)
    outputs = prepare_transcribed("librispeech", books, tmp_path / "prep", alignments=alignments, on_error="skip",
                                  progress=False)
    options = json.loads((tmp_path / "prep" / "prepare_options.json").read_text())
    assert options["skipped_by_reason"] == {"unalignable utterance": 1}
    assert empty_key not in {key for path in outputs.values() for key in json.loads(path.read_text())}


def test_a_killed_alignment_resumes_from_its_cache(librispeech, tmp_path):
    items = [AlignmentItem(r.key, r.audio, normalise_text(r.text)) for r in scan_librispeech(librispeech)[:6]]
    first, _ = align_corpus(items[:3], tmp_path, rounds=0, workers=1, progress=False)
    cache = next(tmp_path.glob("pocketsphinx-*.jsonl"))
    cache.write_text(cache.read_text() + '{"key": "cut sho')  # a line cut short by the kill
    assert set(read_cache_lines(cache)) == {item.key for item in items[:3]}
    again, _ = align_corpus(items, tmp_path, rounds=0, workers=1, progress=False)
    assert {key: again[key] for key in first} == first
    assert set(read_cache_lines(cache)) == {item.key for item in items}


def test_an_utterance_too_short_for_its_transcript_is_reported_unalignable(librispeech, tmp_path):
    recording = scan_librispeech(librispeech)[0]
    short = tmp_path / "short.flac"
    samples, rate = soundfile.read(recording.audio)
    soundfile.write(short, samples[: rate // 20], rate)  # 50 ms for a whole sentence
    aligned, report = align_corpus([AlignmentItem("short", str(short), normalise_text(recording.text))], tmp_path,
                                   rounds=1, workers=1, progress=False)
    assert aligned == {} and "no path through its phones" in report["unalignable"]["short"]


def test_a_recording_without_its_transcript_is_a_counted_skip_where_skips_are_asked_for(vctk, tmp_path):
    readings = _copy(vctk, tmp_path)
    text = sorted(readings.glob("txt/*/*.txt"))[0]
    text.unlink()  # as VCTK's p315, whose transcripts are missing
    alignments = readings / EXACT_ALIGNMENTS
    with pytest.raises(CorpusError, match="audio without a transcript"):
        prepare_transcribed("vctk", readings, tmp_path / "prep", alignments=alignments, progress=False)
    outputs = prepare_transcribed("vctk", readings, tmp_path / "prep", alignments=alignments, on_error="skip",
                                  progress=False)
    options = json.loads((tmp_path / "prep" / "prepare_options.json").read_text())
    assert options["skipped_by_reason"] == {"audio without a transcript": 1}
    assert text.stem not in {key for path in outputs.values() for key in json.loads(path.read_text())}
