"""A bidirectional LSTM over a padded batch, without packing it.

SpeechBrain's ``LSTM`` packs a batch of utterances of several lengths (``pack_padded_sequence``) so that each
utterance's backward direction starts at its own last frame, not in the padding. On a CPU, torch runs a packed
sequence about three times slower than the same batch padded (``benchmarks/bench_tagger_training.py``). The same
outputs come from the padded batch when each layer runs its two directions apart: the forward one over the batch as
it is (padding only ever follows an utterance's frames, so it never reaches them), the backward one over each
utterance reversed within its own length (its last frame first, the padding still after it), then turned back. The
weights are the ``torch.nn.LSTM``'s own, so a checkpoint of SpeechBrain's ``LSTM`` runs either way.

Authors
 * speechbrain-fdnf developers
"""

import torch


def reversed_within(x, lengths):
    """``x`` ``(batch, frames, ...)`` with each utterance's first ``lengths[i]`` frames in reverse order and its
    padding where it was.

    Example
    -------
    >>> x = torch.arange(8.0).view(2, 4)
    >>> reversed_within(x, torch.tensor([4, 2])).tolist()
    [[3.0, 2.0, 1.0, 0.0], [5.0, 4.0, 6.0, 7.0]]
    """
    frames = torch.arange(x.shape[1], device=x.device)
    lengths = lengths.to(x.device)[:, None]
    order = torch.where(frames < lengths, lengths - 1 - frames, frames)  # (batch, frames): an involution
    return x.gather(1, order.view(*order.shape, *([1] * (x.dim() - 2))).expand_as(x))


def lstm_over_padding(lstm, x, lengths):
    """The outputs ``(batch, frames, directions * hidden)`` of ``lstm`` (a batch-first ``torch.nn.LSTM``) over the
    padded batch ``x`` ``(batch, frames, features)`` whose utterance ``i`` has ``lengths[i]`` frames: at every
    utterance's own frames what the LSTM gives the packed batch, or each utterance alone; zeros in the padding.
    Dropout between layers as the LSTM applies it (in training only).

    Example
    -------
    >>> lstm = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    >>> x = torch.randn(2, 5, 3)
    >>> out = lstm_over_padding(lstm, x, torch.tensor([5, 3]))
    >>> alone, _ = lstm(x[1:, :3])
    >>> torch.allclose(out[1, :3], alone[0], atol=1e-6), out[1, 3:].abs().max().item()
    (True, 0.0)
    """
    if not lstm.batch_first or lstm.proj_size:
        raise ValueError("lstm_over_padding needs a batch-first torch.nn.LSTM without projections")
    lengths = torch.as_tensor(lengths, device=x.device).long()
    keep = (torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None])[..., None]
    hidden = x
    for layer in range(lstm.num_layers):
        if layer and lstm.dropout and lstm.training:
            hidden = torch.nn.functional.dropout(hidden, lstm.dropout, training=True)
        outputs = []
        for suffix in ("", "_reverse")[: 2 if lstm.bidirectional else 1]:
            weights = [getattr(lstm, f"{name}_l{layer}{suffix}") for name in ("weight_ih", "weight_hh")]
            if lstm.bias:
                weights += [getattr(lstm, f"{name}_l{layer}{suffix}") for name in ("bias_ih", "bias_hh")]
            state = hidden.new_zeros(1, len(hidden), lstm.hidden_size)
            inputs = reversed_within(hidden, lengths) if suffix else hidden
            out, *_ = torch.lstm(inputs, (state, state), weights, lstm.bias, 1, 0.0, lstm.training, False, True)
            outputs.append(reversed_within(out, lengths) if suffix else out)
        hidden = torch.cat(outputs, dim=-1) * keep
    return hidden
