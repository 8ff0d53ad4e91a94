"""The whole evaluation of trained models for one seed: every section of :data:`~speechbrain_fdnf.evaluation.sections.SECTIONS`.

Every model is loaded from its exported inference folder through
:class:`~speechbrain_fdnf.inference.SpeechFactorizer`, the path a user
takes, and scored through its :class:`~speechbrain_fdnf.engine.FeatureFlow`;
the NLL comes from the ``nll.json`` its training run wrote beside its export.

Authors
 * speechbrain-fdnf developers
"""

import logging
import time
from collections import defaultdict
from pathlib import Path

from speechbrain_fdnf.evaluation.config import GATES, EvaluationConfig  # noqa: F401  (GATES: named here before 0.5)
from speechbrain_fdnf.evaluation.probes import load_or_train_probe
from speechbrain_fdnf.evaluation.sections import CEILING, Model, Run, chosen_sections, structure_table  # noqa: F401
from speechbrain_fdnf.factors import PAPER_FACTORS
from speechbrain_fdnf.inference import SpeechFactorizer

logger = logging.getLogger(__name__)

#: Default posterior tables: (factor changed, factor that should stay).
TABLES = (tuple(PAPER_FACTORS), tuple(reversed(PAPER_FACTORS)))
#: The t-SNE grid's rows, and the two factors of the latent structure table.
TSNE_FACTORS = PAPER_FACTORS


def as_config(config):
    """An :class:`EvaluationConfig` from one, or from the dict of a loaded yaml (``output_root`` may be left out)."""
    if isinstance(config, EvaluationConfig):
        return config
    return EvaluationConfig.from_dict({"output_root": "", **config})


def table_pairs(config):
    """``[(target, other), ...]`` of a config or its dict (default: phone and speaker manipulation)."""
    return as_config(config).table_pairs()


def label_sets(config):
    """Every label set the tables, the probes and the t-SNE grid need, in a stable order."""
    return as_config(config).label_sets()


def evaluate_models(models, encoders, frames, config, seed, utterances=None, beyond_paper=()):
    """Scores every model with the same probes and the same frames, section by section.

    Arguments
    ---------
    models : dict
        Display name -> ``(inference folder, nll.json)`` of a trained model.
    encoders : dict
        Label set -> ``CategoricalEncoder`` of the prepared data.
    frames : dict
        Split -> ``FrameSet`` (``train`` and ``heldout`` are used).
    config : EvaluationConfig or dict
        The evaluation yaml (:class:`~speechbrain_fdnf.evaluation.config.EvaluationConfig` documents the keys).
    seed : int
        Seeds the probes and every sample.
    utterances : dict, optional
        ``{"heldout": annotations, "references": annotations}`` (prepared
        JSON entries by id): with them, every model also gets the parallel
        conversion distortion of speaker manipulation (held-out utterances
        converted to a training speaker who read the same sentence); with
        ``"train"`` annotations too, so does each matching row (the pool:
        the target speaker's training utterances but the reading).
    beyond_paper : collection of str
        Display names of models beyond the paper (reported after the paper's rows).

    Returns
    -------
    (dict, dict, dict)
        ``{"probe_accuracy": ..., "models": {name: {"tables", "leakage", "nll"[, "parallel", "structure"]}},
        "reference": {row: {"tables"[, "gate_accuracy", "parallel"]}}}``, the data of the t-SNE grid,
        and the kind of every row (``"paper"``, ``"beyond"``, ``"reference"``: the report's order).
    """
    config = as_config(config)
    run = Run(config, encoders, frames, seed, utterances=utterances)
    for name in config.label_sets():
        run.probes[name], run.probe_accuracy[name] = load_or_train_probe(
            Path(config.output_root) / "probes", name, run.train, run.heldout, len(encoders[name]),
            epochs=config.probe_epochs, hidden_size=config.probe_hidden, seed=seed,
        )
    sections = chosen_sections(config)
    seconds = defaultdict(float)  # wall time of each section, logged at the end: where an evaluation's time goes

    def timed(section, step, *args):
        start = time.perf_counter()
        step(*args)
        seconds[section.name] += time.perf_counter() - start

    for section in sections:
        timed(section, section.start, run)
    for display, (folder, nll_file) in models.items():
        factorizer = SpeechFactorizer.from_hparams(source=folder, run_opts={"device": config.device})
        engine = factorizer.engine
        model = Model(display, factorizer, nll_file, run.train.feats)  # its training codes: once, shared by all
        for name in config.label_sets():
            if not engine.has_prior_means(name):
                engine.fit_class_means(name, run.train.feats, run.train.labels[name], len(encoders[name]),
                                       codes=model.train_codes)
        run.results[display] = {}
        run.row_kinds[display] = "beyond" if display in beyond_paper else "paper"
        for section in sections:
            timed(section, section.model, run, model)
    for section in sections:
        timed(section, section.finish, run)
    logger.info("Evaluation of seed %d, seconds per section: %s", seed,
                ", ".join(f"{name} {value:.0f}" for name, value in seconds.items()))
    result = {"probe_accuracy": run.probe_accuracy, "models": run.results, "reference": run.reference}
    if run.conversion:
        result["conversion"] = run.conversion
    return result, run.figure, run.row_kinds
