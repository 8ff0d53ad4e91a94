"""The corpus seam: preparers by name, one prepared-split contract, the options a folder was prepared with."""

import pytest

from speechbrain_fdnf import corpora
from speechbrain_fdnf.corpora import CORPORA, PreparationOptions, corpus_name, prepare_corpus
from speechbrain_fdnf.files import PREPARED_SPLITS, read_prepared_split, write_json_atomic


def test_a_corpus_is_one_registered_preparer(monkeypatch, tmp_path):
    def prepare_mine(hparams):
        for split in PREPARED_SPLITS:
            write_json_atomic(tmp_path / f"{split}.json", {f"{split}_1": {"speaker": "S1"}})
        return tmp_path

    monkeypatch.setitem(CORPORA, "mine", prepare_mine)
    assert prepare_corpus({"corpus": "mine"}) == tmp_path
    assert read_prepared_split(tmp_path, "heldout") == {"heldout_1": {"speaker": "S1"}}
    with pytest.raises(ValueError, match="corpus must be one of"):
        corpus_name({"corpus": "wsj"})


def test_timit_is_prepared_with_the_yaml_options_else_those_of_the_prepared_folder(corpus, tmp_path):
    prep = tmp_path / "prep"
    prepare_corpus({"data_folder": corpus, "prep_folder": prep, "heldout_per_speaker": 1, "valid_per_speaker": 2})
    recorded = PreparationOptions.of({"prep_folder": prep})  # a reuse recipe's yaml without the options
    assert (recorded.heldout_per_speaker, recorded.valid_per_speaker) == (1, 2)
    assert PreparationOptions.of({"prep_folder": prep, "heldout_per_speaker": 3}).heldout_per_speaker == 3
    assert PreparationOptions.of({}) == PreparationOptions()
    with pytest.raises(FileNotFoundError, match="no fallback to the embedded corpus"):
        prepare_corpus({"data_folder": tmp_path / "missing", "prep_folder": prep})
    assert corpora.corpus_name({"data_folder": corpus}) == "timit"


def test_embedded_corpus_options_are_checked_before_anything_is_synthesized(tmp_path):
    from speechbrain_fdnf.corpora import prepare_embedded_corpus

    hparams = {"embedded_corpus_folder": str(tmp_path / "corpus"), "embedded_corpus_size": "small",
               "embedded_corpus_options": {"voice_sprad": 0.5}, "prep_folder": str(tmp_path / "prep")}
    with pytest.raises(ValueError, match="voice_sprad"):
        prepare_embedded_corpus(hparams)
    assert not (tmp_path / "corpus").exists()
