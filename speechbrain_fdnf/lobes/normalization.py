"""ActNorm: per-dimension affine normalisation with data-dependent initialisation (Glow).

Authors
 * speechbrain-fdnf developers
"""

import torch
from torch import nn

from speechbrain_fdnf.lobes.base import InvertibleTransform


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
