"""Shared fixtures and helpers for the test suite."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from speechbrain.lobes.features import Fbank

from speechbrain_fdnf.corpus.synthesize import CorpusOptions, synthesize_corpus
from speechbrain_fdnf.data.timit import prepare_timit

#: The recipes' features (40 log-Mel bands, 10 ms hop at 16 kHz) and their hop in samples.
FBANK = Fbank(n_mels=40)
HOP = 160


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


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


@pytest.fixture()
def corpus_copy(corpus, tmp_path):
    copy = tmp_path / "timit"
    shutil.copytree(corpus, copy)
    return copy


def first_utterance(root):
    return sorted((root / "TRAIN").glob("DR*/*/SX*.WAV"))[0]
