"""Transcribed corpora in their own layouts, read into one list of :class:`Recording`.

* **LibriSpeech**: ``<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac`` with one
  ``<speaker>-<chapter>.trans.txt`` per chapter and ``SPEAKERS.TXT`` (gender) at the root; subsets
  named ``test-*`` hold test speakers (LibriSpeech's speakers are disjoint across subsets).
* **VCTK**: ``wav48*/pXXX/pXXX_YYY[_mic1].flac|wav`` with ``txt/pXXX/pXXX_YYY.txt`` and
  ``speaker-info.txt`` (gender, accent); of two microphones, ``mic1``.
* **manifest**: a SpeechBrain CSV or JSON with ``wav``, ``spk_id`` and ``wrd`` (or ``alignment``: a
  TextGrid or ``.PHN`` path), optional ``gender``, ``accent`` and ``split`` (``train``/``test``).

Missing counterparts (a transcript without audio or the reverse) go to the reader's ``problem``
callback with a message naming the file: by default it raises :class:`CorpusError`; the preparation
passes one that counts a skip when the user asked for skips.

Authors
 * speechbrain-fdnf developers
"""

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

from speechbrain_fdnf.data.audio import shown
from speechbrain_fdnf.data.timit import TimitError

AUDIO_SUFFIXES = (".flac", ".wav")


class CorpusError(TimitError):
    """A problem with a corpus file; the message names the file."""


@dataclass
class Recording:
    """One utterance of a transcribed corpus, before preparation.

    ``split`` is ``"test"`` for the corpus's own test speakers, ``"train"`` for its training
    speakers and ``None`` where the corpus has no split (speakers are then drawn).
    """

    key: str
    audio: str
    speaker: str
    text: str = ""
    gender: str = "U"
    dialect: str = "none"
    alignment: str = None
    split: str = None


def _audio_files(folder):
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())


def refuse(message):
    """Raises :class:`CorpusError` with ``message`` (the default ``problem`` of the readers)."""
    raise CorpusError(message)


def _read_text(path):
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise CorpusError(f"{shown(path)}: cannot be read ({err.strerror or err})") from None


def librispeech_speakers(root):
    """``{speaker: gender}`` from LibriSpeech's ``SPEAKERS.TXT`` (``ID | SEX | SUBSET | MINUTES | NAME``)."""
    table = next((p for p in (Path(root) / "SPEAKERS.TXT", Path(root).parent / "SPEAKERS.TXT") if p.exists()), None)
    genders = {}
    if table is not None:
        for line in _read_text(table).splitlines():
            fields = [field.strip() for field in line.split("|")]
            if len(fields) >= 2 and not line.startswith(";"):
                genders[fields[0]] = fields[1].upper()[:1] or "U"
    return genders


def scan_librispeech(root, problem=refuse):
    """The :class:`Recording`\\ s of a LibriSpeech-layout corpus at ``root``; a missing counterpart goes
    to ``problem(message)``."""
    root = Path(root)
    genders = librispeech_speakers(root)
    recordings = []
    transcripts = sorted(root.rglob("*.trans.txt"))
    if not transcripts:
        raise CorpusError(f"{shown(root)} is not LibriSpeech-shaped: no <speaker>/<chapter>/*.trans.txt")
    audio = {p.stem: p for p in _audio_files(root)}
    named = set()
    for transcript in transcripts:
        subset = transcript.parent.parent.parent.name
        for number, line in enumerate(_read_text(transcript).splitlines(), 1):
            if not line.strip():
                continue
            key, _, text = line.strip().partition(" ")
            named.add(key)
            if key not in audio:
                problem(f"{transcript}, line {number}: transcript of {key} has no audio file "
                        f"({key}.flac) in {transcript.parent}")
                continue
            speaker = key.split("-")[0]
            recordings.append(Recording(key, str(audio[key]), speaker, text.strip(), genders.get(speaker, "U"),
                                        "none", split="test" if subset.lower().startswith("test") else "train"))
    for stem, path in sorted(audio.items()):
        if stem not in named:
            problem(f"{path}: audio without a transcript (no line {stem!r} in its chapter's .trans.txt)")
    return recordings


