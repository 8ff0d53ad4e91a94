"""Fixed permutations of the dimensions.

Authors
 * speechbrain-fdnf developers
"""

import torch

from speechbrain_fdnf.lobes.base import InvertibleTransform


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
