#!/usr/bin/env python3
"""The choice table of the converter's default given audio of the target (issue 34): the rule of
``hparams/experiments/choose_conversion.yaml`` applied to a valid-split conversion run.

Reads the ``results.json`` that ``recipes/TIMIT/evaluate.py hparams/experiments/choose_conversion.yaml``
writes and prints, for every row of a manipulation that works from audio of the target (``cells``, ``knn``,
``select`` and their variants), the judges' numbers, whether the row keeps the words (recognizer PER within
:data:`PER_MARGIN` points of copy-synthesis) and which row the rule chooses: the highest verified share among
those that keep the words; rows within :data:`TIE` of it go to the lower PER.

With ``--resynthesis``, the rule of ``hparams/experiments/choose_world.yaml`` instead: whether a path
through WORLD (``world``, ``world_voiced``; with each F0 tracker the run has rows for) becomes the default
resynthesis in place of the gain path.

Usage::

    python benchmarks/choose_conversion.py results_faithful/evaluation_conversion_valid/results.json \
        [more runs on the same trials ...] [--out benchmarks/latest_conversion_choice.md]
    python benchmarks/choose_conversion.py results/evaluation_world_valid/results.json --resynthesis
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechbrain_fdnf.evaluation.config import TRAINING_SPEAKERS, VALID_SPEAKERS  # noqa: E402
from speechbrain_fdnf.evaluation.conversion import COPY, DEFAULT, world_row_names  # noqa: E402
from speechbrain_fdnf.convert import PITCH_METHODS  # noqa: E402
from speechbrain_fdnf.pitch import F0_TRACKERS  # noqa: E402
from speechbrain_fdnf.manipulations import REGISTRY  # noqa: E402

#: The rule's bounds: PER points over copy-synthesis that still keep the words, and a tie (one trial in 40).
PER_MARGIN, TIE = 15.0, 0.025
#: choose_world.yaml's bounds: PER points WORLD's copy-synthesis and its default may add over the gain path's.
WORLD_COPY_MARGIN, WORLD_DEFAULT_MARGIN = 2.0, 5.0


#: ``--phones``: the words a row's name holds when it reads the phones the folder cannot serve (``tagger``: a folder
#: with a contextual tagger never reads the model's own phones where it could read the tagger's, and the reverse).
OTHER_PHONES = {"tagger": "model's phones", "model": "tagger"}


def candidates(rows, model, phones=None):
    """The rows of ``model``'s manipulations that work from audio of the target, in the report's order; with
    ``phones`` (``tagger`` or ``model``), only those a model folder with (without) a tagger runs."""
    names = [name for name, cls in REGISTRY.items() if cls.needs_references]
    return {row: values for row, values in rows.items()
            if any(row == f"{model} {name}" or row.startswith(f"{model} {name} (") for name in names)
            and not (phones and OTHER_PHONES[phones] in row.split(" (", 1)[-1])}


def choose(rows, model, closer_floor=0.0, phones=None):
    """``(chosen row or None, {row: keeps the words}, {row: converts})`` by the rule.

    A row converts when its share closer to the target is at least ``closer_floor`` (0: every row, the rule
    before the floor). Among the rows that convert and keep the words, the highest verified share (ties
    within :data:`TIE` to the lower PER). When none does both: with a floor, the converting row with the
    fewest phone errors (``None`` when no row converts); without one, ``None`` (the earlier rule: the
    default stays when no row keeps the words).

    Example
    -------
    >>> rows = {COPY: {"per_recognizer": 10.0}, "f-DNF cells": {"per_recognizer": 20.0,
    ...         "verified_as_target": 0.2, "closer_to_target": 0.6}, "f-DNF knn": {"per_recognizer": 40.0,
    ...         "verified_as_target": 0.5, "closer_to_target": 0.9}}
    >>> choose(rows, "f-DNF")[0], choose(rows, "f-DNF", closer_floor=0.75)[0]
    ('f-DNF cells', 'f-DNF knn')
    >>> rows["f-DNF cells"]["per_recognizer"] = 30.0  # no row keeps the words: only the floor's rule falls back
    >>> choose(rows, "f-DNF")[0], choose(rows, "f-DNF", closer_floor=0.75)[0]
    (None, 'f-DNF knn')
    """
    limit = rows[COPY]["per_recognizer"] + PER_MARGIN
    pool = candidates(rows, model, phones)
    keeps = {row: values["per_recognizer"] <= limit for row, values in pool.items()}
    converts = {row: values["closer_to_target"] >= closer_floor for row, values in pool.items()}
    eligible = [row for row in pool if keeps[row] and converts[row]]
    if not eligible:
        moving = [row for row in pool if converts[row]] if closer_floor > 0 else []
        return (min(moving, key=lambda row: pool[row]["per_recognizer"]) if moving else None), keeps, converts
    best = max(pool[row]["verified_as_target"] for row in eligible)
    tied = [row for row in eligible if pool[row]["verified_as_target"] >= best - TIE]
    return min(tied, key=lambda row: pool[row]["per_recognizer"]), keeps, converts


#: The rules a twin row is held to against the same row without its option: ``quality``
#: (choose_phase_valid_speakers.yaml: DNSMOS gained, PER and verified share little lost) and ``words``
#: (choose_source_fallback_valid_speakers.yaml: PER gained, verified share and spoof EER little lost). Each bound:
#: ``(column, least change, words of its failure)``; a change is the twin's value minus the base's.
TWIN_RULES = {
    "quality": (("dnsmos_ovrl", 0.05, "DNSMOS not 0.05 higher"), ("per_recognizer", -1.0, "loses words"),
                ("verified_as_target", -0.025, "verified less often")),
    "words": (("per_recognizer", 1.0, "not 1 phone-error point fewer"), ("verified_as_target", -0.025, "verified less often"),
              ("spoof_eer", -5.0, "told from real readings more easily")),
    "pitch": (("f0_gap_semitones", 0.3, "median F0 not 0.3 semitone nearer the target's"), ("per_recognizer", -1.0, "loses words"),
              ("verified_as_target", -0.025, "verified less often"), ("dnsmos_ovrl", -0.05, "rated lower")),
}
#: Rules met by meeting any one of theirs (choose_joins_intonation_valid_speakers.yaml: ``either``).
ANY_OF_RULES = {"either": ("quality", "words")}
#: Columns where lower is better: their change is counted the other way.
LOWER_IS_BETTER = {"per_recognizer", "f0_gap_semitones"}


def twin_passes(twin, base, rule="quality"):
    """``(passes, reasons it fails)``: :data:`TWIN_RULES` ``[rule]`` for a row against the same row without its
    option (``base``).

    Example
    -------
    >>> base = {"dnsmos_ovrl": 1.6, "per_recognizer": 30.0, "verified_as_target": 0.9, "spoof_eer": 40.0}
    >>> twin_passes(dict(base, dnsmos_ovrl=1.7, per_recognizer=30.5), base)
    (True, [])
    >>> twin_passes(dict(base, dnsmos_ovrl=1.7, verified_as_target=0.8), base)[1]
    ['verified less often (0.800 against 0.900)']
    >>> twin_passes(dict(base, per_recognizer=28.5, spoof_eer=38.0), base, "words")
    (True, [])
    >>> twin_passes(dict(base, per_recognizer=29.5), base, "words")[1]
    ['not 1 phone-error point fewer (29.500 against 30.000)']
    >>> twin_passes(dict(base, per_recognizer=28.5, spoof_eer=38.0), base, "either")  # words, though not quality
    (True, [])
    >>> twin_passes(dict(base, per_recognizer=29.5), base, "either")[1]
    ['quality: DNSMOS not 0.05 higher (1.600 against 1.600)', 'words: not 1 phone-error point fewer (29.500 against 30.000)']
    """
    if rule in ANY_OF_RULES:
        verdicts = {each: twin_passes(twin, base, each) for each in ANY_OF_RULES[rule]}
        if any(passes for passes, _ in verdicts.values()):
            return True, []
        return False, [f"{each}: {failure}" for each, (_, failures) in verdicts.items() for failure in failures]
    failures = []
    for column, least, words in TWIN_RULES[rule]:
        gain = (base[column] - twin[column]) if column in LOWER_IS_BETTER else (twin[column] - base[column])
        if gain < least - 1e-9:
            failures.append(f"{words} ({twin[column]:.3f} against {base[column]:.3f})")
    return not failures, failures


def twin_table(results, words, model="f-DNF", rule="quality"):
    """Markdown: every candidate row whose name holds ``words`` (an option's words, ``phase continued``) beside
    the same row without them, and the verdict of :func:`twin_passes` under ``rule``."""
    rows = results["conversion"]["rows"]
    lines = [COLUMNS + " passes |", "|---|---|---|---|---|---|---|---|"]
    verdicts = []
    for row, values in candidates(rows, model).items():
        if words not in row:
            continue
        base_name = row.replace(f", {words}", "").replace(f" ({words})", "")
        if base_name not in rows:
            continue
        passes, failures = twin_passes(values, rows[base_name], rule)
        lines += [f"| {base_name} | {row_cells(rows[base_name])} | |", f"| {row} | {row_cells(values)} | {'yes' if passes else 'no'} |"]
        verdicts.append(f"* {row}: " + ("passes" if passes else "does not pass: " + "; ".join(failures)))
    trials = rows[COPY]["trials"]
    bounds = " or ".join(f"{each}: " * (rule in ANY_OF_RULES) + ", ".join(
        f"{column} {'+' if least >= 0 else ''}{least:g}" for column, least, _ in TWIN_RULES[each])
        for each in ANY_OF_RULES.get(rule, (rule,)))
    lines += ["", f"Block: {results['conversion']['block']}, {trials:.0f} trials. The rule {rule!r} (least change "
              f"against the row without the option, PER and F0 gap counted as saved: {bounds}):", *verdicts]
    return "\n".join(lines) + "\n"


#: The columns of both tables' rows (:func:`row_cells`).
COLUMNS = "| row | verified | closer | cross-gender verified | PER recognizer % | F0 gap (st) | DNSMOS |"


def cross_verified(values):
    """A row's share verified as the target across genders (``nan`` without cross-gender trials)."""
    cross = values.get("cross_gender", {})
    return cross["verified_as_target"] if cross.get("trials") else float("nan")


def row_cells(values):
    """A row's judges' numbers in the order of :data:`COLUMNS` (``-`` where a judge has none)."""
    cross = f"{cross_verified(values):.2f}" if values.get("cross_gender", {}).get("trials") else "-"
    dnsmos = f"{values['dnsmos_ovrl']:.2f}" if "dnsmos_ovrl" in values else "-"
    return (f"{values['verified_as_target']:.3f} | {values['closer_to_target']:.2f} | {cross} | "
            f"{values['per_recognizer']:.1f} | {values.get('f0_gap_semitones', float('nan')):.2f} | {dnsmos}")


def choice_table(results, model="f-DNF", closer_floor=0.0, phones=None):
    """Markdown: copy-synthesis, then every candidate row (of a folder with or without a tagger: ``phones``); the
    chosen one in bold."""
    conversion = results["conversion"]
    rows = conversion["rows"]
    chosen, keeps, converts = choose(rows, model, closer_floor, phones)
    floor = closer_floor > 0
    lines = [f"{COLUMNS} keeps the words |" + (" converts |" if floor else ""),
             "|---|---|---|---|---|---|---|---|" + ("---|" if floor else ""),
             f"| {COPY} | {row_cells(rows[COPY])} | |" + (" |" if floor else "")]
    for row in candidates(rows, model, phones):
        label = f"**{row} (chosen)**" if row == chosen else row
        lines.append(f"| {label} | {row_cells(rows[row])} | {'yes' if keeps[row] else 'no'} |"
                     + (f" {'yes' if converts[row] else 'no'} |" if floor else ""))
    trials = rows[COPY]["trials"]
    rule = (f"PER within {PER_MARGIN:g} points of copy-synthesis, then the highest verified share, ties within {TIE} "
            "to the lower PER")
    if floor:
        rule = (f"hparams/experiments/choose_conversion_valid_speakers.yaml (a row converts when at least "
                f"{closer_floor:g} of its outputs are closer to the target than to the source; among the rows that "
                f"convert and keep the words ({rule}); none doing both: the converting row with the lowest PER")
    else:
        rule = f"hparams/experiments/choose_conversion.yaml ({rule})"
    among = {"tagger": " Among the rows a model folder with a contextual tagger runs (none reads the model's own phones).",
             "model": " Among the rows a model folder without a tagger runs (none reads the tagger's phones)."}
    lines += ["", f"Block: {conversion['block']}, {trials:.0f} trials.{among.get(phones, '')} Chosen by the rule of {rule}: "
              f"{chosen or ('no row converts' if floor else 'none keeps the words')}."]
    return "\n".join(lines) + "\n", chosen


def world_passes(rows, tracker, method="world"):
    """``(passes, reasons it fails)``: choose_world.yaml's rule for ``method`` (a path through WORLD) with F0
    by ``tracker``."""
    copy_row, default_row = world_row_names(tracker, method)
    copy, world_copy, default, world = rows[COPY], rows[copy_row], rows[DEFAULT], rows[default_row]
    failures = []
    if world_copy["per_recognizer"] > copy["per_recognizer"] + WORLD_COPY_MARGIN:
        failures.append(f"its copy-synthesis loses words ({world_copy['per_recognizer']:.1f} % PER against "
                        f"{copy['per_recognizer']:.1f} %)")
    if world_copy["verified_as_target"] > copy["verified_as_target"]:
        failures.append("its copy-synthesis changes the voice")
    if world["verified_as_target"] < default["verified_as_target"] - TIE:
        failures.append(f"verified less often ({world['verified_as_target']:.3f} against {default['verified_as_target']:.3f})")
    if not cross_verified(world) > cross_verified(default):
        failures.append(f"not verified more often across genders ({cross_verified(world):.2f} against "
                        f"{cross_verified(default):.2f})")
    if world["per_recognizer"] > default["per_recognizer"] + WORLD_DEFAULT_MARGIN:
        failures.append(f"loses words ({world['per_recognizer']:.1f} % PER against {default['per_recognizer']:.1f} %)")
    return not failures, failures


def resynthesis_table(results):
    """Markdown: the gain rows, then the rows of each path through WORLD (method and F0 tracker) the run has, and
    the verdict of choose_world.yaml's rule on each."""
    rows = results["conversion"]["rows"]
    paths = [(method, tracker) for method in PITCH_METHODS for tracker in F0_TRACKERS
             if world_row_names(tracker, method)[0] in rows]
    if not paths:
        sys.exit("no WORLD rows in this run: conversion_methods must include world or world_voiced")

    def line(row):
        return f"| {row} | {row_cells(rows[row])} |"

    lines = [COLUMNS, "|---|---|---|---|---|---|---|", line(COPY), line(DEFAULT)]
    verdicts = []
    for method, tracker in paths:
        lines += [line(row) for row in world_row_names(tracker, method)]
        passes, failures = world_passes(rows, tracker, method)
        verdicts.append(f"* {method}, F0 by {tracker}: " + ("passes: it becomes the default" if passes
                                                           else "does not pass: " + "; ".join(failures)))
    trials = rows[COPY]["trials"]
    lines += ["", f"Block: {results['conversion']['block']}, {trials:.0f} trials. The rule of "
              "hparams/experiments/choose_world.yaml:", *verdicts]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", help="results.json of the valid-split conversion run(s): runs on the "
                        "same trials (same seed and split) whose rows are chosen among together")
    parser.add_argument("--model", default="f-DNF", help="the display name of the converter's model")
    parser.add_argument("--out", help="also write the table to this file")
    parser.add_argument("--closer-floor", type=float, default=0.0,
                        help="the share closer to the target below which a row does not convert (0: no floor)")
    parser.add_argument("--phones", choices=sorted(OTHER_PHONES),
                        help="choose among the rows a model folder with a tagger runs (tagger) or without one (model)")
    parser.add_argument("--twin", metavar="WORDS",
                        help="each row whose name holds WORDS (an option's, e.g. 'phase continued') against the same "
                             "row without it, by --rule")
    parser.add_argument("--rule", choices=sorted({**TWIN_RULES, **ANY_OF_RULES}), default="quality",
                        help="the twin's rule: quality (choose_phase_valid_speakers.yaml), words "
                             "(choose_source_fallback_valid_speakers.yaml), pitch or either (quality or words; "
                             "choose_joins_intonation_valid_speakers.yaml)")
    parser.add_argument("--resynthesis", action="store_true",
                        help="WORLD against the gain path (hparams/experiments/choose_world.yaml's rule)")
    args = parser.parse_args(argv)
    results = None
    for path in args.results:
        run = json.loads(Path(path).read_text())
        if run["conversion"]["block"] not in (TRAINING_SPEAKERS, VALID_SPEAKERS):
            sys.exit(f"{path}: the choice reads a valid-split block (training or valid speakers), got "
                     f"{run['conversion']['block']!r} (never choose on the test speakers)")
        if results is None:
            results = run
            continue
        if run["seeds"] != results["seeds"] or run["conversion"]["rows"][COPY]["trials"] != results["conversion"]["rows"][COPY]["trials"]:
            sys.exit(f"{path}: not the trials of {args.results[0]} (its seeds or number of trials differ)")
        for row, values in run["conversion"]["rows"].items():
            results["conversion"]["rows"].setdefault(row, values)  # the framing rows: the first run's
    if args.resynthesis:
        text = resynthesis_table(results)
    elif args.twin:
        text = twin_table(results, args.twin, args.model, args.rule)
    else:
        text = choice_table(results, args.model, args.closer_floor, args.phones)[0]
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
