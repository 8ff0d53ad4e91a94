"""Runs the training recipe's ``main`` (under torchrun) and saves this rank's final parameters.

Usage: torchrun --nproc_per_node=2 tests/helpers/ddp_train.py OUT_DIR <recipe arguments>
"""

import importlib.util
import os
import sys
from pathlib import Path

import torch

from speechbrain_fdnf.engine import unwrap

ROOT = Path(__file__).resolve().parents[2]

if __name__ == "__main__":
    out = Path(sys.argv[1])
    spec = importlib.util.spec_from_file_location("train_fdnf", ROOT / "recipes/TIMIT/train_fdnf.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    brain = recipe.main(sys.argv[2:])
    rank = int(os.environ.get("RANK", 0))
    state = {key: value.detach().cpu() for key, value in unwrap(brain.modules.model).state_dict().items()}
    torch.save({"state": state, "world_size": int(os.environ.get("WORLD_SIZE", 1))}, out / f"rank{rank}.pt")
