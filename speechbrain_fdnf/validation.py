"""One check for all audio that enters the model: files, waveforms, batch items and enrolment sets.

Every entry point of :class:`~speechbrain_fdnf.inference.SpeechFactorizer` (and so the converter
and the recipes built on it) sends its audio through :class:`AudioCheck` before any feature is
computed. An input the model cannot use raises :class:`InputError` (a ``ValueError``) with one
line that names the input (its path, ``batch item 3``, ``reference 2``) and the number that
failed; an input that is usable but weak (clipped, off-centre, little speech) warns once with an
:class:`InputWarning` that says the same.

What is measured (:meth:`AudioCheck.waveform`):

* the array itself: a 1-D float or integer waveform (integers are scaled to [-1, 1]), not empty,
  at least one analysis window long, every sample finite, and within full scale (a peak above
  ``max_peak`` is integer data passed as floats, or a gain gone wrong);
* clipping (the share of samples at full scale) and DC offset: warnings;
* speech: seconds of speech found by a voice-activity detector (WebRTC's, from ``webrtcvad``,
  which the ``judge`` extra installs; without it a frame-energy detector). No speech at all is
  refused; less than ``weak_speech`` seconds warns.

Enrolment sets (:meth:`AudioCheck.enrolment`), the audio a target speaker is estimated from,
need ``min_enrol_speech`` seconds of speech in all (default 2 s; lower it for a deliberate
experiment) and warn below ``weak_enrol_speech``.

Authors
 * speechbrain-fdnf developers
"""

import contextlib
import functools
import math  # noqa: F401  (the doctests' tone)
import warnings
from dataclasses import dataclass

import numpy as np
import torch


class InputError(ValueError):
    """An input the model cannot take; the one-line message names the input and what was measured."""


class InputWarning(UserWarning):
    """An input the model takes, but whose result will be weak (clipped, little speech, ...)."""


#: Integer sample types and their full scale.
INTEGER_FULL_SCALE = {torch.int16: 2.0 ** 15, torch.int32: 2.0 ** 31, torch.int8: 2.0 ** 7, torch.int64: 2.0 ** 31}
#: Sample rates the WebRTC detector takes (others are resampled for it).
WEBRTC_RATES = (8000, 16000, 32000, 48000)


def seconds(value):
    """Seconds for a message: two decimals.

    Example
    -------
    >>> seconds(1.23456)
    '1.23 s'
    """
    return f"{value:.2f} s"


def as_waveform(wav, name, error=InputError):
    """``wav`` (tensor, numpy array or list) as a 1-D float32 tensor, or ``error`` naming ``name`` and why not.

    Integer samples are scaled to [-1, 1] by their type's full scale.

    Example
    -------
    >>> as_waveform(np.array([16384, -32768], dtype=np.int16), "x").tolist()
    [0.5, -1.0]
    >>> as_waveform(torch.zeros(2, 100), "in.wav")
    Traceback (most recent call last):
    ...
    speechbrain_fdnf.validation.InputError: in.wav: a waveform of shape (2, 100), expected 1-D samples (mix several channels down, or pass the file)
    """
    if isinstance(wav, np.ndarray) and not (wav.dtype.kind in "fiu" and wav.dtype.itemsize <= 8):
        raise error(f"{name}: samples of type {wav.dtype}, expected float or integer audio")
    try:
        tensor = torch.as_tensor(wav)
    except (TypeError, ValueError, RuntimeError) as err:
        raise error(f"{name}: not an array of samples ({err})") from None
    if tensor.dtype in INTEGER_FULL_SCALE:
        tensor = tensor.to(torch.float64) / INTEGER_FULL_SCALE[tensor.dtype]
    elif tensor.dtype == torch.uint8:  # 8-bit PCM is unsigned, centred on 128
        tensor = (tensor.to(torch.float64) - 128.0) / 128.0
    elif not tensor.dtype.is_floating_point or tensor.dtype.is_complex:
        raise error(f"{name}: samples of type {str(tensor.dtype).replace('torch.', '')}, expected float or integer audio")
    if tensor.dim() != 1:
        raise error(f"{name}: a waveform of shape {tuple(tensor.shape)}, expected 1-D samples "
                    "(mix several channels down, or pass the file)")
    return tensor.to(torch.float32)


