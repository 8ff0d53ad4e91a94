#!/usr/bin/env python3
"""Trains one of the five generative models on a LibriSpeech-layout corpus (the TIMIT recipe with ``corpus: librispeech``).

Usage::

    python recipes/LibriSpeech/train_fdnf.py hparams/fdnf.yaml --data_folder=/data/LibriSpeech
    python -m speechbrain_fdnf.data.synthesize OUT --size small --layout librispeech   # a small synthetic one
    python recipes/LibriSpeech/train_fdnf.py hparams/fdnf.yaml --data_folder=OUT --output_root=RUN

Utterances without an alignment file (``--alignments=FOLDER`` of MFA TextGrids) are force-aligned
once (pocketsphinx, then refinement on the corpus; cached in ``prep_folder``). Everything else is
in the yaml, as for TIMIT; the evaluation, conversion and reuse recipes in ``recipes/TIMIT`` take
the same ``--corpus=librispeech --data_folder=...``.
"""

import sys

from speechbrain_fdnf.recipe_utils import run_cleanly
from speechbrain_fdnf.train import train, with_corpus


def main(argv):
    """Trains, evaluates and exports on the LibriSpeech corpus; returns the ``FlowBrain``."""
    return train(with_corpus(argv, "librispeech"))


if __name__ == "__main__":
    sys.exit(run_cleanly(main, sys.argv[1:]))
