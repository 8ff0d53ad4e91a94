"""The generative models compared in the paper, with one shared interface.

Both models expose:

* ``encode(x)`` -> a tuple whose first element is the latent code
  (the flow's ``z``; the VAE's posterior mean);
* ``decode(z)`` -> the data-space point (the flow's exact inverse; the VAE's
  decoder mean);
* ``objective(x, labels)`` (also ``forward``) -> the per-example training loss
  in nats per dimension (negative log-likelihood for flows, negative ELBO for
  the VAE).

Authors
 * speechbrain-fdnf developers
"""

import math

import torch
from torch import nn

from speechbrain_fdnf.lobes.mlp import mlp


class DiscriminativeFlow(nn.Module):
    """A normalizing flow with a factorial class-conditional prior: NF, DNF or f-DNF.

    ``log p(x | labels) = prior.log_prob(f^-1(x), labels) + log|det df^-1/dx|``.

    Arguments
    ---------
    flow : speechbrain_fdnf.lobes.flows.SequentialFlow
        Maps data to latent with ``encode`` and back with ``decode``.
    prior : speechbrain_fdnf.lobes.priors.FactorialGaussianPrior
        Prior over the latent; its ``latent_dim`` must match the flow.

    Example
    -------
    >>> from speechbrain_fdnf.lobes.flows import RealNVP
    >>> from speechbrain_fdnf.lobes.priors import FactorialGaussianPrior
    >>> model = DiscriminativeFlow(
    ...     RealNVP(input_dim=4, num_blocks=2, hidden_size=8),
    ...     FactorialGaussianPrior([{"name": "phone", "dim": 2, "num_classes": 3}], residual_dim=2),
    ... )
    >>> x = torch.randn(5, 4)
    >>> model.log_prob(x, {"phone": torch.tensor([0, 1, 2, 0, 1])}).shape
    torch.Size([5])
    >>> model.objective(x).shape  # phone marginalised
    torch.Size([5])
    """

    def __init__(self, flow, prior):
        super().__init__()
        flow_dim = getattr(flow, "input_dim", prior.latent_dim)
        if flow_dim != prior.latent_dim:
            raise ValueError(
                f"flow dimension {flow_dim} differs from the prior's latent dimension "
                f"{prior.latent_dim} (sum of factor dims + residual_dim)"
            )
        self.flow = flow
        self.prior = prior
        self.dim = prior.latent_dim

    def encode(self, x):
        """``(z, log|det dz/dx|)``."""
        return self.flow.encode(x)

    def decode(self, z):
        """The exact inverse ``x = f(z)``."""
        return self.flow.decode(z)

    def log_prob(self, x, labels=None):
        """Per-example ``log p(x | labels)`` in nats (unlabelled factors marginalised)."""
        z, log_det = self.encode(x)
        return self.prior.log_prob(z, labels) + log_det

    def objective(self, x, labels=None):
        """Per-example negative log-likelihood in nats per dimension."""
        return self._nll(*self.encode(x), labels)

    def _nll(self, z, log_det, labels):
        return -(self.prior.log_prob(z, labels) + log_det) / self.dim

    def pair_objective(self, x_a, x_b, labels_a, labels_b, shared, correlation):
        """Per-pair negative log-likelihood in nats per dimension (per frame) of two frames whose
        ``shared`` subspaces are correlated (:meth:`FactorialGaussianPrior.pair_log_prob`)."""
        z, log_det = self.encode(torch.cat([x_a, x_b]))
        n = len(x_a)
        return self._pair_nll(z[:n], z[n:], log_det[:n], log_det[n:], labels_a, labels_b, shared, correlation)

    def _pair_nll(self, z_a, z_b, log_det_a, log_det_b, labels_a, labels_b, shared, correlation):
        log_p = self.prior.pair_log_prob(z_a, z_b, labels_a, labels_b, shared, correlation)
        return -(log_p + log_det_a + log_det_b) / (2 * self.dim)

    def forward(self, x, labels=None, pairs=None):
        """The training objective, so that DDP wrappers see the whole computation.

        With ``pairs`` (a list of keyword arguments of :meth:`pair_objective`),
        returns the frames' objective and the list of the pairs' objectives,
        from one pass of the flow over the frames and both frames of every pair
        (larger matrix products than one pass each).
        """
        if pairs is None:
            return self.objective(x, labels)
        parts = [x] + [pair[side] for pair in pairs for side in ("x_a", "x_b")]
        sizes = [len(part) for part in parts]
        z, log_det = self.encode(torch.cat(parts))
        z, log_det = z.split(sizes), log_det.split(sizes)
        frames = self._nll(z[0], log_det[0], labels)
        losses = []
        for index, pair in enumerate(pairs):
            a, b = 1 + 2 * index, 2 + 2 * index
            losses.append(self._pair_nll(z[a], z[b], log_det[a], log_det[b], pair["labels_a"], pair["labels_b"],
                                         pair["shared"], pair["correlation"]))
        return frames, losses


