#!/usr/bin/env python3
"""Reuse: speaker verification with f-DNF speaker embeddings, on unseen speakers.

Compares utterance embeddings under one trial list and one scorer: the mean
log-Mel frame, the f-DNF's ``factor_embedding(..., "speaker")``, the speaker
DNF's mean latent code (each model loaded through the package's inference
interface) and an x-vector (SpeechBrain's ``Xvector`` lobe, trained here on
the same training speakers). Scoring is the cosine of embeddings from which
the mean training embedding is subtracted; EER and minDCF come from
``speechbrain.utils.metric_stats``.

Usage::

    python recipes/TIMIT/speaker_verification.py hparams/speaker_verification.yaml

Writes ``<output_folder>/results.md`` and ``results.json``
(``{"eer": {embedding: EER}, "min_dcf": {embedding: normalised minDCF}, "trials": {...}}``).
"""

import logging
import random
import sys
import time

import speechbrain as sb
import torch
from speechbrain.utils.metric_stats import EER, minDCF

from speechbrain_fdnf.files import write_json_atomic
from speechbrain_fdnf.inference import SpeechFactorizer
from speechbrain_fdnf.recipe_utils import reuse_setup, run_cleanly
from speechbrain_fdnf.validation import summarised_warnings

logger = logging.getLogger(__name__)


def build_trials(entries, enrol_per_speaker, seed):
    """Enrolment utterances per speaker, test utterances, and every (speaker, test utterance) trial.

    Each speaker with more than ``enrol_per_speaker`` utterances gets a seeded
    draw of that many for enrolment; its other utterances are tests. A trial
    is target when the test utterance is the enrolled speaker's.

    Returns
    -------
    enrol : dict
        speaker -> list of utterance ids.
    tests : list of str
        Test utterance ids.
    trials : list of (str, str, bool)
        ``(speaker, test utterance, is_target)``.

    Example
    -------
    >>> entries = {f"{s}_{u}": {"speaker": s} for s in "AB" for u in range(4)}
    >>> enrol, tests, trials = build_trials(entries, 1, seed=0)
    >>> len(enrol), len(tests), len(trials), sum(t for _, _, t in trials)
    (2, 6, 12, 6)
    """
    rng = random.Random(seed)
    by_speaker = {}
    for uid in sorted(entries):
        by_speaker.setdefault(entries[uid]["speaker"], []).append(uid)
    enrol, tests = {}, []
    for speaker, uids in sorted(by_speaker.items()):
        if len(uids) <= enrol_per_speaker:
            logger.warning("Speaker %s has %d utterances; not enough to enrol %d and test", speaker, len(uids),
                           enrol_per_speaker)
            continue
        chosen = set(rng.sample(uids, enrol_per_speaker))
        enrol[speaker] = sorted(chosen)
        tests += [uid for uid in uids if uid not in chosen]
    if len(enrol) < 2:
        raise ValueError("speaker verification needs at least two test speakers with enough utterances")
    trials = [(speaker, uid, entries[uid]["speaker"] == speaker) for speaker in enrol for uid in tests]
    return enrol, tests, trials


class XvectorBrain(sb.Brain):
    """Speaker classification with SpeechBrain's x-vector network; batches are ``(feats, lens, classes)``."""

    def compute_forward(self, batch, stage):
        feats, lens, _ = batch
        feats, lens = feats.to(self.device), lens.to(self.device)
        return self.modules.classifier(self.modules.xvector(self.modules.normalize(feats, lens), lens))

    def compute_objectives(self, predictions, batch, stage):
        return sb.nnet.losses.nll_loss(predictions, batch[2].to(self.device))


class RandomCrops(torch.utils.data.Dataset):
    """Utterances as random crops of at most ``frames`` frames (a new crop each epoch), with a class index."""

    def __init__(self, features, classes, frames):
        self.features, self.classes, self.frames = features, classes, frames

    def __len__(self):
        return len(self.features)

    def __getitem__(self, index):
        feats = self.features[index]
        offset = int(torch.randint(max(1, len(feats) - self.frames + 1), (1,)))
        return feats[offset : offset + self.frames], self.classes[index]

    @staticmethod
    def collate(items):
        crops, classes = zip(*items)
        padded = torch.nn.utils.rnn.pad_sequence(crops, batch_first=True)
        lens = torch.tensor([len(c) / padded.shape[1] for c in crops])
        return padded, lens, torch.tensor(classes)[:, None]


def train_xvector(hparams, run_opts, features, speakers):
    """Trains the x-vector network on the training utterances; returns the brain (modules in eval mode)."""
    uids = sorted(features)
    classes = {speaker: i for i, speaker in enumerate(sorted(set(speakers.values())))}
    dim = features[uids[0]].shape[-1]
    modules = {"normalize": hparams["normalize"](), "xvector": hparams["xvector"](in_channels=dim),
               "classifier": hparams["classifier"](input_shape=[None, None, hparams["xvector_dim"]],
                                                   out_neurons=len(classes))}
    brain = XvectorBrain(modules=modules, opt_class=hparams["opt_class"], hparams=hparams, run_opts=run_opts)
    crops = RandomCrops([features[u] for u in uids], [classes[speakers[u]] for u in uids],
                        hparams["xvector_crop_frames"])
    loader = torch.utils.data.DataLoader(crops, batch_size=hparams["xvector_batch_size"], shuffle=True,
                                         collate_fn=RandomCrops.collate)
    brain.fit(sb.utils.epoch_loop.EpochCounter(hparams["xvector_epochs"]), loader)
    brain.modules.eval()
    return brain


