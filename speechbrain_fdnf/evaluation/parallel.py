"""Parallel conversion distortion: a converted utterance against the target speaker's real reading.

TIMIT and the embedded corpus have sentences read by several speakers (SA,
SX). A held-out utterance of speaker s1 is converted to a training speaker s2
who read the same sentence; the two readings are aligned segment by segment
(the i-th non-silence phone segment of one to the i-th of the other, linear
time warp inside each segment), and the mean log-Mel distance in dB between
aligned frames is reported for the converted and for the unconverted
utterance. This is the field's objective voice-conversion measure
(mel-cepstral-distortion style); it does not depend on the probes.

Authors
 * speechbrain-fdnf developers
"""

import torch

from speechbrain_fdnf.data.alignment import aligned_frames, parallel_readings
from speechbrain_fdnf.files import hop_samples

#: Its name before 0.5 (the pairs are now drawn where training's paired frames are defined).
parallel_pairs = parallel_readings


def log_mel_distance(feats, reference):
    """Per frame: the root mean square difference in dB over the bands (the features are in dB)."""
    return (feats - reference).pow(2).mean(-1).sqrt()


@torch.no_grad()
def conversion_distortion(factorizer, pairs, factor="speaker", convert=None):
    """Mean log-Mel distance (dB) of converted and of unconverted utterances to the target's real readings.

    Arguments
    ---------
    factorizer : SpeechFactorizer
        The model; conversion is its class-mean shift of ``factor`` from the
        utterance's speaker to the reading's, unless ``convert`` is given.
    pairs : list
        From :func:`~speechbrain_fdnf.data.alignment.parallel_readings`.
    factor : str
        The factor changed.
    convert : callable, optional
        ``convert(feats, entry, reading) -> feats'``: another conversion
        (e.g. :func:`matching_conversion`); it must not see the reading.

    Returns
    -------
    dict
        ``converted_db``, ``unconverted_db``, ``pairs`` (used), ``frames``.
    """
    hop = hop_samples(factorizer.hparams.compute_features)
    centre = factorizer.centre_bands
    converted = unconverted = 0.0
    frames = used = 0
    for entry, reading in pairs:
        feats, target = factorizer.features(entry["wav"]), factorizer.features(reading["wav"])
        matched = aligned_frames(entry, reading, len(feats), len(target), hop)
        if matched is None:
            continue
        mine, theirs = matched
        if convert is None:
            moved = factorizer.engine.manipulate(feats, factor, source=factorizer.class_index(factor, entry[factor]),
                                                 target=factorizer.class_index(factor, reading[factor]))
        else:
            moved = convert(feats, entry, reading)
        converted += log_mel_distance(moved[mine, centre], target[theirs, centre]).sum().item()
        unconverted += log_mel_distance(feats[mine, centre], target[theirs, centre]).sum().item()
        frames += len(mine)
        used += 1
    return {"converted_db": converted / max(frames, 1), "unconverted_db": unconverted / max(frames, 1),
            "pairs": used, "frames": frames}


def matching_conversion(factorizer, train_entries, factor="speaker", k=4, gate=True, decode=True, cache=None):
    """A ``convert`` for :func:`conversion_distortion`: :meth:`SpeechFactorizer.match
    <speechbrain_fdnf.inference.SpeechFactorizer.match>` against every training utterance of the
    reading's class except the reading itself (the pool must not hold the answer).

    Arguments
    ---------
    factorizer : SpeechFactorizer
        The model.
    train_entries : dict
        Prepared training annotations by utterance id (each with ``wav`` and ``factor``).
    factor : str
        The factor changed.
    k : int
        Neighbours averaged.
    gate : bool
        Gate the match by the model's inferred kept classes.
    decode : bool
        Decode a frame-level kept factor with the factorizer's :attr:`decoders
        <speechbrain_fdnf.inference.SpeechFactorizer.decoders>` (else the window).
    cache : dict, optional
        Reference features by path, shared by conversions of the same model.
    """
    by_class, cache = {}, {} if cache is None else cache
    for entry in train_entries.values():
        by_class.setdefault(entry[factor], []).append(entry["wav"])

    def features(wav):  # each reference is read once, however many conversions use it
        if wav not in cache:
            cache[wav] = factorizer.features(wav)
        return cache[wav]

    def convert(feats, entry, reading):
        references = [features(wav) for wav in by_class.get(reading[factor], []) if wav != reading["wav"]]
        if not references:
            raise ValueError(f"no training utterance of {factor} {reading[factor]!r} besides the reading {reading['wav']}")
        return factorizer.match(feats, factor, references, k=k, gate=gate, decode=decode)

    return convert
