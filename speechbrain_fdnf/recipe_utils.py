"""Recipe plumbing shared by the training, evaluation and reuse recipes.

* :func:`load_hparams`: a model yaml holds its model and includes
  ``common.yaml`` under ``common``; this loads it, sends command-line
  overrides to whichever level defines each key, and flattens the result.
* :func:`load_config`: a yaml without a model (evaluation, reuse recipes), overrides applied.
* :func:`prepare_data`: the yaml's corpus (:mod:`speechbrain_fdnf.corpora`), label encoders
  and frame caches, each done once on the main process.
* :func:`configure_model`: gives the prior its class counts from the encoders.
* :func:`speaker_registers`: the training speakers' F0 registers the export keeps beside the model.
* :func:`run_cleanly`: a data or argument error is one line and exit code 2.

Authors
 * speechbrain-fdnf developers
"""

import hashlib
import logging
import re
import sys
from pathlib import Path

import yaml
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.distributed import run_on_main

from speechbrain_fdnf.corpora import prepare_corpus
from speechbrain_fdnf.data.frames import (
    FrameDataError,
    FrameSet,
    build_encoders,
    featurize,
    parallel_frame_pairs,
    utterance_frame_pairs,
)
from speechbrain_fdnf.data.timit import TimitError
from speechbrain_fdnf.factors import SILENCE, SILENCE_LABEL, unseen_allowed
from speechbrain_fdnf.files import PREPARED_SPLITS, hop_samples, prepared_split_path, read_prepared_split
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


def load_config(path, overrides=None):
    """Loads a yaml that holds no model (evaluation, reuse recipes) with ``overrides`` (a yaml string or dict)."""
    with open(path) as handle:
        return load_hyperpyyaml(handle, overrides)


def prepare_data(hparams):
    """Prepares annotations, encoders and frame caches; returns ``(encoders, frame_sets)``.

    ``frame_sets`` maps each split (train, valid, heldout, test) to a
    :class:`FrameSet`. The test split allows unseen speakers and dialects
    (TIMIT's test speakers are new); any other unseen label is an error, or
    with ``on_unseen_label: unknown`` the unknown class ``-1``.
    """
    prep = prepare_corpus(hparams)
    train_json = prepared_split_path(prep, "train")
    run_on_main(build_encoders, args=[train_json, prep])  # one writer for the encoder files
    encoders = build_encoders(train_json)
    feature_kwargs = {"compute_features": hparams["compute_features"], "on_nonfinite": hparams["on_nonfinite"]}

    def featurize_split(split):
        # TIMIT's test speakers are new by design; elsewhere an unseen label is an error unless
        # the yaml maps it to "unknown" (-1, marginalised by the flows): the factor schema says which.
        unseen_ok = unseen_allowed(split, hparams.get("on_unseen_label", "raise"))
        return featurize(prepared_split_path(prep, split), prep / f"{split}_frames.pt", encoders,
                         allow_unknown=unseen_ok, **feature_kwargs)

    # The main process computes the caches; then every process loads them.
    run_on_main(lambda: [featurize_split(split) for split in PREPARED_SPLITS])
    silence = encoders[SILENCE_LABEL].lab2ind[SILENCE]
    frame_sets = {
        split: FrameSet(featurize_split(split), hparams["context"], hparams["exclude_silence"], silence)
        for split in PREPARED_SPLITS
    }
    counts = {split: len(frames) for split, frames in frame_sets.items()}
    logger.info("Frames per split: %s (dimension %d)", counts, frame_sets["train"].dim)
    return encoders, frame_sets


def speaker_registers(hparams):
    """Each training speaker's F0 register (:class:`~speechbrain_fdnf.pitch.F0Registers`, WORLD's default
    tracker over its training utterances), which the export keeps beside the model so that a conversion to a
    training speaker named by its label moves F0 (``method="world"``) without audio of that speaker.

    Measured once per prepared training split (cached in ``prep_folder`` under the split's digest: another
    preparation measures again) by the main process. ``None`` when the yaml sets ``f0_registers: False`` or
    pyworld (the ``world`` extra) is not installed.
    """
    if not hparams.get("f0_registers", True):
        return None
    from speechbrain_fdnf.pitch import DEFAULT_F0_TRACKER, F0Registers, pyworld_module, tracker_settings

    try:
        pyworld_module()
    except ImportError:
        logger.info("pyworld is not installed: the model is exported without its speakers' F0 registers")
        return None
    train_json = prepared_split_path(hparams["prep_folder"], "train")
    digest = hashlib.sha1(Path(train_json).read_bytes()).hexdigest()[:12]
    # named by the tracker's settings too: registers measured before a setting changed are measured again
    cache = Path(hparams["prep_folder"]) / f"f0_registers_{tracker_settings()}_{digest}.json"

    def measure():
        if cache.is_file():
            return
        audio = {}
        for entry in read_prepared_split(hparams["prep_folder"], "train").values():
            audio.setdefault(entry["speaker"], []).append(entry["wav"])
        logger.info("Measuring the F0 register of %d training speakers (%s)", len(audio), DEFAULT_F0_TRACKER)
        F0Registers.measure(audio, hparams["sample_rate"], DEFAULT_F0_TRACKER).save(cache)

    run_on_main(measure)
    return F0Registers.load(cache)


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
        entries = read_prepared_split(hparams["prep_folder"], "train")
        hop = hop_samples(hparams["compute_features"])
        kinds.append(dict(kind="parallel", pairs=parallel_frame_pairs(frames, entries, hop),
                          shared=hparams["pair_shared"], weight=hparams["pair_weight"]))
    if hparams.get("utterance_pair_weight", 0) > 0:
        kinds.append(dict(kind="same-utterance", pairs=utterance_frame_pairs(frames, seed=hparams["seed"]),
                          shared=hparams["utterance_pair_shared"], weight=hparams["utterance_pair_weight"]))
    return [dict(kind, frames=frames) for kind in kinds]


def reuse_setup(argv, splits):
    """Start of a recipe that reuses trained models: ``(hparams, run_opts, output folder, entries)``.

    Loads the yaml with the command-line overrides, creates the output folder,
    (re)prepares ``prep_folder`` from ``data_folder`` when one is given (through the corpus seam,
    with the preparation options the yaml gives or, for those it does not, the ones the folder was
    prepared with), and reads the prepared annotations of ``splits`` (split -> id -> entry).
    """
    import speechbrain as sb

    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    hparams = load_config(hparams_file, overrides)
    output = Path(hparams["output_folder"])
    sb.create_experiment_directory(experiment_directory=str(output), hyperparams_to_save=hparams_file,
                                   overrides=overrides)
    prep = Path(hparams["prep_folder"])
    if hparams.get("data_folder"):
        prepare_corpus(hparams)
    missing = [split for split in splits if not prepared_split_path(prep, split).exists()]
    if missing:
        raise FileNotFoundError(f"{prep} has no {', '.join(missing)}.json: train the f-DNF first "
                                "(recipes/TIMIT/train_fdnf.py prepares the data) or give --data_folder")
    entries = {split: read_prepared_split(prep, split) for split in splits}
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
