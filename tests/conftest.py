"""Shared fixtures and helpers for the test suite."""

import builtins
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from speechbrain.lobes.features import Fbank

from speechbrain_fdnf.corpus.layouts import export_layout
from speechbrain_fdnf.corpus.synthesize import CorpusOptions, synthesize_corpus
from speechbrain_fdnf.data.timit import prepare_timit

ROOT = Path(__file__).resolve().parents[1]
#: Training settings of the tiny models the slow tests train through the recipe.
TINY = ["--embedded_corpus_size=small", "--num_blocks=2", "--hidden_size=32", "--lr=0.003", "--batch_size=256",
        "--number_of_epochs=1"]
#: The recipes' features (40 log-Mel bands, 10 ms hop at 16 kHz) and their hop in samples.
FBANK = Fbank(n_mels=40)
HOP = 160


def recipe(name):
    """A recipe script of recipes/TIMIT imported as a module (recipes are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "recipes" / "TIMIT" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def without_package(monkeypatch, package):
    """Makes ``import <package>`` fail as it does where the package is not installed."""
    real_import = builtins.__import__

    def refuse(name, *args, **kwargs):
        if name.split(".")[0] == package:
            raise ImportError(f"No module named '{package}'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, package, raising=False)
    monkeypatch.setattr(builtins, "__import__", refuse)


def perturb(module, scale=0.3):
    """Moves every parameter away from its (often identity) initial value."""
    with torch.no_grad():
        for param in module.parameters():
            param.add_(torch.randn_like(param) * scale)
    return module


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """The small embedded corpus (synthesized once per session; copy it before changing it)."""
    root = tmp_path_factory.mktemp("corpus") / "timit"
    synthesize_corpus(root, CorpusOptions.small())
    return root


@pytest.fixture(scope="session")
def prepared(corpus, tmp_path_factory):
    save = tmp_path_factory.mktemp("prep")
    outputs = prepare_timit(corpus, save)
    return save, {split: json.loads(Path(path).read_text()) for split, path in outputs.items()}


@pytest.fixture(scope="session")
def librispeech(corpus, tmp_path_factory):
    """The small embedded corpus in LibriSpeech's layout (transcripts only; exact TextGrids aside)."""
    root = tmp_path_factory.mktemp("layouts") / "librispeech"
    export_layout(corpus, root, "librispeech")
    return root


@pytest.fixture(scope="session")
def vctk(corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("layouts") / "vctk"
    export_layout(corpus, root, "vctk")
    return root


@pytest.fixture()
def corpus_copy(corpus, tmp_path):
    copy = tmp_path / "timit"
    shutil.copytree(corpus, copy)
    return copy


def first_utterance(root):
    return sorted((root / "TRAIN").glob("DR*/*/SX*.WAV"))[0]


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """``(inference folder, prepared folder)`` of a 1-epoch f-DNF trained by the recipe on the small corpus."""
    root = tmp_path_factory.mktemp("trained")
    command = [sys.executable, str(ROOT / "recipes/TIMIT/train_fdnf.py"), str(ROOT / "hparams/fdnf.yaml"),
               f"--output_root={root}", *TINY]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return root / "fdnf" / "1234" / "inference", root / "prepared"
