"""Runs the whole evaluation over trained models and seeds and writes the report.

Driven by ``hparams/evaluate.yaml`` through ``recipes/TIMIT/evaluate.py``.

Authors
 * speechbrain-fdnf developers
"""

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from speechbrain_fdnf.evaluation import leakage_probes, load_or_train_probe, posterior_table, tsne_grid, tsne_sample
from speechbrain_fdnf.experiment import configure_model, load_hparams, prepare_data, saved_hparams
from speechbrain_fdnf.manipulation import FactorManipulator

logger = logging.getLogger(__name__)
RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "TIMIT" / "train_fdnf.py"
#: Default posterior tables: (factor changed, factor that should stay).
TABLES = (("phone", "speaker"), ("speaker", "phone"))
#: The t-SNE grid's rows.
TSNE_FACTORS = ("phone", "speaker")
#: Class symbols of the table columns (the paper's q and s).
SYMBOLS = {"phone": "q", "speaker": "s", "gender": "g", "dialect": "d"}


def table_pairs(config):
    """``[(target, other), ...]`` from ``config["tables"]`` (default: phone and speaker manipulation)."""
    return [tuple(pair) for pair in (config.get("tables") or TABLES)]


def label_sets(config):
    """Every label set the tables, the probes and the t-SNE grid need, in a stable order."""
    names = list(TSNE_FACTORS)
    for pair in table_pairs(config):
        names += [name for name in pair if name not in names]
    return names


def load_trained(hparams_file, overrides, encoders):
    """The trained model of one yaml (latest checkpoint, built from the configuration
    its run saved) and its normalisation (mean, std)."""
    hparams = saved_hparams(hparams_file, overrides)
    model = configure_model(hparams["model"], encoders)
    checkpointer = hparams["checkpointer"]
    checkpointer.add_recoverable("model", model)
    if checkpointer.recover_if_possible() is None:
        raise FileNotFoundError(f"no checkpoint in {hparams['save_folder']} for {hparams_file}")
    normalize = hparams["normalize"]
    return hparams, model.eval(), normalize.glob_mean.reshape(-1), normalize.glob_std.reshape(-1)


def train_if_missing(hparams_file, overrides, train_overrides):
    """Trains a (model, seed) through the recipe when its training log has no test result."""
    hparams = load_hparams(hparams_file, overrides)
    log = Path(hparams["train_log"])
    if log.exists() and "split: test" in log.read_text():
        return
    args = [f"--{key}={value}" for key, value in {**train_overrides, **overrides}.items()]
    logger.info("Training %s (seed %s) first", hparams_file, overrides.get("seed"))
    subprocess.run([sys.executable, str(RECIPE), str(hparams_file), *args], check=True)


def final_nll(train_log):
    """``{split: nll}`` from the last test lines of a training log."""
    result = {}
    for line in Path(train_log).read_text().splitlines():
        if "nll_nats_per_dim" in line:
            split = line.split("split: ")[1].split(" ")[0]
            result[split] = float(line.rsplit("nll_nats_per_dim: ", 1)[1])
    return result


def model_entries(config, seed):
    """``{display name: (hparams file, overrides)}`` from ``config["models"]``.

    An entry is a yaml path, or ``{hparams: path, overrides: {...}}`` for a
    variant (give it its own ``experiment_name`` so it trains into its own folder).
    """
    base = {"output_root": config["output_root"], "seed": seed, **(config.get("data_overrides") or {})}
    entries = {}
    for name, entry in config["models"].items():
        if isinstance(entry, dict):
            entries[name] = (entry["hparams"], {**base, **(entry.get("overrides") or {})})
        else:
            entries[name] = (entry, dict(base))
    return entries


def evaluate_seed(config, seed):
    """Every model of ``config["models"]`` for one seed: tables, leakage, NLL and t-SNE codes."""
    entries = model_entries(config, seed)
    if config.get("train_missing", True):
        for hparams_file, overrides in entries.values():
            train_if_missing(hparams_file, overrides, config.get("train_overrides") or {})
    first = load_hparams(*next(iter(entries.values())))
    encoders, frames = prepare_data(first)
    train, heldout = frames["train"].all(), frames["heldout"].all()
    factors = label_sets(config)
    candidates = {name: torch.unique(train.labels[name]).tolist() for name in factors}
    probes, probe_accuracy = {}, {}
    for name in factors:
        probes[name], probe_accuracy[name] = load_or_train_probe(
            Path(config["output_root"]) / "probes", name, train, heldout, len(encoders[name]),
            epochs=config["probe_epochs"], hidden_size=config["probe_hidden"], seed=seed,
        )
    sample = tsne_sample(frames["heldout"], encoders, config["tsne_classes"], config["tsne_per_class"], seed)
    results, codes = {}, {}
    for display, (hparams_file, overrides) in entries.items():
        hparams, model, mean, std = load_trained(hparams_file, overrides, encoders)
        manipulator = FactorManipulator(model, mean, std)
        for name in factors:
            if not manipulator.has_prior_means(name):
                manipulator.fit_empirical_means(name, train.feats, train.labels[name], len(encoders[name]))
        tables = {}
        for target, other in table_pairs(config):
            tables[target] = posterior_table(manipulator, probes, frames["heldout"], target, other,
                                             candidates[target], config["num_frames"], seed)
        prior = getattr(model, "prior", None)
        factorial = prior is not None and len(prior.factor_names) > 1
        if factorial:  # one probe per subspace: what each part of the latent knows
            subspaces = {f"z_{name}": where for name, where in prior.slices.items() if where.stop > where.start}
        else:
            subspaces = {"z": slice(None)}
        leakage = leakage_probes(manipulator, subspaces, train, heldout, labels=factors,
                                 max_train=config["leakage_max_train"], seed=seed)
        results[display] = {"tables": tables, "leakage": leakage, "nll": final_nll(hparams["train_log"])}
        with torch.no_grad():
            codes[display] = {}
            for name in TSNE_FACTORS:
                z = manipulator.encode(frames["heldout"].__getitems__(sample[name][0]).feats)
                if factorial and name in prior.factor_names:
                    z = prior.subspace(z, name)  # f-DNF: the matching subspace
                codes[display][name] = z.numpy()
    figure_data = {
        "latents": codes,
        "sample_labels": {name: frames["heldout"].labels[name][sample[name][0]].numpy() for name in TSNE_FACTORS},
        "class_names": {name: dict(encoders[name].ind2lab) for name in TSNE_FACTORS},
    }
    return {"probe_accuracy": probe_accuracy, "models": results}, figure_data


