"""The contract of every invertible transform of a flow.

Every transform maps the data direction to the latent direction in ``forward``
and back in ``inverse``; both return ``(output, log_abs_det)`` where
``log_abs_det`` has one value per example (the input shape without its last
dimension). ``forward``'s log-det is ``log|det d forward(x) / dx|`` and
``inverse``'s is its negative at the matching point, so a flow's likelihood is
``log p(x) = log p_Z(forward(x)) + log_abs_det``.

Authors
 * speechbrain-fdnf developers
"""

from torch import nn


class InvertibleTransform(nn.Module):
    """Base class: a bijection of R^dim acting on the last tensor dimension.

    Subclasses implement ``forward(x) -> (y, log_abs_det)`` and
    ``inverse(y) -> (x, log_abs_det_inverse)``.
    """

    def forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def inverse(self, y):  # pragma: no cover - abstract
        raise NotImplementedError
