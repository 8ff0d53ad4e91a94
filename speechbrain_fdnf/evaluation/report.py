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
    """The report: the headline first, the paper's tables in its implied setup (over ``table_speakers``
    speakers, each row beside the paper's), then the tables over all training speakers with this project's
    rows beyond the paper and the reference rows, then every other section of ``config``
    (:data:`~speechbrain_fdnf.evaluation.sections.SECTIONS`).

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
    # the paper's implied setup is the headline: its section first, the others in their running order
    for section in sorted(chosen_sections(config), key=lambda section: section.name != "subset"):
        lines += section.render(summary, row_kinds or {}, config)
    return "\n".join(lines)
