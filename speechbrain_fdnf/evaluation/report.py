"""The evaluation report: per-seed results aggregated over seeds, written as markdown section by section.

Authors
 * speechbrain-fdnf developers
"""

import numpy as np

from speechbrain_fdnf.evaluation.config import EvaluationConfig
from speechbrain_fdnf.evaluation.sections import chosen_sections
from speechbrain_fdnf.factors import LABEL_SETS

#: Class symbols of the table columns (the paper's q and s).
SYMBOLS = {name: label_set.symbol for name, label_set in LABEL_SETS.items()}


def aggregate(per_seed):
    """Mean and standard deviation over seeds of every number in the per-seed results."""

    def walk(values):
        if isinstance(values[0], dict):
            return {key: walk([v[key] for v in values]) for key in values[0]}
        array = np.asarray(values, dtype=float)
        return {"mean": float(array.mean()), "std": float(array.std()), "values": array.tolist()}

    return walk(per_seed)


def markdown(summary, seeds, config, row_kinds=None):
    """The report: the paper's tables first, then this project's rows beyond the paper and the reference
    rows, then every other section of ``config`` (:data:`~speechbrain_fdnf.evaluation.sections.SECTIONS`).

    Arguments
    ---------
    summary : dict
        :func:`aggregate` of the per-seed results.
    seeds : list
        The seeds, for the title.
    config : EvaluationConfig
        Which tables and sections to write.
    row_kinds : dict, optional
        Row -> ``"paper"``, ``"beyond"`` or ``"reference"`` (from the evaluation); a row without one is
        the paper's.
    """
    if not isinstance(config, EvaluationConfig):
        config = EvaluationConfig.from_dict(dict(config))
    lines = [f"# f-DNF evaluation (seeds: {', '.join(map(str, seeds))})", ""]
    for section in chosen_sections(config):
        lines += section.render(summary, row_kinds or {}, config)
    return "\n".join(lines)
