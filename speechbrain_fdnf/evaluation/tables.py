"""The paper's posterior tables: MLP posteriors of the changed and the kept factor, before and after manipulation.

The protocol only: which frames, which targets, what is averaged. What moves the frames (a
model's manipulation, the reference rows, matching) is a mover of
:mod:`speechbrain_fdnf.evaluation.movers`.

Authors
 * speechbrain-fdnf developers
"""

import torch


def draw_targets(current, candidates, generator):
    """For each frame, a target class drawn uniformly from ``candidates`` minus its current class."""
    candidates = torch.as_tensor(candidates)
    draw = torch.randint(len(candidates) - 1, (len(current),), generator=generator)
    position = torch.searchsorted(candidates, current)
    is_member = (position < len(candidates)) & (candidates[position.clamp_max(len(candidates) - 1)] == current)
    # skip the current class by shifting draws at or past its position
    draw = draw + (is_member & (draw >= position)).long()
    return candidates[draw.clamp_max(len(candidates) - 1)]


def cell_ids(labels, factor, other, num_factor):
    """Per frame, the index ``other class * num_factor + factor class`` of its cell (-1 where a label is unknown)."""
    ids = labels[other] * num_factor + labels[factor]
    return torch.where((labels[other] < 0) | (labels[factor] < 0), torch.full_like(ids, -1), ids)


def existing_cells(labels, factor, other, num_factor, num_other):
    """``(num_other, num_factor)`` booleans: which (other class, factor class) cells have frames."""
    ids = cell_ids(labels, factor, other, num_factor)
    exists = torch.zeros(num_other * num_factor, dtype=torch.bool)
    exists[ids[ids >= 0]] = True
    return exists.view(num_other, num_factor)


def draw_targets_in_cells(current, kept, cells, generator):
    """For each frame, a target class drawn uniformly among those whose cell with the frame's kept
    class exists in ``cells`` (from :func:`existing_cells`), other than its own.

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        The targets and which frames have one (a frame whose own cell is missing has none).

    Example
    -------
    >>> cells = torch.tensor([[True, True, False], [False, True, True]])
    >>> new, has = draw_targets_in_cells(torch.tensor([0, 1, 0]), torch.tensor([0, 1, 1]), cells,
    ...                                  torch.Generator().manual_seed(0))
    >>> new[has].tolist(), has.tolist()
    ([1, 2], [True, True, False])
    """
    weights = cells[kept].float()
    has = cells[kept, current] & (weights.sum(-1) > 1)
    weights[torch.arange(len(current)), current] = 0.0
    new = current.clone()
    if has.any():
        new[has] = torch.multinomial(weights[has], 1, generator=generator)[:, 0]
    return new, has


@torch.no_grad()
def posterior_table(move, probes, frames, target, other, candidates, num_frames=2000, seed=0, cells=None):
    """Mean MLP posteriors before and after changing factor ``target``.

    A fixed, seeded sample of ``num_frames`` frames is drawn from ``frames``
    (held-out utterances); each frame's target class is drawn uniformly
    among ``candidates`` (classes with training frames) other than its own,
    or with ``cells`` (see :func:`existing_cells`) among the classes whose
    cell with the frame's kept class exists (frames whose own cell does not
    exist are left out). ``move(batch, target, other, new)`` returns the
    moved frames (a mover of :mod:`speechbrain_fdnf.evaluation.movers`).

    Returns
    -------
    dict
        ``p_target_x``, ``p_target_x_prime``, ``delta_target`` (for the new
        class of ``target``), ``p_other_x``, ``p_other_x_prime``,
        ``delta_other`` (for the true class of ``other``), and ``frames``.
    """
    generator = torch.Generator().manual_seed(seed)
    index = torch.randperm(len(frames), generator=generator)[:num_frames]
    batch = frames.batch(index)
    current, kept = batch.labels[target], batch.labels[other]
    if cells is None:
        new = draw_targets(current, sorted(candidates), generator)
    else:
        new, has = draw_targets_in_cells(current, kept, cells, generator)
        index, new = index[has], new[has]
        batch = frames.batch(index)
        kept = batch.labels[other]
    moved = move(batch, target, other, new)
    rows = torch.arange(len(index))
    before_t = probes[target].posteriors(batch.feats)[rows, new]
    after_t = probes[target].posteriors(moved)[rows, new]
    before_o = probes[other].posteriors(batch.feats)[rows, kept]
    after_o = probes[other].posteriors(moved)[rows, kept]
    result = {
        "p_target_x": before_t.mean().item(),
        "p_target_x_prime": after_t.mean().item(),
        "p_other_x": before_o.mean().item(),
        "p_other_x_prime": after_o.mean().item(),
        "frames": len(index),
    }
    result["delta_target"] = result["p_target_x_prime"] - result["p_target_x"]
    result["delta_other"] = result["p_other_x_prime"] - result["p_other_x"]
    return result


@torch.no_grad()
def utterance_table(move, probes, frames, candidates, num_utterances=200, seed=0, target="speaker", other="phone"):
    """:func:`posterior_table`'s columns for whole utterances: every frame of a seeded sample of utterances moved
    to one target class of ``target`` (drawn among ``candidates`` other than the utterance's own), the
    utterance's posterior of ``target`` taken from its frames' mean log-posterior (as an utterance-level
    classifier pools frames); ``other`` stays frame-level (each frame's posterior of its own class).

    Example
    -------
    >>> from speechbrain_fdnf.data.frames import FrameSet
    >>> cache = {"feats": torch.randn(40, 3), "utterance": torch.arange(4).repeat_interleave(10),
    ...          "labels": {"speaker": torch.arange(4).repeat_interleave(10), "phone": torch.arange(40) % 2}}
    >>> class Probe:
    ...     def __init__(self, n): self.n = n
    ...     def posteriors(self, feats): return torch.full((len(feats), self.n), 1.0 / self.n)
    >>> table = utterance_table(lambda batch, f, o, new: batch.feats, {"speaker": Probe(4), "phone": Probe(2)},
    ...                         FrameSet(cache), candidates=[0, 1, 2, 3], num_utterances=3)
    >>> table["utterances"], round(table["p_target_x"], 3), table["delta_target"]
    (3, 0.25, 0.0)
    """
    generator = torch.Generator().manual_seed(seed)
    utterances = torch.unique(frames.utterance)
    chosen = utterances[torch.randperm(len(utterances), generator=generator)[:num_utterances]]
    sums = {key: 0.0 for key in ("p_target_x", "p_target_x_prime", "p_other_x", "p_other_x_prime")}
    for utterance in chosen.tolist():
        positions = torch.nonzero(frames.utterance == utterance).flatten()
        batch = frames.batch(positions)
        current = batch.labels[target][:1]
        new = draw_targets(current, sorted(candidates), generator).expand(len(positions))
        moved = move(batch, target, other, new)
        kept, rows = batch.labels[other], torch.arange(len(positions))
        for suffix, feats in (("x", batch.feats), ("x_prime", moved)):
            pooled = probes[target].posteriors(feats).clamp_min(1e-12).log().mean(dim=0).softmax(dim=-1)
            sums[f"p_target_{suffix}"] += pooled[new[0]].item()
            sums[f"p_other_{suffix}"] += probes[other].posteriors(feats)[rows, kept].mean().item()
    result = {key: value / max(len(chosen), 1) for key, value in sums.items()}
    result["delta_target"] = result["p_target_x_prime"] - result["p_target_x"]
    result["delta_other"] = result["p_other_x_prime"] - result["p_other_x"]
    result["utterances"] = len(chosen)
    return result
