#!/usr/bin/env python3
"""Side-by-side benchmark of our RealNVP flow against zuko and nflows on speech-frame-sized data.

One run, one machine, the same frames for every model. Each model is an
8-block affine-coupling flow over 40-dim frames whose conditioners are MLPs
20 -> 256 -> 256 -> 40 (so all have the same parameter count; the table shows
it). Measured per batch size:

* training step: forward, NLL, backward and an Adam step, in frames/s;
* encode (x -> z) and decode (z -> x) without gradients, in frames/s;
* peak memory of a training step (on CPU the RSS increase of a fresh process over its
  RSS once the model is built, with the high-water mark reset there;
  ``torch.cuda.max_memory_allocated`` on GPU);
* for our flow: the FLOPs of a training step (``torch.utils.flop_counter``)
  and the achieved GFLOP/s next to the machine's dense ``torch.matmul`` rate
  at the conditioner's shapes.

Numbers are medians over ``--repeats`` timed rounds after warm-up; the
models take turns within each round, so a slow moment of the machine hits
all of them. Ratios are ours / peer (above 1: we are faster, or for memory,
we use more).

Usage::

    pip install zuko nflows            # benchmark-only extras (not runtime dependencies)
    python benchmarks/bench_flows.py                  # CPU, random frames
    python benchmarks/bench_flows.py --device cuda --data real --out benchmarks/latest_cuda.md
"""

import argparse
import multiprocessing
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DIM, BLOCKS, HIDDEN = 40, 8, 256
BINS, TAIL_BOUND = 8, 4.0  # spline couplings: bins per dimension, the identity outside [-4, 4]


# --------------------------------------------------------------------------- models
class Adapter:
    """One flow behind three calls: ``loss(x)``, ``encode(x)``, ``decode(z)``."""

    def __init__(self, name, module, loss, encode, decode):
        self.name, self.module, self.loss, self.encode, self.decode = name, module, loss, encode, decode

    @property
    def parameters(self):
        return sum(p.numel() for p in self.module.parameters() if p.requires_grad)


def build_ours(device, default=False, compile_model=False, coupling="affine", precision="float32"):
    from speechbrain_fdnf.lobes import DiscriminativeFlow, FactorialGaussianPrior, RealNVP

    extras = {} if default else {"mixing": "none", "actnorm": False}
    flow = RealNVP(DIM, num_blocks=BLOCKS, hidden_size=HIDDEN, coupling=coupling, num_bins=BINS,
                   tail_bound=TAIL_BOUND, training_precision=precision, **extras)
    model = DiscriminativeFlow(flow, FactorialGaussianPrior([], residual_dim=DIM)).to(device)
    _randomize(model)
    for module in model.modules():  # ActNorm: skip the data-dependent initialisation
        if hasattr(module, "initialized"):
            module.initialized.fill_(True)
    loss = model.objective
    encode = lambda x: model.encode(x)[0]  # noqa: E731
    decode = model.decode
    if compile_model:
        loss, encode, decode = (torch.compile(fn) for fn in (loss, encode, decode))
    # a trained flow encodes and decodes in eval mode, where training_precision never applies
    encode, decode = _in_eval(model, encode), _in_eval(model, decode)
    name = ("ours" + ("-spline" if coupling == "spline" else "") + (" default (+ActNorm +LU)" if default else "")
            + (" compiled" if compile_model else "") + (" bf16 conditioners" if precision == "bfloat16" else ""))
    return Adapter(name, model, lambda x: loss(x).mean(), encode, decode)


def _in_eval(model, fn):
    """``fn`` run with ``model`` in eval mode, which is then set back to training mode."""
    def run(*args):
        model.eval()
        try:
            return fn(*args)
        finally:
            model.train()
    return run


def build_zuko(device):
    import zuko

    flow = zuko.flows.RealNVP(DIM, transforms=BLOCKS, hidden_features=(HIDDEN, HIDDEN)).to(device)
    _randomize(flow)
    flow.base.requires_grad_(False)  # its base N(0, I) buffers are not trained, like ours
    return Adapter("zuko", flow, lambda x: -flow().log_prob(x).mean() / DIM,
                   lambda x: flow().transform(x), lambda z: flow().transform.inv(z))


