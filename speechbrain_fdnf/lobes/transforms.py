"""Invertible transforms for normalizing flows over feature frames.

Every transform maps the data direction to the latent direction in ``forward``
and back in ``inverse``; both return ``(output, log_abs_det)`` where
``log_abs_det`` has one value per example (the input shape without its last
dimension). ``forward``'s log-det is ``log|det d forward(x) / dx|`` and
``inverse``'s is its negative at the matching point, so a flow's likelihood is
``log p(x) = log p_Z(forward(x)) + log_abs_det``.

Authors
 * speechbrain-fdnf developers
"""

import torch
from torch import nn

from speechbrain_fdnf.lobes.mlp import mlp


class InvertibleTransform(nn.Module):
    """Base class: a bijection of R^dim acting on the last tensor dimension.

    Subclasses implement ``forward(x) -> (y, log_abs_det)`` and
    ``inverse(y) -> (x, log_abs_det_inverse)``.
    """

    def forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def inverse(self, y):  # pragma: no cover - abstract
        raise NotImplementedError


class AffineCoupling(InvertibleTransform):
    """RealNVP affine coupling: half of the dimensions scale-and-shift the other half.

    The input is split (no masking arithmetic) into a conditioning part and a
    transformed part; one MLP produces the log-scale and the shift of the
    transformed part in a single fused output layer. The log-scale is softly
    bounded to ``[-scale_bound, scale_bound]`` with ``bound * tanh(s / bound)``
    so that training cannot blow the scales up, while staying close to the
    identity for small values.

    Arguments
    ---------
    dim : int
        Number of input dimensions (at least 2).
    hidden_size : int
        Width of the conditioner's hidden layers.
    num_hidden_layers : int
        Number of hidden layers of the conditioner.
    activation : type
        ``nn.Module`` class used between hidden layers (e.g. ``torch.nn.ReLU``).
    scale_bound : float
        Bound on the absolute log-scale.
    parity : int
        0 conditions on the first ``dim // 2`` dimensions and transforms the rest;
        1 does the opposite, so alternating parities touch every dimension.

    Example
    -------
    >>> layer = AffineCoupling(6, hidden_size=16)
    >>> x = torch.randn(4, 6)
    >>> y, log_det = layer(x)
    >>> y.shape, log_det.shape
    (torch.Size([4, 6]), torch.Size([4]))
    >>> torch.allclose(layer.inverse(y)[0], x, atol=1e-6)
    True
    """

    def __init__(
        self,
        dim,
        hidden_size=256,
        num_hidden_layers=2,
        activation=nn.ReLU,
        scale_bound=3.0,
        parity=0,
    ):
        super().__init__()
        if dim < 2:
            raise ValueError(f"AffineCoupling needs dim >= 2, got {dim}")
        if parity not in (0, 1):
            raise ValueError(f"parity must be 0 or 1, got {parity}")
        self.dim = dim
        self.parity = parity
        self.scale_bound = float(scale_bound)
        first = dim // 2
        self.sizes = [first, dim - first]
        cond_dim = self.sizes[parity]
        self.trans_dim = self.sizes[1 - parity]
        self.conditioner = mlp(
            cond_dim, 2 * self.trans_dim, hidden_size, num_hidden_layers, activation
        )

    def _split(self, x):
        a, b = torch.split(x, self.sizes, dim=-1)
        return (a, b) if self.parity == 0 else (b, a)

    def _join(self, cond, trans):
        parts = (cond, trans) if self.parity == 0 else (trans, cond)
        return torch.cat(parts, dim=-1)

    def _scale_shift(self, cond):
        raw_scale, shift = self.conditioner(cond).chunk(2, dim=-1)
        log_scale = self.scale_bound * torch.tanh(raw_scale / self.scale_bound)
        return log_scale, shift

    def forward(self, x):
        """Returns ``(y, log_abs_det)`` with ``y = cond | trans * exp(s) + t``."""
        cond, trans = self._split(x)
        log_scale, shift = self._scale_shift(cond)
        y = self._join(cond, torch.addcmul(shift, trans, torch.exp(log_scale)))  # one pass, no temporary
        return y, log_scale.sum(-1)

    def inverse(self, y):
        """Returns ``(x, log_abs_det)`` of the exact inverse."""
        cond, trans = self._split(y)
        log_scale, shift = self._scale_shift(cond)
        x = self._join(cond, (trans - shift) * torch.exp(-log_scale))
        return x, -log_scale.sum(-1)


