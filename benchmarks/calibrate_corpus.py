#!/usr/bin/env python3
"""How much phone and speaker evidence one frame of a corpus carries, against the paper's TIMIT.

The embedded corpus stands in for TIMIT in every table the project prints, so its frames should
carry about as much phone and speaker evidence as TIMIT's. This report measures it with the
evaluation's own kind of probes (2 x 512 frame MLPs on the input features, trained on the
training frames, scored on held-out utterances of the training speakers), on the frames the
recipes train on (``hparams/fdnf.yaml``: 40 log-Mel bands, silence dropped):

* ``p(q|x)``: the mean posterior of each frame's true phone (39 classes), and the probe's accuracy;
* ``p(s|x)`` among all training speakers, and among a seeded subset of ``--subset`` of them (a
  probe trained and scored on those speakers only: the paper's tables imply about 40, since its
  ``p(s2|x) = (1 - p(s|x)) / (N - 1)`` gives N = 40);
* the real-frame ceilings of both manipulations among that subset (each frame replaced by a real
  frame of its target cell, as the evaluation's ceiling row): the most any manipulation can move
  the target factor under these probes, and what it costs the other;
* with ``--by-phone``, the speaker posterior among the subset for each phone class: where a corpus's speaker
  evidence lies (eSpeak NG plays every voice's fricatives and bursts from the same recordings, so without
  ``noise_shape`` those frames carry none);
* the equal error rate of an independent speaker encoder trained on real speech (Resemblyzer,
  the ``judge`` extra) over every pair of the test speakers' utterances: how distinct the voices
  are to a judge that never saw the corpus.

The probes are scored on ``--split``: ``heldout`` for the report, ``valid`` (one other held-out
utterance per training speaker) for choosing the corpus knobs, so the report's utterances play no
part in the choice.

The paper's TIMIT frames read p(q|x) = 0.520 and p(s|x) = 0.612; its f-DNF moves p(s2|x') by +0.700,
so TIMIT's speaker ceiling is at least that. Every number comes from the probes.

Usage::

    python benchmarks/calibrate_corpus.py --sizes demo --out benchmarks/latest_calibration.md
    python benchmarks/calibrate_corpus.py --sizes demo --split valid --corpus-options "{voice_spread: 0.5}"
    python benchmarks/calibrate_corpus.py --split valid --no-judge --by-phone --corpus-options "{}" "{noise_shape: 1.0}" \
        --output-root results results_noise/noise1
"""

import argparse
import sys
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from speechbrain_fdnf.data.frames import FrameBatch  # noqa: E402
from speechbrain_fdnf.evaluation.judges import SpeakerEncoderJudge, pairwise_eer  # noqa: E402
from speechbrain_fdnf.evaluation.movers import FeatureMeanShift, RealFrameCeiling  # noqa: E402
from speechbrain_fdnf.files import read_prepared_split  # noqa: E402
from speechbrain_fdnf.evaluation.probes import load_or_train_probe  # noqa: E402
from speechbrain_fdnf.evaluation.tables import existing_cells, posterior_table  # noqa: E402
from speechbrain_fdnf.recipe_utils import load_hparams, prepare_data  # noqa: E402

#: The paper's frames (its tables): the true phone's and the true speaker's posterior.
PAPER = {"p_phone": 0.520, "p_speaker_subset": 0.612, "ceiling_speaker": 0.700}


class Frames:
    """Frames held in memory, served as the posterior table reads a ``FrameSet`` (``len`` and ``batch``)."""

    def __init__(self, feats, labels):
        self.feats, self.labels = feats, labels

    def __len__(self):
        return len(self.feats)

    def batch(self, index):
        """The frames ``index`` as one ``FrameBatch`` (with their positions)."""
        index = torch.as_tensor(index, dtype=torch.long)
        return FrameBatch(self.feats[index], {name: values[index] for name, values in self.labels.items()}, index)

    def all(self):
        """Every frame as one ``FrameBatch``."""
        return self.batch(torch.arange(len(self)))

    def of_speakers(self, speakers):
        """The frames of ``speakers`` (sorted class indices), their speaker labels renumbered 0..len-1."""
        lookup = torch.full((int(self.labels["speaker"].max()) + 1,), -1, dtype=torch.long)
        lookup[speakers] = torch.arange(len(speakers))
        keep = lookup[self.labels["speaker"]] >= 0
        labels = {name: values[keep] for name, values in self.labels.items()}
        labels["speaker"] = lookup[labels["speaker"]]
        return Frames(self.feats[keep], labels)


def true_class_posterior(probe, frames, name):
    """The mean probe posterior of each frame's true ``name`` class, and the probe's accuracy."""
    with torch.no_grad():
        posteriors = probe.posteriors(frames.feats)
    labels = frames.labels[name]
    rows = torch.arange(len(labels))
    return posteriors[rows, labels].mean().item(), (posteriors.argmax(-1) == labels).float().mean().item()


