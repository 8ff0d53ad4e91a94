"""TIMIT (or TIMIT-layout) preparation into SpeechBrain JSON annotations.

Reads ``TRAIN|TEST/DR1..DR8/<SPEAKER>/<UTT>.WAV|.PHN`` in upper or lower case,
NIST SPHERE or RIFF WAV, validates every file, and writes three annotation
files into ``save_folder``:

* ``train.json``: utterances of the training speakers used for training;
* ``valid.json``: ``valid_per_speaker`` utterances of every training speaker,
  for the validation loss;
* ``heldout.json``: ``heldout_per_speaker`` utterances of every training
  speaker, kept out of training (speaker manipulation needs known speakers);
* ``test.json``: the TIMIT test set (``test_set="full"``) or its core test
  set (``"core"``), for likelihood evaluation (unseen speakers).

Each entry holds the wav path, duration, speaker, gender, dialect region, the
sample-accurate phone segments with their 61-phone and folded 39-phone
labels, and the transcript when a ``.TXT`` exists.

Authors
 * speechbrain-fdnf developers
"""

import json
import logging
import random
import re
from pathlib import Path

from speechbrain_fdnf.data import audio
from speechbrain_fdnf.data.audio import shown
from speechbrain_fdnf.data.phones import FOLD_61_TO_39, SILENCE, TIMIT39
from speechbrain_fdnf.files import PREPARED_SPLITS, write_json_atomic

logger = logging.getLogger(__name__)

SPLITS = PREPARED_SPLITS
OPTIONS_FILE = "prepare_options.json"
#: TIMIT's utterance names (SA1, SI1234, SX56); other WAVs in a speaker folder, such as the
#: conversions ``python -m speechbrain_fdnf.convert`` writes next to the originals, are not data.
UTTERANCE_NAME = re.compile(r"^S[AIX]\d+$", re.IGNORECASE)
#: The 24 speakers of TIMIT's core test set.
CORE_TEST_SPEAKERS = frozenset(
    "MDAB0 MWBT0 FELC0 MTAS1 MWEW0 FPAS0 MJMP0 MLNT0 FPKT0 MLLL0 MTLS0 FJLM0 "
    "MBPM0 MKLT0 FNLP0 MCMJ0 MJDH0 FMGD0 MGRT0 MNJM0 FDHC0 MJLN0 MPAM0 FMLD0".split()
)


class TimitError(ValueError):
    """A problem with a corpus file; the message names the file."""


def is_directory(path):
    """``path.is_dir()``; a path the OS cannot even look up (e.g. too long) is a :class:`TimitError`."""
    return audio.is_directory(path, error=TimitError)


def _entries(folder):
    """The entries of ``folder``, sorted; an unreadable folder is a :class:`TimitError` naming it."""
    try:
        return sorted(folder.iterdir())
    except OSError as err:
        raise TimitError(f"{shown(folder)}: cannot be listed ({err.strerror or err})") from None


def _child(folder, name):
    """The entry of ``folder`` called ``name`` in any letter case, or None."""
    for entry in _entries(folder):
        if entry.name.lower() == name.lower():
            return entry
    return None


def read_phn(path, num_samples):
    """Reads and validates a ``.PHN`` file.

    Arguments
    ---------
    path : Path
        The ``.PHN`` file.
    num_samples : int
        Length of the matching audio; no segment may end past it.

    Returns
    -------
    list of (int, int, str)
        ``(start, end, phone61)`` segments.

    Raises
    ------
    TimitError
        Naming the file and line for a malformed line, non-integer, reversed,
        overlapping or out-of-range boundaries, or an unknown phone.
    """
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise TimitError(f"{path}: cannot be read as a text phone file ({err})") from None
    segments, previous_end = [], 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = line.split()
        where = f"{path}, line {number}"
        if len(fields) != 3:
            raise TimitError(f"{where}: expected 'start end phone', got {line!r}")
        try:
            start, end = int(fields[0]), int(fields[1])
        except ValueError:
            raise TimitError(f"{where}: boundaries must be integers (samples), got {line!r}") from None
        phone = fields[2].lower()
        if phone not in FOLD_61_TO_39:
            raise TimitError(f"{where}: unknown phone {fields[2]!r} (not one of the 61 TIMIT phones)")
        if start < 0 or end <= start:
            raise TimitError(f"{where}: segment [{start}, {end}) is empty or reversed")
        if start < previous_end:
            raise TimitError(f"{where}: segment starts at {start}, before the previous one ends ({previous_end})")
        if end > num_samples:
            raise TimitError(f"{where}: segment ends at sample {end}, past the audio's {num_samples} samples")
        segments.append((start, end, phone))
        previous_end = end
    if not segments:
        raise TimitError(f"{path}: no phone segments")
    return segments


