#!/usr/bin/env python3
"""Reuse example: speaker identification with ``SpeechFactorizer.factor_embedding``.

Loads a trained f-DNF through the inference interface (as any other recipe
would), turns every utterance into an utterance-level speaker vector (the
mean of its z_speaker codes) and compares it, with the same classifier, with
the mean log-Mel frame and the mean of the whole latent.

Usage::

    python recipes/TIMIT/speaker_id.py hparams/speaker_id.yaml [--model_folder=DIR]
"""

import json
import sys
from pathlib import Path

import numpy as np
import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from speechbrain_fdnf.inference import SpeechFactorizer


def utterance_vectors(flow, entries, factor, segment_frames=None):
    """``{feature set: (items, dim) array}`` and the speaker of each item.

    An item is a whole utterance, or with ``segment_frames`` each
    non-overlapping segment of that many frames (a harder, shorter test).
    """
    vectors = {"mean log-Mel (baseline)": [], "mean z (whole latent)": [], f"factor_embedding ({factor})": []}
    speakers = []
    for entry in entries:
        utterance = flow.features(entry["wav"])
        step = segment_frames or len(utterance)
        for start in range(0, len(utterance) - step + 1, step):
            feats = utterance[start : start + step]
            vectors["mean log-Mel (baseline)"].append(feats.mean(0))
            vectors["mean z (whole latent)"].append(flow.encode(feats)["z"].mean(0))
            vectors[f"factor_embedding ({factor})"].append(flow.factor_embedding(feats, factor))
            speakers.append(entry["speaker"])
    return {name: torch.stack(rows).cpu().numpy() for name, rows in vectors.items()}, np.array(speakers)


def load_entries(prep_folder, splits):
    entries = []
    for split in splits:
        entries += json.loads((Path(prep_folder) / f"{split}.json").read_text()).values()
    return entries


if __name__ == "__main__":
    hparams_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:])
    with open(hparams_file) as handle:
        hparams = load_hyperpyyaml(handle, overrides)
    flow = SpeechFactorizer.from_hparams(source=hparams["model_folder"], run_opts=run_opts)
    enrol, enrol_speakers = utterance_vectors(flow, load_entries(hparams["prep_folder"], hparams["enrol_splits"]),
                                              hparams["factor"])
    test_entries = load_entries(hparams["prep_folder"], hparams["test_splits"])
    tests = {"whole utterances": utterance_vectors(flow, test_entries, hparams["factor"])}
    for frames in hparams["test_segment_frames"]:
        tests[f"{frames}-frame segments"] = utterance_vectors(flow, test_entries, hparams["factor"], frames)
    lines = [f"# Speaker identification among {len(set(enrol_speakers))} speakers", "",
             f"Fit on {len(enrol_speakers)} utterances ({', '.join(hparams['enrol_splits'])}); tested on "
             f"{len(test_entries)} other utterances of the same speakers ({', '.join(hparams['test_splits'])}). "
             "Accuracy:", "",
             "| features | dim | " + " | ".join(f"{name} ({len(labels)})" for name, (_, labels) in tests.items()) + " |",
             "|---|---|" + "---|" * len(tests)]
    for name in enrol:
        classifier = make_pipeline(StandardScaler(), hparams["classifier"]())
        classifier.fit(enrol[name], enrol_speakers)
        scores = [float((classifier.predict(vectors[name]) == labels).mean()) for vectors, labels in tests.values()]
        lines.append(f"| {name} | {enrol[name].shape[1]} | " + " | ".join(f"{a:.3f}" for a in scores) + " |")
    report = "\n".join(lines) + "\n"
    Path(hparams["result_file"]).write_text(report)
    print(report + f"\nWritten to {hparams['result_file']}")
