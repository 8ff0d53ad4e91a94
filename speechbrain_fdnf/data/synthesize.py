"""Synthesizes a small corpus in TIMIT's exact layout with eSpeak NG.

``OUT/TRAIN|TEST/DR<n>/<F|M><ID>/<UTT>.WAV`` (16 kHz, 16-bit RIFF) with
sample-accurate ``.PHN`` (TIMIT-61 symbols, from eSpeak's phoneme events) and
``.TXT``. Speakers are eSpeak voice variants, each with its own pitch, pitch
range and speaking rate; every speaker reads SA1 and SA2 plus a seeded sample
of the other sentences (SX), with a small per-utterance prosody jitter so that
no two recordings are identical. The same preparation code reads this corpus
and real TIMIT.

Usage::

    python -m speechbrain_fdnf.data.synthesize OUT [--small] [--seed 1234]

Authors
 * speechbrain-fdnf developers
"""

import argparse
import json
import logging
import os
import random
import shutil
import string
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import multiprocessing
from math import gcd

import numpy as np
import soundfile
from scipy.signal import resample_poly

from speechbrain_fdnf.data.espeak import ESpeak
from speechbrain_fdnf.data.phones import espeak_to_timit
from speechbrain_fdnf.data.sentences import SENTENCES

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
MANIFEST = "corpus.json"

#: eSpeak voice variants used as speakers, with their gender.
VOICES = [(v, "M") for v in "m1 m2 m3 m4 m5 m6 m7 m8 Andy travis victor john paul robert iven norbert quincy david ed".split()] + [
    (v, "F") for v in "f1 f2 f3 f4 f5 Annie belinda steph aunty anika grandma linda".split()
]


@dataclass
class CorpusOptions:
    """Size and seed of a synthetic corpus (the defaults are the embedded corpus).

    The default, 24 training speakers x (SA1, SA2 + 40 SX) plus 6 test
    speakers, gives about two minutes of speech per speaker.
    """

    train_speakers: int = 24
    test_speakers: int = 6
    sentences_per_speaker: int = 40
    seed: int = 1234

    @classmethod
    def small(cls, seed=1234):
        """A corpus for tests: seconds to build."""
        return cls(train_speakers=4, test_speakers=2, sentences_per_speaker=6, seed=seed)


def _speaker_ids(rng, voices):
    ids, taken = [], set()
    for _, gender in voices:
        while True:
            candidate = gender + "".join(rng.choice(string.ascii_uppercase) for _ in range(3)) + "0"
            if candidate not in taken:
                break
        taken.add(candidate)
        ids.append(candidate)
    return ids


def plan_corpus(options):
    """The deterministic list of utterances to synthesize.

    Returns
    -------
    list of dict
        One per utterance: split, dialect, speaker, utt, voice, text and
        prosody settings.
    """
    total = options.train_speakers + options.test_speakers
    if total > len(VOICES):
        raise ValueError(f"at most {len(VOICES)} speakers are available, {total} were asked for")
    others = len(SENTENCES) - 2
    if not 0 < options.sentences_per_speaker <= others:
        raise ValueError(f"sentences_per_speaker must be in [1, {others}]")
    rng = random.Random(options.seed)
    voices = rng.sample(VOICES, total)
    plan = []
    for index, ((variant, _), speaker) in enumerate(zip(voices, _speaker_ids(rng, voices))):
        split = "TRAIN" if index < options.train_speakers else "TEST"
        pitch, pitch_range, rate = rng.randint(25, 75), rng.randint(30, 80), rng.randint(145, 205)
        readings = [("SA1", SENTENCES[0]), ("SA2", SENTENCES[1])]
        for sentence in sorted(rng.sample(range(2, len(SENTENCES)), options.sentences_per_speaker)):
            readings.append((f"SX{100 + sentence}", SENTENCES[sentence]))
        for utt, text in readings:
            plan.append(
                dict(
                    split=split,
                    dialect=f"DR{index % 8 + 1}",
                    speaker=speaker,
                    utt=utt,
                    voice=f"en-us+{variant}",
                    text=text,
                    pitch=pitch + rng.randint(-4, 4),
                    pitch_range=pitch_range,
                    rate=rate + rng.randint(-10, 10),
                )
            )
    return plan


def phone_segments(phonemes, num_samples, scale):
    """Turns eSpeak phoneme onsets into contiguous TIMIT-61 segments.

    Arguments
    ---------
    phonemes : list of (int, str)
        ``(start_sample, mnemonic)`` at eSpeak's rate.
    num_samples : int
        Length of the resampled audio.
    scale : float
        Target rate / eSpeak rate.

    Returns
    -------
    list of (int, int, str)
        ``(start, end, label)`` covering ``[0, num_samples)`` without gaps.

    Example
    -------
    >>> phone_segments([(10, "h"), (30, "@"), (50, "_:")], 60, 1.0)
    [(0, 10, 'h#'), (10, 30, 'hh'), (30, 50, 'ax'), (50, 60, 'h#')]
    """
    onsets = [(min(round(start * scale), num_samples), name) for start, name in phonemes]
    speech = [i for i, (_, name) in enumerate(onsets) if not name.startswith("_")]
    first, last = (speech[0], speech[-1]) if speech else (len(onsets), -1)
    segments = [(0, onsets[0][0] if onsets else num_samples, "h#")]
    for i, (start, name) in enumerate(onsets):
        end = onsets[i + 1][0] if i + 1 < len(onsets) else num_samples
        segments.append((start, end, espeak_to_timit(name, interior=first < i < last)))
    merged = []
    for start, end, label in segments:
        if end <= start:
            continue
        if merged and merged[-1][2] == label and label in ("h#", "pau"):
            merged[-1] = (merged[-1][0], end, label)
        else:
            merged.append((start, end, label))
    return merged


