"""Vocal tract length perturbation of log-Mel frames (speechbrain_fdnf.augment) and the tagger recipe's training
augmentations."""

import importlib.util
from pathlib import Path

import pytest
import torch
from speechbrain.augment.freq_domain import Warping
from speechbrain.lobes.features import Fbank

from speechbrain_fdnf.augment import VocalTractWarp, hz_to_mel

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "TIMIT" / "train_tagger.py"


def _peak_hz(spectrum, centres):
    """Where a single peak of a log-Mel frame lies: its two highest bands' centres on the Mel scale, weighted."""
    top = torch.topk(spectrum, 2)
    mels = hz_to_mel(centres[top.indices])
    mel = float((mels * top.values).sum() / top.values.sum())
    return 700 * (10 ** (mel / 2595) - 1)


@pytest.mark.parametrize("factor", [0.9, 0.95, 1.05, 1.1])
def test_a_formant_below_the_boundary_moves_by_the_factor(factor):
    """A peak at a band's centre (a formant) lands at factor times its frequency, within a tenth of a band: the warp
    reads each output band where the scaled axis puts it."""
    warp = VocalTractWarp.from_fbank(Fbank(n_mels=40), max_change=0.1)
    centres = warp.band_centres
    for band in (8, 15, 22):  # about 600, 1300 and 2300 Hz: first and second formants
        frame = torch.zeros(1, 1, 40)
        frame[0, 0, band] = 1.0
        moved = _peak_hz(warp.warped(frame, torch.tensor([factor]))[0, 0], centres)
        spacing = float(centres[band + 1] - centres[band])
        assert abs(moved - factor * float(centres[band])) < 0.1 * spacing, (band, factor, moved)


def test_the_warp_is_continuous_and_keeps_the_top_of_the_band():
    """The inverse warp is f / alpha below alpha times the boundary, continuous there, and maps the top onto itself:
    no band is read from beyond the filterbank."""
    warp = VocalTractWarp(torch.linspace(50.0, 7800.0, 40), top_hz=8000.0, linear_up_to=4800.0)
    for factor in (torch.tensor(0.9), torch.tensor(1.1)):
        hz = torch.linspace(0.0, 8000.0, 1601)
        sources = warp.source_frequencies(hz, factor)
        assert float(sources[-1]) == pytest.approx(8000.0)
        assert bool((sources[1:] > sources[:-1]).all())  # increasing: the bands keep their order
        assert float((sources[1:] - sources[:-1]).max()) < 5 * 1.2  # no jump at the boundary (steps of 5 Hz)
        low = hz < 0.5 * 4800
        assert torch.allclose(sources[low], hz[low] / factor)


def test_each_utterance_gets_its_own_factor_and_each_frame_stays_where_it_is():
    """A batch of one utterance repeated comes back as different utterances (one factor each), every frame warped
    alone (time and so the labels untouched); no change at all when the range is 0."""
    torch.manual_seed(0)
    utterance = torch.randn(1, 30, 40)
    batch = utterance.expand(4, -1, -1).clone()
    warp = VocalTractWarp.from_fbank(Fbank(n_mels=40), max_change=0.1)
    warped = warp(batch)
    assert warped.shape == batch.shape
    assert all(not torch.allclose(warped[0], warped[i]) for i in range(1, 4))
    factors = torch.tensor([0.93, 1.07])
    whole = warp.warped(utterance.expand(2, -1, -1), factors)
    for frame in (0, 17, 29):
        assert torch.allclose(whole[:, frame], warp.warped(utterance[:, frame:frame + 1].expand(2, -1, -1), factors)[:, 0])
    assert torch.equal(VocalTractWarp.from_fbank(Fbank(n_mels=40), max_change=0.0)(batch), batch)


@pytest.mark.parametrize("bad", [-0.1, 1.0])
def test_a_range_outside_0_to_1_is_refused(bad):
    with pytest.raises(ValueError, match="max_change"):
        VocalTractWarp(torch.tensor([100.0, 200.0]), top_hz=8000.0, max_change=bad)


def test_the_tagger_recipe_builds_its_training_augmentation_from_its_hparams():
    """Nothing by default; the Mel-axis warping with a warp_window; the vocal tract warp on the model's own
    filterbank (its 40 bands, its upper edge) with a vocal_tract_change, after the warping when both are set."""
    spec = importlib.util.spec_from_file_location("train_tagger", RECIPE)
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    fbank, warping = Fbank(n_mels=40), Warping(dim=2)
    assert recipe.training_augmentation({"warp_window": 0, "vocal_tract_change": 0.0}, fbank) is None
    assert recipe.training_augmentation({"warp_window": 5, "augmentation": warping}, fbank)[0] is warping
    both = recipe.training_augmentation({"warp_window": 5, "augmentation": warping, "vocal_tract_change": 0.1}, fbank)
    assert both[0] is warping and isinstance(both[1], VocalTractWarp)
    assert both[1].max_change == 0.1 and len(both[1].band_centres) == 40 and both[1].top_hz == 8000.0


def test_the_recipes_frequency_masks_blank_two_bands_runs_per_utterance_at_most_their_width():
    """freq_mask_width in the tagger's yaml: the frequency masks come last; each utterance of a batch keeps every
    band but at most two runs of at most that many, which take one value (the batch's mean), every frame alike."""
    from hyperpyyaml import load_hyperpyyaml

    spec = importlib.util.spec_from_file_location("train_tagger", RECIPE)
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    with open(ROOT / "hparams" / "phone_tagger.yaml") as handle:
        hparams = load_hyperpyyaml(handle, {"freq_mask_width": 5, "vocal_tract_change": 0.1})
    stages = recipe.training_augmentation(hparams, Fbank(n_mels=40))
    assert isinstance(stages[0], VocalTractWarp) and stages[-1] is hparams["frequency_masks"]
    torch.manual_seed(0)
    feats = torch.randn(16, 30, 40)
    masked = hparams["frequency_masks"](feats.clone())
    assert (masked != feats).any(dim=1).any(dim=1).sum() >= 12  # most utterances lost a band or more
    for before, after in zip(feats, masked):
        blank = (after != before).any(dim=0)  # (bands,): where the utterance changed
        assert torch.equal(after[:, ~blank], before[:, ~blank])
        if blank.any():
            assert torch.allclose(after[:, blank], feats.mean())  # one value, the batch's mean
        starts = blank & ~torch.cat([torch.tensor([False]), blank[:-1]])
        assert int(starts.sum()) <= 2 and int(blank.sum()) <= 2 * 5
    assert hparams["freq_mask_width"] == 5 and recipe.training_augmentation(
        {**hparams, "freq_mask_width": 0, "vocal_tract_change": 0.0}, Fbank(n_mels=40)) is None
