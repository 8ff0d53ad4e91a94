#!/usr/bin/env python3
"""The conversion evaluation's quality judge against the library it wraps: ``QualityJudge.scores`` (DNSMOS's
overall, signal and background scores) against ``speechmos.dnsmos.run`` (the same scores and the P.808 score,
which the judge does not read), in one run, on the same utterances, one thread.

Both take turns within each round (a slow moment of the shared machine hits both), medians over rounds of the
seconds per utterance, their ratio, and the largest difference between their scores (they must agree).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_quality_judge.py results/embedded_corpus_demo \
        [--utterances 20] [--rounds 3] [--out benchmarks/latest_quality_judge.md]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechbrain_fdnf.evaluation.judges import QualityJudge  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", help="a corpus in TIMIT's layout (its TEST readings are scored)")
    parser.add_argument("--utterances", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args(argv)
    wavs = sorted(Path(args.corpus).glob("TEST/DR*/*/*.WAV"))[:args.utterances]
    if not wavs:
        sys.exit(f"{args.corpus}: no TEST/DR*/*/*.WAV readings")
    audio = [soundfile.read(str(path))[0] for path in wavs]
    judge = QualityJudge()
    peer = lambda wav: judge.dnsmos.run(wav, judge.sample_rate)  # noqa: E731
    judge.scores(audio[0], judge.sample_rate), peer(audio[0])  # warm-up: the ONNX sessions' first runs
    times = {"speechmos.dnsmos.run": [], "QualityJudge.scores": []}
    difference = 0.0
    for _ in range(args.rounds):
        start = time.perf_counter()
        expected = [peer(wav) for wav in audio]
        times["speechmos.dnsmos.run"].append((time.perf_counter() - start) / len(audio))
        start = time.perf_counter()
        got = [judge.scores(wav, judge.sample_rate) for wav in audio]
        times["QualityJudge.scores"].append((time.perf_counter() - start) / len(audio))
        difference = max(difference, max(abs(g[key] - float(e[f"{key}_mos"]))
                                          for g, e in zip(got, expected) for key in ("ovrl", "sig", "bak")))
    seconds = {name: statistics.median(values) for name, values in times.items()}
    duration = sum(len(wav) for wav in audio) / len(audio) / judge.sample_rate
    peer_seconds = seconds["speechmos.dnsmos.run"]
    lines = [f"`python benchmarks/bench_quality_judge.py {args.corpus} --utterances {len(audio)} --rounds {args.rounds}` "
             f"(utterances of {duration:.2f} s on average; median of {args.rounds} rounds)", "",
             "| scorer | s per utterance | speed-up over speechmos.dnsmos.run |", "|---|---|---|"]
    lines += [f"| {name} | {value:.3f} | {peer_seconds / value:.2f}x |" for name, value in seconds.items()]
    lines += ["", f"Largest difference between their ovrl / sig / bak scores: {difference:.1e}."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
