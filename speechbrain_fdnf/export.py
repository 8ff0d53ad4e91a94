"""Writes a trained model as a folder that ``SpeechFactorizer.from_hparams`` loads.

The folder holds ``hyperparams.yaml``, ``model.ckpt``, ``normalize.ckpt`` and
one ``<label>_encoder.txt`` per label set, and for a frame-level factor of
the prior a ``<factor>_decoder.ckpt``
(:class:`~speechbrain_fdnf.decoding.ClassSequenceDecoder`, optional: the
matching gate decodes that factor with it), and optionally the training speakers'
F0 registers (``f0_registers.json``, :class:`~speechbrain_fdnf.pitch.F0Registers`:
a conversion to a speaker named by its label moves F0 with them). The yaml is :data:`TEMPLATE` filled
with the training run's own entries (its saved ``hyperparams.yaml``: the
feature extractor ``compute_features``, ``sample_rate``, ``context``,
``input_dim`` and the ``model``), so the model is rebuilt exactly as it was
trained; the class counts the recipe gave the prior at run time are recorded
beside it and given back by :func:`speechbrain_fdnf.lobes.with_class_counts`.

Authors
 * speechbrain-fdnf developers
"""

import logging
import os
import shutil
import string
import tempfile
from pathlib import Path

import torch
import yaml
from speechbrain.dataio.encoder import CategoricalEncoder

from speechbrain_fdnf.decoding import ClassSequenceDecoder
from speechbrain_fdnf.engine import unwrap
from speechbrain_fdnf.files import read_json, write_json_atomic
from speechbrain_fdnf.pitch import REGISTERS_FILE
from speechbrain_fdnf.tagging import TAGGER_CONFIG, TAGGER_WEIGHTS

logger = logging.getLogger(__name__)

#: Entries copied from the training run's configuration.
RUN_ENTRIES = ("sample_rate", "context", "input_dim", "compute_features")

TEMPLATE = string.Template("""\
# Written by speechbrain_fdnf.export.export_model; load with
# speechbrain_fdnf.inference.SpeechFactorizer.from_hparams(source=<this folder>).

pretrained_path: .
label_sets: $label_sets
num_classes: $num_classes

# From the training run's hyperparams.yaml:
$run_entries
$model_definition

model: !apply:speechbrain_fdnf.lobes.with_class_counts [!ref <model_definition>, !ref <num_classes>]
normalize: !new:speechbrain.processing.features.InputNormalization
    norm_type: global
encoders: !apply:speechbrain_fdnf.export.load_encoders [!ref <pretrained_path>, !ref <label_sets>]

modules:
    model: !ref <model>
    normalize: !ref <normalize>

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        model: !ref <model>
        normalize: !ref <normalize>
    custom_hooks:
        model: !name:speechbrain_fdnf.export.load_state_strict
    paths:
        model: !ref <pretrained_path>/model.ckpt
        normalize: !ref <pretrained_path>/normalize.ckpt
""")


