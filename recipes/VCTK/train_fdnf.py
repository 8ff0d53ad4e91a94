#!/usr/bin/env python3
"""Trains one of the five generative models on a VCTK-layout corpus (the TIMIT recipe with ``corpus: vctk``).

Usage::

    python recipes/VCTK/train_fdnf.py hparams/fdnf.yaml --data_folder=/data/VCTK
    python -m speechbrain_fdnf.data.synthesize OUT --size small --layout vctk   # a small synthetic one
    python recipes/VCTK/train_fdnf.py hparams/fdnf.yaml --data_folder=OUT --output_root=RUN

Utterances without an alignment file (``--alignments=FOLDER`` of MFA TextGrids) are force-aligned
once (pocketsphinx, then refinement on the corpus; cached in ``prep_folder``). Everything else is
in the yaml, as for TIMIT; the evaluation, conversion and reuse recipes in ``recipes/TIMIT`` take
the same ``--corpus=vctk --data_folder=...``.
"""

import sys

from speechbrain_fdnf.recipe_utils import run_cleanly
from speechbrain_fdnf.train import train, with_corpus


def main(argv):
    """Trains, evaluates and exports on the VCTK corpus; returns the ``FlowBrain``."""
    return train(with_corpus(argv, "vctk"))


if __name__ == "__main__":
    sys.exit(run_cleanly(main, sys.argv[1:]))
