"""Training, saving and scoring the contextual phone tagger of a trained model (beyond the paper).

The tagger (:class:`~speechbrain_fdnf.lobes.tagger.FrameTagger`) reads the same log-Mel frames the model's
inference interface computes (``SpeechFactorizer.features``, the centre bands), so what it learns on the
training utterances is what it meets in a conversion. It is trained with SpeechBrain's ``Brain`` on whole
utterances (per-frame cross-entropy on the phone encoder's classes, frames outside any segment ignored),
the epoch with the best valid frame accuracy kept by a ``Checkpointer``, and saved next to the model
(``phone_tagger.ckpt`` and ``phone_tagger.json`` in its inference folder), where ``SpeechFactorizer.tagger``
finds it and the gated manipulations (``knn``, ``select``) use it for the source's and the references' frames.

Authors
 * speechbrain-fdnf developers
"""

import json
import logging
from pathlib import Path

import speechbrain as sb
import torch
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.utils.edit_distance import wer_details_for_batch, wer_summary

from speechbrain_fdnf.data.frames import frame_labels
from speechbrain_fdnf.data.phones import SILENCE
from speechbrain_fdnf.files import atomic_write, hop_samples
from speechbrain_fdnf.lobes.tagger import FrameTagger
from speechbrain_fdnf.validation import summarised_warnings

logger = logging.getLogger(__name__)

TAGGER_WEIGHTS, TAGGER_CONFIG = "phone_tagger.ckpt", "phone_tagger.json"
#: Label of frames no segment covers: left out of the loss and of the accuracy.
UNLABELLED = -1


@torch.no_grad()
def utterance_frames(factorizer, entries):
    """``{utterance id: (features, phone index per frame)}`` of prepared entries: the interface's log-Mel frames
    (its centre bands) and the phone encoder's index of the segment covering each frame centre
    (:data:`UNLABELLED` where none does)."""
    hop, centre = hop_samples(factorizer.hparams.compute_features), factorizer.centre_bands
    encoder = factorizer.hparams.encoders["phone"]
    frames = {}
    with summarised_warnings(f"{len(entries)} utterances' frames"):  # one warning for a corpus's weak files
        for uid, entry in entries.items():
            feats = factorizer.features(entry["wav"])[:, centre].float().cpu()
            segment = frame_labels(torch.tensor(entry["starts"]), torch.tensor(entry["ends"]), len(feats), hop,
                                   entry["num_samples"])
            phones = torch.tensor([encoder.lab2ind[phone] for phone in entry["phones39"]], dtype=torch.long)
            frames[uid] = (feats, torch.where(segment >= 0, phones[segment.clamp_min(0)], UNLABELLED))
    return frames


class TaggerDataset(torch.utils.data.Dataset):
    """Whole utterances as SpeechBrain batch items (``id``, ``feats``, ``phones``), longest first."""

    def __init__(self, frames):
        self.items = sorted(frames.items(), key=lambda item: -len(item[1][0]))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        uid, (feats, phones) = self.items[index]
        return {"id": uid, "feats": feats, "phones": phones}