def read_utterance(wav_path, sample_rate=16000):
    """Validates one utterance and returns its annotation entry (without id).

    Raises
    ------
    TimitError
        For a missing ``.PHN``, an unreadable or empty WAV, a WAV at another
        sample rate or with several channels, a bad ``.PHN``, or one whose
        segments are all silence (no speech to train or evaluate on).
    """
    info = audio.check_audio(wav_path, sample_rate, error=TimitError)
    phn = _sibling(wav_path, ".phn")
    if phn is None:
        raise TimitError(f"{wav_path}: no matching .PHN file")
    segments = read_phn(phn, info.frames)
    if all(FOLD_61_TO_39[phone] == SILENCE for _, _, phone in segments):
        raise TimitError(f"{wav_path}: no speech (every segment of {phn.name} is silence, "
                         f"{info.frames / sample_rate:.2f} s)")
    txt = _sibling(wav_path, ".txt")
    text = ""
    if txt is not None:
        parts = txt.read_text(encoding="ascii", errors="replace").split(maxsplit=2)
        text = parts[2].strip() if len(parts) == 3 else ""
    return {
        "wav": str(wav_path),
        "duration": info.frames / sample_rate,
        "num_samples": info.frames,
        "starts": [s for s, _, _ in segments],
        "ends": [e for _, e, _ in segments],
        "phones61": [p for _, _, p in segments],
        "phones39": [FOLD_61_TO_39[p] for _, _, p in segments],
        "text": text,
    }


def _sibling(wav_path, suffix):
    for candidate in (wav_path.with_suffix(suffix.upper()), wav_path.with_suffix(suffix.lower())):
        if candidate.exists():
            return candidate
    return None


def scan_split(split_dir, sample_rate=16000, exclude_sa=True, on_error="raise"):
    """Reads every utterance of one TIMIT split folder (``TRAIN`` or ``TEST``).

    Returns
    -------
    entries : dict
        ``SPEAKER_UTT`` -> annotation entry.
    skipped : list of str
        The problems of utterances skipped under ``on_error="skip"``.
    """
    entries, skipped = {}, []
    for dialect_dir in (p for p in _entries(split_dir) if is_directory(p)):
        if not dialect_dir.name.upper().startswith("DR"):
            raise TimitError(f"{dialect_dir}: expected dialect-region folders DR1..DR8 in {split_dir}")
        for speaker_dir in (p for p in _entries(dialect_dir) if is_directory(p)):
            speaker = speaker_dir.name.upper()
            if speaker[0] not in "FM":
                raise TimitError(f"{speaker_dir}: speaker folders must start with F or M (TIMIT naming)")
            for wav in (p for p in _entries(speaker_dir) if p.suffix.lower() == ".wav"):
                utt = wav.stem.upper()
                if not UTTERANCE_NAME.match(utt):
                    logger.info("Ignoring %s: not a TIMIT utterance name", wav)
                    continue
                if exclude_sa and utt.startswith("SA"):
                    continue
                try:
                    entry = read_utterance(wav, sample_rate)
                except TimitError as err:
                    if on_error != "skip":
                        raise
                    logger.warning("Skipping %s", err)
                    skipped.append(str(err))
                    continue
                entry.update(speaker=speaker, gender=speaker[0], dialect=dialect_dir.name.upper(), utterance=utt)
                entries[f"{speaker}_{utt}"] = entry
    return entries, skipped


def corpus_statistics(data_folder, sample_rate=16000, frame_shift=0.01):
    """Size and phone coverage of a TIMIT-layout corpus (every utterance, SA included).

    Returns
    -------
    dict
        ``speakers``, ``utterances``, ``hours``, ``speech_frames`` (non-silence
        frames at ``frame_shift``), ``phone_counts`` (folded 39-class label ->
        number of segments, silence included) and ``missing_phones`` (the
        classes with no segment).
    """
    entries = {}
    for name in ("train", "test"):
        split_dir = _child(Path(data_folder), name)
        if split_dir is not None:
            entries.update(scan_split(split_dir, sample_rate, exclude_sa=False)[0])
    counts = {phone: 0 for phone in TIMIT39}
    speech_samples = 0
    for entry in entries.values():
        for start, end, phone in zip(entry["starts"], entry["ends"], entry["phones39"]):
            counts[phone] += 1
            speech_samples += (end - start) if phone != SILENCE else 0
    return {
        "speakers": len({entry["speaker"] for entry in entries.values()}),
        "utterances": len(entries),
        "hours": round(sum(entry["num_samples"] for entry in entries.values()) / sample_rate / 3600, 3),
        "speech_frames": round(speech_samples / sample_rate / frame_shift),
        "phone_counts": counts,
        "missing_phones": [phone for phone, count in counts.items() if count == 0],
    }


