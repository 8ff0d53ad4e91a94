"""Frame-level features and labels: caches, unseen labels, silence exclusion, context splicing, NaN."""

import json

import numpy as np
import pytest
import soundfile
import torch
from conftest import FBANK, HOP, first_utterance

from speechbrain_fdnf.data.frames import FrameDataError, FrameSet, build_encoders, featurize, splice
from speechbrain_fdnf.data.timit import prepare_timit


def test_frames_carry_phone_and_speaker_labels_matching_phn_durations(prepared):
    save, data = prepared
    encoders = build_encoders(save / "train.json", save)
    assert (save / "speaker_encoder.txt").exists()
    cache = featurize(save / "train.json", save / "train.pt", encoders, FBANK)
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


def test_a_frame_cache_is_reused_for_the_same_options_and_rebuilt_for_others(prepared, monkeypatch):
    from speechbrain_fdnf.data import frames

    save, _ = prepared
    encoders = build_encoders(save / "train.json")
    cache_path = save / "reused.pt"
    featurize(save / "train.json", cache_path, encoders, FBANK)
    written = cache_path.stat().st_mtime_ns
    read = []
    original = frames.DynamicItemDataset.from_json
    monkeypatch.setattr(frames.DynamicItemDataset, "from_json", lambda *a, **k: read.append(a) or original(*a, **k))
    again = featurize(save / "train.json", cache_path, encoders, FBANK)
    assert not read and cache_path.stat().st_mtime_ns == written  # reused: no audio read, nothing written
    assert again["stats"]["frames"] == len(again["feats"])
    featurize(save / "train.json", cache_path, encoders, FBANK, on_nonfinite="skip")  # another option: rebuilt
    assert len(read) == 1 and cache_path.stat().st_mtime_ns != written


def test_unseen_speakers_are_an_error_unless_allowed(prepared):
    save, _ = prepared
    encoders = build_encoders(save / "train.json")
    with pytest.raises(FrameDataError, match="label.*never seen in training"):
        featurize(save / "test.json", save / "test.pt", encoders, FBANK, allow_unknown=("dialect",))
    cache = featurize(save / "test.json", save / "test.pt", encoders, FBANK, allow_unknown=("speaker", "dialect"))
    assert (cache["labels"]["speaker"] == -1).all() and (cache["labels"]["phone"] >= 0).all()


def test_frameset_silence_exclusion_and_context(prepared):
    save, _ = prepared
    encoders = build_encoders(save / "train.json")
    cache = featurize(save / "train.json", save / "train.pt", encoders, FBANK)
    sil = encoders["phone"].lab2ind["sil"]
    frames = FrameSet(cache, context=3, exclude_silence=True, silence_index=sil)
    batch = frames.all()
    assert (batch.labels["phone"] != sil).all() and len(frames) < len(cache["feats"])
    assert batch.feats.shape == (len(frames), 40 * 7)
    centre = batch.feats[:, 3 * 40 : 4 * 40]
    assert torch.equal(centre, cache["feats"][frames.rows])
    # neighbours never cross an utterance boundary: the first frame of an utterance has itself on its left
    first_rows = torch.searchsorted(cache["utterance"], cache["utterance"][frames.rows])
    starts = first_rows == frames.rows
    assert starts.sum() > 1
    assert torch.equal(batch.feats[starts, 2 * 40 : 3 * 40], centre[starts])


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
        featurize(save / f"{split}.json", save / "x.pt", encoders, FBANK)
    cache = featurize(save / f"{split}.json", save / "y.pt", encoders, FBANK, on_nonfinite="skip")
    assert cache["stats"]["skipped_nonfinite"] == [utt] and torch.isfinite(cache["feats"]).all()


def test_nan_frames_in_a_cache_are_refused():
    cache = {"feats": torch.tensor([[0.0, 1.0], [float("nan"), 1.0]]), "utterance": torch.tensor([0, 1]),
             "utterances": ["FAKS0_SX1", "MABC0_SX2"], "labels": {"phone": torch.tensor([1, 1])}}
    with pytest.raises(FrameDataError, match="1 frames with NaN or Inf.*MABC0_SX2"):
        FrameSet(cache)


def test_an_utterance_spliced_alone_equals_its_frames_in_a_frameset(prepared):
    # the inference interface splices one utterance; FrameSet splices rows of many: one function, same frames
    save, _ = prepared
    cache = featurize(save / "train.json", save / "train.pt", build_encoders(save / "train.json"), FBANK)
    frames = FrameSet(cache, context=2)
    second = cache["utterance"] == 1
    alone = splice(cache["feats"][second], 2)
    in_set = frames.batch(torch.nonzero(second).flatten()).feats
    assert alone.shape == (int(second.sum()), 40 * 5)
    assert torch.equal(alone, in_set)
    assert torch.equal(alone[0, :80], cache["feats"][second][0].repeat(2))  # the edge frame repeats


def test_parallel_frame_pairs_join_two_speakers_on_the_same_phone(prepared):
    from speechbrain_fdnf.data.frames import FrameSet, build_encoders, featurize, parallel_frame_pairs

    save, splits = prepared
    encoders = build_encoders(save / "train.json")
    cache = featurize(save / "train.json", save / "pairs_train.pt", encoders, FBANK)
    frames = FrameSet(cache, exclude_silence=True, silence_index=encoders["phone"].lab2ind["sil"])
    pairs = parallel_frame_pairs(frames, splits["train"], HOP)
    assert len(pairs) > 0 and pairs.min() >= 0 and pairs.max() < len(frames)
    a, b = frames.batch(pairs[:, 0]), frames.batch(pairs[:, 1])
    assert (a.labels["speaker"] != b.labels["speaker"]).all()
    assert (a.labels["phone"] == b.labels["phone"]).all()  # aligned within the same phone segment
    texts = {uid: entry["text"] for uid, entry in splits["train"].items()}
    ids = frames.utterance_ids
    assert all(texts[ids[i]] == texts[ids[j]] for i, j in zip(frames.utterance[pairs[:, 0]].tolist(),
                                                               frames.utterance[pairs[:, 1]].tolist()))


def test_utterance_frame_pairs_join_two_phones_of_one_utterance(prepared):
    from speechbrain_fdnf.data.frames import FrameSet, build_encoders, featurize, utterance_frame_pairs

    save, _ = prepared
    encoders = build_encoders(save / "train.json")
    cache = featurize(save / "train.json", save / "pairs_train.pt", encoders, FBANK)
    frames = FrameSet(cache, exclude_silence=True, silence_index=encoders["phone"].lab2ind["sil"])
    pairs = utterance_frame_pairs(frames, seed=3)
    assert len(pairs) > 0.95 * len(frames)  # almost every frame has another phone in its utterance
    assert len(pairs[:, 0].unique()) == len(pairs)  # one partner per frame
    a, b = frames.batch(pairs[:, 0]), frames.batch(pairs[:, 1])
    assert (frames.utterance[pairs[:, 0]] == frames.utterance[pairs[:, 1]]).all()
    assert (a.labels["speaker"] == b.labels["speaker"]).all()
    assert (a.labels["phone"] != b.labels["phone"]).all()
    assert torch.equal(pairs, utterance_frame_pairs(frames, seed=3))
    assert not torch.equal(pairs, utterance_frame_pairs(frames, seed=4))
