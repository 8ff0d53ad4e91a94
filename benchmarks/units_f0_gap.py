#!/usr/bin/env python3
"""Where ``units``' F0 gap comes from: Praat's median F0 (the evaluation's F0 judge) of each ``units`` conversion
of valid trials (speakers no model saw) against the target's enrolment audio, for every way of overlap-adding the
chosen frames (``manipulations.OVERLAPS``), beside the target's three references themselves (what the output's
frames come from). A trial whose gap passes 6 semitones is counted apart: an output the tracker hears an octave or
more away (a stretched rendition's repeated frames restarting every hop buzz at the frame rate, 100 Hz). A
diagnostic, not a choice: no setting becomes a default from this table (docs/RESULTS.md 6r).

Usage::

    python benchmarks/units_f0_gap.py [--model results_s2/fdnf_cmn/1234/inference] \\
        [--speakers results_s2/prepared_valid_speakers] [--trials 40] [--out benchmarks/latest_units_f0_gap.md]
"""

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling diagnostic's command line and report

from speechbrain_fdnf.convert import convert  # noqa: E402
from speechbrain_fdnf.data.audio import as_written  # noqa: E402
from speechbrain_fdnf.evaluation import conversion  # noqa: E402
from speechbrain_fdnf.inference import SpeechFactorizer  # noqa: E402
from speechbrain_fdnf.manipulations import OVERLAPS  # noqa: E402
from units_word_loss import trial_arguments, write_report  # noqa: E402

#: A gap past this many semitones is an output heard in another octave.
FAR = 6.0


def semitones(f0, reference):
    """``f0`` against ``reference`` (Hz) in semitones; 0 Hz (nothing voiced) counts as 1 Hz.

    Example
    -------
    >>> round(semitones(100.0, 200.0), 6), round(semitones(0.0, 1.0), 6)
    (-12.0, 0.0)
    """
    return 12 * float(np.log2(max(f0, 1.0) / max(reference, 1.0)))


def gap_summary(gaps):
    """``(mean |gap|, median |gap|, trials past FAR, mean |gap| of the others)``.

    Example
    -------
    >>> gap_summary([1.0, -2.0, -17.0])
    (6.666666666666667, 2.0, 1, 1.5)
    """
    gaps = np.abs(np.asarray(gaps, dtype=float))
    near = gaps[gaps <= FAR]
    return float(gaps.mean()), float(np.median(gaps)), int((gaps > FAR).sum()), float(near.mean()) if len(near) else float("nan")


def main(argv=None):
    args = trial_arguments(__doc__.split("\n\n")[0], model="results_s2/fdnf_cmn/1234/inference").parse_args(argv)
    factorizer = SpeechFactorizer.from_hparams(source=args.model)
    block = conversion.valid_speaker_block(factorizer, args.speakers, args.trials, args.seed)
    rate = factorizer.hparams.sample_rate
    median = lambda wav: conversion.median_f0(wav, rate)  # noqa: E731
    gaps = {"the target's references (concatenated)": []}
    gaps.update({f"units, overlap {name}": [] for name in OVERLAPS})
    for number, trial in enumerate(block.trials, 1):
        material = block.material[trial.target]
        references = [factorizer.load_audio(entry["wav"]).cpu() for entry in material.references]
        target = float(np.median([median(factorizer.load_audio(entry["wav"]).cpu()) for entry in material.enrolment]))
        source = factorizer.load_audio(trial.source["wav"]).cpu()
        gaps["the target's references (concatenated)"].append(semitones(median(torch.cat(references)), target))
        for name in OVERLAPS:
            out = as_written(convert(factorizer, source, "speaker", references=references, manipulation="units", overlap=name))
            gaps[f"units, overlap {name}"].append(semitones(median(out), target))
        print(f"trial {number}/{len(block.trials)}", file=sys.stderr)
    lines = ["| row | mean F0 gap (st) | median (st) | trials past 6 st | mean of the others (st) |", "|---|---|---|---|---|"]
    for row, values in gaps.items():
        mean, middle, far, rest = gap_summary(values)
        lines.append(f"| {row} | {mean:.2f} | {middle:.2f} | {far} | {rest:.2f} |")
    write_report(lines, block, args, "F0 by Praat (the evaluation's judge) against the median over the target's "
                                     "enrolment readings.")


if __name__ == "__main__":
    main()
