"""The benchmark script keeps running (a smoke run on tiny settings; no timing is asserted)."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_flows", ROOT / "benchmarks/bench_flows.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_writes_its_tables(tmp_path):
    bench = load_bench()
    models = ["ours", "ours-default"] + [peer for peer in ("zuko", "nflows") if importlib.util.find_spec(peer)]
    out = tmp_path / "table.md"
    assert bench.main(["--batch-sizes", "16", "--repeats", "1", "--round-seconds", "0.01", "--no-memory",
                       "--models", *models, "--out", str(out)]) == 0
    table = out.read_text()
    assert "| ours | 651,584 | 16 |" in table  # 8 couplings of 20 -> 256 -> 256 -> 40 conditioners
    assert "GFLOP/s" in table and "Ratios ours / peer" in table


def test_every_model_has_the_same_size_and_trains():
    bench = load_bench()
    import torch

    names = ["ours"] + [peer for peer in ("zuko", "nflows") if importlib.util.find_spec(peer)]
    if len(names) == 1:
        pytest.skip("zuko and nflows are benchmark extras (pip install -e '.[bench]')")
    adapters = [bench.BUILDERS[name](torch.device("cpu")) for name in names]
    assert len({adapter.parameters for adapter in adapters}) == 1
    x = torch.randn(32, bench.DIM)
    for adapter in adapters:  # each peer is a working flow: decode inverts encode, the loss is finite
        assert torch.allclose(adapter.decode(adapter.encode(x)), x, atol=1e-4)
        assert torch.isfinite(adapter.loss(x))
