"""Glow's invertible linear map, LU-parameterised.

Authors
 * speechbrain-fdnf developers
"""

import torch
from torch import nn

from speechbrain_fdnf.lobes.base import InvertibleTransform


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
