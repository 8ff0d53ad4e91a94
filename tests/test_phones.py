"""eSpeak phonemes to TIMIT-61, and TIMIT-61 folded to the 39 classes."""

import pytest

from speechbrain_fdnf.data.phones import FOLD_61_TO_39, TIMIT39, espeak_to_timit


def test_unknown_espeak_phoneme_is_an_error_not_unknown():
    with pytest.raises(KeyError, match="no TIMIT-61 mapping"):
        espeak_to_timit("Q!")


def test_folding_to_39_classes():
    assert len(TIMIT39) == 39 and len(FOLD_61_TO_39) == 61
    for phone61, phone39 in [("ix", "ih"), ("ax-h", "ah"), ("el", "l"), ("zh", "sh"), ("pau", "sil"),
                             ("h#", "sil"), ("bcl", "sil"), ("ao", "aa"), ("nx", "n"), ("iy", "iy")]:
        assert FOLD_61_TO_39[phone61] == phone39


@pytest.mark.parametrize("accent", ["en-us", "en", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc",
                                    "en-gb-scotland", "en-029"])
def test_every_english_accent_of_espeak_maps_to_timit(accent):
    """The stock voices of benchmarks/unseen_voices.py speak eSpeak NG's other English accents, whose phonemes the
    corpus's en-us voices never say (Scottish r-coloured vowels, Caribbean dental t): each maps to a TIMIT phone."""
    from speechbrain_fdnf.corpus.espeak import ESpeak

    text = "Which white wheel turns? Whose bird heard the word first? The thin wire keeps the fine hut three times tighter."
    phonemes = ESpeak.instance().synthesize(text, voice=accent).phonemes
    labels = {espeak_to_timit(name) for _, name in phonemes}  # a KeyError names the phoneme without a mapping
    assert {"er", "t", "w", "ay"} <= labels