def build_zuko_nsf(device):
    """zuko's spline coupling flow: ``GeneralCouplingTransform`` with ``MonotonicRQSTransform``
    (the coupling form of its NSF; its ``NSF`` class is autoregressive)."""
    from functools import partial

    import zuko
    from zuko.transforms import MonotonicRQSTransform

    flow = zuko.flows.NICE(DIM, transforms=BLOCKS, univariate=partial(MonotonicRQSTransform, bound=TAIL_BOUND),
                           shapes=[(BINS,), (BINS,), (BINS - 1,)], hidden_features=(HIDDEN, HIDDEN)).to(device)
    _randomize(flow)
    flow.base.requires_grad_(False)
    return Adapter("zuko-nsf", flow, lambda x: -flow().log_prob(x).mean() / DIM,
                   lambda x: flow().transform(x), lambda z: flow().transform.inv(z))


class _ContextFree(nn.Module):
    """nflows conditioners take ``(inputs, context)``."""

    def __init__(self, in_dim, out_dim):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(),
                                 nn.Linear(HIDDEN, out_dim))

    def forward(self, inputs, context=None):
        return self.net(inputs)


def _nflows_adapter(name, block_layers, device):
    """An nflows flow of ``BLOCKS`` blocks, each ``block_layers(mask)`` with alternating halves (as zuko's)."""
    from nflows.distributions import StandardNormal
    from nflows.flows import Flow
    from nflows.transforms import CompositeTransform

    layers = []
    for block in range(BLOCKS):
        mask = torch.zeros(DIM)
        mask[block % 2 :: 2] = 1
        layers += block_layers(mask)
    flow = Flow(CompositeTransform(layers), StandardNormal([DIM])).to(device)
    _randomize(flow)
    for module in flow.modules():  # ActNorm: skip the data-dependent initialisation, as for ours
        if torch.is_tensor(getattr(module, "initialized", None)):
            module.initialized.fill_(True)
    return Adapter(name, flow, lambda x: -flow.log_prob(x).mean() / DIM,
                   lambda x: flow._transform(x)[0], lambda z: flow._transform.inverse(z)[0])


def build_nflows(device):
    from nflows.transforms import AffineCouplingTransform

    return _nflows_adapter("nflows", lambda mask: [AffineCouplingTransform(mask, _ContextFree)], device)


def build_nflows_nsf(device):
    """nflows' ``PiecewiseRationalQuadraticCouplingTransform`` with linear tails."""
    from nflows.transforms import PiecewiseRationalQuadraticCouplingTransform

    return _nflows_adapter("nflows-nsf", lambda mask: [PiecewiseRationalQuadraticCouplingTransform(
        mask, _ContextFree, num_bins=BINS, tails="linear", tail_bound=TAIL_BOUND)], device)


def build_nflows_default(device):
    """The peer of our shipped flow: nflows' ActNorm, LU-decomposed linear map and affine coupling per block."""
    from nflows.transforms import ActNorm, AffineCouplingTransform, LULinear

    return _nflows_adapter("nflows-default", lambda mask: [
        ActNorm(DIM), LULinear(DIM, identity_init=True), AffineCouplingTransform(mask, _ContextFree)], device)


def _autocast_training(build, suffix=" bf16 autocast"):
    """A peer whose training loss runs under ``torch.autocast(bfloat16)``: how a user of that library lowers a
    step (the whole forward; ours lowers only the conditioners). Encode and decode stay float32, as ours in eval
    mode, so the same-precision ratio of a training step can be read beside the float32 one."""

    def builder(device):
        adapter = build(device)
        loss = adapter.loss

        def lowered(x):
            with torch.autocast(x.device.type, dtype=torch.bfloat16):
                return loss(x).float()

        return Adapter(adapter.name + suffix, adapter.module, lowered, adapter.encode, adapter.decode)

    return builder


