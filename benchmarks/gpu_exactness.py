#!/usr/bin/env python3
"""The flow and the converter on a GPU against the same model on the CPU: that a conversion on the GPU is the
conversion on the CPU, and what TensorFloat-32 did to them before the flow's products were kept in full float32.

SpeechBrain turns TensorFloat-32 on for every CUDA product when it is imported; the flow
(:class:`~speechbrain_fdnf.lobes.flows.SequentialFlow`) and the features
(:meth:`SpeechFactorizer.features <speechbrain_fdnf.inference.SpeechFactorizer.features>`) now run theirs in full
float32 (:func:`~speechbrain_fdnf.lobes.precision.full_float32`). This measures, on ``--utterances`` test utterances:
the flow's inversion error on the device and how far its codes lie from the CPU's, with the products in full float32
and, for comparison, left to SpeechBrain's setting (as before); every registered manipulation converted on the device
and on the CPU (the largest sample difference and the correlation of the two waveforms); a target saved on either
device and read back on either (whether the saved analysis is used, and that the conversion equals the one from the
audio on the reader); the real-time factor of ``units`` per call on the device. Exits 1 where a check fails (the
inversion error over 1e-3, a saved target not used on the other device, or converting otherwise than its audio).

    python benchmarks/gpu_exactness.py --model results/fdnf/1234/inference --prepared results/prepared \\
        --device cuda:0 --out benchmarks/latest_gpu_exactness.md

``make gpu-check`` runs it on a model it trains (``benchmarks/gpu_check.sh``).
"""

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

import speechbrain_fdnf.inference as inference
import speechbrain_fdnf.lobes.flows as flows
from speechbrain_fdnf.convert import convert
from speechbrain_fdnf.inference import SpeechFactorizer

#: The largest inversion error (log-Mel units) the check accepts on the device.
INVERSION_TOLERANCE = 1e-3


def pick(prepared, utterances):
    """``(sources, references)``: the first test speaker's first utterances, the next speaker's first three."""
    test = json.loads((Path(prepared) / "test.json").read_text())
    by_speaker = {}
    for entry in sorted(test.values(), key=lambda e: e["wav"]):
        by_speaker.setdefault(entry["speaker"], []).append(entry["wav"])
    speakers = sorted(by_speaker)
    return by_speaker[speakers[0]][:utterances], by_speaker[speakers[1]][:3]


def flow_exactness(on_device, on_cpu, sources):
    """``(inversion error on the device, codes' largest device-CPU difference)`` over ``sources``, by one model loaded
    on the device and on the CPU."""
    inversion = codes = 0.0
    for path in sources:
        feats = on_device.features(path)
        z = on_device.engine.encode_all(feats)
        inversion = max(inversion, float((on_device.engine.decode(z) - feats).abs().max()))
        codes = max(codes, float((z.cpu() - on_cpu.engine.encode_all(on_cpu.features(path))).abs().max()))
    return inversion, codes


@contextlib.contextmanager
def products_as_speechbrain_left_them():
    """The flow's and the features' products left to the global setting (TensorFloat-32 on a GPU after ``import
    speechbrain``), as before they were kept in full float32."""
    kept = flows.full_float32, inference.full_float32
    flows.full_float32 = inference.full_float32 = contextlib.nullcontext
    try:
        yield
    finally:
        flows.full_float32, inference.full_float32 = kept


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="an exported f-DNF with a tagger (<output_folder>/inference)")
    parser.add_argument("--prepared", required=True, help="the prepared folder (its test.json)")
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--utterances", type=int, default=3)
    parser.add_argument("--out", help="markdown file to write")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    sources, references = pick(args.prepared, args.utterances)
    lines, failures = [], []

    def check(ok, what):
        if not ok:
            failures.append(what)
        return "yes" if ok else "**no**"

    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    lines += [f"# The flow and the converter on {args.device} against the CPU\n",
              f"torch {torch.__version__}; TensorFloat-32 as SpeechBrain left it: matmul {tf32[0]}, cuDNN {tf32[1]}; "
              f"{len(sources)} test utterances, 3 references.\n",
              "| the flow's and the features' products | inversion error on the device | codes, device against CPU |",
              "|---|---|---|"]
    on_device = SpeechFactorizer.from_hparams(source=args.model, run_opts={"device": args.device})
    on_cpu = SpeechFactorizer.from_hparams(source=args.model, run_opts={"device": "cpu"})
    for label, setting in (("full float32 (the package's)", contextlib.nullcontext),
                           ("left to SpeechBrain's setting (before)", products_as_speechbrain_left_them)):
        with setting():
            inversion, codes = flow_exactness(on_device, on_cpu, sources)
        if setting is contextlib.nullcontext:
            check(inversion <= INVERSION_TOLERANCE, f"inversion error {inversion:.2e}")
        lines.append(f"| {label} | {inversion:.2e} | {codes:.2e} |")
    lines += ["", "| conversion | largest sample difference, device against CPU | correlation |", "|---|---|---|"]
    for manipulation, method in (("shift", "gain"), ("shift", "world_voiced"), ("cells", "gain"),
                                 ("cells", "world_voiced"), ("knn", "gain"), ("select", "gain"), ("units", "gain")):
        outputs = []
        for factorizer in (on_device, on_cpu):
            given = {"references": references} if manipulation != "shift" or method != "gain" else {}
            if manipulation == "shift":
                given["target"] = factorizer.enrol(references)
            outputs.append(convert(factorizer, sources[0], "speaker", manipulation=manipulation, method=method,
                                   **given).cpu())
        difference = float((outputs[0] - outputs[1]).abs().max())
        correlation = float(torch.corrcoef(torch.stack(outputs))[0, 1])
        lines.append(f"| {manipulation} @ {method} | {difference:.2e} | {correlation:.5f} |")
    folder = Path(tempfile.mkdtemp())
    readers = {args.device: on_device, "cpu": on_cpu}
    for name, factorizer in readers.items():
        factorizer.target_audio(references).save(folder / f"{name}.pt")
    lines += ["", "| target saved on | read on | its codes and phones used | converts as its audio |", "|---|---|---|---|"]
    for saved in readers:
        for name, reader in readers.items():
            loaded = reader.load_target_audio(folder / f"{saved}.pt")
            used = "codes" in loaded._computed and (reader.tagger is None or any(
                isinstance(key, tuple) and key[0] == "tagged" for key in loaded._computed))
            same = torch.equal(convert(reader, sources[-1], "speaker", references=loaded),
                               convert(reader, sources[-1], "speaker", references=references))
            lines.append(f"| {saved} | {name} | {check(used, f'{saved} read on {name} analysed again')} | "
                         f"{check(same, f'{saved} read on {name} converts otherwise')} |")
    seconds = sum(len(on_device.load_audio(path)) for path in sources) / on_device.hparams.sample_rate
    lines += ["", "| `units`, per call on the device | real-time factor |", "|---|---|"]
    for label, given in (("from the references' audio", lambda: references),
                         ("from a saved target", lambda: on_device.load_target_audio(folder / f"{args.device}.pt"))):
        convert(on_device, sources[0], "speaker", references=given())  # warm-up
        start = time.perf_counter()
        for path in sources:
            convert(on_device, path, "speaker", references=given())
        lines.append(f"| {label} | {(time.perf_counter() - start) / seconds:.4f} |")
    shutil.rmtree(folder)
    lines += ["", "Checks: " + ("all passed" if not failures else "FAILED: " + "; ".join(failures))]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
