"""Synthesizes a TIMIT-shaped corpus with eSpeak NG.

``OUT/TRAIN|TEST/DR<n>/<F|M><ID>/<UTT>.WAV`` (16 kHz, 16-bit RIFF) with
sample-accurate ``.PHN`` (TIMIT-61 symbols, from eSpeak's phoneme events),
``.TXT``, and a speaker table ``OUT/SPKRINFO.TXT``. The design is TIMIT's:

* every speaker reads SA1 and SA2, ``sx_per_speaker`` SX sentences and
  ``si_per_speaker`` SI sentences (TIMIT: 2 + 5 + 3);
* each SX sentence is read by ``readers_per_sx`` speakers of the same split
  (TIMIT: 7), so held-out readings have parallel readings by other speakers;
  training and test speakers read different SX sentences;
* each SI sentence is read once;
* speakers are distinct voices (:mod:`speechbrain_fdnf.corpus.speakers`), spread
  over eight dialect regions and both genders in TIMIT's proportions.

Voices differ by vocal-tract length and by each formant's own offset, strength
and bandwidth (``voice_spread`` scales the latter; 0 leaves only the vocal-tract
scale), besides pitch, rate and glottal source. Within a speaker, every
utterance jitters pitch level, intonation range and rate around the speaker's
own (``variation``), and every word is read with formants 1-3 and the local
speaking rate jittered around the speaker's (``token_variation``, through SSML
``<voice>`` and ``<prosody>`` spans), so one phone's frames vary within a
speaker and an utterance as read speech does. With ``variation`` and
``token_variation`` at 0 a speaker reads a sentence the same way every time.
The same preparation code reads this corpus and real TIMIT.

Usage::

    python -m speechbrain_fdnf.corpus.synthesize OUT [--size small|demo|full] [--seed 1234] [--layout timit|librispeech|vctk]

Authors
 * speechbrain-fdnf developers
"""

import argparse
import json
import logging
import math
import multiprocessing
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass
from xml.sax.saxutils import escape
from math import gcd
from pathlib import Path

import numpy as np
import soundfile
from scipy.signal import resample_poly
from tqdm import tqdm

from speechbrain_fdnf.corpus.espeak import ESpeak
from speechbrain_fdnf.corpus.layouts import EXACT_ALIGNMENTS, LAYOUTS, export_layout
from speechbrain_fdnf.corpus.noise_shape import shape_obstruents
from speechbrain_fdnf.corpus.sentences import sentence_pool
from speechbrain_fdnf.corpus.speakers import SPEAKER_TABLE, TOKEN_VARIANTS, draw_speakers, voice_rng, write_speaker_table
from speechbrain_fdnf.data.phones import espeak_to_timit
from speechbrain_fdnf.data.timit import corpus_statistics

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
MANIFEST = "corpus.json"
SIZES = ("small", "demo", "full")
_PLAN = "plan.json"  # in the .partial folder: the options being built (resume checks them)


