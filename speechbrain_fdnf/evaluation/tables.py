"""The paper's posterior tables: MLP posteriors of the changed and the kept factor, before and after manipulation.

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


@torch.no_grad()
def posterior_table(engine, probes, frames, target, other, candidates, num_frames=2000, seed=0):
    """Mean MLP posteriors before and after changing factor ``target``.

    ``engine`` (a :class:`~speechbrain_fdnf.engine.FeatureFlow`) moves the
    frames. A fixed, seeded sample of ``num_frames`` frames is drawn from ``frames``
    (held-out utterances); each frame's target class is drawn uniformly
    among ``candidates`` (classes with training frames) other than its own.

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
    new = draw_targets(current, sorted(candidates), generator)
    moved = engine.manipulate(batch.feats, target, source=current, target=new)
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