BUILDERS = {
    "ours": build_ours,
    "zuko": build_zuko,
    "nflows": build_nflows,
    "ours-default": lambda device: build_ours(device, default=True),
    "ours-compiled": lambda device: build_ours(device, compile_model=True),
    "ours-spline": lambda device: build_ours(device, coupling="spline"),
    # the option training_precision: bfloat16 (only the conditioners are lowered; see benchmarks/README.md)
    "ours-default-bf16": lambda device: build_ours(device, default=True, precision="bfloat16"),
    "ours-spline-bf16": lambda device: build_ours(device, coupling="spline", precision="bfloat16"),
    "zuko-nsf": build_zuko_nsf,
    "nflows-nsf": build_nflows_nsf,
    "nflows-default": build_nflows_default,
    # the peers at our shipped training precision (bfloat16 on hardware that has it natively)
    "nflows-bf16": _autocast_training(build_nflows),
    "nflows-default-bf16": _autocast_training(build_nflows_default),
    "zuko-nsf-bf16": _autocast_training(build_zuko_nsf),
    "nflows-nsf-bf16": _autocast_training(build_nflows_nsf),
}


def _randomize(module):
    """Small random weights everywhere (zero-initialised last layers would make the flows trivial)."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in module.parameters():
            param.add_(torch.randn(param.shape, generator=generator).to(param) * 0.01)


# --------------------------------------------------------------------------- measurements
def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_step(adapter, optimizer, x):
    optimizer.zero_grad(set_to_none=True)
    loss = adapter.loss(x)
    loss.backward()
    optimizer.step()
    return loss


def timed_rounds(tasks, device, repeats, min_seconds):
    """``{name: median seconds per call}``; each round runs every task for about ``min_seconds``."""
    calls = {}
    for name, task in tasks.items():  # warm-up, and how many calls make one timed round
        for _ in range(3):
            task()
        sync(device)
        start = time.perf_counter()
        task()
        sync(device)
        calls[name] = max(1, int(min_seconds / max(time.perf_counter() - start, 1e-6)))
    times = {name: [] for name in tasks}
    for _ in range(repeats):
        for name, task in tasks.items():
            sync(device)
            start = time.perf_counter()
            for _ in range(calls[name]):
                task()
            sync(device)
            times[name].append((time.perf_counter() - start) / calls[name])
    return {name: statistics.median(values) for name, values in times.items()}


def load_frames(kind, count, device):
    """``(frames for the models, the FrameSet they come from or None)``."""
    if kind == "real":
        from speechbrain_fdnf.recipe_utils import load_hparams, prepare_data

        frames = prepare_data(load_hparams(ROOT / "hparams/fdnf.yaml"))[1]["train"]
        feats = frames.batch(torch.randperm(len(frames))[:count]).feats
        return ((feats - feats.mean(0)) / feats.std(0)).to(device), frames
    return torch.randn(count, DIM, generator=torch.Generator().manual_seed(0)).to(device), None


def loader_rate(frames, batch, seconds=3.0):
    """Frames/s a shuffled ``DataLoader`` over the recipe's ``FrameSet`` delivers (main process)."""
    loader = torch.utils.data.DataLoader(frames, batch_size=batch, shuffle=True, drop_last=True,
                                         collate_fn=frames.collate)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for batch_frames in loader:
            count += len(batch_frames)
            if time.perf_counter() - start >= seconds:
                break
    return count / (time.perf_counter() - start)


