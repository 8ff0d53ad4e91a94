"""Factor manipulation, the posterior table, and the evaluation report end to end."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import perturb

from speechbrain.processing.features import InputNormalization

from speechbrain_fdnf.data.frames import FrameSet
from speechbrain_fdnf.engine import FeatureFlow
from speechbrain_fdnf.evaluation import FeatureProbe, draw_targets, posterior_table
from speechbrain_fdnf.lobes import VAE, DiscriminativeFlow, FactorialGaussianPrior, RealNVP

ROOT = Path(__file__).resolve().parents[1]
DIM = 6
FACTORS = {
    "nf": ([], DIM),
    "dnf_phone": ([{"name": "phone", "dim": DIM, "num_classes": 4}], 0),
    "dnf_speaker": ([{"name": "speaker", "dim": DIM, "num_classes": 3}], 0),
    "fdnf": ([{"name": "phone", "dim": 3, "num_classes": 4}, {"name": "speaker", "dim": 2, "num_classes": 3}], 1),
}


def make_frames(n=600, seed=0):
    gen = torch.Generator().manual_seed(seed)
    phone, speaker = torch.randint(4, (n,), generator=gen), torch.randint(3, (n,), generator=gen)
    feats = torch.randn(n, DIM, generator=gen) + phone[:, None] * 0.8 - speaker[:, None] * 0.5
    cache = {"feats": feats, "utterance": torch.arange(n) // 50, "labels": {"phone": phone, "speaker": speaker}}
    return FrameSet(cache)


def fixed_normalization(mean, std):
    normalize = InputNormalization(norm_type="global")
    normalize.glob_mean, normalize.glob_std = torch.full((DIM,), mean), torch.full((DIM,), std)
    return normalize


def make_engine(name):
    factors, residual = FACTORS[name]
    prior = FactorialGaussianPrior(factors, residual_dim=residual, mean_init="random")
    model = perturb(DiscriminativeFlow(RealNVP(DIM, num_blocks=3, hidden_size=16), prior), 0.05).eval()
    engine = FeatureFlow(model, fixed_normalization(0.5, 2.0))
    frames = make_frames().all()
    for factor, count in (("phone", 4), ("speaker", 3)):
        if not engine.has_prior_means(factor):
            engine.fit_class_means(factor, frames.feats, frames.labels[factor], count)
    return engine


def separable_frames(n=2000, seed=0):
    """Phone in the first half of the dimensions, speaker in the second: probes can read both."""
    gen = torch.Generator().manual_seed(seed)
    phone, speaker = torch.randint(4, (n,), generator=gen), torch.randint(3, (n,), generator=gen)
    feats = torch.randn(n, DIM, generator=gen) * 0.5
    feats[:, : DIM // 2] += phone[:, None] * 2.0
    feats[:, DIM // 2 :] += speaker[:, None] * 2.0
    return FrameSet({"feats": feats, "utterance": torch.arange(n) // 50, "labels": {"phone": phone, "speaker": speaker}})


def trained_probes(frames):
    batch = frames.all()
    return {
        "phone": FeatureProbe(DIM, 4, hidden_size=16).fit(batch.feats, batch.labels["phone"], epochs=20, batch_size=64, lr=3e-3),
        "speaker": FeatureProbe(DIM, 3, hidden_size=16).fit(batch.feats, batch.labels["speaker"], epochs=20, batch_size=64, lr=3e-3),
    }


@pytest.mark.parametrize("name", FACTORS)
@pytest.mark.parametrize("factor", ["phone", "speaker"])
def test_manipulating_to_the_same_class_is_the_identity(name, factor):
    engine = make_engine(name)
    batch = make_frames(seed=1).all()
    same = engine.manipulate(batch.feats, factor, source=batch.labels[factor], target=batch.labels[factor])
    assert (same - batch.feats).abs().max().item() < 1e-4


def test_vae_manipulation_uses_encoder_means_and_decoder_mean():
    vae = perturb(VAE(DIM, hidden_size=16), 0.1).eval()
    engine = FeatureFlow(vae, fixed_normalization(0.0, 1.0))
    frames = make_frames().all()
    engine.fit_class_means("phone", frames.feats, frames.labels["phone"], 4)
    means = engine.class_means("phone")
    codes = vae.encode(frames.feats)[0]
    assert torch.allclose(means[2], codes[frames.labels["phone"] == 2].mean(0), atol=1e-5)
    moved = engine.manipulate(frames.feats[:3], "phone", source=torch.tensor([0, 1, 2]), target=torch.tensor([1, 1, 3]))
    expected = vae.decode(codes[:3] + means[torch.tensor([1, 1, 3])] - means[torch.tensor([0, 1, 2])])
    assert torch.allclose(moved, expected, atol=1e-5)


@pytest.mark.parametrize("factor,other", [("phone", "speaker"), ("speaker", "phone")])
def test_fdnf_manipulation_leaves_the_other_subspaces_untouched(factor, other):
    engine = make_engine("fdnf")
    prior = engine.prior
    batch = make_frames(seed=2).all()
    new = (batch.labels[factor] + 1) % prior.num_classes[factor]
    moved = engine.manipulate(batch.feats, factor, source=batch.labels[factor], target=new)
    z, z_moved = engine.encode(batch.feats), engine.encode(moved)
    for untouched in (other, "residual"):
        assert (prior.subspace(z_moved, untouched) - prior.subspace(z, untouched)).abs().max().item() < 1e-4
    shift = prior.subspace(z_moved, factor) - prior.subspace(z, factor)
    expected = prior.means(factor)[new] - prior.means(factor)[batch.labels[factor]]
    assert (shift - expected).abs().max().item() < 1e-4


def test_targets_are_other_classes_among_the_candidates():
    gen = torch.Generator().manual_seed(0)
    current = torch.tensor([0, 2, 5, 5, 7] * 200)
    candidates = [0, 2, 5, 7]
    targets = draw_targets(current, candidates, gen)
    assert (targets != current).all() and set(targets.tolist()) <= set(candidates)
    assert set(targets[current == 0].tolist()) == {2, 5, 7}  # uniform over the others: all reached


class Identity:
    """Leaves every frame as it is."""

    def manipulate(self, feats, factor, source, target):
        return feats


class RealFrameOfTheTarget:
    """Replaces each frame by a real frame of its target class, keeping the other label: a perfect manipulation."""

    def __init__(self, frames, other):
        self.batch, self.other = frames.all(), other

    def manipulate(self, feats, factor, source, target):
        rows = []
        for frame, new in zip(feats, target.tolist()):
            kept = self.batch.labels[self.other][(self.batch.feats == frame).all(-1)][0]
            pool = (self.batch.labels[factor] == new) & (self.batch.labels[self.other] == kept)
            rows.append(torch.nonzero(pool).flatten()[0])
        return self.batch.feats[torch.stack(rows)]


@pytest.mark.parametrize("target,other", [("phone", "speaker"), ("speaker", "phone")])
def test_posterior_table_scores_no_manipulation_zero_and_a_perfect_one_near_the_probe(target, other):
    frames = separable_frames()
    probes = trained_probes(frames)
    candidates = range(probes[target].net[-1].out_features)
    unchanged = posterior_table(Identity(), probes, frames, target, other, candidates, 200)
    assert unchanged["delta_target"] == 0.0 and unchanged["delta_other"] == 0.0
    assert unchanged["p_target_x_prime"] == unchanged["p_target_x"] and unchanged["frames"] == 200
    for row in (unchanged, posterior_table(make_engine("fdnf"), probes, frames, target, other, candidates, 200)):
        for key in ("p_target_x", "p_target_x_prime", "p_other_x", "p_other_x_prime"):
            assert 0.0 <= row[key] <= 1.0
        assert row["delta_target"] == pytest.approx(row["p_target_x_prime"] - row["p_target_x"])
        assert row["delta_other"] == pytest.approx(row["p_other_x_prime"] - row["p_other_x"])
    perfect = posterior_table(RealFrameOfTheTarget(frames, other), probes, frames, target, other, candidates, 200)
    batch = frames.all()
    accuracy = probes[target].accuracy(batch.feats, batch.labels[target])
    # real frames of the target class: p(target | x') rises to about what the probe gives real frames of a class
    assert perfect["delta_target"] > 0.2 and perfect["p_target_x_prime"] > perfect["p_target_x"] + 0.2
    assert accuracy > 0.9 and abs(perfect["p_target_x_prime"] - accuracy) < 0.15
    assert abs(perfect["delta_other"]) < 0.1  # the kept label was kept


@pytest.mark.slow
def test_evaluation_recipe_writes_a_report_that_parses(tmp_path):
    command = [
        sys.executable, str(ROOT / "recipes/TIMIT/evaluate.py"), str(ROOT / "hparams/evaluate.yaml"),
        f"--output_root={tmp_path}", "--models={f-DNF: hparams/fdnf_3factor.yaml, NF: hparams/nf.yaml}",
        "--tables=[[phone, speaker], [speaker, phone], [gender, phone]]",
        "--data_overrides={embedded_corpus_small: True}",
        "--train_overrides={number_of_epochs: 2, num_blocks: 2, hidden_size: 32}",
        "--probe_epochs=2", "--num_frames=300", "--tsne_per_class=20", "--leakage_max_train=2000", "--seeds=[1, 2]",
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    out = tmp_path / "evaluation"
    report = json.loads((out / "results.json").read_text())
    assert report["seeds"] == [1, 2] and len(report["per_seed"]) == 2
    for seed_result in report["per_seed"]:
        for model in ("f-DNF", "NF"):
            for row in seed_result["models"][model]["tables"].values():
                assert all(0.0 <= row[k] <= 1.0 for k in ("p_target_x", "p_target_x_prime", "p_other_x", "p_other_x_prime"))
                assert row["delta_target"] == pytest.approx(row["p_target_x_prime"] - row["p_target_x"])
        # three factors, no code change: a subspace, a table and leakage probes for gender
        assert set(seed_result["models"]["f-DNF"]["leakage"]) == {"z_phone", "z_speaker", "z_gender", "z_residual"}
        assert set(seed_result["models"]["NF"]["tables"]) == {"phone", "speaker", "gender"}
        assert set(seed_result["models"]["NF"]["leakage"]["z"]) == {"phone", "speaker", "gender"}
        assert set(seed_result["models"]["NF"]["leakage"]) == {"z"}
    summary = report["summary"]["models"]["f-DNF"]["tables"]["phone"]["delta_target"]
    assert len(summary["values"]) == 2 and summary["std"] >= 0
    markdown = (out / "results.md").read_text()
    assert "## Phone manipulation" in markdown and "## Speaker manipulation" in markdown and " ± " in markdown
    assert "## Gender manipulation (phone should stay)" in markdown and "| f-DNF | z_gender |" in markdown
    assert (out / "tsne.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "## Phone manipulation" in result.stdout
