"""Audio and path checks shared by corpus preparation and the inference interface.

Every check raises an error class the caller chooses (``TimitError`` during
preparation, ``InferenceInputError`` in the inference interface), with a
message that names the file and the problem.

Authors
 * speechbrain-fdnf developers
"""

import re
from pathlib import Path

import soundfile


def shown(path, limit=160):
    """``path`` for an error message: very long names are cut (the length is given instead).

    Example
    -------
    >>> shown("a/b.wav")
    'a/b.wav'
    >>> shown("x" * 300).endswith("(300-byte path)")
    True
    """
    text = str(path)
    if len(text) <= limit:
        return text
    return f"{text[:limit // 2]}...{text[-limit // 4:]} ({len(text.encode())}-byte path)"


def is_directory(path, error=ValueError):
    """``path.is_dir()``; a path the OS cannot even look up (e.g. too long) raises ``error`` naming it."""
    try:
        return Path(path).is_dir()
    except OSError as err:  # e.g. a name longer than the file system allows
        raise error(f"{shown(path)}: {err.strerror or err}") from None


def check_audio(wav_path, sample_rate=None, error=ValueError, mono=True):
    """The ``soundfile`` info of a whole, non-empty file; mono at ``sample_rate`` where those are given.

    Anything else raises ``error`` (a class taking one message) naming the
    file and the problem: missing, empty or unreadable file, truncated data,
    another sample rate (``sample_rate=None``: any), several channels
    (``mono=False``: any), no samples.
    """
    wav_path = Path(wav_path)
    try:
        if wav_path.stat().st_size == 0:
            raise error(f"{wav_path}: empty file (0 bytes)")
        info = soundfile.info(str(wav_path))
    except error:
        raise
    except Exception as err:  # a missing file, and soundfile's own error types
        raise error(f"{wav_path}: unreadable audio ({err})") from None
    truncated = _truncation(wav_path, info)
    if truncated:
        raise error(f"{wav_path}: truncated audio ({truncated})")
    if sample_rate is not None and info.samplerate != sample_rate:
        raise error(f"{wav_path}: sample rate {info.samplerate} Hz, expected {sample_rate} Hz (resample it first)")
    if mono and info.channels != 1:
        raise error(f"{wav_path}: {info.channels} channels, expected mono (downmix it first)")
    if info.frames <= 0:
        raise error(f"{wav_path}: empty audio")
    return info


def _truncation(wav_path, info):
    """Why the audio file is shorter than its header says, or ``None``.

    libsndfile reads what is there and notes a short RIFF ``data`` chunk in
    its log; a NIST SPHERE header states ``sample_count``.
    """
    for line in info.extra_info.splitlines():
        if line.startswith("data") and "should be" in line:
            return f"its header promises more than the file holds: {line.strip()}"
    with open(wav_path, "rb") as handle:
        header = handle.read(1024)
    if header.startswith(b"NIST_1A"):
        match = re.search(rb"sample_count -i (\d+)", header)
        if match and int(match.group(1)) > info.frames:
            return f"header has {int(match.group(1))} samples, the file {info.frames}"
    return None


def as_written(wav):
    """``wav`` (a tensor) as the converter writes it and the evaluation judges it: scaled down to full scale where
    its peak passes it (never up), so that the WAV does not clip (a gain or an overlap-add may push a peak past 1).

    Example
    -------
    >>> import torch
    >>> as_written(torch.tensor([0.5, -2.0])).tolist(), as_written(torch.tensor([0.5, -0.25])).tolist()
    ([0.25, -1.0], [0.5, -0.25])
    """
    return wav / max(1.0, float(wav.abs().max()))
