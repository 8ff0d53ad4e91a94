#!/usr/bin/env python3
"""Evaluates trained models: manipulation tables, leakage probes, NLL, t-SNE, over seeds.

Usage::

    python recipes/TIMIT/evaluate.py hparams/evaluate.yaml [--seeds=[1,2,3]] [--output_root=results]
    python recipes/TIMIT/evaluate.py hparams/experiments/tune_pairs.yaml   # scores the valid split
    python recipes/TIMIT/evaluate.py hparams/evaluate.yaml --device=cuda:0  # default: CUDA when present

A (model, seed) whose training run has not finished (no test NLL in its
``nll.json``, or no exported inference folder) is trained first through
``train_fdnf.py`` beside this script. Every model is then loaded from its
inference folder, as a user would load it. Writes ``results.md``,
``results.json`` and ``tsne.png`` into ``eval_folder`` and prints the report.
"""

import logging
import subprocess
import sys
from pathlib import Path

import speechbrain as sb

from speechbrain_fdnf.evaluation import EvaluationConfig, aggregate, evaluate_models, markdown, tsne_grid
from speechbrain_fdnf.evaluation.config import VALID_SPEAKERS
from speechbrain_fdnf.evaluation.conversion import contract_rows, valid_speaker_entries
from speechbrain_fdnf.evaluation.sections import chosen_sections
from speechbrain_fdnf.export import read_nll
from speechbrain_fdnf.files import read_prepared_split, write_json_atomic
from speechbrain_fdnf.recipe_utils import load_config, load_hparams, prepare_data
from speechbrain_fdnf.train import snapshot_folder

logger = logging.getLogger(__name__)
TRAIN_RECIPE = Path(__file__).resolve().with_name("train_fdnf.py")
PHONE_RECIPE = Path(__file__).resolve().with_name("phone_recognition.py")


def model_entries(config, seed):
    """``{display name: (hparams file, overrides)}`` from ``config.models``.

    An entry is a yaml path, or ``{hparams: path, overrides: {...}, beyond_paper: bool, snapshot: N}``
    for a variant (give it its own ``experiment_name`` so it trains into its own folder; ``snapshot``:
    the model its run exported after epoch N, see ``snapshot_epochs`` in ``hparams/common.yaml``).
    """
    base = {"output_root": config.output_root, "seed": seed, **(config.data_overrides or {})}
    entries = {}
    for name, entry in config.models.items():
        if isinstance(entry, dict):
            entries[name] = (entry["hparams"], {**base, **(entry.get("overrides") or {})})
        else:
            entries[name] = (entry, dict(base))
    return entries


def beyond_paper(config):
    """The display names of the models marked ``beyond_paper`` (reported after the paper's rows)."""
    return {name for name, entry in config.models.items() if isinstance(entry, dict) and entry.get("beyond_paper")}


def snapshot_epoch(config, name):
    """The epoch of the snapshot a model entry asks for, or ``None`` (the run's final, best model)."""
    entry = config.models[name]
    return int(entry["snapshot"]) if isinstance(entry, dict) and entry.get("snapshot") is not None else None


def inference_of(hparams, snapshot=None):
    """``(inference folder, nll.json)`` of a trained run, or of its snapshot after epoch ``snapshot``
    (a snapshot has no NLL of its own: the report leaves its NLL blank)."""
    if snapshot is None:
        return hparams["inference_folder"], hparams["nll_file"]
    folder = snapshot_folder(hparams["output_folder"], snapshot)
    return str(folder), str(folder / "no_nll.json")


def train_if_missing(hparams, hparams_file, overrides, train_overrides, snapshot=None):
    """Trains a (model, seed) through the training recipe unless its run has finished (with the
    snapshot after epoch ``snapshot``, which a finished run cannot add: that is an error)."""
    finished = "test" in read_nll(hparams["nll_file"]) and Path(hparams["inference_folder"], "hyperparams.yaml").exists()
    has_snapshot = snapshot is None or Path(inference_of(hparams, snapshot)[0], "hyperparams.yaml").exists()
    if finished and has_snapshot:
        return
    if finished:
        raise FileNotFoundError(f"{hparams['output_folder']} finished without a snapshot after epoch {snapshot}: "
                                f"train it again with --snapshot_epochs=[{snapshot}] (in a new folder)")
    if snapshot is not None:
        listed = {int(epoch) for epoch in overrides.get("snapshot_epochs") or []}
        overrides = dict(overrides, snapshot_epochs=sorted(listed | {snapshot}))
    args = [f"--{key}={value}" for key, value in {**train_overrides, **overrides}.items()]
    logger.info("Training %s (seed %s) first", hparams_file, overrides.get("seed"))
    subprocess.run([sys.executable, str(TRAIN_RECIPE), str(hparams_file), *args], check=True)


