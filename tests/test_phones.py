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
