"""Interrupted runs, determinism, multi-process training and numerical safety of training."""

import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from speechbrain.nnet.schedulers import LinearScheduler
from speechbrain.processing.features import InputNormalization
from speechbrain.utils.checkpoints import Checkpointer
from speechbrain.utils.epoch_loop import EpochCounter
from speechbrain.utils.train_logger import FileTrainLogger

from speechbrain_fdnf.brain import FlowBrain
from speechbrain_fdnf.data.frames import FrameSet
from speechbrain_fdnf.lobes import DiscriminativeFlow, FactorialGaussianPrior, RealNVP

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes/TIMIT/train_fdnf.py"
# Small batches make an epoch last long enough (a few seconds) to be killed in its middle.
SLOW_EPOCHS = ["--num_blocks=2", "--hidden_size=32", "--batch_size=4", "--number_of_epochs=3"]


def recipe_command(corpus, output_root, *extra):
    return [sys.executable, str(RECIPE), str(ROOT / "hparams/fdnf.yaml"), f"--output_root={output_root}",
            "--embedded_corpus_size=small", f"--embedded_corpus_folder={corpus}", *extra]


def run(command, **kwargs):
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, **kwargs)
    output = result.stdout + result.stderr
    if result.returncode != 0:  # show the errors, not the progress bars
        lines = [line for line in output.splitlines() if "it/s" not in line]
        pytest.fail(f"exit code {result.returncode}:\n" + "\n".join(lines[-80:]))
    return output


def epochs(folder):
    log = folder / "train_log.txt"
    lines = log.read_text().splitlines() if log.exists() else []
    return [line for line in lines if line.startswith("epoch:")]


def final_valid_loss(folder):
    return float(re.search(r"valid loss: (\S+)", epochs(folder)[-1]).group(1))


def checkpoint_state(folder):
    """The model of the latest checkpoint (the best epoch's may be kept beside it)."""
    checkpoint = sorted((folder / "save").glob("CKPT+*"))[-1]
    return torch.load(checkpoint / "model.ckpt")


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory):
    """An uninterrupted run: its output folder."""
    root = tmp_path_factory.mktemp("reference")
    run(recipe_command(corpus, root, *SLOW_EPOCHS))
    return root / "fdnf" / "1234"


@pytest.mark.slow
def test_same_seed_same_model(corpus, reference, tmp_path):
    run(recipe_command(corpus, tmp_path, *SLOW_EPOCHS))
    again = tmp_path / "fdnf" / "1234"
    assert epochs(again) == epochs(reference)  # every logged loss, to the log's precision
    first, second = checkpoint_state(reference), checkpoint_state(again)
    assert first.keys() == second.keys()
    for key in first:  # bit for bit on the same CPU and thread count
        assert torch.equal(first[key], second[key]), key


