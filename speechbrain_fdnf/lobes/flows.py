"""Flow containers: compositions of invertible transforms.

Authors
 * speechbrain-fdnf developers
"""

import torch  # noqa: F401  (the doctests use it)
from torch import nn

from speechbrain_fdnf.lobes.base import InvertibleTransform
from speechbrain_fdnf.lobes.couplings import COUPLINGS, AffineCoupling  # noqa: F401  (the doctests use it)
from speechbrain_fdnf.lobes.fused import normalized_linear
from speechbrain_fdnf.lobes.linear import InvertibleLinear
from speechbrain_fdnf.lobes.normalization import ActNorm
from speechbrain_fdnf.lobes.permutations import Permutation
from speechbrain_fdnf.lobes.precision import full_float32

#: Mixings between couplings by the name ``RealNVP(mixing=...)`` takes: a constructor of ``dim``, or None.
MIXINGS = {
    "lu": InvertibleLinear,
    "permute": lambda dim: Permutation(dim, "random"),
    "reverse": lambda dim: Permutation(dim, "reverse"),
    "none": None,
}


class SequentialFlow(InvertibleTransform):
    """Chains invertible transforms; log-dets add up.

    ``encode`` runs the data-to-latent direction (``f^-1`` in the paper's
    notation, where ``f`` generates data from the latent), ``decode`` the
    opposite.

    Arguments
    ---------
    transforms : list of InvertibleTransform
        Applied in order by ``forward``/``encode``, in reverse by ``inverse``.

    Example
    -------
    >>> flow = SequentialFlow([ActNorm(4), Permutation(4), AffineCoupling(4, 8)])
    >>> x = torch.randn(10, 4)
    >>> z, log_det = flow.encode(x)
    >>> torch.allclose(flow.decode(z), x, atol=1e-5)
    True
    """

    def __init__(self, transforms):
        super().__init__()
        self.transforms = nn.ModuleList(transforms)

    def _fusible(self, index):
        """Whether transforms ``index`` and ``index + 1`` are an initialised ActNorm and an LU map."""
        norm = self.transforms[index]
        return (isinstance(norm, ActNorm) and index + 1 < len(self.transforms)
                and isinstance(self.transforms[index + 1], InvertibleLinear)
                and not norm.needs_initialization())

    def forward(self, x):
        """Returns ``(z, log_abs_det)`` after every transform in order.

        An ActNorm followed by an LU map runs as one affine map
        (:func:`~speechbrain_fdnf.lobes.fused.normalized_linear`), with the same result. Products run in full
        float32 (:func:`~speechbrain_fdnf.lobes.precision.full_float32`: never TensorFloat-32 on a GPU).
        """
        log_det, index = x.new_zeros(x.shape[:-1]), 0
        with full_float32():
            while index < len(self.transforms):
                if self._fusible(index):
                    x, step = normalized_linear(self.transforms[index], self.transforms[index + 1], x)
                    index += 2
                else:
                    x, step = self.transforms[index](x)
                    index += 1
                log_det = log_det + step
        return x, log_det

    def inverse(self, z):
        """Returns ``(x, log_abs_det)`` after every inverse in reverse order (in full float32, as :meth:`forward`)."""
        log_det, index = z.new_zeros(z.shape[:-1]), len(self.transforms) - 1
        with full_float32():
            while index >= 0:
                if index > 0 and self._fusible(index - 1):
                    z, step = normalized_linear(self.transforms[index - 1], self.transforms[index], z, inverse=True)
                    index -= 2
                else:
                    z, step = self.transforms[index].inverse(z)
                    index -= 1
                log_det = log_det + step
        return z, log_det

    def encode(self, x):
        """Data to latent: ``(z, log|det dz/dx|)``."""
        return self.forward(x)

    def decode(self, z):
        """Latent to data: ``x``."""
        return self.inverse(z)[0]


