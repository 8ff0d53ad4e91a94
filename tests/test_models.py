"""Model-level likelihoods, the VAE baseline, and a tiny f-DNF factorization run."""

import math

import pytest
import torch
from conftest import perturb
from sklearn.linear_model import LogisticRegression
from torch.distributions import Normal

from speechbrain_fdnf.lobes import VAE, DiscriminativeFlow, FactorialGaussianPrior, RealNVP


def test_flow_log_prob_is_prior_plus_log_det_and_objective_is_per_dimension():
    flow = perturb(RealNVP(4, num_blocks=2, hidden_size=8), 0.1).eval()
    model = DiscriminativeFlow(flow, FactorialGaussianPrior([], residual_dim=4))
    x = torch.randn(6, 4)
    z, log_det = flow.encode(x)
    expected = Normal(0.0, 1.0).log_prob(z).sum(-1) + log_det
    assert torch.allclose(model.log_prob(x), expected, atol=1e-5)
    assert torch.allclose(model.objective(x), -expected / 4, atol=1e-6)


def test_an_actnorm_flow_of_a_standard_normal_has_the_exact_gaussian_density():
    # An affine flow of a standard normal: log p(x) must be the exact Gaussian density.
    flow = RealNVP(2, num_blocks=1, hidden_size=4, mixing="none")
    with torch.no_grad():
        flow.transforms[0].bias.copy_(torch.tensor([-1.0, 2.0]))
        flow.transforms[0].log_scale.copy_(torch.tensor([0.5, -0.3]))
    flow.transforms[0].initialized.fill_(True)
    model = DiscriminativeFlow(flow, FactorialGaussianPrior([], residual_dim=2))
    x = torch.randn(10, 2)
    scale = torch.exp(-torch.tensor([0.5, -0.3]))
    expected = Normal(torch.tensor([1.0, -2.0]), scale).log_prob(x).sum(-1)
    assert torch.allclose(model.log_prob(x), expected, atol=1e-5)


def test_training_forward_with_pairs_equals_the_separate_objectives():
    torch.manual_seed(0)
    prior = FactorialGaussianPrior([{"name": "phone", "dim": 2, "num_classes": 3},
                                    {"name": "speaker", "dim": 2, "num_classes": 4}], residual_dim=1)
    model = DiscriminativeFlow(perturb(RealNVP(5, num_blocks=2, hidden_size=8), 0.1), prior).eval()
    labels = lambda n: {"phone": torch.randint(3, (n,)), "speaker": torch.randint(4, (n,))}  # noqa: E731
    x, frame_labels = torch.randn(6, 5), labels(6)
    pairs = [dict(x_a=torch.randn(4, 5), x_b=torch.randn(4, 5), labels_a=labels(4), labels_b=labels(4),
                  shared=shared, correlation=0.9) for shared in (["phone", "residual"], ["speaker"])]
    frames, losses = model(x, frame_labels, pairs=pairs)
    assert torch.allclose(frames, model.objective(x, frame_labels), atol=1e-6)
    assert len(losses) == 2
    for loss, pair in zip(losses, pairs):
        assert torch.allclose(loss, model.pair_objective(**pair), atol=1e-6)
    independent = dict(pairs[1], correlation=0.0)  # rho 0: the mean of the two frames' objectives
    expected = (model.objective(independent["x_a"], independent["labels_a"])
                + model.objective(independent["x_b"], independent["labels_b"])) / 2
    assert torch.allclose(model.pair_objective(**independent), expected, atol=1e-6)


def test_dimension_mismatch_between_flow_and_prior_is_reported():
    with pytest.raises(ValueError, match="flow dimension 4 differs"):
        DiscriminativeFlow(RealNVP(4, num_blocks=1), FactorialGaussianPrior([], residual_dim=3))


def test_vae_shapes_and_its_log_variance_bound():
    vae = perturb(VAE(5, latent_dim=3, hidden_size=16), 0.1)
    x = torch.randn(8, 5)
    mean, log_var = vae.encode(x)
    assert mean.shape == (8, 3) and log_var.shape == (8, 3)
    assert vae.decode(mean).shape == (8, 5)
    assert (log_var.abs() <= vae.log_var_bound).all()
    loss = vae.objective(x)
    assert loss.shape == (8,) and torch.isfinite(loss).all()