@dataclass
class CorpusOptions:
    """Design, size and seed of a synthetic corpus.

    The default is the ``demo`` size (what the recipe builds when no TIMIT is
    given); :meth:`small`, :meth:`demo` and :meth:`full` are the named sizes.
    ``variation`` scales the per-utterance jitter of pitch, intonation range and
    rate; ``voice_spread`` the per-speaker formant shapes; ``token_variation``
    the per-word jitter of formants 1-3 and of the speaking rate (each 1: the
    distributions of docs/DESIGN.md, 0: none); ``voice_colour`` is the SD in dB
    of a per-speaker spectral colour that all of a speaker's phones share
    (:func:`~speechbrain_fdnf.corpus.speakers.draw_colour`; 0, the default: none,
    and the corpus is byte for byte the one built before the knob existed);
    ``noise_shape`` scales each speaker's own shaping of the consonant noise eSpeak plays
    from the same recordings for every voice (:mod:`speechbrain_fdnf.corpus.noise_shape`; 0, the default:
    none, the corpus as before); ``timit_closures`` (on by default since issue 33; off: the labels of corpora
    built before) labels the silent closures of stops and affricates as TIMIT does,
    as segments of their own (:func:`split_closures`; the audio is the same).
    """

    train_speakers: int = 140
    test_speakers: int = 42
    sx_per_speaker: int = 5
    si_per_speaker: int = 3
    readers_per_sx: int = 7
    variation: float = 1.0
    voice_spread: float = 1.0
    token_variation: float = 1.0
    voice_colour: float = 0.0
    noise_shape: float = 0.0
    timit_closures: bool = True
    seed: int = 1234

    @classmethod
    def small(cls, seed=1234, **overrides):
        """Seconds to build: 6 training and 2 test speakers, 8 utterances each (for tests)."""
        return cls(**{**dict(train_speakers=6, test_speakers=2, sx_per_speaker=4, si_per_speaker=2,
                             readers_per_sx=3, seed=seed), **overrides})

    @classmethod
    def demo(cls, seed=1234, **overrides):
        """TIMIT's design at the scale ``make demo`` trains five models on within 10 minutes."""
        return cls(**{"seed": seed, **overrides})

    @classmethod
    def full(cls, seed=1234, **overrides):
        """TIMIT's design and scale: 462 training and 168 test speakers, 10 utterances each."""
        return cls(**{**dict(train_speakers=462, test_speakers=168, seed=seed), **overrides})

    @classmethod
    def of_size(cls, size, seed=1234, **overrides):
        """The named size (``small``, ``demo`` or ``full``)."""
        if size not in SIZES:
            raise ValueError(f"unknown corpus size {size!r}; choose one of {', '.join(SIZES)}")
        return getattr(cls, size)(seed, **overrides)


#: Knobs added after corpora were built, with the value that leaves a corpus as it was before them.
NEUTRAL_KNOBS = {"voice_colour": 0.0, "noise_shape": 0.0, "timit_closures": False}


def options_record(options):
    """The options as the manifest records them: knobs at their neutral value (:data:`NEUTRAL_KNOBS`) are
    left out, so that a corpus built before a knob existed is the same corpus, manifest included.

    Example
    -------
    >>> "voice_colour" in options_record(CorpusOptions.small())
    False
    >>> options_record(CorpusOptions.small(voice_colour=3.0))["voice_colour"]
    3.0
    """
    record = asdict(options)
    return {key: value for key, value in record.items() if NEUTRAL_KNOBS.get(key, object()) != value}


def _jitter(rng, variation, value, sd, low, high):
    return min(high, max(low, value + variation * rng.gauss(0, sd)))


#: SD of the log speaking rate of a word around its utterance's (at ``token_variation`` 1).
WORD_RATE_SD = 0.18


def reading_markup(profile, text, rng, token_variation):
    """SSML for one reading of ``text``: each word in one of the speaker's word-level tokens
    (:meth:`~speechbrain_fdnf.corpus.speakers.SpeakerProfile.token_variants`), at its own local
    rate; ``None`` when ``token_variation`` is 0 (the plain text is read).

    Example
    -------
    >>> import random
    >>> from speechbrain_fdnf.corpus.speakers import SpeakerProfile
    >>> profile = SpeakerProfile("MXYZ0", "TRAIN", "DR1", 1.0, 100.0, 1.5, 170, 0.0, 0.0, 2, 60)
    >>> markup = reading_markup(profile, "Tom & me.", random.Random(0), 1.0)
    >>> print(markup.split(" <voice")[0])
    <speak><voice name="en-us+fdnf_MXYZ0_t6"><prosody rate="101%">Tom</prosody></voice>
    >>> markup.count("<voice "), "&amp;" in markup
    (3, True)
    >>> reading_markup(profile, "Tom & me.", random.Random(0), 0.0) is None
    True
    """
    if token_variation == 0:
        return None
    words = []
    for word in text.split():
        token = profile.token_name(rng.randrange(TOKEN_VARIANTS))
        rate = round(100 * min(1.4, max(0.7, math.exp(rng.gauss(0, WORD_RATE_SD * token_variation)))))
        words.append(f'<voice name="en-us+{token}"><prosody rate="{rate}%">{escape(word)}</prosody></voice>')
    return f"<speak>{' '.join(words)}</speak>"


