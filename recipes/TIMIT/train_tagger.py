#!/usr/bin/env python3
"""The contextual phone tagger of a trained model: trained, scored against the model's own gate, saved with it.

A SpeechBrain ``Brain`` (:class:`~speechbrain_fdnf.tagging.TaggerBrain`) trains a convolutional block and a
bidirectional LSTM (:class:`~speechbrain_fdnf.lobes.tagger.FrameTagger`) on the training utterances' log-Mel frames (through
the model's inference interface, as a conversion computes them) with per-frame cross-entropy, keeps the
epoch with the best valid frame accuracy and saves it into the model's inference folder; the gated
manipulations (``knn``, ``select``) then take each frame's phone from it.

Usage::

    python recipes/TIMIT/train_tagger.py hparams/phone_tagger.yaml [--model_folder=results/fdnf/1234/inference]

Writes ``<output_folder>/results.md`` and ``results.json``: frame accuracy (speech frames) of the tagger and
of the model's gate (its frame-wise phone posteriors decoded with the phone bigram) on held-out
utterances of the training speakers and on the test speakers.
"""

import logging
import sys
import time

import torch

from speechbrain_fdnf.augment import VocalTractWarp
from speechbrain_fdnf.features import splice
from speechbrain_fdnf.files import write_json_atomic
from speechbrain_fdnf.inference import SpeechFactorizer
from speechbrain_fdnf.recipe_utils import reuse_setup, run_cleanly
from speechbrain_fdnf.tagging import (fit_change_penalty, frame_accuracy, phone_sequence_error, save_tagger, silence_index,
                                      train_tagger, utterance_frames)

logger = logging.getLogger(__name__)
SPLITS = ("train", "valid", "heldout", "test")


def gate_tagger(factorizer):
    """The model's own gate as a tagger of one utterance's log-Mel frames: its phone posteriors decoded along
    the utterance with the bigram of its folder (the frame window without one)."""
    decoder = factorizer.decoders.get("phone")

    @torch.no_grad()
    def tag(feats):
        codes = factorizer.engine.encode(splice(feats, factorizer.hparams.context))
        return factorizer.engine.inferred_classes(codes, "phone", torch.zeros(len(codes), dtype=torch.long),
                                                  decoder=decoder).cpu()

    return tag


def training_augmentation(hparams, compute_features):
    """What each training batch passes through (``None``: nothing): the Mel-axis ``Warping`` of the hparams with
    a ``warp_window``, then, with a ``vocal_tract_change``, each utterance's frequency axis scaled by its own factor
    (:class:`~speechbrain_fdnf.augment.VocalTractWarp`, on the model's own filterbank), then, with a
    ``freq_mask_width``, the hparams' ``frequency_masks`` (SpecAugment's)."""
    stages = []
    if hparams.get("warp_window"):
        stages.append(hparams["augmentation"])
    if hparams.get("vocal_tract_change"):
        stages.append(VocalTractWarp.from_fbank(compute_features, max_change=hparams["vocal_tract_change"]))
    if hparams.get("freq_mask_width"):
        stages.append(hparams["frequency_masks"])
    return torch.nn.Sequential(*stages) if stages else None


def main(argv):
    hparams, run_opts, output, entries = reuse_setup(argv, SPLITS)
    factorizer = SpeechFactorizer.from_hparams(source=hparams["model_folder"], run_opts=run_opts)
    if "phone" not in factorizer.factors:
        raise ValueError(f"{hparams['model_folder']}: the model has no phone subspace to gate with a tagger")
    started = time.time()
    frames = {split: utterance_frames(factorizer, items) for split, items in entries.items()}
    num_classes = len(factorizer.hparams.encoders["phone"].ind2lab)
    augmentation = training_augmentation(hparams, factorizer.hparams.compute_features)
    tagger = train_tagger({"train": frames["train"], "valid": frames["valid"]}, num_classes, output,
                          number_of_epochs=hparams["number_of_epochs"], batch_size=hparams["batch_size"],
                          lr=hparams["lr"], final_lr=hparams.get("final_lr"), run_opts=run_opts, augmentation=augmentation,
                          hidden_size=hparams["hidden_size"],
                          num_layers=hparams["num_layers"], dropout=hparams["dropout"],
                          normalization=hparams["normalization"], cnn_channels=hparams.get("cnn_channels", 0),
                          cnn_blocks=hparams.get("cnn_blocks", 1))
    seconds = time.time() - started
    silence = silence_index(factorizer)
    fitted = None
    if hparams.get("change_penalty", 0.0) is None:  # the valid utterances' phones spelled with the fewest errors
        fitted = fit_change_penalty(tagger, frames["valid"], silence)
    else:
        tagger.change_penalty = hparams.get("change_penalty", 0.0)
    save_tagger(hparams["model_folder"], tagger)
    gate = gate_tagger(factorizer)
    accuracy = {split: {"tagger": frame_accuracy(tagger.tag, frames[split], silence),
                        "gate": frame_accuracy(gate, frames[split], silence)} for split in ("heldout", "test")}
    sequence_error = {split: phone_sequence_error(tagger.tag, frames[split], silence) for split in ("heldout", "test")}
    write_json_atomic(output / "results.json", {"accuracy": accuracy, "phone_sequence_error": sequence_error,
                                                "change_penalty": tagger.change_penalty, "fitted_penalties": fitted,
                                                "train_seconds": round(seconds, 1)}, indent=2)
    lines = ["# Contextual phone tagger: frame accuracy (speech frames, 39 folded phones)", "",
             f"Model: `{hparams['model_folder']}` (the tagger is saved there). Trained on {len(frames['train'])} "
             f"utterances in {seconds:.0f} s.", "",
             "| frames | tagger | the model's gate (posteriors decoded with the phone bigram) | the tagger's phones spelled: "
             "error (as a PER) |", "|---|---|---|---|"]
    names = {"heldout": "held-out utterances of the training speakers", "test": "test speakers (never seen)"}
    for split, row in accuracy.items():
        lines.append(f"| {names[split]} | {100 * row['tagger']:.1f} % | {100 * row['gate']:.1f} % | "
                     f"{100 * sequence_error[split]:.1f} % |")
    lines += ["", f"Change penalty {tagger.change_penalty:g} nats" + ("" if fitted is None else
              " (fitted on the valid utterances, phone-sequence error by penalty: "
              + ", ".join(f"{penalty:g}: {100 * error:.2f} %" for penalty, error in fitted.items()) + ")") + "."]
    text = "\n".join(lines) + "\n"
    (output / "results.md").write_text(text)
    print(text + f"\nTagger saved in {hparams['model_folder']}; report in {output / 'results.md'}")


if __name__ == "__main__":
    sys.exit(run_cleanly(main, sys.argv[1:]))