def vctk_speakers(root):
    """``{speaker: (gender, accent)}`` from VCTK's ``speaker-info.txt`` (``ID AGE GENDER ACCENTS ...``)."""
    table = next(iter(sorted(Path(root).glob("speaker*info*.txt"))), None)
    speakers = {}
    if table is not None:
        for line in _read_text(table).splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 4:
                speaker = fields[0] if fields[0].startswith("p") else f"p{fields[0]}"
                speakers[speaker] = (fields[2].upper()[:1], fields[3])
    return speakers


_VCTK_NAME = re.compile(r"^(?P<key>(?P<speaker>[a-z]+\d+)_\d+)(?:_(?P<mic>mic\d))?$")


def scan_vctk(root, problem=refuse):
    """The :class:`Recording`\\ s of a VCTK-layout corpus at ``root`` (``mic1`` where there are two); a
    missing counterpart goes to ``problem(message)``."""
    root = Path(root)
    audio_roots = sorted(p for p in root.glob("wav*") if p.is_dir())
    text_root = root / "txt"
    if not audio_roots or not text_root.is_dir():
        raise CorpusError(f"{shown(root)} is not VCTK-shaped: expected wav48*/pXXX/ and txt/pXXX/")
    speakers = vctk_speakers(root)
    audio = {}
    for path in _audio_files(audio_roots[0]):
        match = _VCTK_NAME.match(path.stem)
        if match and match["mic"] in (None, "mic1"):
            audio[match["key"]] = path
    texts = {p.stem: p for p in text_root.rglob("*.txt")}
    for key, path in sorted(texts.items()):
        if key not in audio:
            problem(f"{path}: transcript without audio (no {key}[_mic1].flac|wav under {audio_roots[0]})")
    recordings = []
    for key, path in sorted(audio.items()):
        if key not in texts:
            problem(f"{path}: audio without a transcript (no {text_root}/{path.parent.name}/{key}.txt)")
            continue
        speaker = _VCTK_NAME.match(path.stem)["speaker"]
        gender, accent = speakers.get(speaker, ("U", "none"))
        recordings.append(Recording(key, str(path), speaker, _read_text(texts[key]).strip(), gender, accent))
    return recordings


def scan_manifest(path, problem=refuse):
    """The :class:`Recording`\\ s of a SpeechBrain manifest (CSV with an ``ID`` column, or JSON id -> entry);
    ``$data_root``-style placeholders are not expanded: paths are absolute or relative to the manifest. A
    row without its columns goes to ``problem(message)``."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"manifest {shown(path)} does not exist")
    if path.suffix.lower() == ".json":
        try:
            rows = [{"ID": key, **entry} for key, entry in json.loads(_read_text(path)).items()]
        except (json.JSONDecodeError, AttributeError) as err:
            raise CorpusError(f"{path}: not a JSON manifest of id -> entry ({err})") from None
    else:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    recordings = []
    for number, row in enumerate(rows, 2 if path.suffix.lower() != ".json" else 1):
        where = f"{path}, {'row' if path.suffix.lower() != '.json' else 'entry'} {row.get('ID', number)}"
        missing = [column for column in ("wav", "spk_id") if not row.get(column)]
        if missing or not (row.get("wrd") or row.get("alignment")):
            problem(f"{where}: needs wav, spk_id and wrd or alignment (missing {missing or ['wrd/alignment']})")
            continue
        key = str(row.get("ID") or Path(row["wav"]).stem)
        resolve = lambda value: str(value if Path(value).is_absolute() else path.parent / value)  # noqa: E731
        alignment = resolve(row["alignment"]) if row.get("alignment") else None
        split = (row.get("split") or "").lower() or None
        if split not in (None, "train", "test"):
            raise CorpusError(f"{where}: split must be train or test, got {row['split']!r}")
        recordings.append(Recording(key, resolve(row["wav"]), str(row["spk_id"]), row.get("wrd") or "",
                                    (row.get("gender") or "U").upper()[:1], row.get("accent") or "none",
                                    alignment, split))
    return recordings


#: Layout readers by the name the yaml's ``corpus`` takes.
LAYOUTS = {"librispeech": scan_librispeech, "vctk": scan_vctk, "manifest": scan_manifest}
