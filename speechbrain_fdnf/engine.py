"""The one path between raw feature frames and a trained model's latent space.

:class:`FeatureFlow` owns what every user of a trained model needs and must
do the same way: the global normalisation (and its log-determinant, so that
likelihoods are of the raw features), encode and decode, the class means of a
factor (the prior's, or the empirical mean code of each class for models whose
prior does not know the factor) and the manipulation
``x' = f(f^-1(x) + mu_target - mu_source)``. The trainer (``FlowBrain``), the
inference interface and the evaluation all call it.

Authors
 * speechbrain-fdnf developers
"""

import logging

import torch

from speechbrain_fdnf.decoding import ClassSequenceDecoder
from speechbrain_fdnf.factors import FRAME_LEVEL_LABELS
from speechbrain_fdnf.lobes.priors import ClassMeanAccumulator
from speechbrain_fdnf.matching import nearest_mean  # noqa: F401  (its home before 0.5)

logger = logging.getLogger(__name__)


def unwrap(module):
    """The module inside a DDP/DataParallel wrapper (or the module itself)."""
    return getattr(module, "module", module)


def sequence_sums(values, utterance, smooth=None):
    """Sums of ``values`` ``(n, c)`` over the frames around each frame of a concatenation of utterances.

    ``utterance`` ``(n,)`` gives each frame's utterance, each utterance's
    frames consecutive. ``smooth=None``: the sum over the frame's whole
    utterance; an int ``w``: over the ``2 w + 1`` frames centred on it, cut
    at its utterance's edges.

    Example
    -------
    >>> ones, utterance = torch.ones(5, 1), torch.tensor([0, 0, 0, 1, 1])
    >>> sequence_sums(ones, utterance)[:, 0].tolist(), sequence_sums(ones, utterance, smooth=1)[:, 0].tolist()
    ([3.0, 3.0, 3.0, 2.0, 2.0], [2.0, 3.0, 2.0, 2.0, 2.0])
    """
    # 0, 1, 2, ... in order of appearance, so ascending whatever the ids are
    _, run = torch.unique_consecutive(utterance.to(values.device), return_inverse=True)
    if smooth is None:
        totals = values.new_zeros(int(run.max()) + 1 if len(run) else 0, values.shape[1])
        return totals.index_add_(0, run, values)[run]
    position = torch.arange(len(run), device=values.device)
    first = torch.searchsorted(run, run)
    last = torch.searchsorted(run, run, right=True) - 1
    cumulative = torch.cat([values.new_zeros(1, values.shape[1]), values.cumsum(dim=0)])
    high = torch.minimum(position + smooth, last)
    low = torch.maximum(position - smooth, first)
    return cumulative[high + 1] - cumulative[low]


