"""Factor manipulation, the posterior table, and the evaluation report end to end."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import perturb, recipe
from speechbrain.processing.features import InputNormalization

from speechbrain_fdnf.data.frames import FrameBatch, FrameSet
from speechbrain_fdnf.engine import FeatureFlow
from speechbrain_fdnf.evaluation import FeatureProbe, draw_targets, posterior_table
from speechbrain_fdnf.evaluation.movers import (
    CellMeanOracle,
    InferredClasses,
    NearestNeighbourMatching,
    RealFrameCeiling,
    shift_by_class_means,
    standardised_features,
)
from speechbrain_fdnf.evaluation.structure import latent_structure
from speechbrain_fdnf.evaluation.tables import existing_cells
from speechbrain_fdnf.lobes import VAE, DiscriminativeFlow, FactorialGaussianPrior, RealNVP
from speechbrain_fdnf.matching import nearest_mean

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


@pytest.mark.parametrize("deviation", [0.0, 0.5, 2.0])
def test_the_deviation_scale_moves_the_factor_code_towards_the_target_mean_and_nothing_else(deviation):
    engine = make_engine("fdnf")
    prior = engine.prior
    batch = make_frames(seed=3).all()
    new = (batch.labels["speaker"] + 1) % prior.num_classes["speaker"]
    moved = engine.manipulate(batch.feats, "speaker", source=batch.labels["speaker"], target=new, deviation=deviation)
    z, z_moved = engine.encode(batch.feats), engine.encode(moved)
    for untouched in ("phone", "residual"):
        assert (prior.subspace(z_moved, untouched) - prior.subspace(z, untouched)).abs().max().item() < 1e-4
    means = prior.means("speaker")
    expected = means[new] + deviation * (prior.subspace(z, "speaker") - means[batch.labels["speaker"]])
    assert (prior.subspace(z_moved, "speaker") - expected).abs().max().item() < 1e-4
    # a model without prior means scales the deviation of its whole latent
    nf = make_engine("nf")
    whole = nf.class_means("speaker")
    moved = nf.manipulate(batch.feats[:5], "speaker", source=batch.labels["speaker"][:5], target=new[:5], deviation=deviation)
    codes = nf.encode(batch.feats[:5])
    expected = whole[new[:5]] + deviation * (codes - whole[batch.labels["speaker"][:5]])
    assert (nf.encode(moved) - expected).abs().max().item() < 1e-4


def test_targets_are_other_classes_among_the_candidates():
    gen = torch.Generator().manual_seed(0)
    current = torch.tensor([0, 2, 5, 5, 7] * 200)
    candidates = [0, 2, 5, 7]
    targets = draw_targets(current, candidates, gen)
    assert (targets != current).all() and set(targets.tolist()) <= set(candidates)
    assert set(targets[current == 0].tolist()) == {2, 5, 7}  # uniform over the others: all reached


def identity(batch, factor, other, new):
    """Leaves every frame as it is."""
    return batch.feats


@pytest.mark.parametrize("target,other", [("phone", "speaker"), ("speaker", "phone")])
def test_posterior_table_scores_no_manipulation_zero_and_a_perfect_one_near_the_probe(target, other):
    frames = separable_frames()
    probes = trained_probes(frames)
    candidates = range(probes[target].net[-1].out_features)
    unchanged = posterior_table(identity, probes, frames, target, other, candidates, 200)
    assert unchanged["delta_target"] == 0.0 and unchanged["delta_other"] == 0.0
    assert unchanged["p_target_x_prime"] == unchanged["p_target_x"] and unchanged["frames"] == 200
    model = shift_by_class_means(make_engine("fdnf"))
    for row in (unchanged, posterior_table(model, probes, frames, target, other, candidates, 200)):
        for key in ("p_target_x", "p_target_x_prime", "p_other_x", "p_other_x_prime"):
            assert 0.0 <= row[key] <= 1.0
        assert row["delta_target"] == pytest.approx(row["p_target_x_prime"] - row["p_target_x"])
        assert row["delta_other"] == pytest.approx(row["p_other_x_prime"] - row["p_other_x"])
    batch = frames.all()
    cells = existing_cells(batch.labels, target, other, 4 if target == "phone" else 3, 3 if target == "phone" else 4)
    ceiling = RealFrameCeiling([batch], {"phone": 4, "speaker": 3})
    perfect = posterior_table(ceiling, probes, frames, target, other, candidates, 200, cells=cells)
    accuracy = probes[target].accuracy(batch.feats, batch.labels[target])
    # real frames of the target class: p(target | x') rises to about what the probe gives real frames of a class
    assert perfect["delta_target"] > 0.2 and perfect["p_target_x_prime"] > perfect["p_target_x"] + 0.2
    assert accuracy > 0.9 and abs(perfect["p_target_x_prime"] - accuracy) < 0.15
    assert abs(perfect["delta_other"]) < 0.1  # the kept label was kept


def test_the_ceiling_of_a_corpus_of_copies_scores_exactly_the_probes_posteriors():
    # every frame of a (phone, speaker) cell is the same vector, and one cell has no frame at all
    gen = torch.Generator().manual_seed(3)
    cell_vectors = torch.randn(4, 3, DIM, generator=gen) * 2
    phone, speaker = torch.randint(4, (900,), generator=gen), torch.randint(3, (900,), generator=gen)
    keep = ~((phone == 3) & (speaker == 2))
    phone, speaker = phone[keep], speaker[keep]
    frames = FrameSet({"feats": cell_vectors[phone, speaker], "utterance": torch.arange(len(phone)),
                       "labels": {"phone": phone, "speaker": speaker}})
    probes = trained_probes(frames)
    batch = frames.all()
    cells = existing_cells(batch.labels, "speaker", "phone", 3, 4)
    assert not cells[3, 2] and cells.sum() == 11
    ceiling = RealFrameCeiling([batch], {"phone": 4, "speaker": 3}, seed=1)
    row = posterior_table(ceiling, probes, frames, "speaker", "phone", range(3), 300, seed=5, cells=cells)
    # the same frames and targets, scored directly on the target cells' vectors
    generator = torch.Generator().manual_seed(5)
    index = torch.randperm(len(frames), generator=generator)[:300]
    from speechbrain_fdnf.evaluation.tables import draw_targets_in_cells

    sample = frames.batch(index)
    new, has = draw_targets_in_cells(sample.labels["speaker"], sample.labels["phone"], cells, generator)
    assert row["frames"] == int(has.sum()) and has.any()
    q, s2 = sample.labels["phone"][has], new[has]
    assert ((q == 3) & (s2 == 2)).sum() == 0  # no target cell without frames
    with torch.no_grad():
        expected = probes["speaker"].posteriors(cell_vectors[q, s2])[torch.arange(len(q)), s2].mean().item()
        kept = probes["phone"].posteriors(cell_vectors[q, s2])[torch.arange(len(q)), q].mean().item()
    assert row["p_target_x_prime"] == pytest.approx(expected, abs=1e-6)
    assert row["p_other_x_prime"] == pytest.approx(kept, abs=1e-6)


@pytest.mark.parametrize("target,other", [("phone", "speaker"), ("speaker", "phone")])
def test_matching_in_the_kept_factors_space_moves_the_target_and_keeps_the_other(target, other):
    frames = separable_frames()
    probes = trained_probes(frames)
    batch = frames.all()
    half = DIM // 2
    kept_dims = {"phone": slice(0, half), "speaker": slice(half, DIM)}  # where each factor lives
    matching = NearestNeighbourMatching(batch, lambda feats, kept: feats[:, kept_dims[kept]], k=4)
    row = posterior_table(matching, probes, frames, target, other, range(4 if target == "phone" else 3), 300)
    assert row["p_target_x_prime"] > 0.8 and abs(row["delta_other"]) < 0.1
    # matched where the kept factor does not live, the neighbours are of any class of it: it is lost
    blind = NearestNeighbourMatching(batch, lambda feats, kept: feats[:, kept_dims[target]], k=4)
    worse = posterior_table(blind, probes, frames, target, other, range(4 if target == "phone" else 3), 300)
    assert worse["p_target_x_prime"] > 0.8 and worse["delta_other"] < row["delta_other"] - 0.2
    standardised = NearestNeighbourMatching(batch, standardised_features(batch.feats), k=4)
    assert posterior_table(standardised, probes, frames, target, other, range(4 if target == "phone" else 3),
                           300)["p_target_x_prime"] > 0.8


@pytest.mark.parametrize("target,other", [("phone", "speaker"), ("speaker", "phone")])
def test_a_gate_of_the_kept_class_restores_what_a_blind_matching_space_loses(target, other):
    frames = separable_frames()
    probes = trained_probes(frames)
    batch = frames.all()
    target_dims = {"phone": slice(0, DIM // 2), "speaker": slice(DIM // 2, DIM)}[target]
    blind = lambda feats, kept: feats[:, target_dims]  # noqa: E731 -- nothing of the kept factor in it
    classes = range(4 if target == "phone" else 3)
    lost = posterior_table(NearestNeighbourMatching(batch, blind, k=4), probes, frames, target, other, classes, 300)
    perfect = lambda kept: (batch.labels[kept], frames.labels[kept])  # noqa: E731 -- a model that is always right
    gated = NearestNeighbourMatching(batch, blind, k=4, gate=perfect)
    kept = posterior_table(gated, probes, frames, target, other, classes, 300)
    assert kept["p_target_x_prime"] > 0.8 and abs(kept["delta_other"]) < 0.1 < -lost["delta_other"]
    with pytest.raises(ValueError, match="positions"):  # a batch that does not say where its frames are
        gated(FrameBatch(batch.feats[:3], {k: v[:3] for k, v in batch.labels.items()}), target, other,
              torch.zeros(3, dtype=torch.long))


def test_nearest_mean_gate_falls_back_to_every_key_where_too_few_share_the_class():
    keys = torch.tensor([[0.0], [1.0], [2.0], [10.0]])
    values = keys * 10
    key_classes = torch.tensor([0, 0, 0, 1])
    queries, query_classes = torch.tensor([[9.0], [9.0]]), torch.tensor([0, 1])
    gated = nearest_mean(queries, keys, values, k=2, query_classes=query_classes, key_classes=key_classes)
    # class 0 has 3 keys: the 2 nearest of them; class 1 has 1 key (< k): the 2 nearest of all
    torch.testing.assert_close(gated[:, 0], torch.tensor([15.0, 60.0]))


def test_inferred_classes_pool_a_speaker_over_the_utterance_and_smooth_a_phone_over_neighbours():
    prior = FactorialGaussianPrior([{"name": "phone", "dim": 2, "num_classes": 2},
                                    {"name": "speaker", "dim": 2, "num_classes": 2}], residual_dim=0)
    with torch.no_grad():
        prior.means("phone").copy_(torch.tensor([[-3.0, 0.0], [3.0, 0.0]]))
        prior.means("speaker").copy_(torch.tensor([[0.0, -1.0], [0.0, 1.0]]))
    engine = FeatureFlow(DiscriminativeFlow(RealNVP(4, num_blocks=1, hidden_size=4), prior), fixed_normalization(0.0, 1.0))
    phone = torch.tensor([0, 0, 1, 0, 0, 1, 1, 1])  # frame 2 is an outlier inside a run of phone 0
    speaker = torch.tensor([0, 0, 1, 0, 1, 1, 0, 1])  # the first utterance mostly speaker 0, the second 1
    utterance = torch.tensor([7, 7, 7, 7, 7, 3, 3, 3])  # any ids, each utterance's frames consecutive
    codes = torch.cat([prior.means("phone")[phone], prior.means("speaker")[speaker]], dim=1)
    assert engine.inferred_classes(codes, "phone", utterance, smooth=0).tolist() == phone.tolist()
    assert engine.inferred_classes(codes, "phone", utterance, smooth=1).tolist() == [0, 0, 0, 0, 0, 1, 1, 1]
    assert engine.inferred_classes(codes, "speaker", utterance).tolist() == [0, 0, 0, 0, 0, 1, 1, 1]
    with pytest.raises(ValueError, match="no 'gender' classes"):
        engine.inferred_classes(codes, "gender", utterance)


def test_inferred_classes_gate_reads_the_model_on_pool_and_scored_frames():
    engine = make_engine("fdnf")
    pool, scored = make_frames(n=200), make_frames(n=100, seed=3)
    gate = InferredClasses(engine, pool, scored, smooth=2)
    pool_phones, scored_phones = gate("phone")
    expected = engine.inferred_classes(engine.encode_all(scored.all().feats), "phone", scored.utterance, 2)
    assert torch.equal(scored_phones, expected) and len(pool_phones) == 200
    pool_speakers, _ = gate("speaker")  # an utterance-level label: one class per utterance
    assert all(len(pool_speakers[pool.utterance == u].unique()) == 1 for u in pool.utterance.unique())
    accuracy = gate.accuracy()  # of both factors asked for, on both sets, against their labels
    assert accuracy["speaker"]["pool"] == (pool_speakers == pool.labels["speaker"]).float().mean().item()
    assert accuracy["phone"]["scored"] == (scored_phones == scored.labels["phone"]).float().mean().item()
    decoders = engine.fit_sequence_decoders(pool)  # with the model's phone decoder instead of the window
    _, decoded = InferredClasses(engine, pool, scored, smooth=2, decoders=decoders)("phone")
    assert torch.equal(decoded, engine.inferred_classes(engine.encode_all(scored.all().feats), "phone",
                                                        scored.utterance, decoder=decoders["phone"]))


def test_cell_mean_oracle_moves_codes_by_the_cell_mean_difference():
    engine = make_engine("fdnf")
    train = make_frames(n=1200).all()
    oracle = CellMeanOracle(engine, train, {"phone": 4, "speaker": 3})
    means = oracle.cell_means("speaker", "phone")
    codes = engine.encode(train.feats)
    first = (train.labels["phone"] == 2) & (train.labels["speaker"] == 1)
    torch.testing.assert_close(means[2 * 3 + 1], codes[first].mean(0), atol=1e-5, rtol=0)
    batch = make_frames(n=50, seed=4).all()
    new = (batch.labels["speaker"] + 1) % 3
    moved = engine.encode(oracle(batch, "speaker", "phone", new))
    base = batch.labels["phone"] * 3
    expected = engine.encode(batch.feats) + means[base + new] - means[base + batch.labels["speaker"]]
    torch.testing.assert_close(moved, expected, atol=1e-3, rtol=0)


def test_the_structure_of_additive_codes_has_no_interaction_even_when_unbalanced():
    gen = torch.Generator().manual_seed(0)
    phone = torch.randint(5, (3000,), generator=gen)
    speaker = torch.where(phone < 2, torch.randint(2, (3000,), generator=gen), torch.randint(4, (3000,), generator=gen))
    phone_means, speaker_means = torch.randn(5, 3, generator=gen) * 2, torch.randn(4, 3, generator=gen)
    exact = latent_structure(phone_means[phone] + speaker_means[speaker], phone, speaker, 5, 4)
    assert exact["interaction"] < 1e-9 and exact["within"] < 1e-9
    assert exact["first"] + exact["second"] > 0.5
    noise = torch.randn(3000, 3, generator=gen) * 0.5
    additive = latent_structure(phone_means[phone] + speaker_means[speaker] + noise, phone, speaker, 5, 4)
    assert additive["interaction"] < 1e-3  # only the noise in the cell means
    assert additive["first"] > additive["second"] > 0.05 and additive["within"] > 0.02
    assert additive["within_variance_per_dim"] == pytest.approx(0.25, rel=0.1)
    # a product of the two factors is interaction, not effects
    sign = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0])[phone] * torch.tensor([1.0, -1.0, -1.0, 1.0])[speaker]
    crossed = latent_structure(sign[:, None] * torch.ones(3) * 3 + noise, phone, speaker, 5, 4)
    assert crossed["interaction"] > 0.5 and crossed["interaction"] > 5 * (crossed["first"] + crossed["second"])


@pytest.mark.slow
def test_evaluation_recipe_writes_a_report_that_parses(tmp_path):
    command = [
        sys.executable, str(ROOT / "recipes/TIMIT/evaluate.py"), str(ROOT / "hparams/evaluate.yaml"),
        f"--output_root={tmp_path}", "--models={f-DNF: hparams/fdnf_3factor.yaml, NF: hparams/nf.yaml}",
        "--tables=[[phone, speaker], [speaker, phone], [gender, phone]]",
        "--data_overrides={embedded_corpus_size: small}",
        "--train_overrides={number_of_epochs: 2, num_blocks: 2, hidden_size: 32}",
        "--probe_epochs=2", "--num_frames=300", "--tsne_per_class=20", "--leakage_max_train=2000", "--seeds=[1, 2]",
        "--scored_split=valid",  # the tuning protocol; held-out scoring is the README test's
        "--knn_gates=[window, decoded]",
        "--table_speakers=3", "--utterance_tables=4",  # the paper's implied subset, utterance-level tables
        "--conversion_utterances=2", "--conversion_examples=False",  # conversion judged by the judges,
        "--conversion_reference_counts=[1]",  # with rows given one reference utterance of the target,
        "--conversion_blocks=[test speakers, training speakers]",  # on valid data: the training speakers
        "--phone_recognizer_overrides={number_of_epochs: 1}",
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
        gated = seed_result["reference"]["f-DNF kNN matching gated by the model (k=4)"]["tables"]
        assert set(gated) == {"phone", "speaker", "gender"}  # one row per gate of knn_gates
        decoded = seed_result["reference"]["f-DNF kNN matching gated by the model, phones decoded (k=4)"]["tables"]
        assert set(decoded) == {"phone", "speaker", "gender"}  # the phone decoded along the utterance
        assert decoded["speaker"] != gated["speaker"]  # the phone gate of speaker matching differs
        assert 0 <= seed_result["reference"]["f-DNF kNN matching gated by the model, phones decoded (k=4)"][
            "gate_accuracy"]["phone"]["scored"] <= 1
        subset = seed_result["models"]["f-DNF"]["speakers_subset"]
        assert set(subset) == {"phone", "speaker", "gender"} and subset["speaker"]["frames"] > 0
        utterance = seed_result["models"]["f-DNF"]["utterance"]
        assert utterance["utterances"] == 4 and 0 <= utterance["p_target_x_prime"] <= 1
        assert "utterance_subset" in seed_result["reference"]["real-frame ceiling"]
    # conversion: the contract's rows, as plain numbers, on the training speakers (the valid split)
    rows = report["conversion"]["rows"]
    assert report["conversion"]["block"] == "training speakers"
    assert sum(name == "converter default" for name in rows) == 1
    assert any("copy" in name for name in rows) and any("real target" in name for name in rows)
    from speechbrain_fdnf.manipulations import REGISTRY

    for name in REGISTRY:  # every registered manipulation is a row of the model the converter serves
        assert any(row.startswith(f"f-DNF {name}") for row in rows), (name, list(rows))
    for name in ("cells", "knn", "select"):  # the first variant of each, given one of the three reference utterances
        assert sum(row.startswith(f"f-DNF {name}") and row.endswith(", 1 of the 3 reference utterances")
                   for row in rows) == 1, list(rows)
    for values in rows.values():
        assert 0 <= values["verified_as_target"] <= 1 and 0 <= values["closer_to_target"] <= 1
        assert 0 <= values["spoof_eer"] <= 100 and values["per_recognizer"] >= 0 and values["per_independent"] >= 0
        assert -1 <= values["cos_target"] <= 1 and -1 <= values["cos_source"] <= 1
    summary = report["summary"]["models"]["f-DNF"]["tables"]["phone"]["delta_target"]
    assert len(summary["values"]) == 2 and summary["std"] >= 0
    markdown = (out / "results.md").read_text()
    assert "### Phone manipulation" in markdown and "### Speaker manipulation" in markdown and " ± " in markdown
    # the paper's implied setup leads, each model beside the paper's row; then the paper's tables over all
    # training speakers, the matching rows (beyond the paper) and the ceiling (a reference)
    headline = markdown.index("## Frame tables over 3 training speakers")
    paper, beyond, reference = (markdown.index(f"## {heading}") for heading in
                                ("The paper's tables", "Beyond the paper", "Reference rows"))
    assert headline < paper < beyond < reference < markdown.index("## Leakage probes")
    assert headline < markdown.index("| f-DNF | ") < markdown.index("| the paper's f-DNF (TIMIT) | | | +0.623 |") < paper
    assert paper < markdown.index("| f-DNF | ", paper) < beyond < markdown.index("| f-DNF kNN matching (k=4) |") < reference
    assert reference < markdown.index("| real-frame ceiling |", reference)
    assert report["row_kinds"]["f-DNF"] == "paper" and report["row_kinds"]["real-frame ceiling"] == "reference"
    assert "Scored on the valid split" in markdown
    assert "## Matching gates" in markdown and "| f-DNF kNN matching gated by the model, phones decoded (k=4) | phone |" in markdown
    assert "### Gender manipulation (phone should stay)" in markdown and "| f-DNF | z_gender |" in markdown
    assert "## Frame tables over 3 training speakers" in markdown and "## Utterance-level speaker manipulation" in markdown
    assert "## Conversion judged by independent judges" in markdown and "| converter default |" in markdown
    assert (out / "tsne.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "### Phone manipulation" in result.stdout


def test_evaluation_recipe_refuses_to_score_the_test_split(tmp_path):
    command = [sys.executable, str(ROOT / "recipes/TIMIT/evaluate.py"), str(ROOT / "hparams/evaluate.yaml"),
               f"--output_root={tmp_path}", "--scored_split=test"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "scored_split must be heldout or valid, got 'test'" in result.stderr
    assert not list(tmp_path.iterdir())  # refused before training or preparing anything


def test_the_evaluation_yaml_lists_every_setting_so_any_can_be_overridden():
    """hyperpyyaml refuses an override of a key the yaml lacks: hparams/evaluate.yaml holds every setting."""
    from dataclasses import fields

    from hyperpyyaml import load_hyperpyyaml

    from speechbrain_fdnf.evaluation import EvaluationConfig

    with open(ROOT / "hparams/evaluate.yaml") as handle:
        listed = set(load_hyperpyyaml(handle))
    assert {item.name for item in fields(EvaluationConfig)} - listed == set()


def test_reference_counts_must_be_fewer_than_the_blocks_give():
    from speechbrain_fdnf.evaluation import EvaluationConfig

    assert EvaluationConfig.from_dict({"output_root": "r", "conversion_reference_counts": [1, 2]})
    for counts in ([3], [0]):
        with pytest.raises(ValueError, match="conversion_reference_counts: each at least 1 and below the blocks' 3"):
            EvaluationConfig.from_dict({"output_root": "r", "conversion_reference_counts": counts})


def test_evaluation_takes_the_device_as_every_recipe_does(tmp_path):
    from speechbrain.utils.distributed import infer_device

    from speechbrain_fdnf.evaluation import EvaluationConfig

    assert EvaluationConfig.from_dict({"output_root": "r"}).device == infer_device()  # CUDA when present
    assert EvaluationConfig.from_dict({"output_root": "r", "device": "cpu"}).device == "cpu"
    command = [sys.executable, str(ROOT / "recipes/TIMIT/evaluate.py"), str(ROOT / "hparams/evaluate.yaml"),
               f"--output_root={tmp_path}", "--device=gpu7"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "device: 'gpu7' is not a torch device" in result.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("path", sorted((ROOT / "hparams").glob("evaluate*.yaml"))
                         + sorted((ROOT / "hparams/experiments").glob("*.yaml")), ids=lambda path: path.name)
def test_every_evaluation_yaml_is_a_valid_config_whose_models_exist(path, tmp_path):
    from hyperpyyaml import load_hyperpyyaml

    from speechbrain_fdnf.evaluation import EvaluationConfig

    with open(path) as handle:
        config = EvaluationConfig.from_dict(load_hyperpyyaml(handle, {"output_root": str(tmp_path)}))
    assert config.models and config.eval_folder.startswith(str(tmp_path))
    for entry in config.models.values():
        assert (ROOT / (entry["hparams"] if isinstance(entry, dict) else entry)).is_file()
    with pytest.raises(ValueError, match="unknown evaluation setting"):
        EvaluationConfig.from_dict({**vars(config), "knn": 3})


def test_a_table_is_one_section_in_the_list_the_driver_the_report_and_the_yaml_share(monkeypatch):
    from speechbrain_fdnf.evaluation import EvaluationConfig, markdown, sections

    class Frames(sections.Section):
        name = "frames"

        def render(self, summary, row_kinds, config):
            return ["## Frames scored", "", f"{summary['frames']['mean']:.0f}", ""]

    monkeypatch.setattr(sections, "SECTIONS", [*sections.SECTIONS, Frames()])
    summary = {"frames": {"mean": 2000.0, "std": 0.0, "values": [2000.0]}, "probe_accuracy": {}, "models": {}}
    text = markdown(summary, [1], EvaluationConfig.from_dict({"output_root": "r", "sections": ["frames"]}))
    assert text.splitlines()[2:4] == ["## Frames scored", ""] and "2000" in text
    with pytest.raises(ValueError, match="unknown section"):
        markdown(summary, [1], EvaluationConfig.from_dict({"output_root": "r", "sections": ["framez"]}))


def test_train_only_trains_what_is_missing_and_evaluates_nothing(tmp_path, monkeypatch):
    evaluate = recipe("evaluate")
    trained = []
    monkeypatch.setattr(evaluate, "train_if_missing", lambda hparams, *args, **kwargs: trained.append(hparams["output_folder"]))
    monkeypatch.setattr(evaluate, "train_recognizer_if_missing", lambda config, hparams: trained.append(config.phone_recognizer))
    monkeypatch.setattr(evaluate, "prepare_data", lambda *args: pytest.fail("train_only must evaluate nothing"))
    evaluate.main([str(ROOT / "hparams/evaluate.yaml"), f"--output_root={tmp_path}", "--train_only=True", "--seeds=[1, 2]"])
    assert sorted(trained) == sorted([f"{tmp_path}/{model}/{seed}" for model in ("vae", "nf", "dnf_phone", "dnf_speaker", "fdnf")
                                      for seed in (1, 2)] + [f"{tmp_path}/phone_recognition"] * 2)
    assert not (tmp_path / "evaluation" / "results.json").exists()