def export_model(folder, model, normalize, encoders, run_hparams_file, decoders=None, registers=None):
    """Writes an inference folder (atomically: a half-written folder never replaces a good one).

    Arguments
    ---------
    folder : str or Path
        Destination (replaced if it exists).
    model : DiscriminativeFlow or VAE
        The trained model.
    normalize : InputNormalization
        Its global feature normalisation.
    encoders : dict
        Label set -> ``CategoricalEncoder``.
    run_hparams_file : str or Path
        The ``hyperparams.yaml`` the training run saved (SpeechBrain's
        ``create_experiment_directory`` writes it with every reference resolved).
    decoders : dict, optional
        Factor -> ``ClassSequenceDecoder`` (:meth:`FeatureFlow.fit_sequence_decoders
        <speechbrain_fdnf.engine.FeatureFlow.fit_sequence_decoders>`).
    registers : F0Registers, optional
        The training speakers' F0 registers (:func:`speechbrain_fdnf.recipe_utils.speaker_registers`).

    Returns
    -------
    Path
        ``folder``.
    """
    folder = Path(folder)
    text = inference_yaml(run_hparams_file, model, encoders)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        torch.save(_cpu_state(unwrap(model)), staging / "model.ckpt")
        normalize._save(staging / "normalize.ckpt")
        for name, encoder in encoders.items():
            encoder.save(str(staging / f"{name}_encoder.txt"))
        for name, decoder in (decoders or {}).items():
            torch.save(_cpu_state(decoder), staging / f"{name}_decoder.ckpt")
        if registers is not None:
            registers.save(staging / REGISTERS_FILE)
        (staging / "hyperparams.yaml").write_text(text)
        if folder.exists():
            keep_added_files(folder, staging)
            shutil.rmtree(folder)
        os.replace(staging, folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return folder


#: Files another recipe adds to an inference folder (the contextual phone tagger of
#: ``recipes/TIMIT/train_tagger.py``): a resumed run's new export keeps them while the phone classes they index stay.
ADDED_FILES = (TAGGER_WEIGHTS, TAGGER_CONFIG)


def keep_added_files(folder, staging):
    """Copies :data:`ADDED_FILES` of the export in ``folder`` into the new one in ``staging`` (a tagger trained
    beside a model survives the model's further training), unless the phone classes changed (then it is dropped,
    with a warning: its outputs would index other classes)."""
    if not all((folder / name).is_file() for name in ADDED_FILES):
        return
    old, new = folder / "phone_encoder.txt", staging / "phone_encoder.txt"
    if not (old.is_file() and new.is_file() and old.read_text() == new.read_text()):
        logger.warning("%s: the phone classes changed, so its phone tagger is dropped (train it again: "
                       "recipes/TIMIT/train_tagger.py)", folder)
        return
    for name in ADDED_FILES:
        shutil.copy2(folder / name, staging / name)
    logger.info("%s: its phone tagger is kept in the new export", folder)


def _cpu_state(module):
    """A module's state dict with every tensor on the CPU (a folder written on a GPU loads anywhere)."""
    return {key: value.cpu() for key, value in module.state_dict().items()}


def inference_yaml(run_hparams_file, model, encoders):
    """The inference ``hyperparams.yaml`` text of a trained model (see :data:`TEMPLATE`)."""
    root = yaml.compose(Path(run_hparams_file).read_text())
    prior = getattr(unwrap(model), "prior", None)
    flow = lambda value: yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()  # noqa: E731
    return TEMPLATE.substitute(
        label_sets=flow(sorted(encoders)),
        num_classes=flow(dict(prior.num_classes) if prior is not None else {}),
        run_entries="\n".join(_entry_yaml(root, key, run_hparams_file) for key in RUN_ENTRIES),
        model_definition=_entry_yaml(root, "model", run_hparams_file, name="model_definition"),
    )


def _entry_yaml(root, key, source, name=None):
    """``key``'s entry of a composed yaml document (at its top or inside an included file's
    mapping, such as ``common``), serialized as ``name: ...``."""
    mappings = [root] if isinstance(root, yaml.MappingNode) else []
    mappings += [value for _, value in (root.value if mappings else []) if isinstance(value, yaml.MappingNode)]
    for mapping in mappings:
        for entry_key, value in mapping.value:
            if entry_key.value == key:
                entry = yaml.MappingNode("tag:yaml.org,2002:map", [(yaml.ScalarNode("tag:yaml.org,2002:str", name or key), value)])
                return yaml.serialize(entry).strip()
    raise ValueError(f"{source} has no {key!r} entry")


def load_encoders(folder, label_sets):
    """``{label set: CategoricalEncoder}`` from the ``<label>_encoder.txt`` files of ``folder``."""
    encoders = {}
    for name in label_sets:
        path = Path(folder) / f"{name}_encoder.txt"
        if not path.is_file():
            raise FileNotFoundError(f"model folder {folder} lacks {path.name}")
        encoders[name] = CategoricalEncoder()
        encoders[name].load(str(path))
    return encoders


def load_decoder(folder, factor):
    """The ``ClassSequenceDecoder`` of ``factor`` a model folder holds, or ``None`` when it has none."""
    path = Path(folder) / f"{factor}_decoder.ckpt"
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu")
    try:
        return ClassSequenceDecoder(state["log_transitions"], float(state["scale"]))
    except (KeyError, ValueError) as error:
        raise RuntimeError(f"{path} is not a sequence decoder: {error}") from None


def load_state_strict(module, path):
    """Loads a state dict into ``module``; any missing or unexpected key is an error naming the file."""
    try:
        module.load_state_dict(torch.load(path, map_location="cpu"), strict=True)
    except RuntimeError as error:
        raise RuntimeError(f"{path} does not match the model its hyperparams.yaml builds: {error}") from None


# ---------------------------------------------------------------------- NLL records of a run
def record_nll(path, split, loss, epoch):
    """Adds ``split``'s NLL to the JSON file ``path`` (written atomically).

    The file reads ``{"epoch": <epoch trained to>, "nll_nats_per_dim": {split: value}}``;
    results of another epoch are dropped.

    Example
    -------
    >>> path = getfixture("tmp_path") / "nll.json"
    >>> record_nll(path, "heldout", 0.5, 3); record_nll(path, "test", 0.7, 3)
    >>> read_nll(path)
    {'heldout': 0.5, 'test': 0.7}
    """
    record = read_json(path, default={})
    if record.get("epoch") != epoch:
        record = {"epoch": epoch, "nll_nats_per_dim": {}}
    record["nll_nats_per_dim"][split] = float(loss)
    write_json_atomic(path, record)


def read_nll(path):
    """``{split: nll}`` that :func:`record_nll` wrote (empty if the file does not exist)."""
    return read_json(path, default={"nll_nats_per_dim": {}})["nll_nats_per_dim"]