def speaker_posterior_by_phone(probe, frames, phone_encoder):
    """``{phone: (frames, mean posterior of the true speaker)}`` over ``frames``, by the phone's label."""
    with torch.no_grad():
        posteriors = probe.posteriors(frames.feats)
    true = posteriors[torch.arange(len(posteriors)), frames.labels["speaker"]]
    phones = frames.labels["phone"]
    return {phone_encoder.ind2lab[int(index)]: (int((phones == index).sum()), true[phones == index].mean().item())
            for index in torch.unique(phones)}


def judge_eer(prep_folder, max_speakers=None):
    """The independent speaker encoder's EER over every pair of the test speakers' utterances
    (``None`` when the corpus has fewer than two test speakers)."""
    entries = read_prepared_split(prep_folder, "test")
    speakers = sorted({entry["speaker"] for entry in entries.values()})[:max_speakers]
    if len(speakers) < 2:
        return None
    chosen = [entry for entry in entries.values() if entry["speaker"] in speakers]
    embeddings = SpeakerEncoderJudge().embed_files([entry["wav"] for entry in chosen])
    return pairwise_eer(embeddings, [entry["speaker"] for entry in chosen])


def calibrate(hparams, subset=40, probe_epochs=8, probe_hidden=512, num_frames=2000, seed=1234, split="heldout",
              judge=True):
    """The report's numbers for the corpus that ``hparams`` (a loaded model yaml) prepares.

    The probes and the ceilings are scored on ``split`` (``heldout`` or ``valid``: both are
    utterances of the training speakers that no probe trained on); ``judge`` adds ``eer_test``.

    Returns
    -------
    dict
        ``frames``, ``train_speakers``, ``p_phone``, ``phone_accuracy``, ``p_speaker_all``,
        ``speaker_accuracy_all``, ``subset``, ``p_speaker_subset``, ``speaker_accuracy_subset``,
        ``ceiling_speaker`` and ``ceiling_speaker_phone_cost`` (δ(s2) and δ(q) of speaker manipulation
        among the subset), ``ceiling_phone`` and ``ceiling_phone_speaker_cost`` (δ(q2) and δ(s)), the same
        four for the model-free class-mean shift in the features (``mean_shift_speaker``, ...), and
        ``eer_test`` (or ``None``).
    """
    if split not in ("heldout", "valid"):
        raise ValueError(f"split must be heldout or valid (utterances of the training speakers), got {split!r}")
    encoders, frame_sets = prepare_data(hparams)
    train, heldout = (Frames(batch.feats, batch.labels) for batch in (frame_sets["train"].all(), frame_sets[split].all()))
    cache = Path(hparams["output_root"]) / f"calibration_probes_{split}"
    fit = dict(epochs=probe_epochs, hidden_size=probe_hidden, seed=seed)
    phone_probe, _ = load_or_train_probe(cache, "phone", train.all(), heldout.all(), len(encoders["phone"]), **fit)
    speaker_probe, _ = load_or_train_probe(cache, "speaker", train.all(), heldout.all(), len(encoders["speaker"]), **fit)
    result = {"frames": len(train), "train_speakers": len(torch.unique(train.labels["speaker"]))}
    result["p_phone"], result["phone_accuracy"] = true_class_posterior(phone_probe, heldout, "phone")
    result["p_speaker_all"], result["speaker_accuracy_all"] = true_class_posterior(speaker_probe, heldout, "speaker")

    speakers = torch.unique(train.labels["speaker"])
    pick = torch.randperm(len(speakers), generator=torch.Generator().manual_seed(seed))[:subset]
    chosen = speakers[pick].sort().values
    train_subset, heldout_subset = train.of_speakers(chosen), heldout.of_speakers(chosen)
    subset_probe, _ = load_or_train_probe(cache, "speaker", train_subset.all(), heldout_subset.all(), len(chosen), **fit)
    result["subset"] = len(chosen)
    result["p_speaker_subset"], result["speaker_accuracy_subset"] = true_class_posterior(
        subset_probe, heldout_subset, "speaker")
    result["p_speaker_by_phone"] = speaker_posterior_by_phone(subset_probe, heldout_subset, encoders["phone"])

    probes = {"phone": phone_probe, "speaker": subset_probe}
    num_classes = {"phone": len(encoders["phone"]), "speaker": len(chosen)}
    movers = {"ceiling": RealFrameCeiling([heldout_subset.all(), train_subset.all()], num_classes, seed),
              "mean_shift": FeatureMeanShift(train_subset.all(), num_classes)}
    for name, mover in movers.items():
        for target, other in (("speaker", "phone"), ("phone", "speaker")):
            key = f"{name}_{target}"
            cells = existing_cells(train_subset.labels, target, other, num_classes[target], num_classes[other])
            candidates = torch.unique(train_subset.labels[target]).tolist()
            row = posterior_table(mover, probes, heldout_subset, target, other, candidates, num_frames, seed,
                                  cells=cells)
            result[key] = row["delta_target"]
            result[f"{key}_{other}_cost"] = row["delta_other"]
    result["eer_test"] = judge_eer(hparams["prep_folder"]) if judge else None
    return result


