#!/usr/bin/env python3
"""The choice table of the corpus-knob search (issue 33): each candidate corpus's label-free rows against the
paper's, and the rule of ``hparams/experiments/choose_corpus.yaml`` applied to them.

Reads ``<root>/<candidate>/evaluation_valid/results.json`` (written by ``benchmarks/choose_corpus.sh``: the
VAE and the NF, 6 epochs, scored on the VALID split over the paper's 40 speakers) and prints, per
candidate, the probe statistics (p(q|x), p(s|x) over the 40 speakers), the real-frame speaker ceiling, the
8 label-free deltas and their mean absolute distance to the paper's; the chosen candidate is marked.

Usage::

    python benchmarks/choose_corpus.py [results_choice] [--out benchmarks/latest_corpus_choice.md]
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechbrain_fdnf.evaluation.paper import PAPER_PROBES, paper_row  # noqa: E402

#: The rule's bounds: probe statistics within this of the paper's, the real-frame speaker ceiling at least this.
PROBE_TOLERANCE, CEILING_FLOOR = 0.10, 0.55
LABEL_FREE = ("VAE", "NF")
#: Options of the embedded corpus that set its size, not its structure (left out of the table).
SIZE_OPTIONS = ("train_speakers", "test_speakers", "sx_per_speaker", "si_per_speaker", "readers_per_sx", "seed")
TABLES = ("phone", "speaker")


def candidate_row(results):
    """The numbers the rule reads from one candidate's summary (means over its seeds)."""
    summary = results["summary"]

    def value(row, table, key):
        return row["speakers_subset"][table][key]["mean"]

    models, ceiling = summary["models"], summary["reference"]["real-frame ceiling"]
    first = models[LABEL_FREE[0]]
    row = {"p_phone": value(first, "speaker", "p_other_x"), "p_speaker": value(first, "phone", "p_other_x"),
           "ceiling_speaker": value(ceiling, "speaker", "delta_target"), "deltas": {}}
    distances = []
    for model in LABEL_FREE:
        for table in TABLES:
            ours = (value(models[model], table, "delta_target"), value(models[model], table, "delta_other"))
            row["deltas"][model, table] = ours
            distances += [abs(a - b) for a, b in zip(ours, paper_row(model, table))]
    row["distance"] = sum(distances) / len(distances)
    row["within_010"] = sum(d <= 0.10 for d in distances)
    row["eligible"] = (abs(row["p_phone"] - PAPER_PROBES["phone"]) <= PROBE_TOLERANCE
                       and abs(row["p_speaker"] - PAPER_PROBES["speaker"]) <= PROBE_TOLERANCE
                       and row["ceiling_speaker"] >= CEILING_FLOOR)
    return row


def corpus_knobs(manifest):
    """The structure knobs of a candidate's corpus, from its ``corpus.json`` (its size and seed left out)."""
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest}: no corpus manifest, so the candidate's knobs are unknown")
    options = json.loads(manifest.read_text())["options"]
    return ", ".join(f"{key}: {value}" for key, value in options.items() if key not in SIZE_OPTIONS)


def choice_table(rows, options):
    """Markdown: one line per candidate (the paper first), the chosen one in bold."""
    eligible = [name for name, row in rows.items() if row["eligible"]]
    chosen = min(eligible, key=lambda name: rows[name]["distance"]) if eligible else None
    head = ["candidate", "corpus options", "p(q\\|x)", "p(s\\|x) (40)", "ceiling δ(s2)",
            *[f"{model} {table} δ target / other" for model in LABEL_FREE for table in TABLES],
            "mean \\|Δ\\| to the paper", "deltas within 0.10", "eligible"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    paper = [f"{paper_row(model, table)[0]:+.3f} / {paper_row(model, table)[1]:+.3f}"
             for model in LABEL_FREE for table in TABLES]
    lines.append(f"| the paper (TIMIT) | | {PAPER_PROBES['phone']:.3f} | {PAPER_PROBES['speaker']:.3f} | >= +0.700 | "
                 + " | ".join(paper) + " | | | |")
    for name, row in rows.items():
        cells = [f"{a:+.3f} / {b:+.3f}" for a, b in row["deltas"].values()]
        label = f"**{name} (chosen)**" if name == chosen else name
        lines.append(f"| {label} | `{options.get(name, '')}` | {row['p_phone']:.3f} | {row['p_speaker']:.3f} | "
                     f"{row['ceiling_speaker']:+.3f} | " + " | ".join(cells)
                     + f" | {row['distance']:.3f} | {row['within_010']} / 8 | {'yes' if row['eligible'] else 'no'} |")
    return "\n".join(lines), chosen


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", nargs="?", default="results_choice")
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args(argv)
    root = Path(args.root)
    rows, options = {}, {}
    # in the order they ran; each candidate's knobs from the manifest its corpus was synthesized with
    for path in sorted(root.glob("*/evaluation_valid/results.json"), key=lambda path: path.stat().st_mtime):
        name = path.parts[-3]
        rows[name] = candidate_row(json.loads(path.read_text()))
        options[name] = corpus_knobs(path.parents[1] / "embedded_corpus_demo" / "corpus.json")
    table, chosen = choice_table(rows, options)
    text = (f"{table}\n\nChosen by the rule of hparams/experiments/choose_corpus.yaml: {chosen or 'none eligible'} "
            "(VAE and NF, 6 epochs, valid split, seed 1234, 40 speakers).\n")
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
