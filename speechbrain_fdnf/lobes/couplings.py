"""Coupling layers: one part of the dimensions parameterises an elementwise bijection of the rest.

:class:`SplitCoupling` holds what every coupling shares (the split, the injected conditioner MLP,
its training precision); a coupling adds only its elementwise map. :data:`COUPLINGS` names them for
:class:`~speechbrain_fdnf.lobes.flows.RealNVP`: a new coupling is one class here and one line there.

Authors
 * speechbrain-fdnf developers
"""

import torch
from torch import nn

from speechbrain_fdnf.lobes.base import InvertibleTransform
from speechbrain_fdnf.lobes.mlp import mlp
from speechbrain_fdnf.lobes.precision import has_native_bfloat16
from speechbrain_fdnf.lobes.splines import packed_spline


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
    #: Keyword arguments of the subclass, beside the conditioner's, that ``RealNVP`` passes on.
    OPTIONS = ()

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

    OPTIONS = ("scale_bound",)

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

    OPTIONS = ("num_bins", "tail_bound")

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
        out, log_det = packed_spline(trans, sizes, params[..., 2 * self.num_bins :], self.tail_bound, inverse)
        return self._join(cond, out), log_det.sum(-1)

    def forward(self, x):
        """Returns ``(y, log_abs_det)``."""
        cond, trans = self._split(x)
        return self._transform(cond, trans, inverse=False)

    def inverse(self, y):
        """Returns ``(x, log_abs_det)`` of the exact inverse."""
        cond, trans = self._split(y)
        return self._transform(cond, trans, inverse=True)


#: Couplings by the name ``RealNVP(coupling=...)`` takes. Each class lists in ``OPTIONS`` the
#: ``RealNVP`` arguments it accepts besides the conditioner's; a new coupling is one entry here.
COUPLINGS = {
    "affine": AffineCoupling,
    "spline": RationalQuadraticCoupling,
}
