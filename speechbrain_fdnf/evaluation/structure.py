"""How a latent (sub)space is organised by two factors: a two-way decomposition of its codes.

The mean code of each (phone, speaker) cell of the training frames is fitted
by an additive model ``mu + a_phone + b_speaker`` (weighted least squares,
each cell weighted by its frames, so that an unbalanced design does not
create interaction where there is none). Relative to the codes' total
variance the table reports the phone effect, the speaker effect, the
interaction (what the additive model misses in the cell means) and the
within-cell spread, plus the within-cell variance per dimension. An ideal
f-DNF has only a phone effect in z_phone, only a speaker effect in z_speaker,
no interaction, and a within-cell variance of 1 (its prior's).

Manipulation by a mean shift needs an additive latent: the interaction is
what such a shift gets wrong even with perfect class means.

Authors
 * speechbrain-fdnf developers
"""

import torch

from speechbrain_fdnf.lobes.priors import ClassMeanAccumulator


@torch.no_grad()
def latent_structure(codes, first, second, num_first, num_second, iterations=200):
    """Two-way decomposition of ``codes`` by the labels ``first`` and ``second``.

    Arguments
    ---------
    codes : torch.Tensor
        ``(frames, dim)`` latent codes (of one subspace).
    first, second : torch.Tensor
        ``(frames,)`` class indices (e.g. phone and speaker); ``-1`` frames are left out.
    num_first, num_second : int
        Numbers of classes.
    iterations : int
        Back-fitting passes of the additive model.

    Returns
    -------
    dict
        Shares of the total variance: ``first`` (effect), ``second`` (effect),
        ``interaction``, ``within``; and ``within_variance_per_dim``.

    Example
    -------
    >>> gen = torch.Generator().manual_seed(0)
    >>> phone, speaker = torch.randint(4, (2000,), generator=gen), torch.randint(3, (2000,), generator=gen)
    >>> additive = torch.randn(4, 2, generator=gen)[phone] + torch.randn(3, 2, generator=gen)[speaker]
    >>> shares = latent_structure(additive + 0.1 * torch.randn(2000, 2, generator=gen), phone, speaker, 4, 3)
    >>> shares["interaction"] < 1e-3 < shares["within"] < 0.05
    True
    """
    first, second = first.to(codes.device), second.to(codes.device)
    known = (first >= 0) & (second >= 0)
    codes, first, second = codes[known].double(), first[known], second[known]
    total = (codes - codes.mean(0)).pow(2).sum(-1).mean()
    cells = ClassMeanAccumulator(num_first * num_second, codes.shape[1], device=codes.device)
    cells.add(codes, first * num_second + second)
    means, _ = cells.means()
    within = (codes - means[first * num_second + second]).pow(2).sum(-1).mean()
    weights = cells.counts.view(num_first, num_second)
    centred = means.view(num_first, num_second, -1) - codes.mean(0)
    a = centred.new_zeros(num_first, centred.shape[-1])
    b = centred.new_zeros(num_second, centred.shape[-1])
    for _ in range(iterations):  # back-fitting: each step is the exact weighted fit given the other effect
        a = (weights[..., None] * (centred - b[None])).sum(1) / weights.sum(1).clamp_min(1)[:, None]
        b = (weights[..., None] * (centred - a[:, None])).sum(0) / weights.sum(0).clamp_min(1)[:, None]
    shift = (weights.sum(1)[:, None] * a).sum(0) / weights.sum()  # a and b are defined up to a constant
    a, b = a - shift, b + shift
    interaction = (weights[..., None] * (centred - a[:, None] - b[None]).pow(2)).sum() / weights.sum()
    effect_a = (weights.sum(1)[:, None] * a.pow(2)).sum() / weights.sum()
    effect_b = (weights.sum(0)[:, None] * b.pow(2)).sum() / weights.sum()
    return {
        "first": float(effect_a / total),
        "second": float(effect_b / total),
        "interaction": float(interaction / total),
        "within": float(within / total),
        "within_variance_per_dim": float(within / codes.shape[1]),
    }
