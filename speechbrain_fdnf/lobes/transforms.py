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

import functools

import torch
from torch import nn

from speechbrain_fdnf.lobes.mlp import mlp


@functools.lru_cache(maxsize=None)
def _native_bfloat16(device_type, index):
    if device_type == "cuda":
        with torch.cuda.device(index or 0):
            try:
                return torch.cuda.is_bf16_supported(including_emulation=False)
            except TypeError:  # a torch without the argument never counted emulation
                return torch.cuda.is_bf16_supported()
    if device_type == "cpu":  # bfloat16 dot products in hardware (AVX512-BF16 or AMX); private probes, so guarded
        probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)
    return False


def has_native_bfloat16(device):
    """Whether ``device`` multiplies bfloat16 matrices in hardware, where lowered conditioners pay off.

    True on CUDA GPUs with native bfloat16 (Ampere and later) and on CPUs with AVX512-BF16 or
    AMX; elsewhere bfloat16 is emulated and slower than float32.

    Example
    -------
    >>> isinstance(has_native_bfloat16("cpu"), bool)
    True
    """
    device = torch.device(device)
    return _native_bfloat16(device.type, device.index)


class InvertibleTransform(nn.Module):
    """Base class: a bijection of R^dim acting on the last tensor dimension.

    Subclasses implement ``forward(x) -> (y, log_abs_det)`` and
    ``inverse(y) -> (x, log_abs_det_inverse)``.
    """

    def forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def inverse(self, y):  # pragma: no cover - abstract
        raise NotImplementedError


class SplitCoupling(InvertibleTransform):
    """A coupling layer: one part of the dimensions parameterises an elementwise bijection of the rest.

    The input is split (no masking arithmetic) into a conditioning part and a
    transformed part; one MLP conditioner maps the conditioning part to
    ``params_per_dim`` numbers per transformed dimension in a single fused
    output layer, which starts at zero. Subclasses define the elementwise map.

    Arguments
    ---------
    dim : int
        Number of input dimensions (at least 2).
    params_per_dim : int
        Conditioner outputs per transformed dimension.
    hidden_size, num_hidden_layers, activation
        The conditioner MLP.
    parity : int
        0 conditions on the first ``dim // 2`` dimensions and transforms the rest;
        1 does the opposite, so alternating parities touch every dimension.
    training_precision : str
        The conditioner's precision in training mode: ``"float32"`` (the input's own),
        ``"bfloat16"``, or ``"auto"`` (bfloat16 on a device that has it in hardware, see
        :func:`has_native_bfloat16`; float32 elsewhere). With bfloat16 the conditioner runs under
        ``torch.autocast`` (weights stay float32) and its output returns to the input's dtype, so
        the elementwise map and the log-det keep full precision and the likelihood is exact for
        the map computed. In eval mode (encoding, decoding, evaluation, conversion) the conditioner
        always runs at the input's precision: a rounded conditioner input is a step function, and
        the round-off of an inverse pass can cross a step, which took the inversion error of a
        trained flow from 1e-5 to 1e-2. float64 inputs are never lowered.
    """

    PRECISIONS = ("float32", "bfloat16", "auto")

    def __init__(self, dim, params_per_dim, hidden_size=256, num_hidden_layers=2, activation=nn.ReLU, parity=0,
                 training_precision="float32"):
        super().__init__()
        if dim < 2:
            raise ValueError(f"{type(self).__name__} needs dim >= 2, got {dim}")
        if parity not in (0, 1):
            raise ValueError(f"parity must be 0 or 1, got {parity}")
        if training_precision not in self.PRECISIONS:
            raise ValueError(f"training_precision must be one of {sorted(self.PRECISIONS)}, "
                             f"got {training_precision!r}")
        self.dim = dim
        self.parity = parity
        self.training_precision = training_precision
        first = dim // 2
        self.sizes = [first, dim - first]
        cond_dim = self.sizes[parity]
        self.trans_dim = self.sizes[1 - parity]
        self.conditioner = mlp(cond_dim, params_per_dim * self.trans_dim, hidden_size, num_hidden_layers, activation)

    def _lowered(self, device):
        """Whether the conditioner runs in bfloat16 now: training mode, and ``training_precision`` says so."""
        if not self.training or self.training_precision == "float32":
            return False
        return self.training_precision == "bfloat16" or has_native_bfloat16(device)

    def _condition(self, cond):
        """The conditioner's output for ``cond``, in bfloat16 when :meth:`_lowered`, always in ``cond``'s dtype."""
        if not self._lowered(cond.device):
            return self.conditioner(cond)
        with torch.autocast(cond.device.type, dtype=torch.bfloat16):
            return self.conditioner(cond).to(cond.dtype)

    def _split(self, x):
        a, b = torch.split(x, self.sizes, dim=-1)
        return (a, b) if self.parity == 0 else (b, a)

    def _join(self, cond, trans):
        parts = (cond, trans) if self.parity == 0 else (trans, cond)
        return torch.cat(parts, dim=-1)


