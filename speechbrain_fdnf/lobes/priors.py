"""Factorial class-conditional Gaussian priors for discriminative flows.

One class covers the three flow models of the paper:

* NF: no factors, the whole latent is residual with prior N(0, I);
* DNF: one factor whose subspace spans the whole latent;
* f-DNF: two or more factors, each with its own subspace, plus an optional
  residual subspace.

Authors
 * speechbrain-fdnf developers
"""

import math

import torch
from torch import nn

RESIDUAL = "residual"
#: The label of an unknown class (e.g. a TIMIT test speaker): that factor is marginalised for that example.
UNKNOWN = -1
MEAN_INITS = ("data", "zeros", "random")


def squared_distances(codes, means):
    """``(..., num_classes)`` squared distances of ``(..., dim)`` codes to each of the ``(num_classes, dim)`` means."""
    return torch.cdist(codes.reshape(-1, codes.shape[-1]), means).pow(2).reshape(*codes.shape[:-1], -1)


class ClassMeanAccumulator:
    """Mean code of each class, accumulated over batches (float64 sums and counts).

    Arguments
    ---------
    num_classes : int
        Number of classes.
    dim : int
        Code dimension.
    device : torch.device, optional
        Where the sums live.

    Example
    -------
    >>> acc = ClassMeanAccumulator(3, 2)
    >>> acc.add(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([0, 0]))
    >>> means, seen = acc.means()
    >>> means[0].tolist(), seen.tolist()
    ([2.0, 3.0], [True, False, False])
    """

    def __init__(self, num_classes, dim, device=None):
        self.sums = torch.zeros(num_classes, dim, dtype=torch.float64, device=device)
        self.counts = torch.zeros(num_classes, dtype=torch.float64, device=device)

    def add(self, codes, index):
        """Adds ``codes`` (``(n, dim)``) of classes ``index`` (``(n,)``); unknown labels (-1) are left out."""
        known = index >= 0
        if not known.all():
            codes, index = codes[known], index[known]
        self.sums.index_add_(0, index, codes.double())
        self.counts.index_add_(0, index, torch.ones_like(index, dtype=torch.float64))

    def all_reduce(self):
        """Sums the statistics over all processes (no-op outside DDP)."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(self.sums)
            torch.distributed.all_reduce(self.counts)

    def means(self):
        """``(means, seen)``: float64 class means (zero where unseen) and which classes had codes."""
        seen = self.counts > 0
        return torch.where(seen[:, None], self.sums / self.counts.clamp_min(1)[:, None], torch.zeros_like(self.sums)), seen


class FactorialGaussianPrior(nn.Module):
    """``p(z | labels) = prod_f N(z_f; mu_{f, label_f}, I) * N(z_res; 0, I)``.

    The latent is laid out as ``[z_factor1 | z_factor2 | ... | z_residual]``.
    Each factor has one learnable mean per class, living only in its own
    subspace; variances are fixed to one.

    A factor whose label is not given to :meth:`log_prob` is marginalised with
    a uniform mixture over its classes, which is what scoring frames of unseen
    speakers (TIMIT's test set) needs.

    Class means are initialised according to ``mean_init``:

    * ``"data"`` (default, as in the public DNF code): zeros until
      :meth:`init_means_from_data` sets each class mean to the mean latent code
      of that class's training frames (typically after one pass of the
      untrained flow); the trainer calls it once, and the ``means_initialized``
      buffer keeps a resumed run from doing it again;
    * ``"zeros"``: all means start at the origin and are separated by training;
    * ``"random"``: ``N(0, init_scale^2)`` draws.

    Arguments
    ---------
    factors : list of dict
        One ``{"name": str, "dim": int, "num_classes": int}`` per factor;
        ``num_classes`` may be left out and given later to :meth:`set_num_classes`.
    residual_dim : int
        Size of the residual subspace (0 allowed).
    mean_init : str
        One of ``"data"``, ``"zeros"``, ``"random"``.
    init_scale : float
        Standard deviation of ``"random"`` initialisation.
    learn_means : bool
        Whether the class means are trained with the flow.

    Example
    -------
    >>> prior = FactorialGaussianPrior(
    ...     factors=[{"name": "phone", "dim": 3, "num_classes": 5},
    ...              {"name": "speaker", "dim": 2, "num_classes": 4}],
    ...     residual_dim=1,
    ... )
    >>> prior.latent_dim, prior.slices["speaker"]
    (6, slice(3, 5, None))
    >>> z = torch.randn(7, 6)
    >>> labels = {"phone": torch.randint(5, (7,)), "speaker": torch.randint(4, (7,))}
    >>> prior.log_prob(z, labels).shape
    torch.Size([7])
    >>> prior.full_means("speaker")[:, :3].abs().sum().item()  # only its own subspace
    0.0
    """

    def __init__(
        self,
        factors=(),
        residual_dim=0,
        mean_init="data",
        init_scale=1.0,
        learn_means=True,
    ):
        super().__init__()
        if mean_init not in MEAN_INITS:
            raise ValueError(f"mean_init must be one of {MEAN_INITS}, got {mean_init!r}")
        if residual_dim < 0:
            raise ValueError(f"residual_dim must be >= 0, got {residual_dim}")
        self.factor_names = []
        self.num_classes = {}
        self.slices = {}
        self.class_means = nn.ParameterDict()
        self.mean_init, self.init_scale, self.learn_means = mean_init, init_scale, learn_means
        start = 0
        for factor in factors:
            name, dim = factor["name"], int(factor["dim"])
            if name == RESIDUAL or name in self.slices:
                raise ValueError(f"factor name {name!r} is reserved or repeated")
            if dim <= 0:
                raise ValueError(f"factor {name!r} needs dim > 0")
            self.factor_names.append(name)
            self.slices[name] = slice(start, start + dim)
            start += dim
            if factor.get("num_classes") is not None:
                self.set_num_classes({name: factor["num_classes"]})
        self.slices[RESIDUAL] = slice(start, start + residual_dim)
        self.latent_dim = start + residual_dim
        if self.latent_dim == 0:
            raise ValueError("the prior has no dimensions: give factors or a residual_dim")
        self.register_buffer("means_initialized", torch.tensor(mean_init != "data"))

    def set_num_classes(self, counts):
        """Creates the class means of factors declared without ``num_classes``.

        Recipes declare the model in yaml before the data says how many
        speakers there are; they call this once the label encoders exist
        (before the optimiser and checkpoint recovery see the parameters).

        Arguments
        ---------
        counts : dict
            Factor name -> number of classes. A factor that already has means
            must be given the same count.
        """
        for name, count in counts.items():
            if name not in self.slices or name == RESIDUAL:
                raise ValueError(f"unknown factor {name!r}; known: {self.factor_names}")
            count = int(count)
            if count <= 0:
                raise ValueError(f"factor {name!r} needs num_classes > 0, got {count}")
            if name in self.class_means:
                if self.num_classes[name] != count:
                    raise ValueError(f"factor {name!r} already has {self.num_classes[name]} classes, not {count}")
                continue
            dim = self.slices[name].stop - self.slices[name].start
            means = torch.zeros(count, dim)
            if self.mean_init == "random":
                means.normal_(0.0, self.init_scale)
            self.class_means[name] = nn.Parameter(means, requires_grad=self.learn_means)
            self.num_classes[name] = count

    def means(self, factor):
        """The ``(num_classes, dim_factor)`` class means of ``factor``, in its subspace."""
        return self.class_means[self._check_factor(factor)]

    def full_means(self, factor):
        """The class means of ``factor`` embedded in the full latent (zeros elsewhere)."""
        means = self.means(factor)
        full = means.new_zeros(means.shape[0], self.latent_dim)
        full[:, self.slices[factor]] = means
        return full

    def subspace(self, z, name):
        """The part of ``z`` belonging to factor ``name`` (or ``"residual"``)."""
        if name not in self.slices:
            raise ValueError(f"unknown subspace {name!r}; known: {list(self.slices)}")
        return z[..., self.slices[name]]

    def log_prob(self, z, labels=None):
        """Per-example log-density of ``z`` given the labels of some or all factors.

        Arguments
        ---------
        z : torch.Tensor
            Latent codes, shape ``(..., latent_dim)``.
        labels : dict, optional
            Factor name -> integer class tensor of shape ``z.shape[:-1]``. A
            factor without labels, and an example whose label is ``-1``
            (unknown), is marginalised (uniform over the classes).

        Returns
        -------
        torch.Tensor
            Shape ``z.shape[:-1]``.
        """
        if z.shape[-1] != self.latent_dim:
            raise ValueError(f"latent has {z.shape[-1]} dims, the prior expects {self.latent_dim}")
        labels = labels or {}
        unknown = set(labels) - set(self.factor_names)
        if unknown:
            raise ValueError(f"labels for unknown factors {sorted(unknown)}; known: {self.factor_names}")
        log_norm = -0.5 * math.log(2 * math.pi)
        residual = self.subspace(z, RESIDUAL)
        total = -0.5 * (residual**2).sum(-1) + log_norm * residual.shape[-1]
        for name in self.factor_names:
            z_f, means = self.subspace(z, name), self.means(name)
            index = None if labels.get(name) is None else self._check_labels(name, labels[name], z.shape[:-1])
            if index is not None:
                known = index != UNKNOWN
                term = -0.5 * ((z_f - means[index.clamp_min(0)]) ** 2).sum(-1)
            if index is None or not known.all():
                marginal = torch.logsumexp(-0.5 * squared_distances(z_f, means), dim=-1) - math.log(means.shape[0])
                term = marginal if index is None else torch.where(known, term, marginal)
            total = total + term + log_norm * z_f.shape[-1]
        return total

    def pair_log_prob(self, z_a, z_b, labels_a, labels_b, shared, correlation):
        """Log-density of a pair of codes whose ``shared`` subspaces are correlated.

        Each code keeps this prior as its marginal; within every subspace in
        ``shared`` (factor names or ``"residual"``) the two codes' deviations
        from their means are jointly Gaussian with correlation ``correlation``
        per dimension, so that ``z_b``'s part given ``z_a``'s is
        ``N(mu_b + rho (z_a - mu_a), (1 - rho^2) I)``. The other subspaces are
        independent. This is an exact density of the pair: with ``rho = 0`` it
        is the sum of the two marginal log-densities.

        Arguments
        ---------
        z_a, z_b : torch.Tensor
            Codes of the two frames, ``(..., latent_dim)``.
        labels_a, labels_b : dict
            Their labels (as for :meth:`log_prob`); a shared factor's means need known labels.
        shared : list of str
            Subspaces the pair shares (e.g. ``["phone", "residual"]`` for two
            speakers saying the same phone in the same context).
        correlation : float
            ``rho`` in [0, 1).

        Returns
        -------
        torch.Tensor
            Shape ``z_a.shape[:-1]``.

        Example
        -------
        >>> prior = FactorialGaussianPrior([{"name": "phone", "dim": 2, "num_classes": 3}], residual_dim=1)
        >>> z_a, z_b = torch.randn(4, 3), torch.randn(4, 3)
        >>> labels = {"phone": torch.tensor([0, 1, 2, 0])}
        >>> independent = prior.log_prob(z_a, labels) + prior.log_prob(z_b, labels)
        >>> torch.allclose(prior.pair_log_prob(z_a, z_b, labels, labels, ["phone"], 0.0), independent)
        True
        """
        if not 0 <= correlation < 1:
            raise ValueError(f"the pair correlation must be in [0, 1), got {correlation}")
        total = self.log_prob(z_a, labels_a) + self.log_prob(z_b, labels_b)
        rho = float(correlation)
        for name in shared:
            u_a, u_b = self.subspace(z_a, name), self.subspace(z_b, name)
            if name != RESIDUAL:
                if labels_a.get(name) is None or labels_b.get(name) is None:
                    raise ValueError(f"a shared factor ({name!r}) needs the labels of both frames")
                means = self.means(name)
                u_a = u_a - means[self._check_labels(name, labels_a[name], z_a.shape[:-1]).clamp_min(0)]
                u_b = u_b - means[self._check_labels(name, labels_b[name], z_b.shape[:-1]).clamp_min(0)]
            # log N(u_b; rho u_a, (1 - rho^2) I) - log N(u_b; 0, I): the conditional replaces b's marginal
            conditional = -0.5 * ((u_b - rho * u_a) ** 2).sum(-1) / (1 - rho**2) - 0.5 * u_b.shape[-1] * math.log(1 - rho**2)
            total = total + conditional + 0.5 * (u_b**2).sum(-1)
        return total

    def class_posterior(self, z, factor):
        """``p(class | z)`` of ``factor`` under this prior (uniform over classes): ``(..., num_classes)``.

        Only the factor's own subspace matters, since the other subspaces'
        densities do not depend on its class.
        """
        return torch.softmax(-0.5 * squared_distances(self.subspace(z, factor), self.means(factor)), dim=-1)

    def most_likely_class(self, z, factor, pooled=False):
        """The class of ``factor`` with the highest posterior, per frame, or with ``pooled`` one
        class for all frames (the ``-2`` dimension) of each sequence, broadcast to every frame."""
        log_posterior = self.class_posterior(z, factor).log()
        if pooled:  # the frames are independent given the class: their log posteriors add up
            log_posterior = log_posterior.sum(dim=-2, keepdim=True).expand_as(log_posterior)
        return log_posterior.argmax(dim=-1)

    @torch.no_grad()
    def init_means_from_data(self, batches):
        """Sets each class mean to the mean latent code of that class's frames.

        Arguments
        ---------
        batches : iterable
            Yields ``(z, labels)`` with ``labels`` as in :meth:`log_prob`.

        Returns
        -------
        dict
            Factor name -> list of class indices that had no frame (their
            means are left unchanged).
        """
        means = {name: self.means(name) for name in self.factor_names}
        stats = {name: ClassMeanAccumulator(*p.shape, device=p.device) for name, p in means.items()}
        for z, labels in batches:
            for name in self.factor_names:
                if labels.get(name) is None:
                    raise ValueError(f"init_means_from_data needs labels for factor {name!r}")
                index = self._check_labels(name, labels[name], z.shape[:-1]).reshape(-1)
                stats[name].add(self.subspace(z, name).reshape(-1, means[name].shape[1]), index)
        empty = {}
        for name in self.factor_names:
            stats[name].all_reduce()
            class_means, seen = stats[name].means()
            means[name][seen] = class_means[seen].to(means[name].dtype)
            empty[name] = torch.nonzero(~seen).flatten().tolist()
        self.means_initialized.fill_(True)
        return empty

    def _check_factor(self, factor):
        if factor not in self.factor_names:
            raise ValueError(f"unknown factor {factor!r}; known: {self.factor_names}")
        if factor not in self.class_means:
            raise RuntimeError(f"factor {factor!r} has no classes yet: call set_num_classes first")
        return factor

    def _check_labels(self, name, index, shape):
        index = torch.as_tensor(index, device=self.class_means[name].device)
        if index.dtype.is_floating_point or index.dtype == torch.bool:
            raise ValueError(f"labels of factor {name!r} must be integer class indices, got {index.dtype}")
        if index.shape != shape:
            raise ValueError(f"labels of factor {name!r} have shape {tuple(index.shape)}, expected {tuple(shape)}")
        if index.numel() and (index.min() < UNKNOWN or index.max() >= self.num_classes[name]):
            bad = index[(index < UNKNOWN) | (index >= self.num_classes[name])][0].item()
            raise ValueError(
                f"label {bad} of factor {name!r} is out of range [0, {self.num_classes[name]})"
            )
        return index.long()
