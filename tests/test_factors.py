"""The factor schema: one place that says which label sets exist; adding one is one entry."""

import json

import pytest
import torch
from conftest import FBANK

from speechbrain_fdnf import factors
from speechbrain_fdnf.data.frames import build_encoders, featurize
from speechbrain_fdnf.factors import FRAME_LEVEL_LABELS, LABEL_SETS, LabelSet, unseen_allowed


def test_the_schema_names_the_label_sets_the_pipeline_and_the_models_read():
    assert list(LABEL_SETS) == ["phone", "speaker", "gender", "dialect"] and FRAME_LEVEL_LABELS == ("phone",)
    assert len(LABEL_SETS["phone"].inventory) == 39 and factors.SILENCE in LABEL_SETS["phone"].inventory
    assert unseen_allowed("test") == ("speaker", "dialect") and unseen_allowed("valid") == ()
    with pytest.raises(ValueError, match="on_unseen_label must be one of"):
        unseen_allowed("test", "ignore")


def test_a_new_label_set_is_one_schema_entry(prepared, monkeypatch, tmp_path):
    save, data = prepared
    # the corpus preparation writes the new key into every entry ...
    moods = {}
    for split in ("train", "test"):
        entries = {key: dict(entry, emotion="calm" if i % 2 else "happy") for i, (key, entry) in enumerate(data[split].items())}
        moods[split] = entries
        (tmp_path / f"{split}.json").write_text(json.dumps(entries))
    plain = featurize(save / "train.json", tmp_path / "plain.pt", build_encoders(save / "train.json"), FBANK)
    # ... and one LabelSet tells every layer about it
    monkeypatch.setitem(LABEL_SETS, "emotion", LabelSet("emotion", "emotion", frame_level=False, inventory=None, symbol="e"))
    encoders = build_encoders(tmp_path / "train.json")
    assert encoders["emotion"].lab2ind == {"calm": 0, "happy": 1}
    cache = featurize(tmp_path / "train.json", tmp_path / "train.pt", encoders, FBANK)
    first = cache["utterances"][0]
    assert (cache["labels"]["emotion"][cache["utterance"] == 0] == encoders["emotion"].lab2ind[moods["train"][first]["emotion"]]).all()
    assert set(cache["labels"]["emotion"].tolist()) == {0, 1} and len(cache["labels"]["emotion"]) == len(cache["feats"])
    assert factors.symbol("emotion") == "e"
    assert torch.equal(cache["labels"]["phone"], plain["labels"]["phone"]) and "emotion" not in plain["labels"]
