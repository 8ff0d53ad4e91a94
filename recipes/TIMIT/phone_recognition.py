#!/usr/bin/env python3
"""Reuse: CTC phone recognition on f-DNF features, tested on unseen speakers.

A SpeechBrain phone recognizer (``Brain``, ``DynamicItemDataset``, a CRDNN
from ``speechbrain.lobes``, CTC, greedy decoding, ``ErrorRateStats``) trained
once per input feature set. The features come from a trained f-DNF loaded
through the package's inference interface, as any other recipe would load it:
the log-Mel baseline, the whole latent, the latent without its speaker
subspace, and speech converted to one reference speaker.

Usage::

    python recipes/TIMIT/phone_recognition.py hparams/phone_recognition.yaml [--features=[fbank,z_content]]

Writes ``<output_folder>/results.md`` and ``results.json``
(``{"per": {feature: PER}, "train_seconds": {feature: seconds}}``).
"""

import logging
import sys
import time
from pathlib import Path

import speechbrain as sb
import torch
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.dataio.encoder import CTCTextEncoder
from speechbrain.decoders.ctc import ctc_greedy_decode

from speechbrain_fdnf.checkpoints import VerifiedCheckpointer
from speechbrain_fdnf.files import atomic_write, write_json_atomic
from speechbrain_fdnf.inference import SpeechFactorizer
from speechbrain_fdnf.recipe_utils import reuse_setup, run_cleanly
from speechbrain_fdnf.validation import summarised_warnings

logger = logging.getLogger(__name__)
SPLITS = ("train", "valid", "test")
FEATURES = ("fbank", "z", "z_content", "speaker_normalized")


class PhoneCTCBrain(sb.Brain):
    """CTC phone recognizer: normalise, encode, project, log-softmax; PER on valid and test."""

    def compute_forward(self, batch, stage):
        feats, lens = batch.feats
        feats, lens = feats.to(self.device), lens.to(self.device)
        feats = self.modules.normalize(feats, lens, epoch=self.hparams.epoch_counter.current)
        logits = self.modules.output(self.modules.encoder(feats))
        return self.hparams.log_softmax(logits), lens

    def compute_objectives(self, predictions, batch, stage):
        log_probs, lens = predictions
        phones, phone_lens = batch.phones_encoded
        phones, phone_lens = phones.to(self.device), phone_lens.to(self.device)
        loss = sb.nnet.losses.ctc_loss(log_probs, phones, lens, phone_lens, self.hparams.blank_index)
        if stage != sb.Stage.TRAIN:
            hypotheses = ctc_greedy_decode(log_probs, lens, blank_id=self.hparams.blank_index)
            self.per_metrics.append(batch.id, hypotheses, phones, target_len=phone_lens,
                                    ind2lab=self.label_encoder.decode_ndim)
        return loss

    def on_stage_start(self, stage, epoch=None):
        if stage != sb.Stage.TRAIN:
            self.per_metrics = self.hparams.per_stats()

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN:
            self.train_loss = stage_loss
            return
        per = self.per_metrics.summarize("error_rate")
        if stage == sb.Stage.VALID:
            old_lr, new_lr = self.lr_annealing(per)
            sb.nnet.schedulers.update_learning_rate(self.optimizer, new_lr)
            self.hparams.train_logger.log_stats({"epoch": epoch, "lr": old_lr},
                                                train_stats={"loss": self.train_loss},
                                                valid_stats={"loss": stage_loss, "PER": per})
            self.checkpointer.save_and_keep_only(meta={"PER": per}, min_keys=["PER"])
        else:
            self.test_per = per
            self.hparams.train_logger.log_stats({"Epoch loaded": self.hparams.epoch_counter.current},
                                                test_stats={"loss": stage_loss, "PER": per})


def collapse_repeats(phones):
    """A frame-level-free phone sequence: consecutive repeats merged (CTC targets).

    Example
    -------
    >>> collapse_repeats(["sil", "sil", "ah", "b", "b", "sil"])
    ['sil', 'ah', 'b', 'sil']
    """
    return [p for i, p in enumerate(phones) if i == 0 or p != phones[i - 1]]


def reference_speaker(entries):
    """The training speaker with the most audio (the conversion target of ``speaker_normalized``)."""
    totals = {}
    for entry in entries.values():
        totals[entry["speaker"]] = totals.get(entry["speaker"], 0) + entry["duration"]
    return max(sorted(totals), key=totals.get)


@torch.no_grad()
@summarised_warnings("phone recognition utterances")  # one warning for a corpus's weak files
def extract(flow, entries, kind, reference):
    """``{utterance id: (frames, dim) tensor}`` of one feature set, through the inference interface."""
    centre = flow.centre_bands
    features = {}
    for uid, entry in entries.items():
        if kind == "fbank":
            feats = flow.features(entry["wav"])[:, centre]
        elif kind == "z":
            feats = flow.encode(entry["wav"])["z"]
        elif kind == "z_content":
            codes = flow.encode(entry["wav"])
            feats = torch.cat([codes[name] for name in codes if name not in ("z", "speaker")], dim=-1)
        elif kind == "speaker_normalized":
            feats = flow.manipulate(entry["wav"], "speaker", reference)[:, centre]
        else:
            raise ValueError(f"unknown feature set {kind!r}; choose among {', '.join(FEATURES)}")
        features[uid] = feats.float().cpu()
    return features


