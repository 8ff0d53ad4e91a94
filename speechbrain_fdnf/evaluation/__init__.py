"""The paper's evaluation protocol and this project's additions, for any of the five models.

* :mod:`~speechbrain_fdnf.evaluation.probes`: MLP probes on input features,
  linear leakage probes on latent subspaces;
* :mod:`~speechbrain_fdnf.evaluation.tables`: the protocol of the posterior tables of phone and
  speaker manipulation; :mod:`~speechbrain_fdnf.evaluation.movers`: what moves the frames
  (a model's shift, matching, the reference rows);
* :mod:`~speechbrain_fdnf.evaluation.parallel`: parallel conversion distortion;
* :mod:`~speechbrain_fdnf.evaluation.tsne`: the t-SNE grid;
* :mod:`~speechbrain_fdnf.evaluation.config`: the typed settings;
  :mod:`~speechbrain_fdnf.evaluation.sections`: every section of the results and the report, in one list;
* :mod:`~speechbrain_fdnf.evaluation.driver`: all sections for trained models and one seed;
* :mod:`~speechbrain_fdnf.evaluation.report`: aggregation over seeds and the markdown report.

``recipes/TIMIT/evaluate.py`` runs it over seeds, training missing models first.
"""

from speechbrain_fdnf.evaluation.config import EvaluationConfig
from speechbrain_fdnf.evaluation.driver import TABLES, evaluate_models, label_sets, table_pairs
from speechbrain_fdnf.evaluation.sections import SECTIONS, Section
from speechbrain_fdnf.evaluation.probes import FeatureProbe, leakage_probes, load_or_train_probe
from speechbrain_fdnf.evaluation.report import aggregate, markdown
from speechbrain_fdnf.evaluation.tables import draw_targets, posterior_table
from speechbrain_fdnf.evaluation.tsne import tsne_grid, tsne_sample

__all__ = [
    "SECTIONS",
    "TABLES",
    "EvaluationConfig",
    "Section",
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
