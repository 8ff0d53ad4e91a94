"""The factorial prior against torch.distributions, its subspaces and label checks."""

import math

import pytest
import torch
from torch.distributions import Normal

from speechbrain_fdnf.lobes import FactorialGaussianPrior

FACTORS = [
    {"name": "phone", "dim": 3, "num_classes": 6},
    {"name": "speaker", "dim": 2, "num_classes": 4},
]


def make_prior(**kwargs):
    prior = FactorialGaussianPrior(FACTORS, residual_dim=2, mean_init="random", **kwargs)
    return prior


def test_log_prob_equals_sum_of_normal_log_densities_over_subspaces():
    prior = make_prior()
    z = torch.randn(20, 7)
    labels = {"phone": torch.randint(6, (20,)), "speaker": torch.randint(4, (20,))}
    expected = (
        Normal(prior.means("phone")[labels["phone"]], 1.0).log_prob(z[:, 0:3]).sum(-1)
        + Normal(prior.means("speaker")[labels["speaker"]], 1.0).log_prob(z[:, 3:5]).sum(-1)
        + Normal(0.0, 1.0).log_prob(z[:, 5:7]).sum(-1)
    )
    assert torch.allclose(prior.log_prob(z, labels), expected, atol=1e-5)


def test_missing_label_marginalises_uniformly_over_classes():
    prior = make_prior()
    z = torch.randn(10, 7)
    phone = torch.randint(6, (10,))
    per_speaker = torch.stack(
        [prior.log_prob(z, {"phone": phone, "speaker": torch.full((10,), s)}) for s in range(4)]
    )
    expected = torch.logsumexp(per_speaker, 0) - math.log(4)
    assert torch.allclose(prior.log_prob(z, {"phone": phone}), expected, atol=1e-5)


def test_nf_dnf_and_fdnf_are_configurations_of_one_class():
    z = torch.randn(8, 4)
    nf = FactorialGaussianPrior([], residual_dim=4)
    assert torch.allclose(nf.log_prob(z), Normal(0.0, 1.0).log_prob(z).sum(-1), atol=1e-6)
    dnf = FactorialGaussianPrior([{"name": "phone", "dim": 4, "num_classes": 3}], mean_init="random")
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    expected = Normal(dnf.means("phone")[labels], 1.0).log_prob(z).sum(-1)
    assert torch.allclose(dnf.log_prob(z, {"phone": labels}), expected, atol=1e-5)
    assert dnf.slices["residual"] == slice(4, 4)


def test_the_class_posterior_at_a_class_mean_picks_that_class():
    prior = make_prior()
    opt = torch.optim.SGD(prior.parameters(), lr=0.5)
    for _ in range(3):  # trained means, not the initial draw
        z = torch.randn(32, 7) * 3
        labels = {"phone": torch.randint(6, (32,)), "speaker": torch.randint(4, (32,))}
        loss = -prior.log_prob(z, labels).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    for factor, count in (("phone", 6), ("speaker", 4)):
        noise = torch.randn(count, 7) * 5  # the other subspaces do not matter
        where = prior.slices[factor]
        at_means = noise.clone()
        at_means[:, where] = prior.means(factor).detach()
        posterior = prior.class_posterior(at_means, factor)
        assert torch.equal(posterior.argmax(-1), torch.arange(count))
        torch.testing.assert_close(posterior, prior.class_posterior(at_means + noise * (1 - _mask(where)), factor))
    # pooled: one class for a whole sequence, the one most frames are nearest to
    frames = torch.zeros(5, 7)
    frames[:, :3] = prior.means("phone").detach()[torch.tensor([2, 2, 2, 4, 1])]
    assert prior.most_likely_class(frames, "phone").tolist() == [2, 2, 2, 4, 1]
    assert prior.most_likely_class(frames, "phone", pooled=True).tolist() == [2] * 5


def _mask(where, dim=7):
    mask = torch.zeros(dim)
    mask[where] = 1
    return mask


@pytest.mark.parametrize(
    "labels,match",
    [
        ({"phone": torch.tensor([0, 6]), "speaker": torch.tensor([0, 1])}, "label 6 of factor 'phone' is out of range"),
        ({"phone": torch.tensor([0, 1]), "speaker": torch.tensor([-2, 1])}, "label -2 of factor 'speaker'"),
        ({"phone": torch.tensor([0.0, 1.0])}, "integer class indices"),
        ({"phone": torch.tensor([0, 1, 2])}, "shape"),
        ({"gender": torch.tensor([0, 1])}, "unknown factors"),
    ],
)
def test_bad_labels_raise_clear_value_errors(labels, match):
    with pytest.raises(ValueError, match=match):
        make_prior().log_prob(torch.randn(2, 7), labels)


def test_bad_configurations_raise():
    with pytest.raises(ValueError, match="mean_init"):
        FactorialGaussianPrior(FACTORS, mean_init="kmeans")
    with pytest.raises(ValueError, match="reserved or repeated"):
        FactorialGaussianPrior([FACTORS[0], FACTORS[0]])
    with pytest.raises(ValueError, match="no dimensions"):
        FactorialGaussianPrior([], residual_dim=0)
    with pytest.raises(ValueError, match="latent has 3 dims"):
        make_prior().log_prob(torch.randn(2, 3))


