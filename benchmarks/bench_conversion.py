#!/usr/bin/env python3
"""Real-time factor of the converter on one CPU thread, and the share of it the input checks take.

Converts ``--utterances`` test utterances of a prepared corpus to another speaker, from ``--references``
of that speaker's utterances (the issue's 9 s of reference: three sentences), with each manipulation,
through :func:`speechbrain_fdnf.convert.convert` as the command line does; reports the real-time factor
(seconds of computation per second of converted audio, the median over ``--rounds``) and, where the
installed package has it, the time of :class:`~speechbrain_fdnf.validation.AudioCheck` on the same
audio. Run it against two checkouts (``--label``) to compare them::

    python benchmarks/bench_conversion.py --model results/fdnf/1234/inference --prepared results/prepared \\
        --label after --out benchmarks/latest_conversion.md

Writes (or appends a row to) ``--out``.
"""

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path

import torch

from speechbrain_fdnf.convert import convert
from speechbrain_fdnf.inference import SpeechFactorizer

MANIPULATIONS = ("shift", "cells", "knn", "select")


def pick_material(prepared, utterances, references):
    """``(sources, target references, target speaker)`` from the prepared test split: the first speaker's
    utterances are the sources, the next speaker's first utterances the references."""
    test = json.loads((Path(prepared) / "test.json").read_text())
    by_speaker = {}
    for entry in sorted(test.values(), key=lambda e: e["wav"]):
        by_speaker.setdefault(entry["speaker"], []).append(entry["wav"])
    speakers = sorted(by_speaker)
    return by_speaker[speakers[0]][:utterances], by_speaker[speakers[1]][:references], speakers[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="an exported f-DNF (<output_folder>/inference)")
    parser.add_argument("--prepared", required=True, help="the prepared folder (its test.json)")
    parser.add_argument("--utterances", type=int, default=5)
    parser.add_argument("--references", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--out", help="markdown file to write, or to append a row to")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    factorizer = SpeechFactorizer.from_hparams(source=args.model)
    sources, references, target = pick_material(args.prepared, args.utterances, args.references)
    rate = factorizer.hparams.sample_rate
    source_audio = [factorizer.load_audio(path) for path in sources]
    reference_audio = [factorizer.load_audio(path) for path in references]
    seconds = sum(len(wav) for wav in source_audio) / rate
    reference_seconds = sum(len(wav) for wav in reference_audio) / rate
    row = {}
    for manipulation in MANIPULATIONS:
        options = {"target": factorizer.enrol(reference_audio)} if manipulation == "shift" else \
            {"references": reference_audio}
        times = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            for wav in source_audio:
                convert(factorizer, wav.clone(), "speaker", manipulation=manipulation, **options)
            times.append(time.perf_counter() - start)
        row[manipulation] = statistics.median(times) / seconds
    check = getattr(factorizer, "audio_check", None)
    if check is not None:
        times = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            for wav in source_audio + reference_audio:
                check.utterance(wav.clone(), "bench")
            times.append(time.perf_counter() - start)
        row["check"] = statistics.median(times) / (seconds + reference_seconds)
    header = ("| checkout | " + " | ".join(f"RTF {m}" for m in MANIPULATIONS) + " | input checks, s per s of audio |\n"
              "|---|" + "---|" * (len(MANIPULATIONS) + 1) + "\n")
    line = (f"| {args.label} | " + " | ".join(f"{row[m]:.4f}" for m in MANIPULATIONS) + " | "
            + (f"{row['check']:.5f}" if "check" in row else "-") + " |\n")
    print(header + line)
    if args.out:
        out = Path(args.out)
        if not out.exists():
            out.write_text(f"# Converter real-time factor, one CPU thread\n\n{len(sources)} source utterances "
                           f"({seconds:.1f} s) to speaker {target} from {len(references)} references "
                           f"({reference_seconds:.1f} s); median of {args.rounds} rounds.\n\n" + header)
        with open(out, "a") as handle:
            handle.write(line)


if __name__ == "__main__":
    main()
