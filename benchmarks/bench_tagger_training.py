#!/usr/bin/env python3
"""The phone tagger's training step against SpeechBrain's packed LSTM: the tagger's bidirectional LSTM over a
padded batch by :func:`~speechbrain_fdnf.lobes.recurrent.lstm_over_padding` (each direction over the padded
batch, the backward one over each utterance reversed within its length) against the same weights through
SpeechBrain's ``LSTM`` with ``lengths`` (``pack_padded_sequence``), in one run, on the same batches: the
forward and backward pass of the LSTM alone, and of the whole :class:`~speechbrain_fdnf.lobes.tagger.FrameTagger`
(its convolutional block, the LSTM and the output layer) with each LSTM.

Batches as the tagger recipe draws them (8 utterances, lengths spread as the corpus's readings: 1.5 to 4 s, 100
frames a second; the recipe's architecture: 40 bands, 16 channels, 128 units, two layers). Both take turns
within each round (a slow moment of the shared machine hits both); medians over rounds of the seconds per batch,
their ratio, and the largest differences between their outputs and gradients (they must agree).

Usage::

    python benchmarks/bench_tagger_training.py [--threads 1 2] [--rounds 5] [--device cpu] \
        [--out benchmarks/latest_tagger_training.md]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechbrain_fdnf.lobes.recurrent import lstm_over_padding  # noqa: E402
from speechbrain_fdnf.lobes.tagger import FrameTagger  # noqa: E402


def batch(size, generator, device, bands=40):
    """Log-Mel-like frames ``(size, frames, bands)`` and relative lengths, 150 to 400 frames each."""
    frames = torch.randint(150, 401, (size,), generator=generator)
    feats = torch.randn(size, int(frames.max()), bands, generator=generator)
    return feats.to(device), (frames / frames.max()).to(device)


def packed(tagger, front, lengths):
    """SpeechBrain's ``LSTM`` of ``tagger`` over the batch ``front``, packed (the tagger's LSTM before RESULTS 6zh)."""
    return tagger.rnn(front, lengths=lengths)[0]


def padded(tagger, front, lengths):
    """The same LSTM over the padded batch, each direction apart, on any device."""
    return lstm_over_padding(tagger.rnn.rnn, front, torch.round(lengths * front.shape[1]).long())


def tagger_forward(tagger, lstm, feats, lengths):
    """The tagger's logits with ``lstm`` (:func:`packed` or :func:`padded`) as its recurrent layer."""
    feats = tagger.centre(feats, lengths) if tagger.centre is not None else feats
    return tagger.output(lstm(tagger, tagger.front_end((feats - tagger.mean) / tagger.std, lengths), lengths))


def step(forward, tagger, feats, lengths, weights):
    """One forward and backward pass; the outputs at the utterances' frames and every gradient."""
    tagger.zero_grad()
    out = forward(feats, lengths) * weights
    out.sum().backward()
    return out.detach(), [parameter.grad.clone() for parameter in tagger.parameters() if parameter.grad is not None]


def timed(work, device):
    """Seconds ``work()`` takes (waiting for a GPU to finish)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    work()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    # eval(): no dropout, so that both give the same numbers to compare (dropout costs the same either way)
    tagger = FrameTagger(40, 39, hidden_size=128, num_layers=2, cnn_channels=16).to(device).eval()
    feats, lengths = batch(args.batch_size, generator, device)
    frames = torch.round(lengths * feats.shape[1]).long()
    keep = (torch.arange(feats.shape[1], device=device)[None, :] < frames[:, None])[..., None]
    weights = torch.randn(*feats.shape[:2], 39, generator=generator).to(device) * keep
    lstms = {"SpeechBrain's LSTM, packed": packed, "padded, each direction apart": padded}
    runs = {name: lambda x, n, lstm=lstm: tagger_forward(tagger, lstm, x, n) for name, lstm in lstms.items()}
    expected, got = (step(run, tagger, feats, lengths, weights) for run in runs.values())
    output_gap = float((expected[0] - got[0]).abs().max())
    gradient_gap = max(float(((a - b).abs().max() / b.abs().max().clamp_min(1e-12))) for a, b in zip(got[1], expected[1]))
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        seconds = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, run in runs.items():
                seconds[name].append(timed(lambda run=run: step(run, tagger, feats, lengths, weights), device))
        lstm_alone = {name: [] for name in runs}
        hidden = torch.randn(args.batch_size, feats.shape[1], tagger.rnn_input, generator=generator).to(device)
        for _ in range(args.rounds):
            for name, lstm in lstms.items():
                lstm_alone[name].append(timed(lambda lstm=lstm: (lstm(tagger, hidden, lengths) * keep).sum().backward(),
                                              device))
        base = {name: statistics.median(values) for name, values in seconds.items()}
        base_lstm = {name: statistics.median(values) for name, values in lstm_alone.items()}
        peer = "SpeechBrain's LSTM, packed"
        for name in runs:
            rows.append(f"| {device.type}, {threads} thread(s) | {name} | {base_lstm[name] * 1000:.0f} | "
                        f"{base_lstm[peer] / base_lstm[name]:.2f} | {base[name] * 1000:.0f} | {base[peer] / base[name]:.2f} |")
    table = "\n".join(
        ["# The tagger's training step: its LSTM over a padded batch against SpeechBrain's packed LSTM\n",
         f"{args.batch_size} utterances of {int(frames.min())}-{int(frames.max())} frames (40 bands; the recipe's tagger: "
         f"16 channels, 128 units, two bidirectional layers), forward and backward, median of {args.rounds} rounds; "
         f"speed-up against SpeechBrain's packed LSTM in the same run. Outputs agree to {output_gap:.1e}, "
         f"gradients to {gradient_gap:.1e} of their largest value.\n",
         "| device | LSTM | LSTM alone (ms) | speed-up | whole tagger (ms) | speed-up |", "|---|---|---|---|---|---|"]
        + rows)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
