#!/usr/bin/env python3
"""Trains one of the five generative models (f-DNF, NF, phone/speaker DNF, VAE) on TIMIT frames.

Usage::

    python recipes/TIMIT/train_fdnf.py hparams/fdnf.yaml                      # embedded corpus
    python recipes/TIMIT/train_fdnf.py hparams/fdnf.yaml --data_folder=/data/TIMIT
    torchrun --nproc_per_node=2 recipes/TIMIT/train_fdnf.py hparams/fdnf.yaml  # DDP

Without ``--data_folder`` the embedded eSpeak NG corpus is synthesized on first
use and reused afterwards. Everything else is in the yaml. A killed run
resumes from its last checkpoint when the same command is run again. At the
end the run records the NLL of the held-out and test splits in ``nll_file``
and writes ``inference_folder`` for
``speechbrain_fdnf.inference.SpeechFactorizer.from_hparams``.
"""

import sys

from speechbrain_fdnf.recipe_utils import run_cleanly
from speechbrain_fdnf.train import train


def main(argv):
    """Trains, evaluates on the held-out and test splits, exports; returns the ``FlowBrain``."""
    return train(argv)


if __name__ == "__main__":
    sys.exit(run_cleanly(main, sys.argv[1:]))
