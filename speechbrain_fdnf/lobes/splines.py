"""Monotone rational-quadratic splines (Durkan et al., "Neural Spline Flows", 2019), elementwise.

Authors
 * speechbrain-fdnf developers
"""

import torch
from torch import nn

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
    >>> x = torch.tensor([-5.0, -1.0, 0.0, 0.5, 7.0], dtype=torch.float64)  # (float32's inverse: within ~1e-4)
    >>> widths, heights = torch.randn(5, 4, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    >>> derivatives = torch.randn(5, 3, dtype=torch.float64)
    >>> y, log_det = rational_quadratic_spline(x, widths, heights, derivatives)
    >>> y[0].item(), y[-1].item(), log_det[0].item()  # the tails are the identity
    (-5.0, 7.0, 0.0)
    >>> back, _ = rational_quadratic_spline(y, widths, heights, derivatives, inverse=True)
    >>> torch.allclose(back, x, atol=1e-5)
    True
    """
    sizes = torch.stack([raw_widths, raw_heights], dim=-2)
    return packed_spline(inputs, sizes, raw_derivatives, bound, inverse, min_size, min_derivative)


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


def packed_spline(inputs, raw_sizes, raw_derivatives, bound, inverse, min_size=1e-3, min_derivative=1e-3):
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