@dataclass
class AudioCheck:
    """Checks waveforms at ``sample_rate`` before they become features (see the module docstring).

    Arguments
    ---------
    sample_rate : int
        The model's rate (the waveforms given are at it).
    window : int
        Samples of one analysis window: shorter input is refused.
    max_peak : float
        A larger absolute sample is refused (float audio lies in [-1, 1]; resampling may overshoot a little).
    clip_level, max_clipped : float
        Samples at or above ``clip_level`` count as clipped; a larger share than ``max_clipped`` warns.
    max_dc : float
        A larger mean (DC offset) warns.
    weak_speech : float
        Seconds of speech below which one utterance warns (none at all is refused).
    min_enrol_speech, weak_enrol_speech : float
        Seconds of speech an enrolment set needs (refused below), and below which it warns.
    vad_mode : int
        WebRTC's aggressiveness, 0 (keeps most) to 3 (keeps least).

    Example
    -------
    >>> check = AudioCheck(sample_rate=16000)
    >>> t = torch.arange(32000) / 16000
    >>> tone = 0.3 * torch.sin(2 * math.pi * 140 * t) * (1 + torch.sin(2 * math.pi * 3 * t))  # voiced, modulated
    >>> check.waveform(tone, "tone").shape
    torch.Size([32000])
    >>> check.waveform(torch.zeros(16000), "quiet.wav")
    Traceback (most recent call last):
    ...
    speechbrain_fdnf.validation.InputError: quiet.wav: no speech found (0.00 s of speech in 1.00 s of audio)
    """

    sample_rate: int
    window: int = 400
    max_peak: float = 2.0
    clip_level: float = 0.999
    max_clipped: float = 0.001
    max_dc: float = 0.05
    weak_speech: float = 0.5
    min_enrol_speech: float = 2.0
    weak_enrol_speech: float = 5.0
    vad_mode: int = 2

    def waveform(self, wav, name):
        """``wav`` as a checked 1-D float32 tensor (on its device); :class:`InputError` or
        :class:`InputWarning` naming ``name`` otherwise."""
        return self.utterance(wav, name)[0]

    def utterance(self, wav, name):
        """:meth:`waveform` and its seconds of speech, ``(wav, speech)``."""
        wav = as_waveform(wav, name)
        duration = len(wav) / self.sample_rate
        if len(wav) == 0:
            raise InputError(f"{name}: empty waveform (0 samples)")
        if len(wav) < self.window:
            raise InputError(f"{name}: {len(wav)} samples ({seconds(duration)}) is shorter than one analysis window "
                             f"({self.window} samples)")
        finite = torch.isfinite(wav)
        if not finite.all():
            bad = int((~finite).sum())
            raise InputError(f"{name}: {bad} of {len(wav)} samples are NaN or Inf")
        peak = float(wav.abs().max())
        if peak > self.max_peak:
            raise InputError(f"{name}: peak {peak:.4g} is beyond full scale (float audio lies in [-1, 1]; integer "
                             "samples passed as floats?)")
        clipped = float((wav.abs() >= self.clip_level).float().mean())
        if clipped > self.max_clipped:
            warn(f"{name}: {clipped:.1%} of samples are clipped (at full scale): features of clipped speech are distorted")
        offset = float(wav.mean())
        if abs(offset) > self.max_dc:
            warn(f"{name}: DC offset {offset:+.3f} (the lowest bands carry it)")
        speech = self.speech(wav)
        if speech == 0.0:
            raise InputError(f"{name}: no speech found ({seconds(speech)} of speech in {seconds(duration)} of audio)")
        if speech < self.weak_speech:
            warn(f"{name}: only {seconds(speech)} of speech in {seconds(duration)} of audio")
        return wav, speech

    def enrolment(self, speech_seconds, names):
        """Refuses an enrolment set with less than ``min_enrol_speech`` seconds of speech, warns below
        ``weak_enrol_speech``; ``speech_seconds`` are its items' (:meth:`speech`)."""
        total = float(sum(speech_seconds))
        listed = ", ".join(map(str, names[:3])) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        if total < self.min_enrol_speech:
            raise InputError(f"enrolment ({listed}): {seconds(total)} of speech, at least "
                             f"{seconds(self.min_enrol_speech)} needed (min_enrol_speech)")
        if total < self.weak_enrol_speech:
            warn(f"enrolment ({listed}): only {seconds(total)} of speech; {seconds(self.weak_enrol_speech)} or more "
                 "estimate a voice better")
        return total

    def speech(self, wav):
        """Seconds of speech in a checked waveform, by WebRTC's detector (or frame energy without it).

        A fresh detector hears each waveform (it adapts as it listens, so a shared one would carry the
        last input's speech into the next), and a frame quieter than -60 dBFS is never speech.
        """
        detector = webrtc_detector(self.vad_mode)
        samples = wav.detach().cpu().double()
        if detector is None:
            return energy_speech_seconds(samples, self.sample_rate)
        rate = self.sample_rate
        if rate not in WEBRTC_RATES:
            import torchaudio

            samples, rate = torchaudio.functional.resample(samples, rate, 16000), 16000
        frame = rate * 30 // 1000  # 30 ms frames
        count = len(samples) // frame
        frames = samples[:count * frame].reshape(count, frame)
        audible = (10 * torch.log10(frames.pow(2).mean(dim=1).clamp_min(1e-20)) > -60.0).tolist()
        pcm = (frames.clamp(-1, 1) * 32767).to(torch.int16).numpy()
        voiced = sum(loud and detector.is_speech(pcm[i].tobytes(), rate) for i, loud in enumerate(audible))
        return round(voiced * 0.03, 6)


