"""The paper's evaluation protocol and this project's additions, for any of the five models.

* :mod:`~speechbrain_fdnf.evaluation.probes`: MLP probes on input features,
  linear leakage probes on latent subspaces;
* :mod:`~speechbrain_fdnf.evaluation.tables`: the posterior tables of phone and
  speaker manipulation;
* :mod:`~speechbrain_fdnf.evaluation.tsne`: the t-SNE grid;
* :mod:`~speechbrain_fdnf.evaluation.driver`: all of it for trained models and one seed;
* :mod:`~speechbrain_fdnf.evaluation.report`: aggregation over seeds and the markdown report.

``recipes/TIMIT/evaluate.py`` runs it over seeds, training missing models first.
"""

from speechbrain_fdnf.evaluation.driver import TABLES, evaluate_models, label_sets, table_pairs
from speechbrain_fdnf.evaluation.probes import FeatureProbe, leakage_probes, load_or_train_probe
from speechbrain_fdnf.evaluation.report import aggregate, markdown
from speechbrain_fdnf.evaluation.tables import draw_targets, posterior_table
from speechbrain_fdnf.evaluation.tsne import tsne_grid, tsne_sample

__all__ = [
    "TABLES",
    "FeatureProbe",
    "aggregate",
    "draw_targets",
    "evaluate_models",
    "label_sets",
    "leakage_probes",
    "load_or_train_probe",
    "markdown",
    "posterior_table",
    "table_pairs",
    "tsne_grid",
    "tsne_sample",
]
