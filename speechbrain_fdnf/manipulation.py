"""Factor manipulation, ``x' = f(f^-1(x) + mu_{A,c2} - mu_{A,c1})``, for all five models.

Class means come from the prior when the model was trained with factor A's
labels (f-DNF, and a DNF for its own label), and otherwise from the mean
latent code of the training frames of each class (VAE: encoder means; NF; a
DNF for the other label), which gives every model the same chance
(DESIGN.md §2).

Authors
 * speechbrain-fdnf developers
"""

import torch

from speechbrain_fdnf.brain import unwrap
from speechbrain_fdnf.lobes.priors import ClassMeanAccumulator


class FactorManipulator:
    """Moves frames from one class of a factor to another through a trained model.

    Works in raw feature space: frames are normalised, encoded, shifted,
    decoded and de-normalised with the model's own normalisation statistics.

    Arguments
    ---------
    model : DiscriminativeFlow or VAE
        A trained model.
    mean : torch.Tensor
        Per-dimension feature mean of the model's normalisation.
    std : torch.Tensor
        Per-dimension feature standard deviation.

    Example
    -------
    >>> from speechbrain_fdnf.lobes import DiscriminativeFlow, FactorialGaussianPrior, RealNVP
    >>> prior = FactorialGaussianPrior([{"name": "phone", "dim": 2, "num_classes": 3}], residual_dim=2, mean_init="random")
    >>> model = DiscriminativeFlow(RealNVP(4, num_blocks=2, hidden_size=8), prior).eval()
    >>> manipulator = FactorManipulator(model, torch.zeros(4), torch.ones(4))
    >>> x = torch.randn(5, 4)
    >>> same = manipulator.manipulate(x, "phone", torch.zeros(5, dtype=torch.long), torch.zeros(5, dtype=torch.long))
    >>> torch.allclose(same, x, atol=1e-5)
    True
    """

    def __init__(self, model, mean, std):
        self.model = unwrap(model)
        self.mean, self.std = mean, std
        self._empirical = {}

    def encode(self, feats):
        """Latent codes of raw feature frames."""
        return self.model.encode((feats - self.mean) / self.std)[0]

    def decode(self, codes):
        """Raw feature frames of latent codes."""
        return self.model.decode(codes) * self.std + self.mean

    def has_prior_means(self, factor):
        """Whether the model's own prior has class means for ``factor``."""
        prior = getattr(self.model, "prior", None)
        return prior is not None and factor in prior.factor_names

    @torch.no_grad()
    def fit_empirical_means(self, factor, feats, labels, num_classes, batch_size=65536):
        """Mean latent code of each class of ``factor`` over training frames (for models without prior means)."""
        accumulator = None
        for start in range(0, len(feats), batch_size):
            codes = self.encode(feats[start : start + batch_size])
            if accumulator is None:
                accumulator = ClassMeanAccumulator(num_classes, codes.shape[1])
            accumulator.add(codes, labels[start : start + batch_size])
        self._empirical[factor] = accumulator.means()[0].float()

    def class_means(self, factor):
        """``(num_classes, latent_dim)`` means of ``factor`` in the full latent space."""
        if self.has_prior_means(factor):
            return self.model.prior.full_means(factor).detach()
        if factor not in self._empirical:
            raise RuntimeError(f"the model has no prior means for {factor!r}: call fit_empirical_means first")
        return self._empirical[factor]

    @torch.no_grad()
    def manipulate(self, feats, factor, c_from, c_to):
        """``x' = f(f^-1(x) + mu_{factor, c_to} - mu_{factor, c_from})`` per frame.

        Arguments
        ---------
        feats : torch.Tensor
            ``(batch, dim)`` raw feature frames.
        factor : str
            The factor to change.
        c_from, c_to : torch.Tensor
            ``(batch,)`` class indices: the current and the target class.
        """
        means = self.class_means(factor)
        return self.decode(self.encode(feats) + means[c_to] - means[c_from])