def with_class_counts(model, counts):
    """``model`` with its prior given the number of classes of each of its factors.

    A model is declared in yaml before the data says how many speakers there
    are; the training recipe calls this with the counts of its label encoders,
    and an exported model's yaml with the counts it recorded. A model without a
    prior (the VAE) is returned unchanged.

    Arguments
    ---------
    model : DiscriminativeFlow or VAE
        The model.
    counts : dict
        Label set -> number of classes (label sets the prior lacks are ignored).

    Example
    -------
    >>> from speechbrain_fdnf.lobes.flows import RealNVP
    >>> from speechbrain_fdnf.lobes.priors import FactorialGaussianPrior
    >>> model = DiscriminativeFlow(RealNVP(4, num_blocks=1, hidden_size=8),
    ...                            FactorialGaussianPrior([{"name": "speaker", "dim": 2}], residual_dim=2))
    >>> with_class_counts(model, {"speaker": 5, "phone": 39}).prior.means("speaker").shape
    torch.Size([5, 2])
    """
    prior = getattr(model, "prior", None)
    if prior is not None:
        missing = [name for name in prior.factor_names if name not in counts]
        if missing:
            raise ValueError(f"factors {missing} have no labels in the data (available: {sorted(counts)})")
        prior.set_num_classes({name: counts[name] for name in prior.factor_names})
    return model


class VAE(nn.Module):
    """Gaussian VAE baseline: ``q(z|x) = N(mu(x), diag sigma^2(x))``, ``p(x|z) = N(m(z), diag s^2(z))``.

    The prior is ``N(0, I)``. Log-variances are softly bounded to
    ``[-log_var_bound, log_var_bound]`` so the decoder cannot collapse a
    variance to zero and make the ELBO diverge.

    Arguments
    ---------
    input_dim : int
        Feature dimension D.
    latent_dim : int, optional
        Latent dimension (defaults to D, like the flows).
    hidden_size : int
        Width of the encoder and decoder hidden layers.
    num_hidden_layers : int
        Depth of the encoder and decoder.
    activation : type
        Activation class.
    log_var_bound : float
        Bound on the absolute log-variances.

    Example
    -------
    >>> vae = VAE(input_dim=6, latent_dim=3, hidden_size=16)
    >>> x = torch.randn(4, 6)
    >>> mean, log_var = vae.encode(x)
    >>> vae.decode(mean).shape, vae.objective(x).shape
    (torch.Size([4, 6]), torch.Size([4]))
    """

    def __init__(
        self,
        input_dim,
        latent_dim=None,
        hidden_size=256,
        num_hidden_layers=2,
        activation=nn.ReLU,
        log_var_bound=7.0,
    ):
        super().__init__()
        self.dim = input_dim
        self.latent_dim = latent_dim or input_dim
        self.log_var_bound = float(log_var_bound)
        self.encoder = mlp(input_dim, 2 * self.latent_dim, hidden_size, num_hidden_layers, activation)
        self.decoder = mlp(self.latent_dim, 2 * input_dim, hidden_size, num_hidden_layers, activation)

    def _gaussian(self, net, inputs):
        mean, raw = net(inputs).chunk(2, dim=-1)
        return mean, self.log_var_bound * torch.tanh(raw / self.log_var_bound)

    def encode(self, x):
        """Posterior ``(mean, log_var)``; the mean is the latent code used for evaluation."""
        return self._gaussian(self.encoder, x)

    def decode(self, z):
        """Decoder mean."""
        return self._gaussian(self.decoder, z)[0]

    def elbo(self, x):
        """Per-example evidence lower bound (one reparameterised sample), in nats."""
        mean, log_var = self.encode(x)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
        rec_mean, rec_log_var = self._gaussian(self.decoder, z)
        log_lik = -0.5 * (
            (x - rec_mean) ** 2 * torch.exp(-rec_log_var) + rec_log_var + math.log(2 * math.pi)
        ).sum(-1)
        kl = 0.5 * (mean**2 + torch.exp(log_var) - 1.0 - log_var).sum(-1)
        return log_lik - kl

    def objective(self, x, labels=None):
        """Per-example negative ELBO in nats per dimension (labels are ignored)."""
        return -self.elbo(x) / self.dim

    def forward(self, x, labels=None):
        """The training objective, so that DDP wrappers see the whole computation."""
        return self.objective(x, labels)
