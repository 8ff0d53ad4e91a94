#!/usr/bin/env python3
"""Real-time factor of the converter on one CPU thread, per manipulation and resynthesis, and the share of it
the input checks take.

Converts ``--utterances`` test utterances of a prepared corpus to each of ``--targets`` other speakers, from
``--references`` of each one's utterances lasting ``--reference_seconds`` or more (the issue's 9 s of reference:
three sentences), through
:func:`speechbrain_fdnf.convert.convert` as the command line does, once per ``--rows`` entry; reports the
real-time factor (seconds of computation per second of converted audio, the median over ``--rounds``), its
ratio to the paper's ``shift`` in the same run and, for a manipulation from audio of the target where the
installed package has :meth:`SpeechFactorizer.target_audio`, the real-time factor when each round analyses the
target's audio once for all its utterances (as a caller converting many utterances to one voice does; the
first column analyses it on every call, as the command line does for its one file given ``--enrol``), where it
has :meth:`TargetAudio.save` the real-time factor per call from the target saved once (each call reads the file
and converts, as the command line does for its one file given ``--enrolment``), and the time of
:class:`~speechbrain_fdnf.validation.AudioCheck` on the same audio. A row is a registered manipulation with
options and a resynthesis method, ``name[:option=value,...][@method[/f0 tracker]]`` (``select:context=3``,
``cells@world``, ``cells@world/harvest``); the tagger's rows need a model folder with a tagger
(``recipes/TIMIT/train_tagger.py``). The WORLD rows measure the target's F0 register from the references
on every call, as the command line does.
Run it against two checkouts (``--label``, ``PYTHONPATH``) to compare them::

    python benchmarks/bench_conversion.py --model results/fdnf/1234/inference --prepared results/prepared \\
        --label after --out benchmarks/latest_conversion.md

Writes (or appends rows to) ``--out``.
"""

import argparse
import json
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch

from speechbrain_fdnf.convert import METHODS, PITCH_METHODS, convert
from speechbrain_fdnf.inference import SpeechFactorizer
from speechbrain_fdnf.manipulations import REGISTRY, build
from speechbrain_fdnf.pitch import DEFAULT_F0_TRACKER, F0_TRACKERS

ROWS = ("shift", "cells", "cells:tagger=true", "cells@world", "cells@world/harvest", "knn", "knn:tagger=false", "select",
        "select:context=3", "units", "units:tagger=false")


def parse_row(spec):
    """``(manipulation, method, f0 tracker)`` of a row ``name[:option=value,...][@method[/f0 tracker]]``, each
    option cast to its type.

    Example
    -------
    >>> manipulation, method, tracker = parse_row("select:context=3,tagger=false@gain")
    >>> manipulation.context, manipulation.tagger, method
    (3.0, False, 'gain')
    >>> parse_row("cells@world/harvest")[1:]
    ('world', 'harvest')
    """
    spec, _, method = spec.partition("@")
    method, _, tracker = method.partition("/")
    name, _, options = spec.partition(":")
    if name not in REGISTRY:
        raise SystemExit(f"row {spec!r}: no manipulation {name!r} (registered: {', '.join(REGISTRY)})")
    parsed = {}
    for item in filter(None, options.split(",")):
        key, _, value = item.partition("=")
        option = REGISTRY[name].OPTIONS.get(key)
        if option is None:
            raise SystemExit(f"row {spec!r}: {name} has no option {key!r} (its options: {', '.join(REGISTRY[name].OPTIONS)})")
        parsed[key] = value.lower() in ("1", "true", "yes") if option.type is bool else option.type(value)
    method = method or "gain"
    if method not in METHODS:
        raise SystemExit(f"row {spec!r}: no resynthesis {method!r} (the converter's: {', '.join(METHODS)})")
    tracker = tracker or DEFAULT_F0_TRACKER
    if tracker not in F0_TRACKERS or (tracker != DEFAULT_F0_TRACKER and method not in PITCH_METHODS):
        raise SystemExit(f"row {spec!r}: no F0 tracker {tracker!r} for {method} (WORLD's: {', '.join(F0_TRACKERS)})")
    return build(name, **parsed), method, tracker


def pick_material(prepared, utterances, references, reference_seconds=0.0, targets=1):
    """``(sources, {target speaker: references})`` from the prepared test split: the first speaker's utterances are
    the sources; the targets, the next ``targets`` speakers whose first ``references`` utterances last
    ``reference_seconds`` or more in all (the issue measures with 9 s of reference), those utterances their
    references. How long a conversion takes depends on its target (the phones its audio lacks are resynthesised
    through WORLD), so the timings are over several."""
    test = json.loads((Path(prepared) / "test.json").read_text())
    by_speaker = {}
    for entry in sorted(test.values(), key=lambda e: e["wav"]):
        by_speaker.setdefault(entry["speaker"], []).append(entry)
    speakers = sorted(by_speaker)
    chosen = {speaker: [entry["wav"] for entry in by_speaker[speaker][:references]] for speaker in speakers[1:]
              if sum(entry["duration"] for entry in by_speaker[speaker][:references]) >= reference_seconds}
    if len(chosen) < targets:
        raise SystemExit(f"{len(chosen)} test speakers' first {references} utterances last {reference_seconds} s, "
                         f"{targets} asked for")
    return [entry["wav"] for entry in by_speaker[speakers[0]][:utterances]], dict(list(chosen.items())[:targets])