@pytest.mark.slow
def test_sigkill_in_the_middle_of_an_epoch_resumes_from_the_last_checkpoint(corpus, reference, tmp_path):
    command = recipe_command(corpus, tmp_path, *SLOW_EPOCHS)
    folder = tmp_path / "fdnf" / "1234"
    output_file = tmp_path / "first_run.txt"
    with open(output_file, "w") as sink:  # a file, not a pipe: nobody reads while it runs
        process = subprocess.Popen(command, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while not (epochs(folder) and list((folder / "save").glob("CKPT+*"))):  # epoch 1 is checkpointed
        assert process.poll() is None and time.time() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.05)
    time.sleep(0.5)  # well inside epoch 2
    process.send_signal(signal.SIGKILL)
    process.wait()
    first_output = output_file.read_text()
    assert process.returncode == -signal.SIGKILL
    assert len(epochs(folder)) == 1, "the kill did not land inside epoch 2"
    assert "Global normalisation statistics" in first_output and "ActNorm layers initialised" in first_output
    assert "have no training frames" in first_output  # the tiny corpus lacks some phones: reported
    # half-written checkpoints, newer than the real one, must never be loaded: SpeechBrain writes
    # CKPT.yaml first, so a kill while saving leaves a yaml next to a truncated or missing file
    (good,) = (folder / "save").glob("CKPT+*")
    truncated = folder / "save" / "CKPT+2099-01-01+00-00-00+00"
    shutil.copytree(good, truncated)
    data = (truncated / "model.ckpt").read_bytes()
    (truncated / "model.ckpt").write_bytes(data[: len(data) // 2])
    missing = folder / "save" / "CKPT+2099-01-01+00-00-01+00"
    shutil.copytree(good, missing)
    (missing / "optimizer.ckpt").unlink()

    output = run(command)
    assert [int(re.match(r"epoch: (\d+)", line).group(1)) for line in epochs(folder)] == [1, 2, 3]
    assert f"Loading a checkpoint from {good}" in output
    assert "model.ckpt is truncated" in output and "optimizer.ckpt is missing" in output
    # normalisation, ActNorm and class means come from the checkpoint, not from a new pass over the data
    for fresh_start in ("Global normalisation statistics", "ActNorm layers initialised", "Class means initialised"):
        assert fresh_start not in output
    resumed = final_valid_loss(folder)
    assert math.isfinite(resumed)
    # epoch 2 restarts with another shuffle, so the result is close to, not equal to, an unbroken run
    assert abs(resumed - final_valid_loss(reference)) < 0.1 * abs(final_valid_loss(reference)) + 0.05
    assert (folder / "inference" / "model.ckpt").exists()


@pytest.mark.slow
def test_torchrun_two_processes_on_cpu_agree_and_match_one_process(corpus, tmp_path):
    common = ["--num_blocks=2", "--hidden_size=32", "--number_of_epochs=2", "--lr=0.003"]
    run(recipe_command(corpus, tmp_path / "single", *common, "--batch_size=128"))
    single = final_valid_loss(tmp_path / "single" / "fdnf" / "1234")
    states = tmp_path / "states"
    states.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    helper = ROOT / "tests/helpers/ddp_train.py"
    ddp_args = recipe_command(corpus, tmp_path / "ddp", *common, "--batch_size=64",
                              "--distributed_backend=gloo", "--device=cpu")[2:]
    # --max_restarts=1: torchrun's own recovery (the recipe resumes from its checkpoint) absorbs a
    # transient worker failure; the checks below hold for the finished run either way
    run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "--max_restarts=1",
         str(helper),
         str(states), *ddp_args], env=env)
    rank0, rank1 = torch.load(states / "rank0.pt"), torch.load(states / "rank1.pt")
    assert rank0["world_size"] == rank1["world_size"] == 2
    for key, value in rank0["state"].items():
        assert torch.equal(value, rank1["state"][key]), key  # DDP keeps the replicas identical
    # two processes with 64 frames each make the same number of steps of 128 frames as one process
    ddp = final_valid_loss(tmp_path / "ddp" / "fdnf" / "1234")
    assert math.isfinite(ddp) and abs(ddp - single) < 0.15 * abs(single) + 0.05
    assert len(epochs(tmp_path / "ddp" / "fdnf" / "1234")) == 2


def test_extreme_but_finite_frames_train_without_nan(tmp_path):
    generator = torch.Generator().manual_seed(0)
    feats = torch.randn(2048, 8, generator=generator) * 1e4 + 5e4  # far from unit scale
    feats[::97] *= 1e3  # and some wild outliers
    labels = {"phone": torch.randint(5, (2048,), generator=generator)}
    frames = FrameSet({"feats": feats, "utterance": torch.arange(2048) // 64, "labels": labels})
    prior = FactorialGaussianPrior([{"name": "phone", "dim": 4, "num_classes": 5}], residual_dim=4)
    model = DiscriminativeFlow(RealNVP(8, num_blocks=3, hidden_size=32), prior)
    normalize = InputNormalization(norm_type="global")
    counter = EpochCounter(2)
    brain = FlowBrain(
        modules={"model": model, "normalize": normalize},
        opt_class=lambda params: torch.optim.Adam(params, lr=1e-3),
        hparams={"epoch_counter": counter, "lr_annealing": LinearScheduler(1e-3, 1e-4, 2),
                 "train_logger": FileTrainLogger(tmp_path / "log.txt"), "init_batch_size": 1024},
        run_opts={"device": "cpu", "noprogressbar": True},
        checkpointer=Checkpointer(tmp_path / "save", {"model": model, "normalize": normalize, "counter": counter}),
    )
    brain.fit(counter, frames, frames, train_loader_kwargs={"batch_size": 256, "collate_fn": frames.collate},
              valid_loader_kwargs={"batch_size": 1024, "collate_fn": frames.collate})
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert math.isfinite(brain.train_loss)
    losses = [float(v) for v in re.findall(r"valid loss: (\S+)", (tmp_path / "log.txt").read_text())]
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    with torch.no_grad():  # and the model still inverts the (normalised) frames it was trained on
        x = brain.engine.normalized(feats[:512])
        assert (model.decode(model.encode(x)[0]) - x).abs().max() < 1e-3 * max(1.0, x.abs().max().item())