class TaggerBrain(sb.Brain):
    """Per-frame cross-entropy over padded utterances; frame accuracy on the valid and test stages. With an
    ``augmentation`` in its hparams, each training batch's frames pass through it first (never the valid or
    test frames)."""

    def compute_forward(self, batch, stage):
        feats, lens = batch.feats
        augmentation = getattr(self.hparams, "augmentation", None)
        if stage == sb.Stage.TRAIN and augmentation is not None:
            feats = augmentation(feats.clone())  # SpeechBrain's warping writes into its input
        return torch.log_softmax(self.modules.tagger(feats.to(self.device), lens.to(self.device)), dim=-1)

    def compute_objectives(self, log_probs, batch, stage):
        phones, _ = batch.phones
        # padding and unlabelled frames are both -1: one mask for the loss and the accuracy
        phones = phones.to(self.device).masked_fill(padding_mask(batch).to(self.device), UNLABELLED)
        loss = torch.nn.functional.nll_loss(log_probs.transpose(1, 2), phones, ignore_index=UNLABELLED)
        if stage != sb.Stage.TRAIN:
            labelled = phones != UNLABELLED
            self.correct += int((log_probs.argmax(dim=-1) == phones)[labelled].sum())
            self.counted += int(labelled.sum())
        return loss

    def on_stage_start(self, stage, epoch=None):
        self.correct = self.counted = 0

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN:
            self.train_loss = stage_loss
            return
        accuracy = self.correct / max(self.counted, 1)
        if stage == sb.Stage.VALID:
            self.hparams.train_logger.log_stats({"epoch": epoch}, train_stats={"loss": self.train_loss},
                                                valid_stats={"loss": stage_loss, "accuracy": accuracy})
            annealing = getattr(self.hparams, "lr_annealing", None)
            if annealing is not None:  # the next epoch's rate (the optimizer, and so the rate, is checkpointed)
                sb.nnet.schedulers.update_learning_rate(self.optimizer, annealing(epoch)[1])
            self.checkpointer.save_and_keep_only(meta={"accuracy": accuracy}, max_keys=["accuracy"])
        else:
            self.test_accuracy = accuracy


def padding_mask(batch):
    """``(batch, frames)``: True on the frames added to pad each utterance to the longest."""
    phones, lens = batch.phones
    steps = torch.arange(phones.shape[1], device=lens.device)
    return steps[None, :] >= torch.round(lens * phones.shape[1])[:, None]


def train_tagger(frames, num_classes, folder, number_of_epochs=10, batch_size=8, lr=0.002, run_opts=None,
                 augmentation=None, final_lr=None, **architecture):
    """Trains a :class:`FrameTagger` on ``frames["train"]`` (:func:`utterance_frames`), keeping the epoch with
    the best valid frame accuracy; checkpoints and the training log in ``folder`` (a killed run resumes).
    ``augmentation``: a function of each training batch's ``(batch, frames, features)`` log-Mel frames that
    leaves every frame's phone where it is (e.g. SpeechBrain's frequency ``Warping``, ``dim=2``). ``final_lr``:
    the learning rate of the last epoch, reached linearly from ``lr`` over the epochs (SpeechBrain's
    ``LinearScheduler``); ``None``: ``lr`` throughout.

    Returns
    -------
    FrameTagger
        The best epoch's tagger, on the CPU, in eval mode.
    """
    folder = Path(folder)
    input_size = next(iter(frames["train"].values()))[0].shape[-1]
    tagger = FrameTagger(input_size, num_classes, **architecture)
    tagger.fit_normalization([feats for feats, _ in frames["train"].values()])
    epochs = sb.utils.epoch_loop.EpochCounter(number_of_epochs)
    checkpointer = sb.utils.checkpoints.Checkpointer(folder / "save", recoverables={"tagger": tagger, "epochs": epochs})
    brain = TaggerBrain(modules={"tagger": tagger}, opt_class=lambda params: torch.optim.Adam(params, lr=lr),
                        hparams={"train_logger": sb.utils.train_logger.FileTrainLogger(folder / "train_log.txt"),
                                 "augmentation": augmentation,
                                 "lr_annealing": None if final_lr is None else
                                 sb.nnet.schedulers.LinearScheduler(lr, final_lr, number_of_epochs)},
                        run_opts=dict(run_opts or {}, noprogressbar=True), checkpointer=checkpointer)
    loader = {"batch_size": batch_size, "collate_fn": PaddedBatch}
    brain.fit(epochs, TaggerDataset(frames["train"]), TaggerDataset(frames["valid"]),
              train_loader_kwargs=dict(loader, shuffle=True), valid_loader_kwargs=dict(loader))
    checkpointer.recover_if_possible(max_key="accuracy")
    return tagger.cpu().eval()