def synthesize_utterance(entry, folder):
    """Synthesizes one planned utterance into ``folder`` (WAV, PHN, TXT); returns its length."""
    out = ESpeak.instance().synthesize(
        entry["text"], voice=entry["voice"], pitch=entry["pitch"], rate=entry["rate"], pitch_range=entry["pitch_range"]
    )
    common = gcd(SAMPLE_RATE, out.sample_rate)
    wave = resample_poly(out.audio.astype(np.float64), SAMPLE_RATE // common, out.sample_rate // common)
    audio = np.clip(np.round(wave), -32768, 32767).astype(np.int16)
    try:
        segments = phone_segments(out.phonemes, len(audio), SAMPLE_RATE / out.sample_rate)
    except KeyError as err:
        raise ValueError(f"{err.args[0]} (voice {entry['voice']}, text {entry['text']!r})") from None
    stem = folder / entry["utt"]
    soundfile.write(f"{stem}.WAV", audio, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    Path(f"{stem}.PHN").write_text("".join(f"{s} {e} {label}\n" for s, e, label in segments))
    Path(f"{stem}.TXT").write_text(f"0 {len(audio)} {entry['text']}\n")
    return len(audio)


def _synthesize_speaker(job):
    entries, root, seed = job
    ESpeak.instance().seed(seed)
    total = 0
    for entry in entries:
        folder = Path(root) / entry["split"] / entry["dialect"] / entry["speaker"]
        folder.mkdir(parents=True, exist_ok=True)
        total += synthesize_utterance(entry, folder)
    return total


def synthesize_corpus(out_dir, options=None, workers=None):
    """Builds the corpus in ``out_dir`` unless it already holds one with the same options.

    The corpus is written into a sibling ``.partial`` folder and moved into
    place at the end, so an interrupted build never leaves a half corpus that
    looks complete.

    Arguments
    ---------
    out_dir : str or Path
        Corpus root (gets ``TRAIN/`` and ``TEST/``).
    options : CorpusOptions, optional
        Defaults to the embedded corpus.
    workers : int, optional
        Parallel synthesis processes (default: one per CPU core); the output
        does not depend on it.

    Returns
    -------
    dict
        The manifest: options, counts and the synthesis time.
    """
    options = options or CorpusOptions()
    out_dir = Path(out_dir)
    manifest_path = out_dir / MANIFEST
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("options") == asdict(options):
            logger.info("Reusing the synthetic corpus in %s", out_dir)
            return manifest
        raise FileExistsError(
            f"{out_dir} holds a synthetic corpus built with other options {manifest.get('options')}; "
            "remove it or choose another folder"
        )
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} exists and is not a synthetic corpus; refusing to write into it")
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    started = time.time()
    plan = plan_corpus(options)
    speakers = {}
    for entry in plan:
        speakers.setdefault(entry["speaker"], []).append(entry)
    jobs = [(entries, str(partial), options.seed) for entries in speakers.values()]
    # eSpeak keeps state across utterances (its pitch flutter phase, libc rand),
    # so each speaker is synthesized in a fresh process: the output then depends
    # on the seed alone, not on the order, the worker count or earlier calls.
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes=min(workers or os.cpu_count() or 1, len(jobs)), maxtasksperchild=1) as pool:
        total_samples = sum(pool.imap_unordered(_synthesize_speaker, jobs))
    manifest = {
        "options": asdict(options),
        "utterances": len(plan),
        "speakers": options.train_speakers + options.test_speakers,
        "hours": round(total_samples / SAMPLE_RATE / 3600, 4),
        "synthesis_seconds": round(time.time() - started, 1),
    }
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=2))
    if out_dir.exists():
        out_dir.rmdir()
    os.replace(partial, out_dir)
    logger.info("Synthesized %s utterances (%.2f h) into %s in %.0f s", len(plan), manifest["hours"], out_dir, manifest["synthesis_seconds"])
    return manifest


def main(argv=None):
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", help="corpus root to create")
    parser.add_argument("--small", action="store_true", help="a tiny corpus for tests")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--train-speakers", type=int)
    parser.add_argument("--test-speakers", type=int)
    parser.add_argument("--sentences-per-speaker", type=int)
    args = parser.parse_args(argv)
    options = CorpusOptions.small(args.seed) if args.small else CorpusOptions(seed=args.seed)
    for name in ("train_speakers", "test_speakers", "sentences_per_speaker"):
        if getattr(args, name) is not None:
            setattr(options, name, getattr(args, name))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    manifest = synthesize_corpus(args.out_dir, options)
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
