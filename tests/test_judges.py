"""The independent speaker judge: EER arithmetic, the judge's own embeddings, a clear error without its package."""

import numpy as np
import pytest
from conftest import without_package

from speechbrain_fdnf.evaluation.judges import SpeakerEncoderJudge, equal_error_rate, pairwise_eer


def test_equal_error_rate_is_where_false_accepts_meet_false_rejects():
    rng = np.random.default_rng(0)
    target, impostor = rng.normal(1.0, 1.0, 4000), rng.normal(-1.0, 1.0, 4000)
    scores = np.concatenate([target, impostor])
    same = np.concatenate([np.ones(4000, bool), np.zeros(4000, bool)])
    # two unit Gaussians 2 apart cross at 0: each error is P(N(1, 1) < 0) = 0.159
    assert equal_error_rate(scores, same) == pytest.approx(0.159, abs=0.01)
    assert equal_error_rate(-scores, same) == pytest.approx(0.841, abs=0.01)  # a judge that has it backwards
    with pytest.raises(ValueError, match="both target and non-target"):
        equal_error_rate(scores[:10], same[:10])


def test_pairwise_eer_reads_speaker_clusters():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(5, 16))
    speakers = np.repeat(np.arange(5), 6)
    tight = centres[speakers] + 0.05 * rng.normal(size=(30, 16))
    assert pairwise_eer(tight, speakers) == 0.0
    assert pairwise_eer(rng.normal(size=(30, 16)), speakers) > 0.3  # no speaker in the vectors


def test_a_missing_judge_package_is_a_clear_error_naming_the_extra(monkeypatch):
    without_package(monkeypatch, "resemblyzer")
    with pytest.raises(ImportError, match=r"speechbrain-fdnf\[judge\]"):
        SpeakerEncoderJudge()


@pytest.mark.slow
def test_the_judge_tells_two_synthetic_speakers_apart(corpus):
    wavs = sorted(corpus.glob("TEST/DR*/*/*.WAV"))
    speakers = [wav.parent.name for wav in wavs]
    assert len(set(speakers)) == 2
    embeddings = SpeakerEncoderJudge().embed_files(wavs)
    assert embeddings.shape == (len(wavs), 256)
    assert pairwise_eer(embeddings, speakers) < 0.5
