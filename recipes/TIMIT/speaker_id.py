#!/usr/bin/env python3
"""Reuse example: speaker identification with ``SpeechFactorizer.factor_embedding``.

Loads a trained f-DNF through the inference interface (as any other recipe
would), turns every utterance into an utterance-level speaker vector (the
mean of its z_speaker codes) and compares it, with the same classifier, with
the mean log-Mel frame and the mean of the whole latent.

Usage::

    python recipes/TIMIT/speaker_id.py hparams/speaker_id.yaml [--model_folder=DIR]
"""

import sys
from pathlib import Path

import numpy as np
import speechbrain as sb
import torch
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from speechbrain_fdnf.files import read_prepared_split
from speechbrain_fdnf.inference import SpeechFactorizer
from speechbrain_fdnf.recipe_utils import load_config
from speechbrain_fdnf.validation import summarised_warnings


@summarised_warnings("speaker ID utterances")  # one warning for a corpus's weak files
def utterance_vectors(flow, entries, factor, segmentations=(None,)):
    """One ``({feature set: (items, dim) array}, speaker of each item)`` per segmentation.

    An item is a whole utterance (segmentation ``None``), or each
    non-overlapping segment of that many frames (a harder, shorter test).
    Each utterance is read and featurized once, and encoded once per
    segmentation with its segments as one batch; the factor's row is
    :meth:`SpeechFactorizer.factor_embedding`, the mean of the factor's codes,
    taken from the same codes as the whole latent's mean.
    """
    names = ("mean log-Mel (baseline)", "mean z (whole latent)", f"factor_embedding ({factor})")
    tables = [({name: [] for name in names}, []) for _ in segmentations]
    for entry in entries:
        utterance = flow.features(entry["wav"])
        for (vectors, speakers), frames in zip(tables, segmentations):
            step = frames or len(utterance)
            count = len(utterance) // step
            if not count:
                continue
            segments = utterance[: count * step].view(count, step, -1)
            codes = flow.encode(segments)
            for name, values in zip(names, (segments, codes["z"], codes[factor])):
                vectors[name].append(values.mean(dim=-2))
            speakers += [entry["speaker"]] * count
    return [({name: torch.cat(rows).cpu().numpy() for name, rows in vectors.items()}, np.array(speakers))
            for vectors, speakers in tables]


def load_entries(prep_folder, splits):
    return [entry for split in splits for entry in read_prepared_split(prep_folder, split).values()]


if __name__ == "__main__":
    hparams_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:])
    hparams = load_config(hparams_file, overrides)
    flow = SpeechFactorizer.from_hparams(source=hparams["model_folder"], run_opts=run_opts)
    [(enrol, enrol_speakers)] = utterance_vectors(flow, load_entries(hparams["prep_folder"], hparams["enrol_splits"]),
                                                  hparams["factor"])
    test_entries = load_entries(hparams["prep_folder"], hparams["test_splits"])
    segmentations = [None, *hparams["test_segment_frames"]]
    names = ["whole utterances"] + [f"{frames}-frame segments" for frames in hparams["test_segment_frames"]]
    tests = dict(zip(names, utterance_vectors(flow, test_entries, hparams["factor"], segmentations)))
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
