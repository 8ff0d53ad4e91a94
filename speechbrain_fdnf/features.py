"""Feature frames with their context: what the model sees of an utterance, for the data pipeline and the interface alike.

Authors
 * speechbrain-fdnf developers
"""

import torch


def splice(feats, context, rows=None, first=None, last=None):
    """Frames with their ``context`` neighbours on each side: ``(n, dim * (2 context + 1))``.

    Neighbours past an utterance's edge repeat its edge frame. Without
    ``rows`` the frames are one utterance and every frame is returned;
    otherwise ``rows`` picks frames of a concatenation of utterances and
    ``first``/``last`` give the row bounds of each picked frame's utterance.

    Example
    -------
    >>> splice(torch.arange(3.)[:, None], 1)
    tensor([[0., 0., 1.],
            [0., 1., 2.],
            [1., 2., 2.]])
    """
    if rows is None:
        rows = torch.arange(len(feats), device=feats.device)
        first, last = torch.zeros((), dtype=torch.long, device=feats.device), torch.tensor(len(feats) - 1, device=feats.device)
    if not context:
        return feats[rows]
    offsets = torch.arange(-context, context + 1, device=rows.device)
    first, last = (bound[..., None] if bound.dim() else bound for bound in (first, last))
    neighbours = (rows[:, None] + offsets).clamp(first, last)
    return feats[neighbours].flatten(1)
