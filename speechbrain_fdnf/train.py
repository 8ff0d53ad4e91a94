"""Training of one of the five generative models (f-DNF, NF, phone/speaker DNF, VAE) on any prepared corpus.

The per-dataset recipes (``recipes/TIMIT``, ``recipes/LibriSpeech``, ``recipes/VCTK``) are this
function with their corpus chosen by name (:func:`with_corpus`): one Brain, one yaml, one training
loop for every corpus.

Authors
 * speechbrain-fdnf developers
"""

from pathlib import Path

import speechbrain as sb
import torch
from speechbrain.utils.distributed import ddp_init_group, run_on_main

from speechbrain_fdnf.brain import FlowBrain
from speechbrain_fdnf.export import export_model
from speechbrain_fdnf.recipe_utils import (
    configure_model,
    load_hparams,
    prepare_data,
    route_overrides,
    speaker_registers,
    training_pairs,
)


def with_corpus(argv, corpus):
    """``argv`` with ``--corpus=<corpus>`` added, unless it already chooses a corpus.

    Example
    -------
    >>> with_corpus(["hparams/fdnf.yaml", "--data_folder=x"], "vctk")
    ['hparams/fdnf.yaml', '--data_folder=x', '--corpus=vctk']
    >>> with_corpus(["hparams/fdnf.yaml", "--corpus", "manifest"], "vctk")
    ['hparams/fdnf.yaml', '--corpus', 'manifest']
    """
    chosen = any(arg == "--corpus" or arg.startswith("--corpus=") for arg in argv)
    return list(argv) if chosen else [*argv, f"--corpus={corpus}"]


def snapshot_folder(output_folder, epoch):
    """Where a run exports its model after ``epoch`` (``snapshot_epochs``): a training curve from one run.

    Example
    -------
    >>> snapshot_folder("results/fdnf/1234", 6).as_posix()
    'results/fdnf/1234/snapshots/epoch_6'
    """
    return Path(output_folder) / "snapshots" / f"epoch_{epoch}"


def train(argv):
    """Trains, evaluates on the held-out and test splits, exports; returns the ``FlowBrain``."""
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    ddp_init_group(run_opts)  # no-op unless launched by torchrun
    overrides = route_overrides(hparams_file, overrides)
    hparams = load_hparams(hparams_file, overrides)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    encoders, frames = prepare_data(hparams)
    model = configure_model(hparams["model"], encoders)
    checkpointer = hparams["checkpointer"]
    checkpointer.add_recoverable("model", model)

    brain = FlowBrain(
        modules={"model": model, "normalize": hparams["normalize"]},
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=checkpointer,
    )
    for pairs in training_pairs(hparams, frames["train"]):
        brain.use_pairs(**pairs)

    registers = speaker_registers(hparams)  # each training speaker's F0 register, exported with every model

    def export(folder):
        """The folder other recipes load with ``SpeechFactorizer.from_hparams(source=...)``, with the phone
        decoder the matching gate uses, fitted to the model as it is now on the training frames (by the one
        process that writes the folder: the others would only repeat the encoding)."""
        training = brain.modules.training
        brain.modules.eval()
        run_on_main(lambda: export_model(folder, model, hparams["normalize"], encoders,
                                         Path(hparams["output_folder"]) / "hyperparams.yaml",
                                         brain.engine.fit_sequence_decoders(frames["train"]), registers))
        brain.modules.train(training)

    snapshot_epochs = {int(epoch) for epoch in hparams.get("snapshot_epochs") or []}

    def export_snapshot(epoch):
        if epoch in snapshot_epochs:
            export(snapshot_folder(hparams["output_folder"], epoch))

    brain.epoch_end_callbacks = [export_snapshot]
    brain.fit(
        hparams["epoch_counter"],
        frames["train"],
        frames["valid"],
        train_loader_kwargs=dict(hparams["train_loader_kwargs"], collate_fn=frames["train"].collate),
        valid_loader_kwargs=dict(hparams["eval_loader_kwargs"], collate_fn=frames["valid"].collate),
    )
    for split in ("heldout", "test"):
        brain.evaluate_split(split, frames[split], **hparams["eval_loader_kwargs"])

    export(hparams["inference_folder"])  # the model of the lowest valid NLL, recovered by evaluate_split
    if torch.distributed.is_initialized():  # torchrun: leave the group in order (gloo may abort at interpreter exit)
        torch.distributed.destroy_process_group()
    return brain