def speaker_voices(profile, options):
    """The eSpeak variants one speaker's readings use: its voice and its word-level tokens."""
    tokens = profile.token_variants(voice_rng(options.seed, profile.speaker + "/tokens"), options.token_variation)
    return {profile.variant_name: profile.variant(), **tokens}


def _sx_groups(rng, speakers, rounds, readers):
    """Per round, the speakers shuffled into groups of ``readers``; each group reads one sentence."""
    groups = []
    for _ in range(rounds):
        order = rng.sample(speakers, len(speakers))
        groups += [order[i : i + readers] for i in range(0, len(order), readers)]
    return groups


def plan_reading(profile, utt, text, options, rng, word_rng):
    """One planned reading of ``text`` by ``profile``: the utterance's pitch, range and rate
    jittered by ``rng`` (``options.variation``), its words' tokens and rates by ``word_rng``
    (``options.token_variation``). With both knobs at 0 every reading of a text by one speaker
    is planned, and so synthesized, the same.
    """
    v = options.variation
    return dict(
        split=profile.split,
        dialect=profile.dialect,
        speaker=profile.speaker,
        utt=utt,
        text=text,
        voice=f"en-us+{profile.variant_name}",
        pitch=round(_jitter(rng, v, 50, 6, 20, 80)),
        pitch_range=round(_jitter(rng, v, 50, 12, 15, 85)),
        rate=round(_jitter(rng, v, profile.rate, 0.06 * profile.rate, 100, 260)),
        markup=reading_markup(profile, text, word_rng, options.token_variation),
    )


def plan_corpus(options):
    """The deterministic design of a corpus: its speakers and utterances.

    Returns
    -------
    profiles : list of SpeakerProfile
    plan : list of dict
        One per utterance: split, dialect, speaker, utt, text, voice, the
        utterance's pitch (0-100), pitch_range (0-100) and rate (words/min), and
        its SSML ``markup`` (per-word tokens and rates; ``None``: the plain text).
    """
    if options.train_speakers < 1 or options.test_speakers < 0:
        raise ValueError("a corpus needs at least one training speaker")
    if options.readers_per_sx < 1 or options.sx_per_speaker < 0 or options.si_per_speaker < 0:
        raise ValueError("readers_per_sx must be positive; sentence counts must not be negative")
    for knob in ("variation", "voice_spread", "token_variation", "voice_colour", "noise_shape"):
        if getattr(options, knob) < 0:
            raise ValueError(f"{knob} must be >= 0, got {getattr(options, knob)}")
    rng = random.Random(options.seed)
    taken = set()
    shapes = dict(voice_spread=options.voice_spread, seed=options.seed, voice_colour=options.voice_colour,
                  noise_shape=options.noise_shape)
    profiles = draw_speakers(rng, "TRAIN", options.train_speakers, taken, **shapes)
    profiles += draw_speakers(rng, "TEST", options.test_speakers, taken, **shapes)
    groups = []
    for split in ("TRAIN", "TEST"):
        members = [p.speaker for p in profiles if p.split == split]
        groups += _sx_groups(rng, members, options.sx_per_speaker, options.readers_per_sx) if members else []
    num_si = len(profiles) * options.si_per_speaker
    sa, sx, si = sentence_pool(len(groups), num_si, options.seed)
    readings = {p.speaker: [("SA1", sa[0]), ("SA2", sa[1])] for p in profiles}
    for number, group in enumerate(groups):
        for speaker in group:
            readings[speaker].append((f"SX{3 + number}", sx[number]))
    for index, profile in enumerate(profiles):
        for k in range(options.si_per_speaker):
            number = index * options.si_per_speaker + k
            readings[profile.speaker].append((f"SI{3 + len(groups) + number}", si[number]))
    # the words' draws come from their own source: with token_variation 0 every other draw is as before
    word_rng = random.Random(f"{options.seed}/words")
    plan = [plan_reading(profile, utt, text, options, rng, word_rng)
            for profile in profiles for utt, text in readings[profile.speaker]]
    return profiles, plan


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


