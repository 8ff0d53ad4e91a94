"""Preparation of a transcribed corpus (LibriSpeech, VCTK, a manifest) into the prepared-split contract.

The same four files as TIMIT's preparation (:mod:`speechbrain_fdnf.data.timit`), the same entry keys:

1. the layout is read (:mod:`speechbrain_fdnf.data.layouts`);
2. every audio file is checked; one above ``sample_rate`` (VCTK's 48 kHz) is resampled once into
   ``<save_folder>/audio``; one below it is an error (its missing band cannot be made up);
3. phone segments come from the utterance's alignment file where it has one (an MFA TextGrid in
   ``alignments``, or the manifest's ``alignment`` column: TextGrid or ``.PHN``), else from forced
   alignment of its transcript (:func:`~speechbrain_fdnf.data.forced_alignment.align_corpus`, cached
   in ``<save_folder>/alignment``);
4. speakers are split: the corpus's own test speakers (LibriSpeech's ``test-*`` subsets, a manifest's
   ``split`` column), else a seeded draw of ``test_speakers``; held-out and validation utterances of
   each training speaker as for TIMIT.

Every utterance's ``text`` is its normalised transcript, so readings of one sentence by several speakers
(VCTK's shared paragraphs) are parallel readings for the paired-frame model and the parallel distortion.

Authors
 * speechbrain-fdnf developers
"""

import logging
import random
from math import gcd
from pathlib import Path

import numpy as np
import soundfile
from scipy.signal import resample_poly

from speechbrain_fdnf.data import audio
from speechbrain_fdnf.data.audio import shown
from speechbrain_fdnf.data.forced_alignment import AlignmentItem, align_corpus
from speechbrain_fdnf.data.layouts import LAYOUTS, CorpusError, refuse
from speechbrain_fdnf.data.lexicon import normalise_text
from speechbrain_fdnf.data.phones import FOLD_61_TO_39
from speechbrain_fdnf.data.textgrid import TextGridError, read_textgrid_phones
from speechbrain_fdnf.data.timit import (OPTIONS_FILE, SPLITS, TimitError, is_up_to_date, prepared_outputs, read_phn,
                                         split_by_speaker)
from speechbrain_fdnf.files import write_json_atomic

logger = logging.getLogger(__name__)


