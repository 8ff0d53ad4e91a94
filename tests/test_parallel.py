"""Parallel conversion distortion: a converted utterance against the target speaker's real reading."""

from types import SimpleNamespace

import pytest
import soundfile
import torch
from conftest import FBANK, HOP

from speechbrain_fdnf.data.alignment import aligned_frames, parallel_readings
from speechbrain_fdnf.evaluation.parallel import conversion_distortion, log_mel_distance, matching_conversion


def test_an_utterance_against_itself_has_zero_distortion(prepared):
    _, data = prepared
    entry = next(iter(data["train"].values()))
    feats = FBANK(torch.as_tensor(soundfile.read(entry["wav"], dtype="float32")[0])[None])[0]
    frames, matched = aligned_frames(entry, entry, len(feats), len(feats), HOP)
    assert log_mel_distance(feats[frames], feats[matched]).max().item() == 0.0
    assert log_mel_distance(feats[frames] + 3.0, feats[matched]).mean().item() == pytest.approx(3.0)


class _RecordingFactorizer:
    """Just enough of a SpeechFactorizer for the distortion: Fbank features; ``match`` returns its input
    and records which reference audio it was given."""

    def __init__(self):
        self.hparams = SimpleNamespace(compute_features=SimpleNamespace(compute_STFT=SimpleNamespace(hop_length=HOP)))
        self.centre_bands = slice(None)
        self.matched = []

    def features(self, wav):
        return FBANK(torch.as_tensor(soundfile.read(wav, dtype="float32")[0])[None])[0]

    def match(self, feats, factor, references, k, gate, decode):
        self.matched.append(len(references))
        return feats


def test_a_matching_conversion_is_scored_without_the_reading_in_its_pool(prepared):
    _, data = prepared
    references = {key: value for split in ("train", "valid", "heldout") for key, value in data[split].items()}
    pairs = [(utterance, reading) for utterance, reading in parallel_readings(data["heldout"], references, seed=0)
             if reading["wav"] in {entry["wav"] for entry in data["train"].values()}]
    assert pairs, "some held-out utterances have a parallel reading in the training split"
    factorizer = _RecordingFactorizer()
    convert = matching_conversion(factorizer, data["train"])
    result = conversion_distortion(factorizer, pairs, convert=convert)
    assert result["pairs"] > 0 and result["converted_db"] == pytest.approx(result["unconverted_db"])  # x' = x here
    for (utterance, reading), used in zip(pairs, factorizer.matched):
        same = [entry["wav"] for entry in data["train"].values() if entry["speaker"] == reading["speaker"]]
        assert reading["wav"] in same and used == len(same) - 1  # every training utterance of the target but the reading