class RealNVP(SequentialFlow):
    """A RealNVP/Glow-style flow built from yaml-friendly sizes.

    Each of the ``num_blocks`` blocks is ``[ActNorm] -> mixing -> coupling``
    with alternating coupling parity. ``mixing`` is ``"lu"`` (Glow's invertible
    linear map), ``"permute"`` (a fixed random permutation), ``"reverse"`` or
    ``"none"`` (parity alternation alone). ``coupling`` is ``"affine"``
    (RealNVP's scale and shift) or ``"spline"`` (rational-quadratic splines
    with ``num_bins`` bins on ``[-tail_bound, tail_bound]``).

    Arguments
    ---------
    input_dim : int
        Feature dimension D.
    num_blocks : int
        Number of coupling blocks.
    hidden_size : int
        Width of each conditioner's hidden layers.
    num_hidden_layers : int
        Depth of each conditioner.
    activation : type
        Conditioner activation class.
    mixing : str
        How dimensions are mixed between couplings (see above).
    actnorm : bool
        Whether each block starts with an ActNorm.
    scale_bound : float
        Bound on the affine couplings' absolute log-scale.
    coupling : str
        ``"affine"`` or ``"spline"``.
    num_bins : int
        Bins of each spline (``coupling="spline"``).
    tail_bound : float
        Half-width of the splines' interval; the identity outside.
    training_precision : str
        ``"float32"``, ``"bfloat16"`` or ``"auto"``: the precision of the couplings' conditioner
        networks in training steps (see :class:`~speechbrain_fdnf.lobes.couplings.SplitCoupling`);
        eval mode always runs at full precision. bfloat16 is much faster where the hardware has it
        (recent x86 CPUs, CUDA GPUs) and slower where it does not; ``"auto"`` takes it only there.
    coupling_options : dict, optional
        Further keyword arguments of the coupling (for a coupling registered in
        :data:`~speechbrain_fdnf.lobes.couplings.COUPLINGS` with options of its own).

    Example
    -------
    >>> flow = RealNVP(input_dim=6, num_blocks=3, hidden_size=16)
    >>> x = torch.randn(8, 6)
    >>> z, log_det = flow.encode(x)
    >>> z.shape, log_det.shape
    (torch.Size([8, 6]), torch.Size([8]))
    >>> torch.allclose(flow.decode(z), x, atol=1e-5)
    True
    """

    MIXINGS = MIXINGS
    COUPLINGS = COUPLINGS

    def __init__(
        self,
        input_dim,
        num_blocks=8,
        hidden_size=256,
        num_hidden_layers=2,
        activation=nn.ReLU,
        mixing="lu",
        actnorm=True,
        scale_bound=3.0,
        coupling="affine",
        num_bins=8,
        tail_bound=4.0,
        training_precision="float32",
        coupling_options=None,
    ):
        if mixing not in self.MIXINGS:
            raise ValueError(f"mixing must be one of {sorted(self.MIXINGS)}, got {mixing!r}")
        if coupling not in self.COUPLINGS:
            raise ValueError(f"coupling must be one of {tuple(self.COUPLINGS)}, got {coupling!r}")
        make_coupling = self.COUPLINGS[coupling]
        given = {"scale_bound": scale_bound, "num_bins": num_bins, "tail_bound": tail_bound}
        options = {name: given[name] for name in make_coupling.OPTIONS if name in given}
        options.update(coupling_options or {})
        transforms = []
        for block in range(num_blocks):
            if actnorm:
                transforms.append(ActNorm(input_dim))
            if self.MIXINGS[mixing] is not None:
                transforms.append(self.MIXINGS[mixing](input_dim))
            transforms.append(
                make_coupling(
                    input_dim,
                    hidden_size=hidden_size,
                    num_hidden_layers=num_hidden_layers,
                    activation=activation,
                    parity=block % 2,
                    training_precision=training_precision,
                    **options,
                )
            )
        super().__init__(transforms)
        self.input_dim = input_dim