def split_by_speaker(entries, counts, seed):
    """Moves a seeded draw of utterances of each speaker out of ``entries``.

    Arguments
    ---------
    entries : dict
        Utterance id -> entry.
    counts : dict
        Split name -> utterances per speaker to draw for it, in order.
    seed : int
        Seed of the draw.

    Returns
    -------
    dict
        ``"train"`` (what is left) and one dict per name in ``counts``.
    """
    by_speaker = {}
    for key in sorted(entries):
        by_speaker.setdefault(entries[key]["speaker"], []).append(key)
    rng = random.Random(seed)
    splits = {name: {} for name in ("train", *counts)}
    needed = sum(counts.values())
    for speaker, keys in sorted(by_speaker.items()):
        if len(keys) <= needed:
            raise TimitError(
                f"speaker {speaker} has {len(keys)} usable utterances; cannot hold out "
                f"{needed} ({counts}) and still train on it"
            )
        drawn = rng.sample(keys, needed)
        assignment, start = {}, 0
        for name, count in counts.items():
            assignment.update({key: name for key in drawn[start : start + count]})
            start += count
        for key in keys:
            splits[assignment.get(key, "train")][key] = entries[key]
    return splits


def prepared_outputs(save_folder):
    """Split name -> path of its annotation file in ``save_folder``."""
    return {split: Path(save_folder) / f"{split}.json" for split in SPLITS}


def is_up_to_date(save_folder, options):
    """Whether ``save_folder`` holds every split prepared with exactly ``options`` (logged either way)."""
    options_path = Path(save_folder) / OPTIONS_FILE
    if not (all(p.exists() for p in prepared_outputs(save_folder).values()) and options_path.exists()):
        return False
    if json.loads(options_path.read_text()).get("options") == options:
        logger.info("Preparation in %s is up to date; skipping", save_folder)
        return True
    logger.info("Preparation options changed; preparing again")
    return False


def prepare_timit(
    data_folder,
    save_folder,
    exclude_sa=True,
    heldout_per_speaker=2,
    valid_per_speaker=1,
    test_set="full",
    sample_rate=16000,
    on_error="raise",
    seed=1234,
):
    """Prepares TIMIT (or the embedded corpus) into ``train/heldout/test.json``.

    Skips the work when the three files exist and were made with the same
    options; redoes it when any option changed. Files are written atomically.

    Arguments
    ---------
    data_folder : str or Path
        Corpus root holding ``TRAIN`` and ``TEST`` (any letter case).
    save_folder : str or Path
        Where the annotation files go.
    exclude_sa : bool
        Drop the SA1/SA2 sentences (read by every speaker), as standard recipes do.
    heldout_per_speaker : int
        Utterances per training speaker held out for manipulation evaluation.
    valid_per_speaker : int
        Utterances per training speaker held out for the validation loss
        (learning-rate and checkpoint decisions never see the held-out set).
    test_set : str
        ``"full"`` (all TEST speakers) or ``"core"`` (TIMIT's 24-speaker core test).
    sample_rate : int
        Expected sample rate; any other is an error naming the file.
    on_error : str
        ``"raise"`` (default) stops at the first bad file; ``"skip"`` logs and
        skips bad utterances and records them in ``prepare_options.json``.
    seed : int
        Seed of the held-out draw.

    Returns
    -------
    dict
        Split name -> path of its annotation file.
    """
    data_folder, save_folder = Path(data_folder), Path(save_folder)
    if test_set not in ("full", "core"):
        raise ValueError(f"test_set must be 'full' or 'core', got {test_set!r}")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if not is_directory(data_folder):
        raise FileNotFoundError(f"TIMIT data folder {shown(data_folder)} does not exist")
    options = dict(
        data_folder=str(data_folder.resolve()),
        exclude_sa=exclude_sa,
        heldout_per_speaker=heldout_per_speaker,
        valid_per_speaker=valid_per_speaker,
        test_set=test_set,
        sample_rate=sample_rate,
        on_error=on_error,
        seed=seed,
    )
    outputs = prepared_outputs(save_folder)
    if is_up_to_date(save_folder, options):
        return outputs

    split_dirs = {}
    for name in ("train", "test"):
        split_dirs[name] = _child(data_folder, name)
        if split_dirs[name] is None or not split_dirs[name].is_dir():
            raise TimitError(
                f"{data_folder} is not TIMIT-shaped: no {name.upper()}/ folder "
                "(expected TRAIN|TEST/DR<n>/<SPEAKER>/<UTT>.WAV with .PHN)"
            )
    train_all, skipped = scan_split(split_dirs["train"], sample_rate, exclude_sa, on_error)
    test, skipped_test = scan_split(split_dirs["test"], sample_rate, exclude_sa, on_error)
    if test_set == "core":
        test = {k: v for k, v in test.items() if v["speaker"] in CORE_TEST_SPEAKERS}
    if not train_all:
        raise TimitError(f"{split_dirs['train']}: no usable utterances")
    splits = split_by_speaker(train_all, {"heldout": heldout_per_speaker, "valid": valid_per_speaker}, seed)
    splits["test"] = test
    save_folder.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        write_json_atomic(outputs[split], splits[split])
    summary = {split: len(splits[split]) for split in SPLITS}
    write_json_atomic(save_folder / OPTIONS_FILE, {"options": options, "utterances": summary,
                                                   "skipped": skipped + skipped_test})
    logger.info("Prepared %s into %s (%s)", data_folder, save_folder, summary)
    return outputs