#: TIMIT's closure symbol of each stop and affricate (folded to silence in the 39 classes).
CLOSURES = {"b": "bcl", "d": "dcl", "g": "gcl", "p": "pcl", "t": "tcl", "k": "kcl", "ch": "tcl", "jh": "dcl"}
#: A closure is at least this long (5 ms at 16 kHz), its samples are at most this loud (int16): eSpeak renders a
#: voiceless closure as digital silence, which resampling leaves within a count or two of zero; the burst's
#: resampling filter rings up to this many samples (3 ms) before the stop's own onset.
MIN_CLOSURE_SAMPLES, CLOSURE_FLOOR, PRE_RINGING_SAMPLES = 80, 2, 48


def split_closures(segments, audio):
    """TIMIT's closure segments from eSpeak's rendering: eSpeak's event for a stop (or affricate) comes at its
    release, so the silent closure before it ends the segment of the phone before; that trailing run of
    digital silence (and the few samples of the burst's pre-ringing after it) becomes the stop's own closure
    segment (``pcl`` before ``p``, ``tcl`` before ``ch``, ...), as TIMIT marks it. A closure eSpeak voices
    (the voice bar of most ``b``, ``d``, ``g``) is not silent and stays in the stop's segment.

    Example
    -------
    >>> audio = np.array([900] * 200 + [0] * 100 + [5] * 10 + [500] * 50, dtype=np.int16)
    >>> split_closures([(0, 310, "ih"), (310, 360, "p")], audio)
    [(0, 200, 'ih'), (200, 310, 'pcl'), (310, 360, 'p')]
    """
    out = []
    for index, (start, end, label) in enumerate(segments):
        following = segments[index + 1][2] if index + 1 < len(segments) else None
        if following in CLOSURES and label not in ("h#", "pau"):
            quiet = np.abs(audio[start:end].astype(np.int32)) <= CLOSURE_FLOOR
            reach = max(len(quiet) - PRE_RINGING_SAMPLES, 0)  # the silent run must reach the burst's pre-ringing
            loud = np.flatnonzero(~quiet[:reach])
            run_start = int(loud[-1]) + 1 if len(loud) else 0
            after = np.flatnonzero(~quiet[run_start:])
            run_end = run_start + (int(after[0]) if len(after) else len(quiet) - run_start)
            if 0 < run_start and run_end >= reach and run_end - run_start >= MIN_CLOSURE_SAMPLES:
                out += [(start, start + run_start, label), (start + run_start, end, CLOSURES[following])]
                continue
        out.append((start, end, label))
    return out


def read_entry(espeak, entry):
    """eSpeak's :class:`~speechbrain_fdnf.corpus.espeak.Synthesis` of one planned reading (its SSML
    markup where it has one, else its text), at eSpeak's own rate."""
    markup = entry.get("markup")
    return espeak.synthesize(markup or entry["text"], voice=entry["voice"], pitch=entry["pitch"], rate=entry["rate"],
                             pitch_range=entry["pitch_range"], ssml=markup is not None)


