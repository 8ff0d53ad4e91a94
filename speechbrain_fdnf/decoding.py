"""Viterbi decoding of a frame-level factor's classes (the phone) from a model's per-frame posteriors.

A flow's class posterior treats frames as independent; a phone, though,
lasts several frames and follows other phones by rules. A first-order Markov
chain over the classes, counted from the training label sequences (TIMIT's
usual phone bigram, at the frame rate so it also models durations), adds
that knowledge. The matching gate uses it to infer each frame's phone
(beyond the paper: no label of the decoded frames is read).

Authors
 * speechbrain-fdnf developers
"""

import numpy as np
import torch

#: Posterior scales :meth:`ClassSequenceDecoder.fit_scale` tries.
SCALES = (0.2, 0.3, 0.5, 0.7, 1.0)


class ClassSequenceDecoder(torch.nn.Module):
    """The most likely class sequence of each utterance: scaled log posteriors plus log transitions.

    Arguments
    ---------
    log_transitions : torch.Tensor
        ``(num_classes, num_classes)``: ``log p(next class | class)`` between consecutive frames.
    scale : float
        Weight of the log posteriors against the transitions (a flow's
        posteriors are over-confident, as an acoustic model's are).

    Example
    -------
    >>> labels, utterance = torch.tensor([0, 0, 0, 1, 1, 1]), torch.zeros(6, dtype=torch.long)
    >>> decoder = ClassSequenceDecoder.from_labels(labels, utterance, num_classes=2, smoothing=0.1, scale=1.0)
    >>> noisy = torch.tensor([[0.6, 0.4], [0.4, 0.6], [0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.1, 0.9]]).log()
    >>> noisy.argmax(-1).tolist(), decoder.decode(noisy, utterance).tolist()
    ([0, 1, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1])
    """

    def __init__(self, log_transitions, scale=0.3):
        super().__init__()
        if log_transitions.dim() != 2 or log_transitions.shape[0] != log_transitions.shape[1]:
            raise ValueError(f"log_transitions must be square, got shape {tuple(log_transitions.shape)}")
        self.register_buffer("log_transitions", log_transitions.float())
        self.register_buffer("scale", torch.tensor(float(scale)))

    @property
    def num_classes(self):
        return self.log_transitions.shape[0]

    @classmethod
    def from_labels(cls, labels, utterance, num_classes, smoothing=1.0, scale=0.3):
        """Transitions counted between consecutive frames of each utterance, with ``smoothing`` added
        to every count (so a pair never seen in training stays possible)."""
        same = utterance[1:] == utterance[:-1]
        counts = torch.full((num_classes, num_classes), float(smoothing), device=labels.device)
        pairs = labels[:-1][same] * num_classes + labels[1:][same]
        counts += torch.bincount(pairs, minlength=num_classes * num_classes).view(num_classes, num_classes)
        return cls((counts / counts.sum(dim=1, keepdim=True)).log(), scale)

    @torch.no_grad()
    def fit_scale(self, log_posteriors, utterance, labels, scales=SCALES):
        """Sets :attr:`scale` to the one of ``scales`` whose decoding agrees best with ``labels`` (training
        frames: how sharp a model's posteriors are differs from model to model). Returns the agreement."""
        agreement = {scale: (self.decode(log_posteriors, utterance, scale) == labels.to(log_posteriors.device))
                     .float().mean().item() for scale in scales}
        best = max(agreement, key=agreement.get)
        self.scale.fill_(best)
        return agreement[best]

    @torch.no_grad()
    def decode(self, log_posteriors, utterance, scale=None, utterances_per_step=256):
        """``(n,)`` classes of the most likely path through each utterance.

        Arguments
        ---------
        log_posteriors : torch.Tensor
            ``(n, num_classes)`` per frame.
        utterance : torch.Tensor
            ``(n,)`` utterance of each frame, each utterance's frames consecutive.
        scale : float, optional
            Instead of :attr:`scale`.
        utterances_per_step : int
            Utterances decoded together (padded to the longest), which bounds memory.
        """
        if log_posteriors.shape[-1] != self.num_classes:
            raise ValueError(f"{log_posteriors.shape[-1]} classes in the posteriors, {self.num_classes} in the decoder")
        scale = self.scale.item() if scale is None else scale
        emissions = scale * log_posteriors.float()
        transitions = self.log_transitions.to(emissions.device)
        _, run = torch.unique_consecutive(utterance.to(emissions.device), return_inverse=True)
        lengths = torch.bincount(run) if len(run) else run.new_zeros(0)
        starts = torch.cumsum(lengths, 0) - lengths
        path = torch.empty(len(run), dtype=torch.long, device=emissions.device)
        for first in range(0, len(lengths), utterances_per_step):
            group = slice(first, first + utterances_per_step)
            offsets = torch.arange(int(lengths[group].max()), device=emissions.device)
            valid = offsets < lengths[group, None]  # (u, t)
            rows = (starts[group, None] + offsets).clamp_max(len(run) - 1)
            path[rows[valid]] = _viterbi(emissions[rows], valid, transitions)[valid]
        return path