class ActNorm(InvertibleTransform):
    """Per-dimension affine normalisation with data-dependent initialisation.

    ``y = (x + bias) * exp(log_scale)``. On the first training-mode forward pass
    the bias and scale are set so that this batch comes out with zero mean and
    unit variance per dimension (averaged over all processes under DDP). The
    ``initialized`` flag is a buffer, so it travels with checkpoints and a
    resumed or loaded model never re-initialises.

    Arguments
    ---------
    dim : int
        Number of dimensions.
    eps : float
        Added to the standard deviation at initialisation.

    Example
    -------
    >>> norm = ActNorm(3)
    >>> x = torch.randn(100, 3) * 5 + 2
    >>> y, log_det = norm(x)
    >>> bool(norm.initialized), round(y.mean().item(), 4) == 0
    (True, True)
    >>> torch.allclose(norm.inverse(y)[0], x, atol=1e-5)
    True
    """

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.bias = nn.Parameter(torch.zeros(dim))
        self.log_scale = nn.Parameter(torch.zeros(dim))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def _initialize(self, x):
        flat = x.detach().reshape(-1, x.shape[-1]).double()
        stats = torch.stack([flat.sum(0), (flat**2).sum(0)])
        count = torch.tensor(float(flat.shape[0]), dtype=flat.dtype, device=flat.device)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(stats)
            torch.distributed.all_reduce(count)
        mean = stats[0] / count
        var = (stats[1] / count - mean**2).clamp_min(0.0)
        self.bias.copy_(-mean.to(self.bias.dtype))
        self.log_scale.copy_(-torch.log(var.sqrt() + self.eps).to(self.log_scale.dtype))
        self.initialized.fill_(True)

    def forward(self, x):
        """Returns ``(y, log_abs_det)``; initialises from ``x`` on first training use."""
        if self.training and not bool(self.initialized):
            self._initialize(x)
        y = (x + self.bias) * torch.exp(self.log_scale)
        return y, self.log_scale.sum().expand(x.shape[:-1])

    def inverse(self, y):
        """Returns ``(x, log_abs_det)`` of the exact inverse."""
        x = y * torch.exp(-self.log_scale) - self.bias
        return x, (-self.log_scale.sum()).expand(y.shape[:-1])


class InvertibleLinear(InvertibleTransform):
    """Glow's invertible linear map, LU-parameterised: ``y = x W^T``.

    ``W = P L (U + diag(sign * exp(log_s)))`` with a fixed permutation ``P``, a
    unit lower-triangular ``L`` and a strictly upper-triangular ``U``, so the
    log-determinant is simply ``sum(log_s)`` and the inverse takes two
    triangular solves. Starts from a random rotation.

    Arguments
    ---------
    dim : int
        Number of dimensions.

    Example
    -------
    >>> mix = InvertibleLinear(5)
    >>> x = torch.randn(3, 5)
    >>> y, log_det = mix(x)
    >>> torch.allclose(log_det, torch.zeros(3), atol=1e-5)  # a rotation at start
    True
    >>> torch.allclose(mix.inverse(y)[0], x, atol=1e-5)
    True
    """

    def __init__(self, dim):
        super().__init__()
        rotation, _ = torch.linalg.qr(torch.randn(dim, dim, dtype=torch.float64))
        perm, lower, upper = torch.linalg.lu(rotation)
        diag = torch.diagonal(upper)
        self.register_buffer("perm", perm.float())
        self.register_buffer("sign_s", torch.sign(diag).float())
        self.register_buffer("lower_mask", torch.tril(torch.ones(dim, dim), -1))
        self.lower = nn.Parameter(torch.tril(lower, -1).float())
        self.upper = nn.Parameter(torch.triu(upper, 1).float())
        self.log_s = nn.Parameter(torch.log(diag.abs()).float())

    def _factors(self):
        eye = torch.eye(self.log_s.shape[0], dtype=self.log_s.dtype, device=self.log_s.device)
        lower = self.lower * self.lower_mask + eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        return lower, upper

    def weight(self):
        """The current D x D matrix ``W``."""
        lower, upper = self._factors()
        return self.perm @ lower @ upper

    def inverse_weight(self):
        """``W^-1 = U^-1 L^-1 P^T``, from triangular solves (no general inverse)."""
        lower, upper = self._factors()
        eye = torch.eye(lower.shape[0], dtype=lower.dtype, device=lower.device)
        lower_inv = torch.linalg.solve_triangular(lower, eye, upper=False, unitriangular=True)
        upper_inv = torch.linalg.solve_triangular(upper, eye, upper=True)
        return upper_inv @ lower_inv @ self.perm.T

    def forward(self, x):
        """Returns ``(x W^T, sum(log_s))``."""
        return x @ self.weight().T, self.log_s.sum().expand(x.shape[:-1])

    def inverse(self, y):
        """Returns ``(y W^-T, -sum(log_s))``."""
        return y @ self.inverse_weight().T, (-self.log_s.sum()).expand(y.shape[:-1])


class Permutation(InvertibleTransform):
    """A fixed permutation of the dimensions (log-det zero).

    Arguments
    ---------
    dim : int
        Number of dimensions.
    mode : str
        ``"random"`` (drawn from torch's global generator at construction and
        stored as a buffer, so checkpoints keep it) or ``"reverse"``.

    Example
    -------
    >>> perm = Permutation(4, mode="reverse")
    >>> perm(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))[0]
    tensor([[4., 3., 2., 1.]])
    """

    def __init__(self, dim, mode="random"):
        super().__init__()
        if mode == "random":
            order = torch.randperm(dim)
        elif mode == "reverse":
            order = torch.arange(dim - 1, -1, -1)
        else:
            raise ValueError(f"Permutation mode must be 'random' or 'reverse', got {mode!r}")
        self.register_buffer("order", order)
        self.register_buffer("inverse_order", torch.argsort(order))

    def forward(self, x):
        """Returns ``(x[..., order], 0)``."""
        return x[..., self.order], x.new_zeros(x.shape[:-1])

    def inverse(self, y):
        """Returns ``(y[..., inverse_order], 0)``."""
        return y[..., self.inverse_order], y.new_zeros(y.shape[:-1])
