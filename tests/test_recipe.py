"""The training recipe end to end on the tiny generated corpus, resume included, and every hparams file."""

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hyperpyyaml import load_hyperpyyaml

from speechbrain_fdnf.brain import read_nll
from speechbrain_fdnf.recipe_utils import load_hparams

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("fdnf", "nf", "dnf_phone", "dnf_speaker", "vae")
TINY = ["--embedded_corpus_size=small", "--num_blocks=2", "--hidden_size=32", "--lr=0.003", "--batch_size=256"]


def run_recipe(model, output_root, *extra):
    command = [sys.executable, str(ROOT / "recipes/TIMIT/train_fdnf.py"), str(ROOT / f"hparams/{model}.yaml"),
               f"--output_root={output_root}", *TINY, *extra]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def epoch_lines(log):
    return [line for line in log.read_text().splitlines() if line.startswith("epoch:")]


def valid_losses(log):
    return [float(re.search(r"valid loss: (\S+)", line).group(1)) for line in epoch_lines(log)]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["fdnf", "vae"])
def test_recipe_trains_logs_checkpoints_and_resumes(model, tmp_path):
    first = run_recipe(model, tmp_path, "--number_of_epochs=1")
    assert first.returncode == 0, first.stderr[-3000:]
    folder = tmp_path / model / "1234"
    log = folder / "train_log.txt"
    assert len(epoch_lines(log)) == 1
    assert list((folder / "save").glob("CKPT+*")), "no checkpoint"
    assert "synthesizing the embedded eSpeak NG corpus" in first.stderr + first.stdout

    # a longer run picks up at epoch 2 instead of starting over
    second = run_recipe(model, tmp_path, "--number_of_epochs=3")
    assert second.returncode == 0, second.stderr[-3000:]
    epochs = epoch_lines(log)
    assert [int(re.match(r"epoch: (\d+)", e).group(1)) for e in epochs] == [1, 2, 3]
    losses = valid_losses(log)
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
    test_lines = [line for line in log.read_text().splitlines() if "nll_nats_per_dim" in line]
    assert any("split: heldout" in line for line in test_lines) and any("split: test" in line for line in test_lines)
    nll = read_nll(folder / "nll.json")  # what the evaluation reads
    assert set(nll) == {"heldout", "test"} and all(math.isfinite(v) for v in nll.values())
    assert json.loads((folder / "nll.json").read_text())["epoch"] == 3

    # the same command again trains nothing more
    third = run_recipe(model, tmp_path, "--number_of_epochs=3")
    assert third.returncode == 0, third.stderr[-3000:]
    assert len(epoch_lines(log)) == 3
    assert "Loading a checkpoint" in third.stderr + third.stdout


@pytest.mark.slow
def test_missing_data_folder_is_an_error_not_a_fallback(tmp_path):
    result = run_recipe("nf", tmp_path, f"--data_folder={tmp_path / 'no_timit_here'}", "--number_of_epochs=1")
    assert result.returncode != 0
    assert "no_timit_here does not exist" in result.stdout + result.stderr
    assert not list(tmp_path.glob("embedded_corpus*"))


@pytest.mark.slow
def test_training_with_paired_frames(tmp_path):
    result = run_recipe("fdnf", tmp_path, "--number_of_epochs=1", "--pair_weight=1.0", "--utterance_pair_weight=0.5",
                        "--phone_dim=20", "--speaker_dim=12")  # with a residual, which parallel pairs share
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stderr + result.stdout
    assert re.search(r"Training with \d+ parallel frame pairs \(shared subspaces \['phone', 'residual'\]", log)
    assert re.search(r"Training with \d+ same-utterance frame pairs \(shared subspaces \['speaker'\].*weight 0.5", log)
    nll = read_nll(tmp_path / "fdnf" / "1234" / "nll.json")  # the validation and test NLL stay the frames'
    assert set(nll) == {"heldout", "test"} and all(math.isfinite(v) for v in nll.values())
    vae = run_recipe("vae", tmp_path, "--number_of_epochs=1", "--pair_weight=1.0")
    assert vae.returncode != 0 and "paired frames need a flow with a prior" in vae.stdout + vae.stderr


@pytest.mark.parametrize("model", MODELS + ("fdnf_3factor", "fdnf_pairs"))
def test_every_hparams_file_loads_and_builds(model, tmp_path):
    hparams = load_hparams(ROOT / f"hparams/{model}.yaml", {"output_root": str(tmp_path), "context": 1})
    assert hparams["experiment_name"] == model
    assert hparams["input_dim"] == 40 * 3 and hparams["output_folder"].startswith(str(tmp_path))
    model_module = hparams["model"]
    assert isinstance(model_module, torch.nn.Module)
    prior = getattr(model_module, "prior", None)
    if prior is not None:
        assert prior.latent_dim == hparams["input_dim"]
    assert hparams["pair_weight"] == (1.0 if model == "fdnf_pairs" else 0.0)
    # the file also loads with plain hyperpyyaml (reuse from other recipes)
    with open(ROOT / f"hparams/{model}.yaml") as handle:
        assert "common" in load_hyperpyyaml(handle, {"common": {"output_root": str(tmp_path)}})


def test_the_four_flows_share_one_architecture(tmp_path):
    sizes = set()
    for model in ("fdnf", "nf", "dnf_phone", "dnf_speaker"):
        flow = load_hparams(ROOT / f"hparams/{model}.yaml", {"output_root": str(tmp_path)})["model"].flow
        sizes.add((len(flow.transforms), sum(p.numel() for p in flow.parameters())))
    assert len(sizes) == 1