def synthesize_utterance(espeak, entry, folder, closures=False, noise=()):
    """Synthesizes one planned utterance into ``folder`` (WAV, PHN, TXT); returns its length. ``closures``:
    label stops' silent closures as TIMIT does (:func:`split_closures`); ``noise``: the speaker's shaping of
    its consonant noise, ``(frequency factor, dB per octave)`` (:func:`shape_obstruents`; empty: none)."""
    out = read_entry(espeak, entry)
    common = gcd(SAMPLE_RATE, out.sample_rate)
    wave = resample_poly(out.audio.astype(np.float64), SAMPLE_RATE // common, out.sample_rate // common)
    audio = np.clip(np.round(wave), -32768, 32767).astype(np.int16)
    try:
        segments = phone_segments(out.phonemes, len(audio), SAMPLE_RATE / out.sample_rate)
        if closures:
            segments = split_closures(segments, audio)
    except KeyError as err:
        raise ValueError(f"{err.args[0]} (voice {entry['voice']}, text {entry['text']!r})") from None
    if noise:
        audio = shape_obstruents(audio, segments, *noise, sample_rate=SAMPLE_RATE)
    stem = folder / entry["utt"]
    soundfile.write(f"{stem}.WAV", audio, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    Path(f"{stem}.PHN").write_text("".join(f"{s} {e} {label}\n" for s, e, label in segments))
    Path(f"{stem}.TXT").write_text(f"0 {len(audio)} {entry['text']}\n")
    return len(audio)


def _speaker_folder(root, profile):
    return Path(root) / profile.split / profile.dialect / profile.speaker


def _synthesize_speaker(job):
    """One speaker, into ``<speaker>.part`` then renamed: a finished folder is a complete speaker."""
    profile, voices, entries, root, seed, closures = job
    final = _speaker_folder(root, profile)
    work = final.with_name(final.name + ".part")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    # a fresh espeak per speaker, seeded for it: the audio depends on the seed alone,
    # not on which worker ran the speaker or what it synthesized before
    with ESpeak.isolated(voices) as espeak:
        espeak.seed(seed)
        for entry in entries:
            synthesize_utterance(espeak, entry, work, closures, profile.noise)
    os.replace(work, final)
    return profile.speaker


def synthesize_corpus(out_dir, options=None, workers=None, progress=True, layout="timit"):
    """Builds the corpus in ``out_dir`` unless it already holds one with the same options.

    The corpus is written into a sibling ``.partial`` folder, one finished
    speaker folder at a time, and moved into place at the end: an interrupted
    build never leaves a half corpus that looks complete, and building again
    with the same options resumes it, skipping the finished speakers.

    Arguments
    ---------
    out_dir : str or Path
        Corpus root (gets ``TRAIN/``, ``TEST/``, ``SPKRINFO.TXT`` and ``corpus.json``).
    options : CorpusOptions, optional
        Defaults to the demo corpus.
    workers : int, optional
        Parallel synthesis processes (default: one per CPU core); the output
        does not depend on it.
    progress : bool
        Show a progress bar over speakers.
    layout : str
        ``timit`` (with exact ``.PHN`` files), or ``librispeech`` / ``vctk``: the same corpus in that
        layout with transcripts only (:mod:`speechbrain_fdnf.corpus.layouts`; built in TIMIT's layout
        in a ``.timit`` sibling first, which is removed at the end).

    Returns
    -------
    dict
        The manifest: options, size, phone coverage and the synthesis time.
    """
    options = options or CorpusOptions()
    out_dir = Path(out_dir)
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    manifest_path = out_dir / MANIFEST
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("options") == options_record(options) and manifest.get("layout", "timit") == layout:
            logger.info("Reusing the synthetic corpus in %s", out_dir)
            return manifest
        raise FileExistsError(
            f"{out_dir} holds a synthetic corpus built with other options {manifest.get('options')} in layout "
            f"{manifest.get('layout', 'timit')} (wanted {options_record(options)} in {layout}; a corpus from an earlier "
            "version lacks the newer options); remove it, and the results trained on it, or choose another folder"
        )
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} exists and is not a synthetic corpus; refusing to write into it")
    if layout != "timit":
        source = out_dir.with_name(out_dir.name + ".timit")
        manifest = dict(synthesize_corpus(source, options, workers, progress), layout=layout)
        export_layout(source, out_dir, layout, manifest)
        shutil.rmtree(source)
        logger.info("Wrote the corpus in %s's layout into %s (exact phone boundaries in %s/%s)", layout, out_dir,
                    out_dir, EXACT_ALIGNMENTS)
        return manifest
    partial = out_dir.with_name(out_dir.name + ".partial")
    plan_path = partial / _PLAN
    if not (plan_path.exists() and json.loads(plan_path.read_text()) == options_record(options)):
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        plan_path.write_text(json.dumps(options_record(options)))
    started = time.time()
    profiles, plan = plan_corpus(options)
    entries = {}
    for entry in plan:
        entries.setdefault(entry["speaker"], []).append(entry)
    jobs = [
        (profile, speaker_voices(profile, options), entries[profile.speaker], str(partial),
         (options.seed * 7919 + index) % 2**31, options.timit_closures)
        for index, profile in enumerate(profiles)
        if not _speaker_folder(partial, profile).is_dir()
    ]
    if len(jobs) < len(profiles):
        logger.info("Resuming %s: %d of %d speakers are done", partial, len(profiles) - len(jobs), len(profiles))
    workers = min(workers or os.cpu_count() or 1, max(len(jobs), 1))
    bar = tqdm(total=len(profiles), initial=len(profiles) - len(jobs), unit="speaker", desc="synthesizing",
               disable=not progress)
    with bar:
        if workers == 1:
            for job in jobs:
                _synthesize_speaker(job)
                bar.update()
        elif jobs:
            # spawn: workers start clean (no copy of the parent's threads or library state)
            with multiprocessing.get_context("spawn").Pool(processes=workers) as pool:
                for _ in pool.imap_unordered(_synthesize_speaker, jobs):
                    bar.update()
    plan_path.unlink()
    write_speaker_table(partial / SPEAKER_TABLE, profiles)
    manifest = {"options": options_record(options), **corpus_statistics(partial, SAMPLE_RATE)}
    manifest["synthesis_seconds"] = round(time.time() - started, 1)
    manifest["workers"] = workers
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=2))
    if out_dir.exists():
        out_dir.rmdir()
    os.replace(partial, out_dir)
    logger.info(
        "Synthesized %d speakers, %d utterances (%.2f h, %d speech frames) into %s in %.0f s",
        manifest["speakers"], manifest["utterances"], manifest["hours"], manifest["speech_frames"], out_dir,
        manifest["synthesis_seconds"],
    )
    if manifest["missing_phones"]:
        logger.warning("Phone classes with no segment: %s", ", ".join(manifest["missing_phones"]))
    return manifest