@summarised_warnings("speaker verification utterances")  # one warning for a corpus's weak files
def embed_all(hparams, run_opts, entries, train_entries):
    """``{embedding name: {utterance id: vector}}`` for the test and the training utterances."""
    feature_model = SpeechFactorizer.from_hparams(source=hparams["feature_model"], run_opts=run_opts)
    centre = feature_model.centre_bands
    fbank = {uid: feature_model.features(e["wav"])[:, centre].cpu()
             for uid, e in {**entries, **train_entries}.items()}
    embeddings, seconds = {}, {}
    for name, spec in hparams["embeddings"].items():
        started = time.time()
        kind = spec["kind"]
        if kind == "mean_fbank":
            vectors = {uid: feats.mean(0) for uid, feats in fbank.items()}
        elif kind in ("factor_embedding", "mean_latent"):
            model = SpeechFactorizer.from_hparams(source=spec["model_folder"], run_opts=run_opts)
            if kind == "factor_embedding":
                vectors = {uid: model.factor_embedding(e["wav"], "speaker").cpu()
                           for uid, e in {**entries, **train_entries}.items()}
            else:
                vectors = {uid: model.encode(e["wav"])["z"].mean(0).cpu()
                           for uid, e in {**entries, **train_entries}.items()}
        elif kind == "xvector":
            brain = train_xvector(hparams, run_opts, {uid: fbank[uid] for uid in train_entries},
                                     {uid: e["speaker"] for uid, e in train_entries.items()})
            with torch.no_grad():
                vectors = {uid: brain.modules.xvector(brain.modules.normalize(
                    feats[None].to(brain.device), torch.ones(1, device=brain.device)))[0, 0].cpu()
                    for uid, feats in fbank.items()}
        else:
            raise ValueError(f"embedding {name!r}: unknown kind {kind!r}")
        embeddings[name] = vectors
        seconds[name] = round(time.time() - started, 1)
    return embeddings, seconds


def score_trials(vectors, enrol, trials, train_ids):
    """Cosine scores of mean-normalised embeddings (the training utterances' mean is subtracted)."""
    mean = torch.stack([vectors[uid] for uid in train_ids]).mean(0)
    unit = {uid: torch.nn.functional.normalize(v - mean, dim=0) for uid, v in vectors.items()}
    models = {speaker: torch.nn.functional.normalize(torch.stack([unit[u] for u in uids]).mean(0), dim=0)
              for speaker, uids in enrol.items()}
    return torch.tensor([float(models[speaker] @ unit[uid]) for speaker, uid, _ in trials])


def main(argv):
    hparams, run_opts, output, entries = reuse_setup(argv, ("train", "test"))
    test, train = entries["test"], entries["train"]
    enrol, tests, trials = build_trials(test, hparams["enrol_per_speaker"], hparams["seed"])
    embeddings, seconds = embed_all(hparams, run_opts, test, train)
    target = torch.tensor([t for _, _, t in trials])
    results = {"eer": {}, "min_dcf": {}, "seconds": seconds,
               "trials": {"target": int(target.sum()), "nontarget": int((~target).sum()),
                          "speakers": len(enrol), "test_utterances": len(tests)}}
    for name, vectors in embeddings.items():
        scores = score_trials(vectors, enrol, trials, sorted(train))
        eer, _ = EER(scores[target], scores[~target])
        dcf, _ = minDCF(scores[target], scores[~target], p_target=hparams["p_target"])
        # normalised (NIST): divided by the cost of the best trial-independent decision, so 1 = no better
        # than always accepting or always rejecting
        results["eer"][name] = float(eer)
        results["min_dcf"][name] = float(dcf) / min(hparams["p_target"], 1 - hparams["p_target"])
    write_json_atomic(output / "results.json", results, indent=2)
    lines = ["# Speaker verification on unseen speakers", "",
             f"{len(enrol)} test speakers (never seen by any model), each enrolled with "
             f"{hparams['enrol_per_speaker']} utterances; {len(tests)} other test utterances scored against every "
             f"enrolled speaker: {results['trials']['target']} target and {results['trials']['nontarget']} "
             f"non-target trials. Cosine scoring after subtracting the mean training embedding.", "",
             f"| embedding | dim | EER (%) | normalised minDCF (p_target={hparams['p_target']}) | time (s) |",
             "|---|---|---|---|---|"]
    for name in embeddings:
        dim = len(next(iter(embeddings[name].values())))
        lines.append(f"| {name} | {dim} | {100 * results['eer'][name]:.2f} | {results['min_dcf'][name]:.3f} "
                     f"| {seconds[name]:.0f} |")
    text = "\n".join(lines) + "\n"
    (output / "results.md").write_text(text)
    print(text + f"\nWritten to {output / 'results.md'} and results.json")


if __name__ == "__main__":
    sys.exit(run_cleanly(main, sys.argv[1:]))
