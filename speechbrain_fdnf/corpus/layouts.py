"""The embedded corpus rewritten in LibriSpeech's or VCTK's layout: transcripts only, no phone files.

The same speakers, sentences and audio as the TIMIT-layout corpus, so that the whole path of a
transcribed corpus (forced alignment, preparation, training, evaluation) runs offline and can be
measured: eSpeak NG's exact phone boundaries go to a side folder, ``exact_alignments/<utterance>.TextGrid``
(MFA's format), which the preparation reads only when asked (``--alignments``).

* ``librispeech``: ``train-clean-100`` (training speakers) and ``test-clean`` (test speakers), each
  ``<speaker>/<chapter>/<speaker>-<chapter>-<NNNN>.flac`` with ``<speaker>-<chapter>.trans.txt``
  (upper case, no punctuation), and ``SPEAKERS.TXT``; numeric speaker ids from 100, one chapter each.
* ``vctk``: ``wav48_silence_trimmed/pNNN/pNNN_NNN_mic1.flac`` at 48 kHz (VCTK's rate: the preparation
  resamples), ``txt/pNNN/pNNN_NNN.txt`` (the sentence as written) and ``speaker-info.txt`` (the
  dialect region as accent); speakers from p225; no split (the preparation draws test speakers).

Authors
 * speechbrain-fdnf developers
"""

import json
import os
import shutil
from math import gcd
from pathlib import Path

import numpy as np
import soundfile
from scipy.signal import resample_poly

from speechbrain_fdnf.data.textgrid import save_textgrid
from speechbrain_fdnf.data.timit import read_phn

LAYOUTS = ("timit", "librispeech", "vctk")
EXACT_ALIGNMENTS = "exact_alignments"
VCTK_RATE = 48000


def _utterances(timit_root):
    """``[(split, dialect, speaker folder, [utterance stems])]`` of a TIMIT-layout corpus, sorted."""
    out = []
    for split in ("TRAIN", "TEST"):
        for speaker in sorted(Path(timit_root, split).glob("DR*/*")):
            out.append((split, speaker.parent.name, speaker, sorted(p.stem for p in speaker.glob("*.WAV"))))
    return out


def _text(path):
    return Path(path).read_text().split(maxsplit=2)[2].strip()


def export_layout(timit_root, out_dir, layout, manifest=None):
    """Writes the TIMIT-layout corpus at ``timit_root`` into ``out_dir`` in ``layout`` (see above),
    through a ``.layout-partial`` sibling renamed at the end (with ``manifest`` as its ``corpus.json``)."""
    if layout not in LAYOUTS[1:]:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS[1:])}, got {layout!r}")
    out_dir = Path(out_dir)
    partial = out_dir.with_name(out_dir.name + ".layout-partial")
    shutil.rmtree(partial, ignore_errors=True)
    speakers_table = []
    for index, (split, dialect, folder, stems) in enumerate(_utterances(timit_root)):
        gender = folder.name[0]
        if layout == "librispeech":
            speaker, chapter = str(100 + index), str(1000 + index)
            subset = "train-clean-100" if split == "TRAIN" else "test-clean"
            chapter_dir = partial / subset / speaker / chapter
            chapter_dir.mkdir(parents=True)
            lines = []
            for number, stem in enumerate(stems):
                key = f"{speaker}-{chapter}-{number:04d}"
                samples, rate = soundfile.read(folder / f"{stem}.WAV", dtype="int16")
                soundfile.write(chapter_dir / f"{key}.flac", samples, rate, subtype="PCM_16")
                text = _text(folder / f"{stem}.TXT")
                lines.append(f"{key} {' '.join(''.join(c for c in w if c.isalnum() or c == chr(39)) for w in text.upper().split())}")
                save_textgrid(partial / EXACT_ALIGNMENTS / f"{key}.TextGrid", read_phn(folder / f"{stem}.PHN", len(samples)), rate)
            (chapter_dir / f"{speaker}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")
            speakers_table.append(f"{speaker:<6}| {gender} | {subset:<16}| 0.50 | {folder.name}")
        else:
            speaker = f"p{225 + index}"
            for number, stem in enumerate(stems, 1):
                key = f"{speaker}_{number:03d}"
                samples, rate = soundfile.read(folder / f"{stem}.WAV", dtype="float64")
                common = gcd(VCTK_RATE, rate)
                upsampled = np.clip(resample_poly(samples, VCTK_RATE // common, rate // common), -1, 1)
                (partial / "wav48_silence_trimmed" / speaker).mkdir(parents=True, exist_ok=True)
                soundfile.write(partial / "wav48_silence_trimmed" / speaker / f"{key}_mic1.flac", upsampled,
                                VCTK_RATE, subtype="PCM_16")
                (partial / "txt" / speaker).mkdir(parents=True, exist_ok=True)
                (partial / "txt" / speaker / f"{key}.txt").write_text(_text(folder / f"{stem}.TXT") + "\n")
                save_textgrid(partial / EXACT_ALIGNMENTS / f"{key}.TextGrid", read_phn(folder / f"{stem}.PHN", len(samples)), rate)
            speakers_table.append(f"{speaker:<6}{'23':<5}{gender:<7}{dialect:<9}{folder.name}")
    if layout == "librispeech":
        (partial / "SPEAKERS.TXT").write_text(
            "; ID    | SEX | SUBSET          | MINUTES | NAME (the embedded corpus's speaker folder)\n"
            + "\n".join(speakers_table) + "\n")
    else:
        (partial / "speaker-info.txt").write_text("ID    AGE  GENDER ACCENTS  REGION\n" + "\n".join(speakers_table) + "\n")
    for extra in ("SPKRINFO.TXT",):
        if (Path(timit_root) / extra).exists():
            shutil.copy(Path(timit_root) / extra, partial / "voices.txt")
    if manifest is not None:
        (partial / "corpus.json").write_text(json.dumps(manifest, indent=2))
    if out_dir.exists():
        out_dir.rmdir()
    os.replace(partial, out_dir)