def test_vae_elbo_is_below_an_importance_sampled_log_likelihood():
    torch.manual_seed(0)
    vae = perturb(VAE(4, latent_dim=2, hidden_size=16), 0.5)
    x = torch.randn(6, 4)
    with torch.no_grad():
        elbo = torch.stack([vae.elbo(x) for _ in range(2000)]).mean(0)  # the bound's expectation
        mean, log_var = vae.encode(x)
        q = Normal(mean, torch.exp(0.5 * log_var))
        z = q.sample((4000,))
        rec_mean, rec_log_var = vae._gaussian(vae.decoder, z)
        log_joint = Normal(rec_mean, torch.exp(0.5 * rec_log_var)).log_prob(x).sum(-1) + Normal(0.0, 1.0).log_prob(z).sum(-1)
        log_likelihood = torch.logsumexp(log_joint - q.log_prob(z).sum(-1), dim=0) - math.log(len(z))
    assert (elbo <= log_likelihood + 0.02).all()  # a lower bound, up to the sampling error of both estimates
    assert (log_likelihood - elbo).max() > 1e-3  # and not trivially equal for a perturbed VAE


def test_vae_elbo_with_zero_networks_is_the_standard_normal_likelihood():
    vae = VAE(3, hidden_size=8)  # zero-initialised heads: q = N(0, I), p(x|z) = N(0, I)
    x = torch.randn(4, 3)
    expected = Normal(0.0, 1.0).log_prob(x).sum(-1)  # KL(q||p) = 0
    assert torch.allclose(vae.elbo(x), expected, atol=1e-6)


def test_vae_training_improves_elbo():
    torch.manual_seed(1)
    data = torch.randn(512, 2) @ torch.tensor([[2.0, 1.5], [0.0, 0.3]])
    vae = VAE(2, hidden_size=32)
    opt = torch.optim.Adam(vae.parameters(), lr=1e-2)
    start = vae.objective(data).mean().item()
    for _ in range(200):
        loss = vae.objective(data).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert vae.objective(data).mean().item() < start - 0.3


def make_two_factor_data(n, generator):
    """4-D frames generated by two binary factors, linearly mixed so that each
    factor spreads over every observed dimension."""
    a = torch.randint(2, (n,), generator=generator)
    b = torch.randint(2, (n,), generator=generator)
    u = torch.randn(n, 4, generator=generator) * 0.7
    u[:, :2] += (a[:, None] * 2 - 1) * 1.5
    u[:, 2:] += (b[:, None] * 2 - 1) * 1.5
    mixing, _ = torch.linalg.qr(torch.randn(4, 4, generator=generator))
    return u @ mixing.T * 2 + 1, a, b


def test_fdnf_learns_and_separates_two_factors_into_their_subspaces():
    gen = torch.Generator().manual_seed(0)
    x, a, b = make_two_factor_data(3000, gen)
    prior = FactorialGaussianPrior(
        [{"name": "A", "dim": 2, "num_classes": 2}, {"name": "B", "dim": 2, "num_classes": 2}],
        residual_dim=0,
        mean_init="data",
    )
    model = DiscriminativeFlow(RealNVP(4, num_blocks=4, hidden_size=32), prior)
    labels = {"A": a, "B": b}
    model.train()
    model.encode(x[:512])  # ActNorm data init
    with torch.no_grad():
        empty = prior.init_means_from_data([(model.encode(x)[0], labels)])
    assert empty == {"A": [], "B": []}
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    start = model.objective(x, labels).mean().item()
    for step in range(250):
        idx = torch.randint(len(x), (256,), generator=gen)
        loss = model.objective(x[idx], {"A": a[idx], "B": b[idx]}).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    end = model.objective(x, labels).mean().item()
    assert math.isfinite(end) and end < start - 0.2

    with torch.no_grad():
        z = model.encode(x)[0]
    train, test = slice(0, 2000), slice(2000, None)

    def probe(features, target):
        clf = LogisticRegression(max_iter=500).fit(features[train], target[train])
        return clf.score(features[test], target[test])

    z_a, z_b = prior.subspace(z, "A").numpy(), prior.subspace(z, "B").numpy()
    assert probe(z_a, a.numpy()) > 0.9
    assert probe(z_b, a.numpy()) < 0.7
    assert probe(z_b, b.numpy()) > 0.9
    assert probe(z_a, b.numpy()) < 0.7