def markdown(rows):
    """The report table: one row per corpus, the paper's TIMIT first."""
    lines = ["| corpus | training frames (speakers) | p(q\\|x) (acc) | p(s\\|x) all (acc) | p(s\\|x) among N (acc) | "
             "ceiling speaker δ(s2) / δ(q) | ceiling phone δ(q2) / δ(s) | feature mean shift, speaker δ(s2) / δ(q) | "
             "feature mean shift, phone δ(q2) / δ(s) | judge EER, test speakers |",
             "|---|---|---|---|---|---|---|---|---|---|",
             f"| TIMIT (the paper) | | {PAPER['p_phone']:.3f} | | {PAPER['p_speaker_subset']:.3f} (N about 40) | "
             f">= +{PAPER['ceiling_speaker']:.3f} | | | | |"]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['frames']} ({r['train_speakers']}) | {r['p_phone']:.3f} ({r['phone_accuracy']:.3f}) | "
            f"{r['p_speaker_all']:.3f} ({r['speaker_accuracy_all']:.3f}) | "
            f"{r['p_speaker_subset']:.3f} ({r['speaker_accuracy_subset']:.3f}, N = {r['subset']}) | "
            f"{r['ceiling_speaker']:+.3f} / {r['ceiling_speaker_phone_cost']:+.3f} | "
            f"{r['ceiling_phone']:+.3f} / {r['ceiling_phone_speaker_cost']:+.3f} | "
            f"{r['mean_shift_speaker']:+.3f} / {r['mean_shift_speaker_phone_cost']:+.3f} | "
            f"{r['mean_shift_phone']:+.3f} / {r['mean_shift_phone_speaker_cost']:+.3f} | "
            f"{'' if r.get('eer_test') is None else format(r['eer_test'], '.3f')} |")
    return "\n".join(lines) + "\n"


def markdown_by_phone(rows):
    """One row per phone class (by the first corpus's posterior, lowest first), one column per corpus."""
    names = list(rows)
    first = rows[names[0]]["p_speaker_by_phone"]
    lines = ["| phone | " + " | ".join(f"{name}: frames, p(s\\|x) among N" for name in names) + " |",
             "|---|" + "---|" * len(names)]
    for phone in sorted(first, key=lambda p: first[p][1]):
        cells = []
        for name in names:
            count, value = rows[name]["p_speaker_by_phone"].get(phone, (0, float("nan")))
            cells.append(f"{count}, {value:.3f}")
        lines.append(f"| {phone} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["demo"], help="embedded corpus sizes (small, demo, full)")
    parser.add_argument("--data-folder", help="a TIMIT-layout corpus instead of the embedded one")
    parser.add_argument("--output-root", nargs="+", default=["results_calibration"],
                        help="corpora, preparation and probe caches (one per --corpus-options, or one for all sizes)")
    parser.add_argument("--subset", type=int, default=40, help="training speakers of the subset probe")
    parser.add_argument("--probe-epochs", type=int, default=8, help="as hparams/evaluate.yaml")
    parser.add_argument("--num-frames", type=int, default=2000, help="frames of the ceiling tables")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--split", choices=("heldout", "valid"), default="heldout",
                        help="utterances the probes are scored on: heldout (report) or valid (choosing knobs)")
    parser.add_argument("--corpus-options", nargs="+", default=["{}"],
                        help="yaml mappings of CorpusOptions overrides of the embedded corpus, e.g. '{voice_spread: 0.5}' "
                             "(several: one corpus each, side by side)")
    parser.add_argument("--no-judge", action="store_true", help="skip the independent speaker encoder's EER")
    parser.add_argument("--by-phone", action="store_true",
                        help="also the speaker posterior among the subset for each phone class")
    parser.add_argument("--out", type=Path, help="also write the markdown table here")
    args = parser.parse_args(argv)
    if len(args.output_root) not in (1, len(args.corpus_options)):
        parser.error("give one --output-root, or one per --corpus-options")
    roots = args.output_root * len(args.corpus_options) if len(args.output_root) == 1 else args.output_root
    if len(args.corpus_options) > 1 and len(set(roots)) < len(roots):
        parser.error("corpora with other options need their own --output-root each")
    corpora = {"TIMIT-layout corpus": (roots[0], {"data_folder": args.data_folder})} if args.data_folder else {
        f"embedded {size}" + (f" {options}" if len(args.corpus_options) > 1 else ""): (
            root, {"embedded_corpus_size": size, "embedded_corpus_options": yaml.safe_load(options)})
        for size in args.sizes for root, options in zip(roots, args.corpus_options)}
    rows = {}
    for name, (root, overrides) in corpora.items():
        hparams = load_hparams(ROOT / "hparams/fdnf.yaml", {"output_root": root, **overrides})
        rows[name] = calibrate(hparams, args.subset, args.probe_epochs, num_frames=args.num_frames, seed=args.seed,
                               split=args.split, judge=not args.no_judge)
    table = markdown(rows) + ("\n" + markdown_by_phone(rows) if args.by_phone else "")
    print(table)
    if args.out:
        args.out.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