def main(argv=None):
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", help="corpus root to create")
    parser.add_argument("--size", choices=SIZES, default="demo", help="named corpus size (default: demo)")
    parser.add_argument("--small", action="store_true", help="alias of --size small")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--variation", type=float, help="per-utterance pitch/range/rate jitter scale (0: none; default 1)")
    parser.add_argument("--voice-spread", type=float, help="per-speaker formant shape scale (0: vocal-tract scale only; default 1)")
    parser.add_argument("--token-variation", type=float, help="per-word formant and rate jitter scale (0: none; default 1)")
    parser.add_argument("--timit-closures", action="store_true", default=None,
                        help="label stops' silent closures as segments of their own (bcl, dcl, ..., pcl), as TIMIT")
    parser.add_argument("--voice-colour", type=float,
                        help="SD in dB of a per-speaker spectral colour all its phones share (default 0: none)")
    parser.add_argument("--noise-shape", type=float,
                        help="scale of each speaker's own shaping of its consonant noise (default 0: none)")
    parser.add_argument("--workers", type=int, help="synthesis processes (default: one per core)")
    parser.add_argument("--layout", choices=LAYOUTS, default="timit",
                        help="timit (with exact .PHN), or librispeech / vctk: transcripts only (default: timit)")
    for name in ("train-speakers", "test-speakers", "sx-per-speaker", "si-per-speaker", "readers-per-sx"):
        parser.add_argument(f"--{name}", type=int)
    args = parser.parse_args(argv)
    overrides = {
        name: getattr(args, name)
        for name in ("train_speakers", "test_speakers", "sx_per_speaker", "si_per_speaker", "readers_per_sx", "variation",
                     "voice_spread", "token_variation", "voice_colour", "noise_shape", "timit_closures")
        if getattr(args, name) is not None
    }
    options = CorpusOptions.of_size("small" if args.small else args.size, args.seed, **overrides)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    manifest = synthesize_corpus(args.out_dir, options, workers=args.workers, layout=args.layout)
    counts = manifest["phone_counts"]
    print(json.dumps({k: v for k, v in manifest.items() if k != "phone_counts"}, indent=2))
    print("phone coverage (segments per folded TIMIT-39 class):")
    print("  " + "  ".join(f"{phone} {counts[phone]}" for phone in sorted(counts, key=counts.get, reverse=True)))


if __name__ == "__main__":
    main()