def audio_at_rate(recording, sample_rate, folder):
    """``(path, num_samples)`` of the recording's audio at ``sample_rate``: the file itself, or a
    resampled copy in ``folder`` (made once). A lower rate is a :class:`CorpusError` naming the file."""
    info = audio.check_audio(recording.audio, None, error=CorpusError)
    if info.samplerate < sample_rate:
        raise CorpusError(f"{recording.audio}: sample rate {info.samplerate} Hz, below the {sample_rate} Hz the "
                          "features need (upsampling cannot restore the missing band)")
    if info.samplerate == sample_rate:
        return recording.audio, info.frames
    target = Path(folder) / recording.speaker / f"{recording.key}.flac"
    if not target.exists():
        samples, rate = soundfile.read(recording.audio, dtype="float64")
        common = gcd(sample_rate, rate)
        resampled = np.clip(resample_poly(samples, sample_rate // common, rate // common), -1.0, 1.0)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.stem + ".part.flac")
        soundfile.write(str(partial), resampled, sample_rate, subtype="PCM_16")
        partial.replace(target)
    return str(target), soundfile.info(str(target)).frames


def alignment_files(folder):
    """``{utterance stem: TextGrid path}`` of an MFA output folder (any depth)."""
    if folder is None:
        return {}
    if not audio.is_directory(folder, error=CorpusError):
        raise CorpusError(f"alignments folder {shown(folder)} does not exist")
    return {path.stem: path for path in sorted(Path(folder).rglob("*.TextGrid"))}


def read_alignment_file(path, sample_rate, num_samples):
    """Folded segments of an alignment file: a TextGrid, or a TIMIT ``.PHN``."""
    path = Path(path)
    if path.suffix.lower() == ".phn":
        return [(start, end, FOLD_61_TO_39[phone]) for start, end, phone in read_phn(path, num_samples)]
    if not path.exists():
        raise CorpusError(f"{path}: alignment file does not exist")
    try:
        return read_textgrid_phones(path, sample_rate, num_samples)
    except TextGridError as err:
        raise CorpusError(str(err)) from None


def test_speaker_draw(speakers, test_speakers, seed):
    """A seeded draw of test speakers: ``test_speakers`` of them (a share when below 1), at least one
    training speaker left.

    Example
    -------
    >>> sorted(test_speaker_draw(["a", "b", "c", "d", "e"], 0.4, 1)) == sorted(test_speaker_draw(list("edcba"), 2, 1))
    True
    """
    speakers = sorted(speakers)
    count = round(test_speakers * len(speakers)) if test_speakers < 1 else int(test_speakers)
    count = min(count, len(speakers) - 1)
    return set(random.Random(seed).sample(speakers, count))


def prepare_transcribed(layout, data_folder, save_folder, alignments=None, heldout_per_speaker=2, valid_per_speaker=1,
                        test_speakers=0.1, sample_rate=16000, on_error="raise", align_rounds=2, seed=1234,
                        workers=None, progress=True):
    """Prepares a transcribed corpus into ``train/valid/heldout/test.json`` (see the module docstring).

    Skipped when the files exist and were made with the same options. The alignment cache survives a
    changed option (and a killed run): aligning again only aligns what is new.

    Arguments
    ---------
    layout : str
        ``librispeech``, ``vctk`` or ``manifest`` (:data:`~speechbrain_fdnf.data.layouts.LAYOUTS`).
    data_folder : str or Path
        The corpus root (a manifest: its file).
    save_folder : str or Path
        Where the annotation files, resampled audio and alignment cache go.
    alignments : str or Path, optional
        A folder of MFA TextGrids (``<utterance>.TextGrid`` at any depth); utterances without one are
        force-aligned.
    test_speakers : float
        Test speakers drawn when the corpus has no split of its own: a share (below 1) or a count.
    on_error : str
        ``raise`` stops at the first bad file; ``skip`` skips the utterance, counted by reason in
        ``prepare_options.json``.
    align_rounds : int
        Refinement rounds of the forced alignment on the corpus (0: pocketsphinx alone).

    Returns
    -------
    dict
        Split name -> path of its annotation file.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {sorted(LAYOUTS)}, got {layout!r}")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    data_folder, save_folder = Path(data_folder), Path(save_folder)
    if not data_folder.exists():
        raise FileNotFoundError(f"{layout} data folder {shown(data_folder)} does not exist")
    options = dict(layout=layout, data_folder=str(data_folder.resolve()),
                   alignments=str(Path(alignments).resolve()) if alignments else None,
                   heldout_per_speaker=heldout_per_speaker, valid_per_speaker=valid_per_speaker,
                   test_speakers=test_speakers, sample_rate=sample_rate, on_error=on_error,
                   align_rounds=align_rounds, seed=seed)
    outputs = prepared_outputs(save_folder)
    if is_up_to_date(save_folder, options):
        return outputs

    skipped = {}

    def attempt(what, *args):
        try:
            return what(*args)
        except (TimitError, CorpusError) as err:
            if on_error != "skip":
                raise
            logger.warning("Skipping %s", err)
            skipped.setdefault(str(err).split(": ", 1)[-1].split(" (")[0], []).append(str(err))
            return None

    recordings = LAYOUTS[layout](data_folder, problem=lambda message: attempt(refuse, message))
    textgrids = alignment_files(alignments)
    entries, to_align = {}, []
    for recording in recordings:
        found = attempt(audio_at_rate, recording, sample_rate, save_folder / "audio")
        if found is None:
            continue
        wav, num_samples = found
        entry = {"wav": wav, "duration": num_samples / sample_rate, "num_samples": num_samples,
                 "text": " ".join(normalise_text(recording.text)), "speaker": recording.speaker,
                 "gender": recording.gender, "dialect": recording.dialect, "utterance": recording.key,
                 "source_split": recording.split}
        alignment = recording.alignment or textgrids.get(Path(recording.audio).stem) or textgrids.get(recording.key)
        if alignment:
            segments = attempt(read_alignment_file, alignment, sample_rate, num_samples)
            if segments is None:
                continue
            entry["alignment"] = str(alignment)
            entries[recording.key] = (entry, segments)
        else:
            entries[recording.key] = (entry, None)
            to_align.append(AlignmentItem(recording.key, wav, normalise_text(recording.text)))
    report = {}
    if to_align:
        logger.info("Forced alignment of %d utterances (cached in %s)", len(to_align), save_folder / "alignment")
        aligned, report = align_corpus(to_align, save_folder / "alignment", rounds=align_rounds, workers=workers,
                                       progress=progress, seed=seed)
        for key, why in sorted(report["unalignable"].items()):
            attempt(refuse, f"{entries[key][0]['wav']}: unalignable utterance ({why})")
            entries.pop(key)
        for key, segments in aligned.items():
            entries[key] = (entries[key][0], segments)
    annotated = {}
    for key, (entry, segments) in entries.items():
        entry.update(starts=[s for s, _, _ in segments], ends=[e for _, e, _ in segments],
                     phones39=[p for _, _, p in segments])
        annotated[key] = entry
    if not annotated:
        raise CorpusError(f"{shown(data_folder)}: no usable utterances")

    source_split = {key: entry.pop("source_split") for key, entry in annotated.items()}
    speakers = sorted({entry["speaker"] for entry in annotated.values()})
    if "test" in source_split.values():
        test_set = {annotated[key]["speaker"] for key, split in source_split.items() if split == "test"}
    else:
        test_set = test_speaker_draw(speakers, test_speakers, seed)
    train_all = {key: entry for key, entry in annotated.items() if entry["speaker"] not in test_set}
    splits = split_by_speaker(train_all, {"heldout": heldout_per_speaker, "valid": valid_per_speaker}, seed)
    splits["test"] = {key: entry for key, entry in annotated.items() if entry["speaker"] in test_set}
    save_folder.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        write_json_atomic(outputs[split], splits[split])
    summary = {split: len(splits[split]) for split in SPLITS}
    write_json_atomic(save_folder / OPTIONS_FILE, {
        "options": options, "utterances": summary, "forced_alignment": {
            "utterances": len(to_align), "pocketsphinx_rungs": report.get("pocketsphinx_rungs"),
            "espeak_words": report.get("espeak_words", [])},
        "skipped": sorted(sum(skipped.values(), [])), "skipped_by_reason": {k: len(v) for k, v in skipped.items()}})
    logger.info("Prepared %s (%s) into %s (%s; %d skipped)", data_folder, layout, save_folder, summary,
                sum(len(v) for v in skipped.values()))
    return outputs
