"""A minimal ctypes binding to the eSpeak NG library shipped by ``espeakng-loader``.

It synthesizes text with phoneme events turned on, so every phoneme comes with
the exact sample at which it starts.

Authors
 * speechbrain-fdnf developers
"""

import _ctypes
import contextlib
import ctypes
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
_PARAM = {"rate": 1, "volume": 2, "pitch": 3, "range": 4}
_SSML = 0x10


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass
class Synthesis:
    """One synthesized utterance.

    Attributes
    ----------
    audio : numpy.ndarray
        int16 samples at ``sample_rate``.
    sample_rate : int
        eSpeak's native rate (22050 Hz).
    phonemes : list of (int, str)
        ``(start_sample, mnemonic)`` in order.
    """

    audio: np.ndarray
    sample_rate: int
    phonemes: list


class ESpeak:
    """The eSpeak NG engine (one per process; the library keeps global state).

    Example
    -------
    >>> espeak = ESpeak.instance()
    >>> out = espeak.synthesize("Hello world.", voice="en-us+m3", pitch=40, rate=170)
    >>> out.sample_rate, len(out.audio) > 0, out.phonemes[0][1]
    (22050, True, 'h')
    """

    _instance = None
    _lock = threading.Lock()

    def __init__(self, data_path=None, library_path=None):
        import espeakng_loader

        self._lib = ctypes.CDLL(library_path or espeakng_loader.get_library_path())
        self._lib.espeak_Initialize.restype = ctypes.c_int
        data = str(data_path or espeakng_loader.get_data_path()).encode()
        self.sample_rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, _INITIALIZE_PHONEME_EVENTS)
        if self.sample_rate <= 0:
            raise RuntimeError(f"eSpeak NG failed to initialise with data at {data.decode()}")
        self._chunks, self._phonemes = [], []
        self._callback = _CALLBACK(self._on_audio)  # kept referenced: the library calls it
        self._lib.espeak_SetSynthCallback(self._callback)

    @classmethod
    @contextlib.contextmanager
    def isolated(cls, variants=None):
        """A fresh engine whose library state owes nothing to earlier calls.

        eSpeak NG keeps static state across utterances (pitch flutter phase,
        noise generators) that neither re-seeding nor re-initialising resets,
        so its output depends on what was synthesized before. A private copy of
        the shared library, loaded and unloaded around the block, starts from
        a clean state: its output then depends only on the seed and the calls
        made inside the block (the copy costs about a millisecond).

        Arguments
        ---------
        variants : dict, optional
            Voice variants to add, name -> variant-file text (eSpeak's voice
            file format: ``pitch``, ``formant``, ``tone``, ``breath``...); each
            is usable as ``<language>+<name>``. They live in a private data
            folder (links to the packaged data plus the variants), never in the
            package.

        Example
        -------
        >>> low = "language variant\\nname low\\npitch 70 90\\n"
        >>> takes = []
        >>> for _ in range(2):
        ...     with ESpeak.isolated({"low": low}) as espeak:
        ...         espeak.seed(3)
        ...         takes.append(espeak.synthesize("Good morning.", voice="en-us+low").audio)
        >>> bool((takes[0] == takes[1]).all())
        True
        """
        import espeakng_loader

        folder = tempfile.mkdtemp(prefix="espeak-")
        copy = os.path.join(folder, "libespeak-ng.so")
        shutil.copyfile(espeakng_loader.get_library_path(), copy)
        data = _private_data(Path(folder), variants) if variants else None
        espeak = None
        try:
            espeak = cls(data, copy)
            yield espeak
        finally:
            if espeak is not None:
                espeak._lib.espeak_Terminate()
                _ctypes.dlclose(espeak._lib._handle)
            shutil.rmtree(folder, ignore_errors=True)

    def seed(self, value):
        """Seeds both random sources eSpeak draws noise from: the C library's ``rand()`` and eSpeak
        NG's own generator (breath noise uses the latter; left unseeded, voices with a ``breath``
        setting come out different on every run)."""
        ctypes.CDLL(None).srand(ctypes.c_uint(value))
        self._lib.espeak_ng_SetRandSeed(ctypes.c_long(value))

    @classmethod
    def instance(cls):
        """The process-wide engine."""
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _on_audio(self, wav, num_samples, events):
        if wav and num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type == _EVENT_PHONEME:
                name = bytes(event.id.string).split(b"\0")[0].decode("utf-8", "replace")
                self._phonemes.append((int(event.sample), name))
            i += 1
        return 0

    def synthesize(self, text, voice="en-us", pitch=50, rate=175, pitch_range=50, ssml=False):
        """Synthesizes ``text``; returns a :class:`Synthesis`.

        Arguments
        ---------
        text : str
            Text to speak.
        voice : str
            eSpeak voice name, with an optional ``+variant`` (e.g. ``en-us+f3``).
        pitch : int
            Base pitch, 0-100.
        rate : int
            Speaking rate in words per minute (80-450).
        pitch_range : int
            Pitch range (intonation), 0-100.
        ssml : bool
            ``text`` is SSML markup (``<speak>``, with ``<voice>`` and ``<prosody>`` spans); the
            parameters above still hold inside it, as the starting voice and prosody.
        """
        with self._lock:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"eSpeak NG has no voice {voice!r}")
            for name, value in (("pitch", pitch), ("rate", rate), ("range", pitch_range)):
                self._lib.espeak_SetParameter(_PARAM[name], int(value), 0)
            self._chunks, self._phonemes = [], []
            data = text.encode("utf-8")
            status = self._lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, _SSML if ssml else 0, None, None)
            if status != 0:
                raise RuntimeError(f"eSpeak NG failed (status {status}) on {text!r}")
            audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
            return Synthesis(audio, self.sample_rate, list(self._phonemes))


def _private_data(folder, variants):
    """eSpeak NG data in ``folder/espeak-ng-data``: links to the packaged data, and a
    ``voices/!v`` holding only ``variants`` (eSpeak lists at most 349 voices, so the
    packaged variants are left out rather than copied)."""
    import espeakng_loader

    source, data = Path(espeakng_loader.get_data_path()), folder / "espeak-ng-data"
    (data / "voices" / "!v").mkdir(parents=True)
    for entry in source.iterdir():
        if entry.name != "voices":
            (data / entry.name).symlink_to(entry)
    for entry in (source / "voices").iterdir():
        if entry.name != "!v":
            (data / "voices" / entry.name).symlink_to(entry)
    for name, text in variants.items():
        (data / "voices" / "!v" / name).write_text(text)
    return data
