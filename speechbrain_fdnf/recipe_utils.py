"""Recipe plumbing shared by the training, evaluation and reuse recipes.

* :func:`load_hparams`: a model yaml holds its model and includes
  ``common.yaml`` under ``common``; this loads it, sends command-line
  overrides to whichever level defines each key, and flattens the result.
* :func:`prepare_data`: embedded corpus (if no TIMIT is given), preparation,
  label encoders and frame caches, each done once on the main process.
* :func:`configure_model`: gives the prior its class counts from the encoders.
* :func:`run_cleanly`: a data or argument error is one line and exit code 2.

Authors
 * speechbrain-fdnf developers
"""

import json
import logging
import re
import sys
from pathlib import Path

import yaml
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.distributed import run_on_main

from speechbrain_fdnf.data.frames import (FrameDataError, FrameSet, build_encoders, featurize, parallel_frame_pairs,
                                         utterance_frame_pairs)
from speechbrain_fdnf.data.synthesize import CorpusOptions, synthesize_corpus
from speechbrain_fdnf.data.audio import shown
from speechbrain_fdnf.data.timit import SPLITS, TimitError, is_directory, prepare_timit
from speechbrain_fdnf.lobes.models import with_class_counts

logger = logging.getLogger(__name__)
COMMON_KEY = "common"


def route_overrides(path, overrides=None):
    """Sends each override to the level of a model yaml that defines its key.

    Arguments
    ---------
    path : str or Path
        The model's yaml file.
    overrides : str or dict, optional
        Overrides as SpeechBrain's ``parse_arguments`` returns them (a yaml
        string) or a dict. A key defined at the top of the model file stays
        there; any other key goes to the included ``common.yaml``.

    Returns
    -------
    dict
        Overrides for ``load_hyperpyyaml`` (and for
        ``sb.create_experiment_directory``, so that the saved
        ``hyperparams.yaml`` is the exact, self-contained configuration).
    """
    if isinstance(overrides, str):
        overrides = yaml.safe_load(overrides) or {}
    overrides = dict(overrides or {})
    top_level = set(re.findall(r"^([A-Za-z_][\w]*):", Path(path).read_text(), flags=re.MULTILINE))
    routed = {key: value for key, value in overrides.items() if key in top_level}
    shared = {key: value for key, value in overrides.items() if key not in top_level}
    if shared:
        routed[COMMON_KEY] = dict(routed.get(COMMON_KEY) or {}, **shared)
    return routed


def load_hparams(path, overrides=None):
    """Loads a model yaml (which includes ``common.yaml``) into one flat dict.

    Arguments
    ---------
    path : str or Path
        The model's yaml file, or the ``hyperparams.yaml`` a training run saved.
    overrides : str or dict, optional
        See :func:`route_overrides`.

    Returns
    -------
    dict
    """
    with open(path) as handle:
        hparams = load_hyperpyyaml(handle, route_overrides(path, overrides))
    flat = dict(hparams.pop(COMMON_KEY, {}))
    flat.update(hparams)
    return flat


def corpus_folder(hparams):
    """The corpus to prepare: ``data_folder``, or the embedded corpus (built on first use)."""
    if hparams.get("data_folder"):
        folder = Path(hparams["data_folder"])
        if not is_directory(folder):
            raise FileNotFoundError(f"--data_folder {shown(folder)} does not exist (no fallback to the embedded corpus)")
        return folder
    folder = Path(hparams["embedded_corpus_folder"])
    options = CorpusOptions.of_size(hparams.get("embedded_corpus_size", "demo"))
    if not (folder / "corpus.json").exists():
        logger.info("No data_folder given: synthesizing the embedded eSpeak NG corpus into %s", folder)
    run_on_main(synthesize_corpus, args=[folder, options])
    return folder