def phone_sequence(classes, silence_index=None):
    """The phones an utterance's frame classes spell: each run of one class once, silence and unlabelled frames
    left out (a silence between two runs of one phone still separates them).

    Example
    -------
    >>> phone_sequence(torch.tensor([3, 3, 0, 5, 5, 5, 0, 0, 5, -1, 2]), silence_index=0)
    [3, 5, 5, 2]
    """
    values = classes.tolist()
    return [value for index, value in enumerate(values)
            if value not in (silence_index, UNLABELLED) and (index == 0 or values[index - 1] != value)]


@torch.no_grad()
def phone_sequence_error(tag, frames, silence_index=None):
    """The edit distance between the phones ``tag(features) -> (frames,)`` spells and those labelled, over
    ``frames`` (:func:`utterance_frames`), as a share of the labelled phones (SpeechBrain's ``wer_summary``): what
    a phone recognizer's PER measures, here of the runs a gated manipulation renders one by one."""
    return _spelling_error({uid: tag(feats).cpu() for uid, (feats, _) in frames.items()}, frames, silence_index)


def _spelling_error(tagged, frames, silence_index):
    """:func:`phone_sequence_error` of ``tagged`` (``{utterance id: classes}``) against ``frames``' labels."""
    ids = list(frames)
    labelled = [phone_sequence(frames[uid][1], silence_index) for uid in ids]
    spelled = [phone_sequence(tagged[uid], silence_index) for uid in ids]
    return wer_summary(wer_details_for_batch(ids, labelled, spelled))["WER"] / 100


#: Change penalties (nats) :func:`fit_change_penalty` tries.
CHANGE_PENALTIES = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)


@torch.no_grad()
def fit_change_penalty(tagger, frames, silence_index=None, penalties=CHANGE_PENALTIES):
    """Sets ``tagger.change_penalty`` to the one of ``penalties`` whose phones spell ``frames`` (the valid
    utterances) with the fewest errors (:func:`phone_sequence_error`; the smaller penalty on a tie); every
    utterance's posteriors computed once. Returns ``{penalty: error}``."""
    posteriors = {uid: tagger.log_posteriors(feats) for uid, (feats, _) in frames.items()}
    errors = {}
    for penalty in penalties:
        tagger.change_penalty = penalty
        errors[penalty] = _spelling_error({uid: tagger.phones(read).cpu() for uid, read in posteriors.items()},
                                          frames, silence_index)
    tagger.change_penalty = min(errors, key=lambda penalty: (errors[penalty], penalty))
    return errors


@torch.no_grad()
def frame_accuracy(tag, frames, silence_index=None):
    """Share of labelled frames whose class ``tag(features) -> (frames,)`` gets right, over ``frames``
    (:func:`utterance_frames`); with ``silence_index``, over speech frames only."""
    correct = counted = 0
    for feats, phones in frames.values():
        keep = phones != UNLABELLED
        if silence_index is not None:
            keep &= phones != silence_index
        correct += int((tag(feats).cpu() == phones)[keep].sum())
        counted += int(keep.sum())
    return correct / max(counted, 1)


def save_tagger(folder, tagger):
    """Writes ``tagger`` into a model's inference folder (weights and the architecture to rebuild it)."""
    folder = Path(folder)
    with atomic_write(folder / TAGGER_WEIGHTS) as tmp:
        torch.save(tagger.state_dict(), tmp)
    (folder / TAGGER_CONFIG).write_text(json.dumps(tagger.config, indent=2) + "\n")


def load_tagger(folder, device="cpu"):
    """The tagger saved in ``folder`` by :func:`save_tagger`, or ``None`` when it has none."""
    folder = Path(folder)
    if not (folder / TAGGER_WEIGHTS).is_file() or not (folder / TAGGER_CONFIG).is_file():
        return None
    # a tagger saved before its normalisation was an option was normalised globally
    tagger = FrameTagger(**{"normalization": "global", **json.loads((folder / TAGGER_CONFIG).read_text())})
    tagger.load_state_dict(torch.load(folder / TAGGER_WEIGHTS, map_location="cpu"))
    return tagger.to(device).eval()


def silence_index(factorizer):
    """Index of the silence class in the model's phone encoder."""
    return factorizer.hparams.encoders["phone"].lab2ind[SILENCE]