class AffineCoupling(SplitCoupling):
    """RealNVP affine coupling: half of the dimensions scale-and-shift the other half.

    The conditioner produces the log-scale and the shift of the transformed
    part. The log-scale is softly bounded to ``[-scale_bound, scale_bound]``
    with ``bound * tanh(s / bound)`` so that training cannot blow the scales
    up, while staying close to the identity for small values.

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
        Which half conditions (see :class:`SplitCoupling`).
    training_precision : str
        The conditioner's precision in training mode: ``"float32"``, ``"bfloat16"`` or ``"auto"``
        (see :class:`SplitCoupling`).

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
        training_precision="float32",
    ):
        super().__init__(dim, 2, hidden_size, num_hidden_layers, activation, parity, training_precision)
        self.scale_bound = float(scale_bound)

    def _scale_shift(self, cond):
        raw_scale, shift = self._condition(cond).chunk(2, dim=-1)
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


#: Raw spline derivatives are clamped here before ``exp`` (a knot slope of e^20 is already a step).
MAX_LOG_DERIVATIVE = 20.0


def rational_quadratic_spline(inputs, raw_widths, raw_heights, raw_derivatives, bound=4.0, inverse=False,
                              min_size=1e-3, min_derivative=1e-3):
    """A monotone rational-quadratic spline on ``[-bound, bound]``, the identity outside (Durkan et al., 2019).

    Each element of ``inputs`` has its own spline: ``K`` bins of widths and
    heights (softmax of ``raw_widths`` and ``raw_heights``, each at least
    ``min_size`` of the interval) and the ``K - 1`` interior knot derivatives
    (``exp(raw_derivatives)`` scaled so that they are at least
    ``min_derivative`` and zero gives 1; the two end derivatives are 1, which
    joins the linear tails smoothly). All-zero raw parameters give the identity.

    Arguments
    ---------
    inputs : torch.Tensor
        ``(...)`` values (``y`` with ``inverse``).
    raw_widths, raw_heights : torch.Tensor
        ``(..., K)``.
    raw_derivatives : torch.Tensor
        ``(..., K - 1)``.
    bound : float
        Half-width of the spline's interval; outside it the map is the identity.
    inverse : bool
        Apply the inverse map (the root of a quadratic in closed form).

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        The outputs and the elementwise ``log |d output / d input|``.

    Example
    -------
    >>> x = torch.tensor([-5.0, -1.0, 0.0, 0.5, 7.0])
    >>> widths, heights = torch.randn(5, 4), torch.randn(5, 4)
    >>> derivatives = torch.randn(5, 3)
    >>> y, log_det = rational_quadratic_spline(x, widths, heights, derivatives)
    >>> y[0].item(), y[-1].item(), log_det[0].item()  # the tails are the identity
    (-5.0, 7.0, 0.0)
    >>> back, _ = rational_quadratic_spline(y, widths, heights, derivatives, inverse=True)
    >>> torch.allclose(back, x, atol=1e-5)
    True
    """
    sizes = torch.stack([raw_widths, raw_heights], dim=-2)
    return _spline(inputs, sizes, raw_derivatives, bound, inverse, min_size, min_derivative)


class _GatherLast(torch.autograd.Function):
    """``source.gather(-1, index)`` whose backward keeps only the index and the shape.

    torch's ``gather`` keeps ``source`` itself for its backward; in a spline coupling that is every
    knot of every frame, while the gradient (a scatter-add of the incoming one) needs only where
    each value came from.
    """

    @staticmethod
    def forward(ctx, source, index):
        ctx.save_for_backward(index)
        ctx.source_shape = source.shape
        return source.gather(-1, index)

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved_tensors
        return grad.new_zeros(ctx.source_shape).scatter_add_(-1, index, grad), None


def _gather_last(source, index):
    """``source.gather(-1, index)``, through :class:`_GatherLast` when a gradient will flow."""
    if torch.is_grad_enabled() and source.requires_grad:
        return _GatherLast.apply(source, index)
    return source.gather(-1, index)


def _spline(inputs, raw_sizes, raw_derivatives, bound, inverse, min_size=1e-3, min_derivative=1e-3):
    """:func:`rational_quadratic_spline` with the raw widths and heights as one ``(..., 2, K)`` tensor
    (a view of the conditioner's output in a coupling: one softmax, one cumsum, one gather for both)."""
    num_bins = raw_sizes.shape[-1]
    inside = (inputs >= -bound) & (inputs <= bound)
    values = inputs.clamp(-bound, bound)  # the tails' values never reach the spline: finite gradients
    # softmax by hand: torch.softmax over a last dimension of a few bins is ~3x slower on CPU. The shift
    # by the maximum only prevents overflow; softmax does not depend on it, so it needs no gradient.
    scaled = torch.exp(raw_sizes - raw_sizes.detach().amax(dim=-1, keepdim=True))
    fractions = (scaled / scaled.sum(dim=-1, keepdim=True)).mul_(1 - min_size * num_bins).add_(min_size)
    knots = nn.functional.pad(torch.cumsum(fractions, dim=-1), (1, 0)).mul_(2 * bound).sub_(bound)  # (..., 2, K + 1)
    # exp, not softplus (~3x slower): zero gives 1. The cap keeps a wild conditioner finite; it is taken off
    # as a constant (gradient passed through) because a clamp would keep the whole conditioner output for
    # its backward mask, the largest tensor a training step saves.
    capped = raw_derivatives - (raw_derivatives.detach() - MAX_LOG_DERIVATIVE).clamp_min(0)
    interior = torch.exp(capped).mul(1 - min_derivative).add_(min_derivative)
    derivatives = nn.functional.pad(interior, (1, 1), value=1.0)
    # the bin of each value: how many interior knots lie at or below it (a value on a knot starts that bin)
    searched = knots[..., 1 if inverse else 0, 1:-1].contiguous()
    index = torch.searchsorted(searched, values[..., None].contiguous(), right=True)
    edges = torch.cat([index, index + 1], dim=-1)  # (..., 2): left and right knot of the bin
    bins = _gather_last(knots, edges[..., None, :].expand(*knots.shape[:-1], 2))  # (..., 2, 2): x and y at once
    x_k, x_next = bins[..., 0, :].unbind(-1)
    y_k, y_next = bins[..., 1, :].unbind(-1)
    d_k, d_next = _gather_last(derivatives, edges).unbind(-1)
    width, height = x_next - x_k, y_next - y_k
    slope = height / width
    curvature = d_next + d_k - 2 * slope
    if inverse:
        rise = values - y_k
        a = height * (slope - d_k) + rise * curvature
        b = height * d_k - rise * curvature
        c = -slope * rise
        root = torch.sqrt((b * b - 4 * a * c).clamp_min(0))
        # The root in [0, 1], in the form without cancellation for b's sign (b < 0 implies a > 0);
        # each branch's denominator is kept away from zero where the other branch is taken.
        negative = b < 0
        xi = torch.where(negative, (root - b) / (2 * torch.where(negative, a, torch.ones_like(a))),
                         (2 * c) / torch.where(negative, -torch.ones_like(b), -b - root))
        xi = xi.clamp(0, 1)
        outputs = x_k + xi * width
    else:
        xi = (values - x_k) / width
    between = xi * (1 - xi)
    denominator = slope + curvature * between
    if not inverse:
        outputs = y_k + height * (slope * xi * xi + d_k * between) / denominator
    derivative = slope * slope * (d_next * xi * xi + 2 * slope * between + d_k * (1 - xi) ** 2) / (denominator * denominator)
    log_det = torch.log(derivative)
    if inverse:
        log_det = -log_det
    return torch.where(inside, outputs, inputs), torch.where(inside, log_det, torch.zeros_like(log_det))


class RationalQuadraticCoupling(SplitCoupling):
    """Neural spline coupling: half of the dimensions set a monotone rational-quadratic spline of the other half.

    Each transformed dimension gets ``num_bins`` bins on ``[-tail_bound,
    tail_bound]`` with the identity outside (Durkan et al., "Neural Spline
    Flows", 2019). The conditioner's one fused output holds the widths, the
    heights and the interior derivatives of every dimension's spline; it
    starts at zero, so the layer starts as the identity. The inverse is exact
    (the root of a quadratic in closed form).

    Arguments
    ---------
    dim : int
        Number of input dimensions (at least 2).
    hidden_size, num_hidden_layers, activation
        The conditioner MLP.
    num_bins : int
        Spline bins per dimension.
    tail_bound : float
        The spline acts on ``[-tail_bound, tail_bound]``.
    parity : int
        Which half conditions (see :class:`SplitCoupling`).
    training_precision : str
        The conditioner's precision in training mode: ``"float32"``, ``"bfloat16"`` or ``"auto"``
        (see :class:`SplitCoupling`).

    Example
    -------
    >>> _ = torch.manual_seed(0)
    >>> layer = RationalQuadraticCoupling(6, hidden_size=16, num_bins=5)
    >>> x = torch.randn(4, 6)
    >>> torch.allclose(layer(x)[0], x, atol=1e-5)  # the identity until trained
    True
    >>> _ = torch.nn.init.normal_(layer.conditioner[-1].weight)
    >>> y, log_det = layer(x)
    >>> torch.allclose(layer.inverse(y)[0], x, atol=1e-5), log_det.shape
    (True, torch.Size([4]))
    """

    def __init__(self, dim, hidden_size=256, num_hidden_layers=2, activation=nn.ReLU, num_bins=8, tail_bound=4.0,
                 parity=0, training_precision="float32"):
        if num_bins < 2:
            raise ValueError(f"num_bins must be at least 2, got {num_bins}")
        super().__init__(dim, 3 * num_bins - 1, hidden_size, num_hidden_layers, activation, parity,
                         training_precision)
        self.num_bins = num_bins
        self.tail_bound = float(tail_bound)

    def _transform(self, cond, trans, inverse):
        params = self._condition(cond).unflatten(-1, (self.trans_dim, 3 * self.num_bins - 1))
        sizes = params[..., : 2 * self.num_bins].unflatten(-1, (2, self.num_bins))  # widths and heights: a view
        out, log_det = _spline(trans, sizes, params[..., 2 * self.num_bins :], self.tail_bound, inverse)
        return self._join(cond, out), log_det.sum(-1)

    def forward(self, x):
        """Returns ``(y, log_abs_det)``."""
        cond, trans = self._split(x)
        return self._transform(cond, trans, inverse=False)

    def inverse(self, y):
        """Returns ``(x, log_abs_det)`` of the exact inverse."""
        cond, trans = self._split(y)
        return self._transform(cond, trans, inverse=True)


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

    def needs_initialization(self):
        """Whether the next forward pass will initialise it (training mode, not yet initialised)."""
        return self.training and not bool(self.initialized)

    def forward(self, x):
        """Returns ``(y, log_abs_det)``; initialises from ``x`` on first training use."""
        if self.needs_initialization():
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


def _same_values(saved, parameters):
    """Whether ``parameters`` still hold exactly the ``saved`` copies (values, dtype, device)."""
    return len(saved) == len(parameters) and all(
        a.dtype == b.dtype and a.device == b.device and a.shape == b.shape and torch.equal(a, b)
        for a, b in zip(saved, parameters))


def _fused_map(norm, linear, inverse):
    """``(matrix, offset, log_det)`` of :func:`normalized_linear`, built from the parameters."""
    log_det = norm.log_scale.sum() + linear.log_s.sum()
    if not inverse:
        weight_t = linear.weight().T
        scale = torch.exp(norm.log_scale)
        return scale[:, None] * weight_t, (norm.bias * scale) @ weight_t, log_det
    # x = y W^-T diag(1/s) - b
    return linear.inverse_weight().T * torch.exp(-norm.log_scale), -norm.bias, -log_det


def normalized_linear(norm, linear, x, inverse=False):
    """``norm`` (an :class:`ActNorm`) then ``linear`` (an :class:`InvertibleLinear`) as one affine map.

    ``((x + b) * s) W^T = x (diag(s) W^T) + (b * s) W^T``: one matrix product
    per call instead of a product and two elementwise passes over the frames
    (and their backward). The D x D matrix is built once per call; in eval mode
    without gradients (encoding and decoding a trained flow) once per direction for
    as long as the parameters keep their values (compared with saved copies, so any
    change counts: an optimizer step, fused or not, ``load_state_dict``, ``.data``),
    since short inputs (a 20-frame segment, one utterance) would otherwise spend a
    good part of their time rebuilding it. The result equals applying the two
    transforms in turn.

    Arguments
    ---------
    norm : ActNorm
        Initialised (the fused map never initialises it).
    linear : InvertibleLinear
    x : torch.Tensor
        ``(..., D)`` inputs (outputs of the pair with ``inverse``).
    inverse : bool
        Apply the inverse of the pair.

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        The outputs and the log-determinant, as each transform's ``forward`` / ``inverse``.

    Example
    -------
    >>> norm, linear = ActNorm(3), InvertibleLinear(3)
    >>> _ = norm(torch.randn(50, 3))  # data-dependent initialisation
    >>> x = torch.randn(4, 3)
    >>> y, log_det = normalized_linear(norm, linear, x)
    >>> torch.allclose(y, linear(norm(x)[0])[0], atol=1e-6)
    True
    >>> torch.allclose(normalized_linear(norm, linear, y, inverse=True)[0], x, atol=1e-5)
    True
    >>> _ = norm.eval(), linear.eval()
    >>> with torch.no_grad():  # frozen: the map is built once and follows any change of the parameters
    ...     before = normalized_linear(norm, linear, x)[0]
    ...     _ = linear.log_s.add_(0.5)
    ...     after = normalized_linear(norm, linear, x)[0]
    >>> torch.allclose(after, linear(norm(x)[0])[0], atol=1e-5), torch.allclose(before, after)
    (True, False)
    """
    if torch.is_grad_enabled() or linear.training or torch.compiler.is_compiling():
        matrix, offset, log_det = _fused_map(norm, linear, inverse)
    else:  # a frozen flow: build once per direction while the parameters keep their values
        parameters = [p for module in (norm, linear) for p in module.parameters(recurse=False)]
        cache = linear.__dict__.setdefault("_fused_cache", {})  # a plain attribute: never in a state dict
        if inverse not in cache or not _same_values(cache[inverse][0], parameters):
            cache[inverse] = ([p.detach().clone() for p in parameters], _fused_map(norm, linear, inverse))
        matrix, offset, log_det = cache[inverse][1]
    flat = x.reshape(-1, x.shape[-1])
    return torch.addmm(offset, flat, matrix).view(x.shape), log_det.expand(x.shape[:-1])


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