def prepare_data(hparams):
    """Prepares annotations, encoders and frame caches; returns ``(encoders, frame_sets)``.

    ``frame_sets`` maps each split (train, valid, heldout, test) to a
    :class:`FrameSet`. The test split allows unseen speakers and dialects
    (TIMIT's test speakers are new); any other unseen label is an error, or
    with ``on_unseen_label: unknown`` the unknown class ``-1``.
    """
    corpus = corpus_folder(hparams)
    prep = Path(hparams["prep_folder"])
    kwargs = dict(
        data_folder=corpus,
        save_folder=prep,
        exclude_sa=hparams["exclude_sa"],
        heldout_per_speaker=hparams["heldout_per_speaker"],
        valid_per_speaker=hparams["valid_per_speaker"],
        test_set=hparams["test_set"],
        sample_rate=hparams["sample_rate"],
        on_error=hparams["on_bad_file"],
    )
    run_on_main(prepare_timit, kwargs=kwargs)
    run_on_main(build_encoders, args=[prep / "train.json", prep])  # one writer for the encoder files
    encoders = build_encoders(prep / "train.json")
    feature_kwargs = {"compute_features": hparams["compute_features"], "on_nonfinite": hparams["on_nonfinite"]}

    def featurize_split(split):
        # TIMIT's test speakers are new by design; elsewhere an unseen label is an
        # error unless the yaml maps it to "unknown" (-1, marginalised by the flows).
        unseen_ok = ("speaker", "dialect") if split == "test" else ()
        if hparams.get("on_unseen_label", "raise") == "unknown":
            unseen_ok = ("speaker", "dialect", "gender")
        return featurize(prep / f"{split}.json", prep / f"{split}_frames.pt", encoders, allow_unknown=unseen_ok, **feature_kwargs)

    # The main process computes the caches; then every process loads them.
    run_on_main(lambda: [featurize_split(split) for split in SPLITS])
    silence = encoders["phone"].lab2ind["sil"]
    frame_sets = {
        split: FrameSet(featurize_split(split), hparams["context"], hparams["exclude_silence"], silence)
        for split in SPLITS
    }
    counts = {split: len(frames) for split, frames in frame_sets.items()}
    logger.info("Frames per split: %s (dimension %d)", counts, frame_sets["train"].dim)
    return encoders, frame_sets


def training_pairs(hparams, frames):
    """The kinds of frame pairs the yaml asks for (weight > 0), as keyword arguments of
    :meth:`FlowBrain.use_pairs <speechbrain_fdnf.brain.FlowBrain.use_pairs>`.

    ``pair_weight``: aligned frames of two speakers reading one sentence
    (:func:`~speechbrain_fdnf.data.frames.parallel_frame_pairs`), sharing
    ``pair_shared``; ``utterance_pair_weight``: two phones of one utterance
    (:func:`~speechbrain_fdnf.data.frames.utterance_frame_pairs`), sharing
    ``utterance_pair_shared``.
    """
    kinds = []
    if hparams.get("pair_weight", 0) > 0:
        entries = json.loads((Path(hparams["prep_folder"]) / "train.json").read_text())
        hop = round(hparams["sample_rate"] * hparams["hop_length"] / 1000)
        kinds.append(dict(kind="parallel", pairs=parallel_frame_pairs(frames, entries, hop),
                          shared=hparams["pair_shared"], weight=hparams["pair_weight"]))
    if hparams.get("utterance_pair_weight", 0) > 0:
        kinds.append(dict(kind="same-utterance", pairs=utterance_frame_pairs(frames, seed=hparams["seed"]),
                          shared=hparams["utterance_pair_shared"], weight=hparams["utterance_pair_weight"]))
    return [dict(kind, frames=frames) for kind in kinds]


def reuse_setup(argv, splits):
    """Start of a recipe that reuses trained models: ``(hparams, run_opts, output folder, entries)``.

    Loads the yaml with the command-line overrides, creates the output folder,
    (re)prepares ``prep_folder`` from ``data_folder`` when one is given, and
    reads the prepared annotations of ``splits`` (split -> id -> entry).
    """
    import speechbrain as sb

    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    with open(hparams_file) as handle:
        hparams = load_hyperpyyaml(handle, overrides)
    output = Path(hparams["output_folder"])
    sb.create_experiment_directory(experiment_directory=str(output), hyperparams_to_save=hparams_file,
                                   overrides=overrides)
    prep = Path(hparams["prep_folder"])
    if hparams.get("data_folder"):
        prepare_timit(hparams["data_folder"], prep)
    missing = [split for split in splits if not (prep / f"{split}.json").exists()]
    if missing:
        raise FileNotFoundError(f"{prep} has no {', '.join(missing)}.json: train the f-DNF first "
                                "(recipes/TIMIT/train_fdnf.py prepares the data) or give --data_folder")
    entries = {split: json.loads((prep / f"{split}.json").read_text()) for split in splits}
    return hparams, run_opts, output, entries


#: Errors in the user's data or arguments: reported in one line by :func:`run_cleanly`.
USER_ERRORS = (TimitError, FrameDataError, FileNotFoundError, FileExistsError)


def run_cleanly(main, argv):
    """Runs a recipe's ``main(argv)``; a data or argument error is one line on stderr and exit code 2.

    Anything else is a bug and keeps its traceback.
    """
    try:
        main(argv)
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def configure_model(model, encoders):
    """Gives a flow's prior the number of classes of each of its factors (from the label encoders)."""
    return with_class_counts(model, {name: len(encoder) for name, encoder in encoders.items()})