@torch.no_grad()
def decode_runs(log_posteriors, utterance, change_penalty):
    """``(n,)`` the most likely classes of each utterance's frames when staying in a class costs nothing and a change
    of class ``change_penalty`` nats (a chain that knows nothing of the classes but that they last: a run of a few
    frames stands only where its evidence outweighs its neighbours' by that much; an insertion penalty).

    The same path as :class:`ClassSequenceDecoder` with those transitions and the posteriors unscaled, found in
    ``O(classes)`` a frame instead of ``O(classes ** 2)`` (the best predecessor of a change is the best class
    of the frame before, whichever it leads to), one utterance at a time in numpy: a conversion reads a few
    utterances, where a step's overhead, not its arithmetic, is the cost (two to four times faster there).

    Example
    -------
    >>> flicker = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.9, 0.1], [0.2, 0.8], [0.1, 0.9]]).log()
    >>> decode_runs(flicker, torch.zeros(6, dtype=torch.long), change_penalty=2.0).tolist()
    [0, 0, 0, 0, 1, 1]
    """
    emissions = log_posteriors.detach().double().cpu().numpy()
    _, lengths = torch.unique_consecutive(utterance.cpu(), return_counts=True)
    path, first = np.empty(len(emissions), dtype=np.int64), 0
    for length in lengths.tolist():
        frames = emissions[first:first + length]
        score, stay = frames[0].copy(), np.arange(frames.shape[1])
        pointers = np.empty(frames.shape, dtype=np.int64)
        for step in range(1, length):
            best = int(score.argmax())
            change = score[best] - change_penalty
            moved = change > score
            pointers[step] = np.where(moved, best, stay)
            score = np.where(moved, change, score) + frames[step]
        last = int(score.argmax())
        path[first + length - 1] = last
        for step in range(length - 1, 0, -1):
            last = pointers[step, last]
            path[first + step - 1] = last
        first += length
    return torch.from_numpy(path).to(log_posteriors.device)


def _viterbi(emissions, valid, transitions):
    """Best paths ``(u, t)`` of padded ``emissions`` ``(u, t, c)``; a padded step keeps its path's score."""
    score = emissions[:, 0]
    pointers = []
    stay = torch.arange(emissions.shape[-1], device=emissions.device).expand_as(score)
    for step in range(1, emissions.shape[1]):
        best, previous = (score.unsqueeze(2) + transitions).max(dim=1)
        live = valid[:, step, None]
        score = torch.where(live, best + emissions[:, step], score)
        pointers.append(torch.where(live, previous, stay))
    last = score.argmax(dim=1)
    path = [last]
    for previous in reversed(pointers):
        last = previous.gather(1, last[:, None]).squeeze(1)
        path.append(last)
    return torch.stack(path[::-1], dim=1)