def median_seconds(rounds, work):
    """The median wall time of ``rounds`` calls of ``work``."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="an exported f-DNF (<output_folder>/inference)")
    parser.add_argument("--prepared", required=True, help="the prepared folder (its test.json)")
    parser.add_argument("--rows", nargs="+", default=list(ROWS),
                        help="name[:option=value,...][@method[/f0 tracker]] (default: %(default)s)")
    parser.add_argument("--utterances", type=int, default=5)
    parser.add_argument("--references", type=int, default=3)
    parser.add_argument("--reference_seconds", type=float, default=9.0,
                        help="the targets: the first whose --references utterances last this long in all (default 9)")
    parser.add_argument("--targets", type=int, default=3, help="target speakers each source is converted to")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--out", help="markdown file to write, or to append rows to")
    args = parser.parse_args()
    rows = {spec: parse_row(spec) for spec in args.rows}  # a bad row fails before anything is timed
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    factorizer = SpeechFactorizer.from_hparams(source=args.model)
    sources, targets = pick_material(args.prepared, args.utterances, args.references, args.reference_seconds,
                                     args.targets)
    rate = factorizer.hparams.sample_rate
    source_audio = [factorizer.load_audio(path) for path in sources]
    target_audio = {speaker: [factorizer.load_audio(path) for path in paths] for speaker, paths in targets.items()}
    reference_audio = [wav for audio in target_audio.values() for wav in audio]  # the input checks' share
    seconds = sum(len(wav) for wav in source_audio) / rate * len(targets)  # converted audio: each source to each
    reference_seconds = [sum(len(wav) for wav in audio) / rate for audio in target_audio.values()]
    rtf, rtf_once, rtf_saved = {}, {}, {}
    folder = Path(tempfile.mkdtemp())  # the saved targets, removed at the end
    saved = {speaker: folder / f"{speaker}.pt" for speaker in targets}
    if hasattr(factorizer, "load_target_audio"):
        for speaker, audio in target_audio.items():
            factorizer.target_audio(audio).save(saved[speaker])
    for spec, (manipulation, method, tracker) in rows.items():
        options = {speaker: {"target": factorizer.enrol(audio)} if not manipulation.needs_references else
                   {"references": audio} for speaker, audio in target_audio.items()}
        for speaker, audio in target_audio.items():
            if method in PITCH_METHODS and "target" in options[speaker]:
                options[speaker]["references"] = audio  # WORLD's F0 register comes from the target's audio
        with_references = "references" in next(iter(options.values()))

        def work(analysed_once=False, from_saved=False):
            for speaker, audio in target_audio.items():
                given = dict(options[speaker])
                if analysed_once:
                    given["references"] = factorizer.target_audio(audio)
                for wav in source_audio:
                    if from_saved:  # the file read on every call, as the command line does for each --enrolment call
                        given["references"] = factorizer.load_target_audio(saved[speaker])
                    convert(factorizer, wav.clone(), "speaker", manipulation=manipulation, method=method,
                            f0_tracker=tracker, **given)

        rtf[spec] = median_seconds(args.rounds, work) / seconds
        if with_references and hasattr(factorizer, "target_audio"):
            rtf_once[spec] = median_seconds(args.rounds, lambda: work(analysed_once=True)) / seconds
        if with_references and all(path.is_file() for path in saved.values()):
            rtf_saved[spec] = median_seconds(args.rounds, lambda: work(from_saved=True)) / seconds
    shutil.rmtree(folder)
    check = getattr(factorizer, "audio_check", None)
    check_rate = None
    if check is not None:
        check_rate = median_seconds(args.rounds, lambda: [check.utterance(wav.clone(), "bench")
                                                          for wav in source_audio + reference_audio])
        check_rate /= seconds / len(targets) + sum(reference_seconds)
    peer = rtf.get("shift")
    header = ("| checkout | row | RTF | × shift | RTF, target analysed once | × shift | RTF, target read from its file "
              "per call | × shift |\n|---|---|---|---|---|---|---|---|\n")

    def cells(value):
        return f"{value:.4f} | " + (f"{value / peer:.2f}" if peer else "-") if value is not None else "- | -"

    lines = "".join(f"| {args.label} | {spec} | {cells(value)} | {cells(rtf_once.get(spec))} | "
                    f"{cells(rtf_saved.get(spec))} |\n" for spec, value in rtf.items())
    lines += (f"| {args.label} | input checks (s per s of audio) | " + (f"{check_rate:.5f}" if check_rate else "-")
              + " | - | - | - | - | - |\n")
    tagger = "with" if getattr(factorizer, "tagger", None) is not None else "without"
    print(header + lines)
    if args.out:
        out = Path(args.out)
        if not out.exists():
            spans = ", ".join(f"{speaker} ({length:.1f} s)" for speaker, length in zip(targets, reference_seconds))
            out.write_text(f"# Converter real-time factor, one CPU thread\n\n{len(sources)} source utterances "
                           f"({seconds / len(targets):.1f} s) to each of {len(targets)} target speakers from "
                           f"{args.references} references of each: {spans}; a model folder {tagger} a tagger; median "
                           f"of {args.rounds} rounds. Rows: `manipulation[:options][@resynthesis]` (gain unless "
                           "named).\n\n" + header)
        with open(out, "a") as handle:
            handle.write(lines)


if __name__ == "__main__":
    main()
