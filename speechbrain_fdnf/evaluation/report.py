"""The evaluation report: per-seed results aggregated over seeds, written as markdown.

Authors
 * speechbrain-fdnf developers
"""

from pathlib import Path

import numpy as np

from speechbrain_fdnf.evaluation.driver import TABLES

#: Class symbols of the table columns (the paper's q and s).
SYMBOLS = {"phone": "q", "speaker": "s", "gender": "g", "dialect": "d"}


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
        rows = {**summary["models"], **summary.get("reference", {})}
        for model, result in rows.items():
            row = result["tables"][target]
            lines.append(
                f"| {model} | {_fmt(row['p_target_x'])} | {_fmt(row['p_target_x_prime'])} | "
                f"{_fmt(row['delta_target'], True)} | {_fmt(row['p_other_x'])} | "
                f"{_fmt(row['p_other_x_prime'])} | {_fmt(row['delta_other'], True)} |"
            )
        if summary.get("reference"):
            lines += ["", "The ceiling (each frame replaced by a real frame of its target cell) and the oracles (shift by "
                      "empirical cell means) draw targets only among cells with training frames."]
        lines.append("")
    lines += ["## Leakage probes (linear classifiers on latent subspaces, held-out accuracy)", "",
              "| model | subspace | " + " | ".join(factors) + " |", "|---|---|" + "---|" * len(factors)]
    for model, result in summary["models"].items():
        for subspace, accuracy in result["leakage"].items():
            lines.append(f"| {model} | {subspace} | " + " | ".join(_fmt(accuracy[name]) for name in factors) + " |")
    structured = {model: result["structure"] for model, result in summary["models"].items() if "structure" in result}
    if structured:
        lines += ["", "## Latent structure (training codes: shares of each subspace's variance; within-cell variance "
                  "per dimension, 1 for the prior)", "",
                  "| model | subspace | phone effect | speaker effect | interaction | within-cell | within-cell variance per dim |",
                  "|---|---|---|---|---|---|---|"]
        for model, table in structured.items():
            for subspace, shares in table.items():
                lines.append(f"| {model} | {subspace} | " + " | ".join(
                    _fmt(shares[key]) for key in ("phone", "speaker", "interaction", "within", "within_variance_per_dim"))
                    + " |")
    rows = {**summary["models"], **summary.get("reference", {})}
    parallel = {model: result["parallel"] for model, result in rows.items() if "parallel" in result}
    if parallel:
        first = next(iter(parallel.values()))
        lines += ["", "## Parallel conversion distortion (speaker manipulation of held-out utterances; mean log-Mel "
                  "distance in dB to the target speaker's real reading of the same sentence, aligned by phone segments)", "",
                  f"{first['pairs']['mean']:.0f} utterance pairs, {first['frames']['mean']:.0f} aligned speech frames.", "",
                  "| model | converted x' | unconverted x |", "|---|---|---|"]
        for model, values in parallel.items():
            lines.append(f"| {model} | {_fmt(values['converted_db'])} | {_fmt(values['unconverted_db'])} |")
    gates = {model: result["gate_accuracy"] for model, result in rows.items() if "gate_accuracy" in result}
    if gates:
        lines += ["", "## Matching gates (share of frames whose kept class the model infers right)", "",
                  "| row | kept factor | training pool | scored frames |", "|---|---|---|---|"]
        for model, accuracy in gates.items():
            for factor, shares in accuracy.items():
                lines.append(f"| {model} | {factor} | {_fmt(shares['pool'])} | {_fmt(shares['scored'])} |")
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
