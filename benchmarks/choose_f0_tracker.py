#!/usr/bin/env python3
"""Which WORLD F0 tracker for ``method="world"``: Harvest, or DIO with which ``allowed_range`` (issue 34)?

Harvest is the slow part of the WORLD path (about 0.3 of real time on one thread, on the source and on
every reference of each call); DIO refined by StoneMask costs about 0.01. This measures each candidate
on TRAINING speakers' readings of a TIMIT-layout corpus (never the test speakers the conversion tables
judge), with nothing but the corpus's own phone labels and the tracker's own output (Praat, the
evaluation's F0 judge, is not consulted, so the judge stays independent of the choice):

* voicing: the share of 10 ms frames whose voiced/unvoiced decision agrees with the labels (a frame
  inside a segment of a voiced phone: vowels, semivowels, nasals, voiced stops and fricatives);
* octave jumps: the share of consecutive voiced frames whose F0 changes by more than 9 semitones (a
  voice does not leap that far in 10 ms: such jumps are halving or doubling errors);
* register spread: for each speaker, the semitones between the geometric-mean F0 of two of their
  readings (a voice keeps its register; a tracker that halves F0 in some readings does not);
* real-time factor on one thread.

The rule, fixed before the first run: the converter's tracker becomes the fastest candidate whose voicing
agreement is within 0.05 of Harvest's and whose octave jumps and register spread are each no worse than
Harvest's; among DIO's ranges the same rule picks ``DIO_ALLOWED_RANGE``. If no candidate passes, Harvest
stays. A later session added DIO's ``speed`` (2, 3, 4: the signal decimated before the analysis) at the
chosen range, read by the same rule, which then sets ``DIO_SPEED``.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/choose_f0_tracker.py CORPUS_ROOT [--speakers 30] \\
        [--out benchmarks/latest_f0_tracker.md]
"""

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechbrain_fdnf.data.timit import read_phn  # noqa: E402
from speechbrain_fdnf.pitch import analyse_f0  # noqa: E402

#: TIMIT-61 phones produced with the vocal folds vibrating.
VOICED_PHONES = set(
    "iy ih eh ey ae aa aw ay ah ao oy ow uh uw ux er ax ix axr ax-h l r w y el m n ng em en eng nx dx "
    "z zh v dh b d g jh hv".split()
)
#: (label, tracker, DIO options): DIO's ``allowed_range`` and ``speed`` (it analyses the signal decimated by
#: that factor: the speed rows were added in a later session, under the same rule, to bring the WORLD
#: path's real-time factor down).
#: Every DIO row names its speed: the rows without one in their label analyse at the full rate (speed 1), as
#: they did when the range was chosen, whatever ``DIO_SPEED`` is now.
CANDIDATES = (("harvest", "harvest", {}),
              *((f"dio (range {allowed:g})", "dio", {"dio_allowed_range": allowed, "dio_speed": 1})
                for allowed in (0.1, 0.2, 0.3)),
              *((f"dio (range 0.3, speed {speed})", "dio", {"dio_allowed_range": 0.3, "dio_speed": speed})
                for speed in (2, 3, 4)))
HOP = 0.01


def voiced_labels(phn_path, num_samples, frames, sample_rate):
    """Per 10 ms frame: inside a voiced phone's segment of the ``.PHN`` file (read and checked by
    :func:`~speechbrain_fdnf.data.timit.read_phn` against the audio's ``num_samples``)."""
    labels = np.zeros(frames, dtype=bool)
    for start, end, phone in read_phn(phn_path, num_samples):
        if phone in VOICED_PHONES:
            labels[round(start / sample_rate / HOP): round(end / sample_rate / HOP)] = True
    return labels


def measure(readings, tracker, options):
    """The four numbers of one candidate over ``{speaker: [wav paths]}``."""
    agree, jumps, spreads, seconds, audio = [], [], [], 0.0, 0.0
    for paths in readings.values():
        registers = []
        for path in paths:
            wav, rate = soundfile.read(path)
            start = time.perf_counter()
            f0, _ = analyse_f0(wav, rate, tracker=tracker, **options)
            seconds += time.perf_counter() - start
            audio += len(wav) / rate
            labels = voiced_labels(path.with_suffix(".PHN"), len(wav), len(f0), rate)
            agree.append(float(((f0 > 0) == labels).mean()))
            pairs = (f0[1:] > 0) & (f0[:-1] > 0)
            steps = np.abs(12 * np.log2(f0[1:][pairs] / f0[:-1][pairs]))
            jumps.append(float((steps > 9).mean()) if len(steps) else 0.0)
            voiced = f0[f0 > 0]
            registers.append(float(np.exp(np.log(voiced).mean())) if len(voiced) else np.nan)
        if len(registers) >= 2 and np.isfinite(registers[:2]).all():
            spreads.append(abs(12 * np.log2(registers[0] / registers[1])))
    return {"voicing": float(np.mean(agree)), "octave jumps": float(np.mean(jumps)),
            "register spread": float(np.mean(spreads)), "rtf": seconds / audio}


def choose(results, reference="harvest"):
    """The rule of the module docstring over ``{label: numbers}``: the chosen label."""
    base = results[reference]
    passing = [label for label, numbers in results.items()
               if numbers["voicing"] >= base["voicing"] - 0.05 and numbers["octave jumps"] <= base["octave jumps"]
               and numbers["register spread"] <= base["register spread"]]
    return min(passing, key=lambda label: results[label]["rtf"]) if passing else reference


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus", help="a TIMIT-layout corpus root (TRAIN/DR*/<speaker>/*.WAV with .PHN)")
    parser.add_argument("--speakers", type=int, default=30, help="training speakers, every k-th in sorted order")
    parser.add_argument("--out", help="write the table here (markdown)")
    args = parser.parse_args(argv)
    by_speaker = defaultdict(list)
    for wav in sorted(Path(args.corpus).glob("TRAIN/DR*/*/*.WAV")):
        if not wav.stem.upper().startswith("SA"):  # the two shared sentences: not what the tables use
            by_speaker[wav.parent.name].append(wav)
    if not by_speaker:
        parser.error(f"{args.corpus}: no TRAIN/DR*/<speaker>/*.WAV")
    names = sorted(by_speaker)
    names = names[:: max(1, len(names) // args.speakers)][: args.speakers]
    readings = {name: by_speaker[name][:2] for name in names}
    results = {label: measure(readings, tracker, options) for label, tracker, options in CANDIDATES}
    chosen = choose(results)
    lines = [f"# WORLD's F0 tracker on {len(readings)} training speakers, 2 readings each ({args.corpus})", "",
             "| tracker | voicing agreement with the labels | octave jumps | register spread (st) | real-time factor |",
             "|---|---|---|---|---|"]
    lines += [f"| {label} | {n['voicing']:.3f} | {n['octave jumps']:.4f} | {n['register spread']:.2f} | {n['rtf']:.4f} |"
              for label, n in results.items()]
    lines += ["", f"Chosen by the rule of `benchmarks/choose_f0_tracker.py`: **{chosen}**"]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
