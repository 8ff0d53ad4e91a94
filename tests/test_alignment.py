"""Alignment of parallel readings: one definition of a parallel reading for training's pairs and the evaluation."""

import soundfile
import torch
from conftest import FBANK, HOP

from speechbrain_fdnf.data.alignment import aligned_frames, parallel_readings, reads_in_parallel, speech_segments


def test_an_utterance_aligned_with_itself_matches_every_speech_frame_and_readings_are_parallel(prepared):
    save, data = prepared
    entry = next(iter(data["train"].values()))
    feats = FBANK(torch.as_tensor(soundfile.read(entry["wav"], dtype="float32")[0])[None])[0]
    frames, matched = aligned_frames(entry, entry, len(feats), len(feats), HOP)
    assert torch.equal(frames, matched) and len(frames) > 20  # every speech frame onto itself
    assert torch.equal(feats[frames], feats[matched])
    starts, ends, _ = speech_segments(entry)
    assert all(any(s <= t * HOP < e for s, e in zip(starts, ends)) for t in frames.tolist())  # no silence frame
    references = {key: value for split in ("train", "valid", "heldout") for key, value in data[split].items()}
    pairs = parallel_readings(data["heldout"], references, seed=0)
    assert pairs, "the small corpus has sentences read by several speakers"
    for utterance, reading in pairs:
        assert reading["text"] == utterance["text"] and reading["speaker"] != utterance["speaker"]
        assert speech_segments(reading)[2] == speech_segments(utterance)[2]
        assert reads_in_parallel(utterance, reading)
    train = data["train"]
    keys = sorted(train)
    both = [(a, b) for i, a in enumerate(keys) for b in keys[i + 1 :] if reads_in_parallel(train[a], train[b])]
    assert both and all(train[a]["text"] == train[b]["text"] for a, b in both)
    assert not reads_in_parallel(train[keys[0]], train[keys[0]])  # one speaker's reading is not parallel to itself
