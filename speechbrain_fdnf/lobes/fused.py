"""An ActNorm followed by an LU map as one affine map, cached while a frozen flow's parameters keep their values.

Authors
 * speechbrain-fdnf developers
"""

import torch

from speechbrain_fdnf.lobes.linear import InvertibleLinear  # noqa: F401  (the doctest uses it)
from speechbrain_fdnf.lobes.normalization import ActNorm  # noqa: F401  (the doctest uses it)


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