def aggregate(per_seed):
    """Mean and standard deviation over seeds of every number in the per-seed results."""

    def walk(values):
        if isinstance(values[0], dict):
            return {key: walk([v[key] for v in values]) for key in values[0]}
        array = np.asarray(values, dtype=float)
        return {"mean": float(array.mean()), "std": float(array.std()), "values": array.tolist()}

    return walk(per_seed)


def _fmt(stat, signed=False):
    text = f"{stat['mean']:+.3f}" if signed else f"{stat['mean']:.3f}"
    return text + (f" ± {stat['std']:.3f}" if len(stat["values"]) > 1 else "")


def markdown(summary, seeds, figure, tables=TABLES):
    """The report: the posterior tables, leakage probes, NLL and probe accuracies."""
    lines = [f"# f-DNF evaluation (seeds: {', '.join(map(str, seeds))})", ""]
    factors = list(summary["probe_accuracy"])
    for target, other in tables:
        t, o = SYMBOLS.get(target, target) + "2", SYMBOLS.get(other, other)
        lines += [f"## {target.capitalize()} manipulation ({other} should stay)", "",
                  f"| model | p({t}\\|x) | p({t}\\|x') | δ({t}) | p({o}\\|x) | p({o}\\|x') | δ({o}) |",
                  "|---|---|---|---|---|---|---|"]
        for model, result in summary["models"].items():
            row = result["tables"][target]
            lines.append(
                f"| {model} | {_fmt(row['p_target_x'])} | {_fmt(row['p_target_x_prime'])} | "
                f"{_fmt(row['delta_target'], True)} | {_fmt(row['p_other_x'])} | "
                f"{_fmt(row['p_other_x_prime'])} | {_fmt(row['delta_other'], True)} |"
            )
        lines.append("")
    lines += ["## Leakage probes (linear classifiers on latent subspaces, held-out accuracy)", "",
              "| model | subspace | " + " | ".join(factors) + " |", "|---|---|" + "---|" * len(factors)]
    for model, result in summary["models"].items():
        for subspace, accuracy in result["leakage"].items():
            lines.append(f"| {model} | {subspace} | " + " | ".join(_fmt(accuracy[name]) for name in factors) + " |")
    lines += ["", "## Negative log-likelihood (nats per dimension; VAE: negative ELBO, an upper bound)", "",
              "| model | held-out (labels known) | test (speaker marginalised) |", "|---|---|---|"]
    for model, result in summary["models"].items():
        nll = result["nll"]
        lines.append(f"| {model} | {_fmt(nll['heldout']) if 'heldout' in nll else '-'} | {_fmt(nll['test']) if 'test' in nll else '-'} |")
    accuracy = summary["probe_accuracy"]
    probes = ", ".join(f"{name} {_fmt(value)}" for name, value in accuracy.items())
    lines += ["", f"MLP probes on input features, held-out frame accuracy: {probes}.", "",
              f"t-SNE grid: [{Path(figure).name}]({Path(figure).name})", ""]
    return "\n".join(lines)


def run(config):
    """Evaluates every seed, writes ``results.json``, ``results.md`` and the t-SNE PNG; returns the markdown."""
    out = Path(config["eval_folder"])
    out.mkdir(parents=True, exist_ok=True)
    per_seed, seeds = [], list(config["seeds"])
    for index, seed in enumerate(seeds):
        result, figure_data = evaluate_seed(config, seed)
        per_seed.append(result)
        if index == 0:
            tsne_grid(**figure_data, path=out / "tsne.png", seed=seed)
    summary = aggregate(per_seed)
    (out / "results.json").write_text(json.dumps({"seeds": seeds, "per_seed": per_seed, "summary": summary}, indent=1))
    text = markdown(summary, seeds, out / "tsne.png", table_pairs(config))
    (out / "results.md").write_text(text)
    return text