def cached_features(flow, entries, kind, reference, path, model_folder):
    """:func:`extract` for every split, cached in ``path`` (redone when the model or the data change)."""
    key = {"model": str(Path(model_folder).resolve()), "reference": reference,
           "model_mtime": Path(model_folder, "model.ckpt").stat().st_mtime_ns,
           "utterances": {split: sorted(items) for split, items in entries.items()}}
    if path.exists():
        cached = torch.load(path)
        if cached["key"] == key:
            return cached["features"]
    features = {split: extract(flow, items, kind, reference) for split, items in entries.items()}
    with atomic_write(path) as tmp:
        torch.save({"key": key, "features": features}, tmp)
    return features


def datasets(entries, features, label_encoder_file):
    """One ``DynamicItemDataset`` per split (features from the cache, CTC targets) and the label encoder."""
    data = {}
    for split, items in entries.items():
        dataset = DynamicItemDataset({uid: {"phones39": e["phones39"], "duration": e["duration"]}
                                      for uid, e in items.items()})
        dataset.add_dynamic_item(lambda uid, table=features[split]: table[uid], takes=["id"], provides=["feats"])
        data[split] = dataset.filtered_sorted(sort_key="duration")
    label_encoder = CTCTextEncoder()

    @sb.utils.data_pipeline.takes("phones39")
    @sb.utils.data_pipeline.provides("phone_list", "phones_encoded")
    def phone_pipeline(phones39):
        phones = collapse_repeats(phones39)
        yield phones
        yield torch.LongTensor(label_encoder.encode_sequence(phones))

    sb.dataio.dataset.add_dynamic_item(list(data.values()), phone_pipeline)
    label_encoder.load_or_create(path=label_encoder_file, from_didatasets=[data["train"]], output_key="phone_list",
                                 special_labels={"blank_label": 0}, sequence_input=True)
    for dataset in data.values():
        dataset.set_output_keys(["id", "feats", "phones_encoded"])
    return data, label_encoder


def train_one(hparams, run_opts, kind, data, label_encoder, dim):
    """Trains and tests the recognizer on one feature set; returns (test PER, training seconds)."""
    folder = Path(hparams["output_folder"]) / kind
    modules = {
        "normalize": hparams["normalize"](),
        "encoder": hparams["encoder"](input_shape=[None, None, dim]),
        "output": hparams["output"](input_size=hparams["hidden_size"]),
    }
    epoch_counter = hparams["epoch_counter"]()
    lr_annealing = hparams["lr_annealing"]()
    checkpointer = VerifiedCheckpointer(folder / "save", recoverables={
        **modules, "epoch_counter": epoch_counter, "lr_annealing": lr_annealing})
    brain_hparams = dict(hparams, epoch_counter=epoch_counter,
                         train_logger=sb.utils.train_logger.FileTrainLogger(folder / "train_log.txt"))
    brain = PhoneCTCBrain(modules=modules, opt_class=hparams["opt_class"], hparams=brain_hparams,
                          run_opts=run_opts, checkpointer=checkpointer)
    brain.label_encoder, brain.lr_annealing = label_encoder, lr_annealing
    started = time.time()
    # copies: SpeechBrain adds keys to the loader kwargs it is given
    brain.fit(epoch_counter, data["train"], data["valid"], train_loader_kwargs=dict(hparams["loader_kwargs"]),
              valid_loader_kwargs=dict(hparams["loader_kwargs"]))
    seconds = time.time() - started
    brain.evaluate(data["test"], min_key="PER", test_loader_kwargs=dict(hparams["loader_kwargs"]))
    return brain.test_per, seconds


def report(results, hparams, reference, counts):
    lines = ["# Phone recognition (CTC, 39 folded phones) on unseen speakers", "",
             f"f-DNF: `{hparams['model_folder']}`. Trained on {counts['train']} utterances of the training "
             f"speakers (model selection on {counts['valid']} valid utterances), tested on {counts['test']} "
             f"utterances of speakers the f-DNF and the recognizer never saw. `speaker_normalized` converts every "
             f"utterance to training speaker {reference}.", "",
             "| features | dim | test PER (%) | training time (s) |", "|---|---|---|---|"]
    for kind, row in results.items():
        lines.append(f"| {kind} | {row['dim']} | {row['per']:.2f} | {row['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv):
    hparams, run_opts, output, entries = reuse_setup(argv, SPLITS)
    flow = SpeechFactorizer.from_hparams(source=hparams["model_folder"], run_opts=run_opts)
    reference = hparams["reference_speaker"] or reference_speaker(entries["train"])
    results = {}
    for kind in hparams["features"]:
        logger.info("Phone recognition on %s features", kind)
        features = cached_features(flow, entries, kind, reference, output / f"features_{kind}.pt",
                                   hparams["model_folder"])
        data, label_encoder = datasets(entries, features, output / "label_encoder.txt")
        dim = next(iter(features["train"].values())).shape[-1]
        per, seconds = train_one(hparams, run_opts, kind, data, label_encoder, dim)
        results[kind] = {"per": float(per), "seconds": round(seconds, 1), "dim": dim}
    summary = {"per": {k: r["per"] for k, r in results.items()},
               "train_seconds": {k: r["seconds"] for k, r in results.items()}, "reference_speaker": reference}
    write_json_atomic(output / "results.json", summary, indent=2)
    text = report(results, hparams, reference, {split: len(items) for split, items in entries.items()})
    (output / "results.md").write_text(text)
    print(text + f"\nWritten to {output / 'results.md'} and results.json")


if __name__ == "__main__":
    sys.exit(run_cleanly(main, sys.argv[1:]))
