#!/usr/bin/env python3
"""The choice table of the converter's default given audio of the target (issue 34): the rule of
``hparams/experiments/choose_conversion.yaml`` applied to a valid-split conversion run.

Reads the ``results.json`` that ``recipes/TIMIT/evaluate.py hparams/experiments/choose_conversion.yaml``
writes and prints, for every row of a manipulation that works from audio of the target (``cells``, ``knn``,
``select`` and their variants), the judges' numbers, whether the row keeps the words (recognizer PER within
:data:`PER_MARGIN` points of copy-synthesis) and which row the rule chooses: the highest verified share among
those that keep the words; rows within :data:`TIE` of it go to the lower PER.

Usage::

    python benchmarks/choose_conversion.py results_faithful/evaluation_conversion_valid/results.json \
        [more runs on the same trials ...] [--out benchmarks/latest_conversion_choice.md]
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechbrain_fdnf.evaluation.conversion import COPY  # noqa: E402
from speechbrain_fdnf.manipulations import REGISTRY  # noqa: E402

#: The rule's bounds: PER points over copy-synthesis that still keep the words, and a tie (one trial in 40).
PER_MARGIN, TIE = 15.0, 0.025


def candidates(rows, model):
    """The rows of ``model``'s manipulations that work from audio of the target, in the report's order."""
    names = [name for name, cls in REGISTRY.items() if cls.needs_references]
    return {row: values for row, values in rows.items()
            if any(row == f"{model} {name}" or row.startswith(f"{model} {name} (") for name in names)}


def choose(rows, model):
    """``(chosen row or None, {row: keeps the words})`` by the rule."""
    limit = rows[COPY]["per_recognizer"] + PER_MARGIN
    pool = candidates(rows, model)
    keeps = {row: values["per_recognizer"] <= limit for row, values in pool.items()}
    eligible = [row for row, ok in keeps.items() if ok]
    if not eligible:
        return None, keeps
    best = max(pool[row]["verified_as_target"] for row in eligible)
    tied = [row for row in eligible if pool[row]["verified_as_target"] >= best - TIE]
    return min(tied, key=lambda row: pool[row]["per_recognizer"]), keeps


def choice_table(results, model="f-DNF"):
    """Markdown: copy-synthesis, then every candidate row; the chosen one in bold."""
    conversion = results["conversion"]
    rows = conversion["rows"]
    chosen, keeps = choose(rows, model)

    def cells(values):
        cross = values.get("cross_gender", {})
        cross_verified = f"{cross['verified_as_target']:.2f}" if cross.get("trials") else "-"
        dnsmos = f"{values['dnsmos_ovrl']:.2f}" if "dnsmos_ovrl" in values else "-"
        return (f"{values['verified_as_target']:.3f} | {values['closer_to_target']:.2f} | {cross_verified} | "
                f"{values['per_recognizer']:.1f} | {values.get('f0_gap_semitones', float('nan')):.1f} | {dnsmos}")

    lines = ["| row | verified | closer | cross-gender verified | PER recognizer % | F0 gap (st) | DNSMOS | keeps the words |",
             "|---|---|---|---|---|---|---|---|", f"| {COPY} | {cells(rows[COPY])} | |"]
    for row in candidates(rows, model):
        label = f"**{row} (chosen)**" if row == chosen else row
        lines.append(f"| {label} | {cells(rows[row])} | {'yes' if keeps[row] else 'no'} |")
    trials = rows[COPY]["trials"]
    lines += ["", f"Block: {conversion['block']}, {trials:.0f} trials. Chosen by the rule of "
              f"hparams/experiments/choose_conversion.yaml (PER within {PER_MARGIN:g} points of copy-synthesis, then "
              f"the highest verified share, ties within {TIE} to the lower PER): {chosen or 'none keeps the words'}."]
    return "\n".join(lines) + "\n", chosen


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", help="results.json of the valid-split conversion run(s): runs on the "
                        "same trials (same seed and split) whose rows are chosen among together")
    parser.add_argument("--model", default="f-DNF", help="the display name of the converter's model")
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args(argv)
    results = None
    for path in args.results:
        run = json.loads(Path(path).read_text())
        if run["conversion"]["block"] != "training speakers":
            sys.exit(f"{path}: the choice reads the valid split's training-speaker block, got "
                     f"{run['conversion']['block']!r} (never choose on the test speakers)")
        if results is None:
            results = run
            continue
        if run["seeds"] != results["seeds"] or run["conversion"]["rows"][COPY]["trials"] != results["conversion"]["rows"][COPY]["trials"]:
            sys.exit(f"{path}: not the trials of {args.results[0]} (its seeds or number of trials differ)")
        for row, values in run["conversion"]["rows"].items():
            results["conversion"]["rows"].setdefault(row, values)  # the framing rows: the first run's
    text, _ = choice_table(results, args.model)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