def energy_speech_seconds(samples, sample_rate, floor_db=-50.0, range_db=35.0):
    """Seconds of 30 ms frames louder than ``floor_db`` dBFS and within ``range_db`` of the loudest
    frame: the fallback detector where ``webrtcvad`` is not installed.

    Example
    -------
    >>> energy_speech_seconds(torch.zeros(16000), 16000)
    0.0
    >>> energy_speech_seconds(torch.cat([torch.zeros(9600), 0.1 * torch.randn(9600)]), 16000)
    0.6
    """
    frame = sample_rate * 30 // 1000
    count = len(samples) // frame
    if count == 0:
        return 0.0
    power = samples[:count * frame].reshape(count, frame).double().pow(2).mean(dim=1)
    level = 10 * torch.log10(power.clamp_min(1e-20))
    voiced = (level > floor_db) & (level > level.max() - range_db)
    return round(int(voiced.sum()) * 0.03, 6)


def webrtc_detector(mode):
    """A new WebRTC voice-activity detector at ``mode``, or ``None`` where ``webrtcvad`` is not installed."""
    module = _webrtcvad()
    return None if module is None else module.Vad(mode)


@functools.lru_cache(maxsize=None)
def _webrtcvad():
    """The ``webrtcvad`` module, imported once (its import warns; silencing it resets Python's record of
    warnings already shown, so doing it on every call would repeat every other warning)."""
    try:
        with warnings.catch_warnings():  # webrtcvad imports the deprecated pkg_resources
            warnings.simplefilter("ignore")
            import webrtcvad
    except ImportError:
        return None
    return webrtcvad


@contextlib.contextmanager
def summarised_warnings(what, shown=3):
    """Gathers the :class:`InputWarning` of many inputs (a corpus read file by file) into one: how many warned
    and the first ``shown`` of them, named with ``what``; every other warning passes through as it was.

    Example
    -------
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     with summarised_warnings("training utterances", shown=1):
    ...         for name in ("a.wav", "b.wav", "c.wav"):
    ...             warn(f"{name}: 0.2% of samples are clipped")
    >>> len(caught), str(caught[0].message)
    (1, 'training utterances: 3 inputs warned, e.g. a.wav: 0.2% of samples are clipped (and 2 more)')
    """
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:  # an error on a later file still lets the warnings of the earlier ones out
        _release(caught, what, shown)


def _release(caught, what, shown):
    """Re-issues the warnings :func:`summarised_warnings` caught: the input warnings as one."""
    weak = [item for item in caught if issubclass(item.category, InputWarning)]
    for item in caught:
        if not issubclass(item.category, InputWarning):
            warnings.warn_explicit(item.message, item.category, item.filename, item.lineno, source=item.source)
    if weak:
        more = f" (and {len(weak) - shown} more)" if len(weak) > shown else ""
        message = (f"{what}: {len(weak)} input{'s' * (len(weak) > 1)} warned, e.g. "
                   + "; ".join(str(item.message) for item in weak[:shown]) + more)
        # at the place the first was raised (the check), as each would have been
        warnings.warn_explicit(message, InputWarning, weak[0].filename, weak[0].lineno)


def warn(message):
    """One :class:`InputWarning` (Python shows each distinct message once per place it is raised from)."""
    warnings.warn(message, InputWarning, stacklevel=3)


__all__ = ["AudioCheck", "InputError", "InputWarning", "as_waveform", "energy_speech_seconds", "summarised_warnings"]