def memory_worker(name, batch, device_name, queue):
    """Peak memory of training steps of one model in a fresh process (bytes)."""
    device = torch.device(device_name)
    adapter = BUILDERS[name](device)
    optimizer = torch.optim.Adam(adapter.module.parameters(), lr=1e-5)
    x = torch.randn(batch, DIM, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        # the imports' own transient peak (a library that allocates while loading) must not count:
        # reset the process's high-water mark where Linux allows it
        hwm_reset = _reset_peak_rss()
        with open("/proc/self/statm") as handle:
            before = int(handle.read().split()[1]) * resource.getpagesize()
    for _ in range(3):
        train_step(adapter, optimizer, x)
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    elif hwm_reset:
        with open("/proc/self/status") as handle:
            peak = next(int(line.split()[1]) for line in handle if line.startswith("VmHWM:")) * 1024  # kB
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    queue.put(peak - before)


def _reset_peak_rss():
    """Reset this process's peak RSS (``VmHWM``) to its current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak_memory(name, batch, device):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=memory_worker, args=(name, batch, str(device), queue))
    process.start()
    value = queue.get(timeout=600)
    process.join()
    return value


def saved_activation_bytes(adapter, x):
    """Bytes autograd keeps for the backward pass of one training step (parameters excluded).

    Exact and allocator-independent, unlike RSS: every saved tensor's storage, counted once.
    """
    parameters = {p.untyped_storage().data_ptr() for p in adapter.module.parameters()}
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameters:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = adapter.loss(x)
    loss.backward()
    adapter.module.zero_grad(set_to_none=True)
    return sum(storages.values())


def encode_flops(adapter, x):
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        adapter.encode(x)
    return counter.get_total_flops()


def train_flops(adapter, x):
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        adapter.loss(x).backward()
    adapter.module.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def matmul_rate(batch, device, repeats, dtype=torch.float32):
    """GFLOP/s of ``(batch x 256) @ (256 x 256)``, the conditioner's largest product."""
    a = torch.randn(batch, HIDDEN, device=device, dtype=dtype)
    b = torch.randn(HIDDEN, HIDDEN, device=device, dtype=dtype)
    seconds = timed_rounds({"mm": lambda: torch.matmul(a, b)}, device, repeats, 0.2)["mm"]
    return 2 * batch * HIDDEN * HIDDEN / seconds / 1e9


# --------------------------------------------------------------------------- report
def describe_machine(device):
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}, CUDA {torch.version.cuda}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--models", nargs="+", default=["ours", "zuko", "nflows", "ours-default"],
                        help=f"from {sorted(BUILDERS)}; the first is 'ours' for the ratios")
    parser.add_argument("--peers", nargs="+", default=["zuko", "nflows"])
    parser.add_argument("--ours", nargs="+", help="models whose ratios to the peers are printed (default: the first)")
    parser.add_argument("--data", choices=["random", "real"], default="random")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--round-seconds", type=float, default=0.5)
    parser.add_argument("--threads", type=int, help="torch.set_num_threads")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    parser.add_argument("--out", type=Path, help="also write the markdown table here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    adapters = [BUILDERS[name](device) for name in args.models]
    keys = {adapter.name: key for adapter, key in zip(adapters, args.models)}
    ours = adapters[0]
    ratio_models = [a.name for a in adapters if keys[a.name] in (args.ours or args.models[:1])]
    lowered = any("bf16" in name for name in args.models)  # then the bfloat16 matmul rate is printed too
    frames, frame_set = load_frames(args.data, max(args.batch_sizes), device)

    results = {}  # (model, batch) -> {metric: value}
    for batch in args.batch_sizes:
        x = frames[:batch]
        optimizers = {a.name: torch.optim.Adam(a.module.parameters(), lr=1e-5) for a in adapters}
        with torch.no_grad():
            codes = {a.name: a.encode(x) for a in adapters}
        tasks = {}
        for a in adapters:
            tasks[("train", a.name)] = lambda a=a: train_step(a, optimizers[a.name], x)
            tasks[("encode", a.name)] = torch.no_grad()(lambda a=a: a.encode(x))
            tasks[("decode", a.name)] = torch.no_grad()(lambda a=a: a.decode(codes[a.name]))
        seconds = timed_rounds(tasks, device, args.repeats, args.round_seconds)
        for a in adapters:
            row = {kind: batch / seconds[(kind, a.name)] for kind in ("train", "encode", "decode")}
            row["encode+decode"] = batch / (seconds[("encode", a.name)] + seconds[("decode", a.name)])
            row["saved"] = saved_activation_bytes(a, x)
            if not args.no_memory:
                row["memory"] = peak_memory(keys[a.name], batch, device)
            results[(a.name, batch)] = row
        flops = train_flops(ours, x)
        results[(ours.name, batch)]["gflops"] = flops / seconds[("train", ours.name)] / 1e9
        if not any(kind in ours.name for kind in ("compiled",)):
            encode = encode_flops(ours, x)
            for a in [a for a in adapters if a.parameters == ours.parameters]:  # same layers: same FLOPs
                results[(a.name, batch)]["encode_gflops"] = encode / seconds[("encode", a.name)] / 1e9
        results[(ours.name, batch)]["matmul_gflops"] = matmul_rate(batch, device, args.repeats)
        if lowered:
            results[(ours.name, batch)]["bf16_matmul_gflops"] = matmul_rate(batch, device, args.repeats, torch.bfloat16)
        print(f"batch {batch}: done", file=sys.stderr)

    lines = [f"Device: {describe_machine(device)}; data: {args.data} frames; median of {args.repeats} rounds.", "",
             "| model | parameters | batch | train frames/s | encode frames/s | decode frames/s | "
             "encode+decode frames/s | saved for backward MiB | peak RSS MiB |", "|---|---|---|---|---|---|---|---|---|"]
    for batch in args.batch_sizes:
        for a in adapters:
            row = results[(a.name, batch)]
            memory = f"{row['memory'] / 2**20:.1f}" if "memory" in row else "-"
            lines.append(f"| {a.name} | {a.parameters:,} | {batch} | {row['train']:,.0f} | {row['encode']:,.0f} | "
                         f"{row['decode']:,.0f} | {row['encode+decode']:,.0f} | {row['saved'] / 2**20:.1f} | {memory} |")
    lines += ["", "Ratios ours / peer (speed: above 1 is faster; memory: below 1 is less):", "",
              "| ours | peer | batch | train | encode | decode | encode+decode | saved for backward | peak RSS |",
              "|---|---|---|---|---|---|---|---|---|"]
    peers = [a.name for a in adapters if keys[a.name] in args.peers or a.name in args.peers]
    for mine_name in ratio_models:
        for peer in [p for p in peers if p != mine_name]:
            for batch in args.batch_sizes:
                mine, theirs = results[(mine_name, batch)], results[(peer, batch)]
                speed = " | ".join(f"{mine[k] / theirs[k]:.2f}" for k in ("train", "encode", "decode", "encode+decode"))
                memory = f"{mine['memory'] / theirs['memory']:.2f}" if "memory" in mine else "-"
                lines.append(f"| {mine_name} | {peer} | {batch} | {speed} | {mine['saved'] / theirs['saved']:.2f} "
                             f"| {memory} |")
    lines += ["", "Against the hardware (FLOPs counted by torch.utils.flop_counter; the dense rate is torch.matmul "
              "of (batch x 256) @ (256 x 256), the conditioners' largest product):", "",
              "| batch | matmul GFLOP/s | our train step GFLOP/s (fraction) | encode GFLOP/s (fraction): "
              + ", ".join(a.name for a in adapters if "encode_gflops" in results[(a.name, args.batch_sizes[0])]) + " |",
              "|---|---|---|---|"]
    for batch in args.batch_sizes:
        row = results[(ours.name, batch)]
        peak = row["matmul_gflops"]
        encodes = ", ".join(f"{results[(a.name, batch)]['encode_gflops']:.0f} ({results[(a.name, batch)]['encode_gflops'] / peak:.2f})"
                            for a in adapters if "encode_gflops" in results[(a.name, batch)])
        lines.append(f"| {batch} | {peak:.0f} | {row['gflops']:.0f} ({row['gflops'] / peak:.2f}) | {encodes} |")
    if lowered:
        lines += ["", "bfloat16 dense rate, same product: " + ", ".join(
            f"batch {batch}: {results[(ours.name, batch)]['bf16_matmul_gflops']:.0f} GFLOP/s" for batch in args.batch_sizes)
            + " (a lowered conditioner's matmuls can run up to this fast; its FLOPs are the same)."]
    if frame_set is not None:
        rates = ", ".join(f"batch {batch}: {loader_rate(frame_set, batch):,.0f}" for batch in args.batch_sizes)
        lines += ["", f"Data loading (shuffled DataLoader over the recipe's cached FrameSet, frames/s): {rates}."]
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        args.out.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
