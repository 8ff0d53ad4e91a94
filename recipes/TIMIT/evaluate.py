#!/usr/bin/env python3
"""Evaluates the five trained models: manipulation tables, leakage probes, NLL, t-SNE.

Usage::

    python recipes/TIMIT/evaluate.py hparams/evaluate.yaml [--seeds=[1,2,3]] [--output_root=results]

Writes ``results.md``, ``results.json`` and ``tsne.png`` into ``eval_folder``
and prints the markdown report.
"""

import logging
import sys

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml

from speechbrain_fdnf.report import run

if __name__ == "__main__":
    hparams_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:])
    with open(hparams_file) as handle:
        config = load_hyperpyyaml(handle, overrides)
    logging.basicConfig(level=logging.INFO, format="%(name)s - %(message)s")
    print(run(config))
    print(f"\nReport: {config['eval_folder']}/results.md, figure: {config['eval_folder']}/tsne.png")