class FeatureFlow:
    """A model of normalised frames (``DiscriminativeFlow`` or ``VAE``) seen from raw features.

    Arguments
    ---------
    model : DiscriminativeFlow or VAE
        The model (a DDP/DataParallel wrapper is looked through).
    normalize : speechbrain.processing.features.InputNormalization
        Its global normalisation, statistics already computed.

    Example
    -------
    >>> from speechbrain.processing.features import InputNormalization
    >>> from speechbrain_fdnf.lobes import DiscriminativeFlow, FactorialGaussianPrior, RealNVP
    >>> prior = FactorialGaussianPrior([{"name": "phone", "dim": 2, "num_classes": 3}], residual_dim=2, mean_init="random")
    >>> model = DiscriminativeFlow(RealNVP(4, num_blocks=2, hidden_size=8), prior).eval()
    >>> normalize = InputNormalization(norm_type="global")
    >>> _ = normalize(torch.randn(50, 1, 4) * 3 + 1, torch.ones(50), epoch=0)
    >>> engine = FeatureFlow(model, normalize)
    >>> x = torch.randn(5, 4)
    >>> torch.allclose(engine.decode(engine.encode(x)), x, atol=1e-5)
    True
    >>> same = torch.zeros(5, dtype=torch.long)
    >>> torch.allclose(engine.manipulate(x, "phone", source=same, target=same), x, atol=1e-5)
    True
    """

    def __init__(self, model, normalize):
        self.model = unwrap(model)
        self.normalize = normalize
        self._empirical = {}

    # ------------------------------------------------------------------ normalisation
    def _statistics(self, device):
        normalize = self.normalize
        # InputNormalization keeps its statistics as plain tensors, restored on the
        # device it was built for; follow the frames (e.g. --device cuda:0).
        if normalize.glob_mean.device != device:
            normalize.glob_mean = normalize.glob_mean.to(device)
            normalize.glob_std = normalize.glob_std.to(device)
        return normalize.glob_mean.reshape(-1), normalize.glob_std.clamp(min=normalize.epsilon).reshape(-1)

    def normalized(self, feats):
        """Globally mean/variance-normalised frames ``(..., dim)`` (statistics frozen)."""
        mean, std = self._statistics(feats.device)
        return (feats - mean) / std

    def denormalized(self, feats):
        """The inverse of :meth:`normalized`."""
        mean, std = self._statistics(feats.device)
        return feats * std + mean

    def normalization_log_det(self):
        """``log |det d normalized(x) / dx|``: what turns a density of normalised frames into one of raw frames."""
        return -self._statistics(self.normalize.glob_std.device)[1].log().sum()

    # ------------------------------------------------------------------ the model
    @property
    def prior(self):
        """The model's factor prior (``None`` for the VAE)."""
        return getattr(self.model, "prior", None)

    @property
    def factors(self):
        """Names of the factors with their own subspace and class means (empty for NF and the VAE)."""
        return list(self.prior.factor_names) if self.prior is not None else []

    def encode(self, feats):
        """Latent codes ``(..., latent_dim)`` of raw frames (the VAE: encoder means), on the model's device."""
        return self.model.encode(self.normalized(feats.to(self.device)))[0]

    @property
    def device(self):
        """Where the model's parameters are."""
        return next(self.model.parameters()).device

    @property
    def encode_batch_size(self):
        """Frames per call when encoding many: large on a GPU; on a CPU a size whose activations stay in
        cache (4096 frames encode 1.6x faster than 65536 on this project's 2-core CPU, with identical codes)."""
        return 65536 if self.device.type == "cuda" else 4096

    @torch.no_grad()
    def encode_all(self, feats, batch_size=None):
        """:meth:`encode` of many frames, ``batch_size`` (default :attr:`encode_batch_size`) at a time
        (no gradients), on the model's device (so frames kept on the CPU may be encoded by a model on a GPU)."""
        device, batch_size = self.device, batch_size or self.encode_batch_size
        return torch.cat([self.encode(feats[start : start + batch_size].to(device))
                          for start in range(0, len(feats), batch_size)])

    def decode(self, codes):
        """Raw frames of latent codes (the VAE: decoder means), on the model's device."""
        return self.denormalized(self.model.decode(codes.to(self.device)))

    def log_likelihood(self, feats, labels=None):
        """Per-frame ``log p(x)`` in nats of raw frames; a factor without labels is marginalised."""
        if not hasattr(self.model, "log_prob"):
            raise TypeError(f"{type(self.model).__name__} has no exact likelihood (the VAE gives an ELBO)")
        feats = feats.to(self.device)
        labels = {name: values.to(self.device) for name, values in (labels or {}).items()}
        return self.model.log_prob(self.normalized(feats), labels) + self.normalization_log_det()

    @torch.no_grad()
    def inferred_classes(self, codes, factor, utterance, smooth=1, decoder=None):
        """The class of ``factor`` the model finds most likely for each frame, from its own subspace.

        The frames are independent given the class, so their log posteriors
        add up: for a factor that changes from frame to frame (the phone)
        over the ``2 smooth + 1`` frames centred on each frame, or with a
        ``decoder`` along the most likely class sequence of the utterance;
        for any other (the speaker) over its whole utterance.

        Arguments
        ---------
        codes : torch.Tensor
            ``(n, latent_dim)`` codes of consecutive frames.
        factor : str
            A factor of the model's prior.
        utterance : torch.Tensor
            ``(n,)`` utterance of each frame, each utterance's frames consecutive.
        smooth : int
            Half-width of the window of a frame-level factor.
        decoder : ClassSequenceDecoder, optional
            Decodes a frame-level factor instead of the window (see :meth:`fit_sequence_decoders`).

        Returns
        -------
        torch.Tensor
            ``(n,)`` class indices.
        """
        log_posterior = self._log_posterior(codes, factor)
        if factor not in FRAME_LEVEL_LABELS:
            return sequence_sums(log_posterior, utterance).argmax(dim=-1)
        if decoder is not None:
            return decoder.decode(log_posterior, utterance)
        return sequence_sums(log_posterior, utterance, smooth).argmax(dim=-1)

    @torch.no_grad()
    def fit_sequence_decoders(self, frames, codes=None):
        """``{factor: ClassSequenceDecoder}`` for each frame-level factor of the prior (see
        :mod:`speechbrain_fdnf.decoding`; empty for a prior without one).

        Transitions are counted from the label sequences of the training
        ``frames`` (a ``FrameSet``), and the posterior scale is the one whose
        decoding of their codes agrees best with their labels. ``codes``:
        :meth:`encode_all` of the frames, when the caller already has it.
        """
        factors = [factor for factor in FRAME_LEVEL_LABELS if self.has_prior_means(factor)]
        if not factors:
            return {}
        codes = self.encode_all(frames.all().feats) if codes is None else codes
        utterance = frames.utterance.to(codes.device)
        decoders = {}
        for factor in factors:
            log_posterior, labels = self._log_posterior(codes, factor), frames.labels[factor].to(codes.device)
            decoders[factor] = ClassSequenceDecoder.from_labels(labels, utterance, log_posterior.shape[-1])
            agreement = decoders[factor].fit_scale(log_posterior, utterance, labels)
            logger.info("%s decoder: posterior scale %.1f, decoding agrees with %.1f%% of the training frames' labels",
                        factor, decoders[factor].scale.item(), 100 * agreement)
        return decoders

    def _log_posterior(self, codes, factor):
        if not self.has_prior_means(factor):
            raise ValueError(f"the model's prior has no {factor!r} classes to infer")
        return self.prior.class_posterior(codes, factor).clamp_min(torch.finfo(codes.dtype).tiny).log()

    # ------------------------------------------------------------------ class means
    def has_prior_means(self, factor):
        """Whether the model's own prior has class means for ``factor``."""
        return factor in self.factors

    @torch.no_grad()
    def fit_class_means(self, factor, feats, labels, num_classes, codes=None):
        """Empirical class means of ``factor``: the mean latent code of each class's frames.

        This is how models whose prior does not know ``factor`` (VAE, NF, a DNF
        trained on another label) get class means, which gives every model the
        same chance in manipulation. ``codes``: :meth:`encode_all` of ``feats``,
        when the caller already has it.
        """
        codes = self.encode_all(feats) if codes is None else codes
        accumulator = ClassMeanAccumulator(num_classes, codes.shape[1], device=codes.device)
        accumulator.add(codes, labels.to(codes.device))
        self._empirical[factor] = accumulator.means()[0].float()

    def class_means(self, factor):
        """``(num_classes, latent_dim)`` means of ``factor`` in the whole latent: the prior's where it has
        them (zero outside the factor's subspace), else those of :meth:`fit_class_means`."""
        if self.has_prior_means(factor):
            return self.prior.full_means(factor).detach()
        if factor not in self._empirical:
            raise RuntimeError(f"the model has no prior means for {factor!r}: call fit_class_means first")
        return self._empirical[factor]

    def class_mean(self, factor, value):
        """The whole-latent mean of ``value``: class indices (an int or an integer tensor, e.g. one
        per frame), or a mean vector (a float tensor in the factor's subspace, e.g. an enrolled
        speaker; in the whole latent for a model without prior means)."""
        means = self.class_means(factor)
        if not (torch.is_tensor(value) and value.dtype.is_floating_point):
            return means[torch.as_tensor(value, device=means.device)]
        value = value.to(means)
        if not self.has_prior_means(factor):
            if value.shape[-1] != means.shape[-1]:
                raise ValueError(f"a {factor} mean vector needs {means.shape[-1]} dimensions, got {value.shape[-1]}")
            return value
        where = self.prior.slices[factor]
        if value.shape[-1] != where.stop - where.start:
            raise ValueError(f"a {factor} mean vector needs {where.stop - where.start} dimensions, got {value.shape[-1]}")
        full = value.new_zeros(*value.shape[:-1], means.shape[-1])
        full[..., where] = value
        return full

    @torch.no_grad()
    def manipulate(self, feats, factor, source, target, pooled=False, deviation=1.0):
        """``x' = f(f^-1(x) + mu_{factor, target} - mu_{factor, source})`` for every frame.

        With ``deviation`` (beyond the paper) the factor's code becomes
        ``mu_target + deviation * (z_factor - mu_source)``: 1 is the paper's
        shift, which carries the frame's deviation from its class mean over to
        the new class; 0 replaces the factor's code by the target class mean.
        The other subspaces are untouched either way. A model without prior
        means has no subspace of its own per factor: there it scales the
        deviation of the whole latent.

        Arguments
        ---------
        feats : torch.Tensor
            ``(..., dim)`` raw frames.
        factor : str
            The factor to change.
        source, target
            The current and the new class, each as :meth:`class_mean` takes
            them. ``source=None``: the class the prior finds most likely, per
            frame, or with ``pooled`` one class for all frames of a sequence.
        pooled : bool
            See ``source``.
        deviation : float
            How much of the frame's deviation from the source mean is kept.

        Returns
        -------
        torch.Tensor
            Raw frames, the shape of ``feats``, on its device (the model runs on its own).
        """
        codes = self.encode(feats)
        if source is None:
            if not self.has_prior_means(factor):
                raise ValueError(f"the model's prior has no {factor!r} classes: give the source class")
            source = self.prior.most_likely_class(codes, factor, pooled)
        source_mean = self.class_mean(factor, source)
        moved = codes + self.class_mean(factor, target) - source_mean
        if deviation != 1.0:
            where = self.prior.slices[factor] if self.has_prior_means(factor) else slice(None)
            moved[..., where] += (float(deviation) - 1.0) * (codes - source_mean)[..., where]
        return self.decode(moved).to(feats.device)