def test_init_means_from_data_sets_class_means_and_reports_empty_classes():
    prior = FactorialGaussianPrior(FACTORS, residual_dim=2)
    assert not bool(prior.means_initialized)
    z = torch.randn(400, 7)
    phone = torch.randint(5, (400,))  # class 5 never appears
    speaker = torch.randint(4, (400,))
    batches = [(z[i : i + 100], {"phone": phone[i : i + 100], "speaker": speaker[i : i + 100]}) for i in range(0, 400, 100)]
    empty = prior.init_means_from_data(batches)
    assert empty == {"phone": [5], "speaker": []}
    assert torch.allclose(prior.means("phone")[2], z[phone == 2, :3].mean(0), atol=1e-5)
    assert torch.allclose(prior.means("speaker")[1], z[speaker == 1, 3:5].mean(0), atol=1e-5)
    assert prior.means("phone")[5].abs().sum() == 0
    assert bool(prior.means_initialized)
    restored = FactorialGaussianPrior(FACTORS, residual_dim=2)
    restored.load_state_dict(prior.state_dict())
    assert bool(restored.means_initialized)


def test_means_can_be_frozen():
    prior = FactorialGaussianPrior(FACTORS, mean_init="zeros", learn_means=False)
    assert not any(p.requires_grad for p in prior.parameters())
    assert bool(prior.means_initialized)


def test_class_counts_can_be_given_after_construction():
    prior = FactorialGaussianPrior([{"name": "phone", "dim": 2}, {"name": "speaker", "dim": 2}], mean_init="random")
    with pytest.raises(RuntimeError, match="set_num_classes"):
        prior.log_prob(torch.randn(3, 4), {"phone": torch.zeros(3, dtype=torch.long)})
    prior.set_num_classes({"phone": 5, "speaker": 3})
    assert prior.means("phone").shape == (5, 2) and prior.means("speaker").shape == (3, 2)
    assert prior.log_prob(torch.randn(3, 4)).shape == (3,)
    prior.set_num_classes({"phone": 5})  # same count again is fine
    with pytest.raises(ValueError, match="already has 5 classes"):
        prior.set_num_classes({"phone": 6})
    with pytest.raises(ValueError, match="unknown factor"):
        prior.set_num_classes({"gender": 2})


def test_unknown_labels_are_marginalised_example_by_example():
    prior = make_prior()
    z = torch.randn(6, 7)
    phone = torch.randint(6, (6,))
    speaker = torch.tensor([0, -1, 2, -1, 3, 1])
    mixed = prior.log_prob(z, {"phone": phone, "speaker": speaker})
    known = prior.log_prob(z, {"phone": phone, "speaker": speaker.clamp_min(0)})
    marginal = prior.log_prob(z, {"phone": phone})
    expected = torch.where(speaker >= 0, known, marginal)
    torch.testing.assert_close(mixed, expected)
    # the data-initialised means leave unknown labels out
    init = FactorialGaussianPrior(FACTORS, residual_dim=2, mean_init="data")
    init.init_means_from_data([(z, {"phone": phone, "speaker": speaker})])
    torch.testing.assert_close(init.means("speaker")[2], z[2, 3:5])


def test_pair_log_prob_is_a_correlated_bivariate_normal():
    prior = FactorialGaussianPrior([{"name": "phone", "dim": 2, "num_classes": 3}], residual_dim=1)
    with torch.no_grad():
        prior.class_means["phone"].copy_(torch.randn(3, 2))
    z_a, z_b = torch.randn(5, 3), torch.randn(5, 3)
    labels_a, labels_b = {"phone": torch.tensor([0, 1, 2, 0, 1])}, {"phone": torch.tensor([0, 1, 2, 0, 1])}
    rho = 0.6
    got = prior.pair_log_prob(z_a, z_b, labels_a, labels_b, ["phone", "residual"], rho)
    # every dimension: (a, b) ~ N((mu, mu), [[1, rho], [rho, 1]]), independent across dimensions
    mean_a = torch.cat([prior.means("phone")[labels_a["phone"]], torch.zeros(5, 1)], 1)
    mean_b = torch.cat([prior.means("phone")[labels_b["phone"]], torch.zeros(5, 1)], 1)
    joint = torch.distributions.MultivariateNormal(torch.zeros(2), torch.tensor([[1.0, rho], [rho, 1.0]]))
    expected = joint.log_prob(torch.stack([z_a - mean_a, z_b - mean_b], -1)).sum(-1)
    assert torch.allclose(got, expected, atol=1e-5)
    # a subspace left out of `shared` stays independent
    only_residual = prior.pair_log_prob(z_a, z_b, labels_a, labels_b, ["residual"], rho)
    independent_phone = Normal(mean_a[:, :2], 1).log_prob(z_a[:, :2]).sum(-1) + Normal(mean_b[:, :2], 1).log_prob(
        z_b[:, :2]).sum(-1)
    assert torch.allclose(only_residual, independent_phone + joint.log_prob(
        torch.stack([z_a[:, 2:], z_b[:, 2:]], -1)).sum(-1), atol=1e-5)
    with pytest.raises(ValueError, match="correlation"):
        prior.pair_log_prob(z_a, z_b, labels_a, labels_b, ["phone"], 1.0)
    with pytest.raises(ValueError, match="labels of both"):
        prior.pair_log_prob(z_a, z_b, {}, labels_b, ["phone"], rho)