def train_recognizer_if_missing(config, hparams):
    """Trains the conversion section's phone judge (the phone recognition recipe's ``fbank`` run, on the
    prepared training speakers' real audio) unless ``config.phone_recognizer`` holds one."""
    folder = Path(config.phone_recognizer)
    if (folder / "label_encoder.txt").is_file() and any((folder / "fbank" / "save").glob("CKPT*")):
        return
    logger.info("Training the phone recognizer that judges conversions first (%s)", folder)
    subprocess.run([sys.executable, str(PHONE_RECIPE), config.phone_recognizer_hparams, "--features=[fbank]",
                    f"--output_folder={folder}", f"--prep_folder={hparams['prep_folder']}",
                    f"--model_folder={hparams['inference_folder']}",
                    *[f"--{key}={value}" for key, value in config.phone_recognizer_overrides.items()]], check=True)


def evaluate_seed(config, seed):
    """Trains what is missing, then evaluates every model of ``config["models"]`` for ``seed`` (``None`` with
    ``config.train_only``: nothing evaluated)."""
    runs = {}
    for display, (hparams_file, overrides) in model_entries(config, seed).items():
        hparams = load_hparams(hparams_file, overrides)
        if config.train_missing:
            train_if_missing(hparams, hparams_file, overrides, config.train_overrides or {},
                             snapshot_epoch(config, display))
        runs[display] = hparams
    first = next(iter(runs.values()))
    if "conversion" in [section.name for section in chosen_sections(config)] and config.conversion_utterances:
        train_recognizer_if_missing(config, first)
    if config.train_only:
        return None
    encoders, frames = prepare_data(first)
    models = {display: inference_of(hparams, snapshot_epoch(config, display)) for display, hparams in runs.items()}
    prepared = {split: read_prepared_split(first["prep_folder"], split) for split in ("train", "valid", "heldout")}
    scored = config.scored_split
    # valid: for choosing settings, so that the held-out tables stay untouched by the choice
    frames = dict(frames, heldout=frames[scored])
    utterances = {"heldout": prepared[scored], "train": prepared["train"],
                  "references": {k: v for split in prepared.values() for k, v in split.items()}}
    if scored == "heldout":  # any-to-any conversion between the test speakers (never to choose settings)
        utterances["test"] = read_prepared_split(first["prep_folder"], "test")
    elif VALID_SPEAKERS in config.conversion_blocks:  # unseen voices to choose settings on (EvaluationConfig.check)
        utterances[VALID_SPEAKERS] = valid_speaker_entries(config.conversion_valid_speakers, prepared["train"],
                                                             read_prepared_split(first["prep_folder"], "test"))
    return evaluate_models(models, encoders, frames, config, seed, utterances, beyond_paper(config))


def main(argv):
    """Evaluates every seed, writes ``results.json``, ``results.md`` and the t-SNE PNG, and prints the report (with
    ``train_only``: trains what is missing, and stops)."""
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    values = load_config(hparams_file, overrides)
    if run_opts.device:  # --device=cuda:0, as every SpeechBrain recipe takes it
        values["device"] = run_opts.device
    config = EvaluationConfig.from_dict(values)
    scored = config.scored_split
    out = Path(config.eval_folder)
    out.mkdir(parents=True, exist_ok=True)
    per_seed, seeds = [], list(config.seeds)
    if config.train_only:
        for seed in seeds:
            evaluate_seed(config, seed)
        print("Trained what was missing; nothing evaluated (train_only)")
        return None
    for index, seed in enumerate(seeds):
        result, figure_data, row_kinds = evaluate_seed(config, seed)
        per_seed.append(result)
        if index == 0 and figure_data:
            tsne_grid(**figure_data, path=out / "tsne.png", seed=seed)
    summary = aggregate(per_seed)
    results = {"seeds": seeds, "per_seed": per_seed, "summary": summary, "row_kinds": row_kinds}
    if "conversion" in summary:  # the conversion rows as plain numbers (means over the seeds)
        results["conversion"] = contract_rows(summary["conversion"])
    write_json_atomic(out / "results.json", results)
    text = markdown(summary, seeds, config, row_kinds)
    if scored != "heldout":
        title, rest = text.split("\n", 1)
        text = f"{title}\n\nScored on the {scored} split (held-out frames replaced by {scored} frames everywhere).\n{rest}"
    (out / "results.md").write_text(text)
    print(text)
    print(f"\nReport: {out}/results.md, figure: {out}/tsne.png")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(name)s - %(message)s")
    main(sys.argv[1:])
