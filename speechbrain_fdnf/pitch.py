"""Pitch-synchronous resynthesis (WORLD, through ``pyworld``): the converter's ``method="world"`` and
``"world_voiced"`` (WORLD in the frames its tracker voices, other audio elsewhere: ``unvoiced``).

The model changes 40 log-Mel bands; the other resyntheses keep the source's pitch. Here the source is
analysed by WORLD into F0 (DIO refined by StoneMask, or Harvest: :data:`F0_TRACKERS`), a spectral
envelope (CheapTrick) and aperiodicity (D4C). The envelope takes the model's change of each frame as a gain (the Mel bands' dB change spread
onto frequency through the filterbank's own weights, as the ``gain`` path does), the aperiodicity is
kept, and F0 moves to the target's register: each voiced frame's log F0 is standardised by the source's
log-F0 mean and spread and given the target's (:class:`LogF0Statistics`, measured on the target's
enrolment audio, or for a training speaker named by its label, the register a training run measured on its
training utterances and exported beside the model: :class:`F0Registers`). Cross-gender conversion needs
this: no change of 40 bands moves a voice an octave.

``pyworld`` (or ``pyworld-prebuilt``) ships as a wheel; without it, ``method="world"`` is an error that
says what to install.

Authors
 * speechbrain-fdnf developers
"""

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from speechbrain_fdnf.files import write_json_atomic

logger = logging.getLogger(__name__)

#: The lowest and highest F0 (Hz) the analysis looks for: below every adult voice, above every speaking one.
F0_FLOOR, F0_CEIL = 60.0, 500.0


def pyworld_module():
    """The ``pyworld`` module; without it, an ``ImportError`` that says what to install."""
    try:
        import warnings

        with warnings.catch_warnings():  # pyworld imports the deprecated pkg_resources
            warnings.simplefilter("ignore")
            import pyworld
    except ImportError:
        raise ImportError("method 'world' resynthesises with WORLD: pip install pyworld (or pyworld-prebuilt)") from None
    return pyworld


#: WORLD's F0 trackers: ``harvest`` (robust voicing, 0.2-0.3 of real time on one thread: it made
#: ``method="world"`` slow) and ``dio`` (DIO refined by StoneMask, under 0.01 of real time), with DIO's
#: ``allowed_range`` (how far F0 may move between frames and still count as voiced) raised from its 0.1,
#: which leaves most frames of breathy voices unvoiced. ``benchmarks/choose_f0_tracker.py`` measures both
#: on training speakers.
F0_TRACKERS = ("harvest", "dio")
#: Chosen by ``benchmarks/choose_f0_tracker.py``'s rule on training speakers (``latest_f0_tracker.md``):
#: DIO at range 0.3 agrees with the labels' voicing nearly as often as Harvest (0.89 against 0.91), with no
#: more octave jumps and a steadier register per speaker, at a thirtieth of the time.
DEFAULT_F0_TRACKER = "dio"
DIO_ALLOWED_RANGE = 0.3
#: DIO's ``speed``: it analyses the signal decimated by this factor (StoneMask then refines F0 at the full
#: rate). Chosen by the same rule among speeds 1-4 (``latest_f0_tracker.md``): at 4 it voices as speed 1 does
#: (0.889 against 0.890), with fewer octave jumps and as steady a register, at under half the time.
DIO_SPEED = 4


def tracker_settings(tracker=DEFAULT_F0_TRACKER):
    """A name for ``tracker`` with the settings that change what it measures (DIO's range and speed): F0
    measured under another name is not comparable.

    Example
    -------
    >>> tracker_settings("dio"), tracker_settings("harvest")
    ('dio-range0.3-speed4', 'harvest')
    """
    return f"dio-range{DIO_ALLOWED_RANGE:g}-speed{DIO_SPEED}" if tracker == "dio" else tracker


def analyse_f0(wav, sample_rate, frame_period=10.0, tracker=DEFAULT_F0_TRACKER, dio_allowed_range=None,
               dio_speed=None):
    """F0 in Hz per frame (0 where unvoiced) and the frames' times, by one of :data:`F0_TRACKERS`.

    Example
    -------
    >>> rate = 16000
    >>> time = np.arange(rate) / rate  # one second of a voice-like tone at 150 Hz: ten harmonics
    >>> tone = sum(np.sin(2 * np.pi * 150.0 * k * time) / k for k in range(1, 11))
    >>> [round(float(np.median(analyse_f0(tone, rate, tracker=name)[0][20:-20]))) for name in F0_TRACKERS]
    [150, 150]
    """
    if tracker not in F0_TRACKERS:
        raise ValueError(f"F0 tracker must be one of {F0_TRACKERS}, got {tracker!r}")
    world = pyworld_module()
    samples = np.ascontiguousarray(np.asarray(wav, dtype=np.float64))
    if tracker == "harvest":
        return world.harvest(samples, sample_rate, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=frame_period)
    allowed_range = DIO_ALLOWED_RANGE if dio_allowed_range is None else dio_allowed_range
    speed = DIO_SPEED if dio_speed is None else dio_speed
    f0, times = world.dio(samples, sample_rate, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=frame_period,
                          allowed_range=allowed_range, speed=speed)
    return world.stonemask(samples, f0, times, sample_rate), times


@dataclass(frozen=True)
class LogF0Statistics:
    """Mean and standard deviation of log F0 over voiced frames: a voice's register and its spread.

    Example
    -------
    >>> stats = LogF0Statistics.of([np.array([100.0, 0.0, 200.0])])
    >>> round(float(np.exp(stats.mean)), 1), stats.frames
    (141.4, 2)
    """

    mean: float
    std: float
    frames: int

    @classmethod
    def of(cls, f0_tracks):
        voiced = np.concatenate([np.asarray(track, dtype=np.float64) for track in f0_tracks])
        voiced = np.log(voiced[voiced > 0])
        if len(voiced) < 2:
            raise ValueError(f"{len(voiced)} voiced frames: too few to measure a voice's pitch")
        return cls(float(voiced.mean()), float(max(voiced.std(), 1e-3)), len(voiced))

    @classmethod
    def of_audio(cls, wavs, sample_rate, tracker=DEFAULT_F0_TRACKER):
        """The statistics of the voiced frames of several waveforms (e.g. a target's enrolment audio), F0 by
        ``tracker`` (:data:`F0_TRACKERS`)."""
        return cls.of([analyse_f0(wav, sample_rate, tracker=tracker)[0] for wav in wavs])

    def convert(self, f0, target):
        """``f0`` (0: unvoiced) with its log standardised by these statistics and given ``target``'s."""
        f0 = np.asarray(f0, dtype=np.float64)
        out = np.zeros_like(f0)
        voiced = f0 > 0
        out[voiced] = np.exp((np.log(f0[voiced]) - self.mean) / self.std * target.std + target.mean)
        return out


def standardised_log_f0(wavs, sample_rate, frame_counts, tracker=DEFAULT_F0_TRACKER):
    """Each waveform's log F0 per 10 ms frame standardised by the register of all of them together
    (:class:`LogF0Statistics`), NaN where unvoiced: where in its speaker's range each frame's pitch sits. Each
    track is cut or padded (unvoiced) to its ``frame_counts`` entry (the features' frames).

    Example
    -------
    >>> rate = 16000
    >>> time = np.arange(rate) / rate
    >>> low, high = (sum(np.sin(2 * np.pi * f0 * k * time) / k for k in range(1, 11)) for f0 in (120.0, 180.0))
    >>> tracks = standardised_log_f0([low, high], rate, [101, 101])
    >>> [round(float(np.nanmedian(track[20:-20])), 1) for track in tracks]
    [-1.0, 1.0]
    """
    f0_tracks = [analyse_f0(wav, sample_rate, tracker=tracker)[0] for wav in wavs]
    register = LogF0Statistics.of(f0_tracks)
    standardised = []
    for f0, frames in zip(f0_tracks, frame_counts):
        track = np.full(frames, np.nan)
        f0 = f0[:frames]
        voiced = f0 > 0
        track[:len(f0)][voiced] = (np.log(f0[voiced]) - register.mean) / register.std
        standardised.append(torch.from_numpy(track).float())
    return standardised


#: The file of an inference folder (and, as a cache, of a preparation folder) holding the training speakers'
#: registers (:class:`F0Registers`).
REGISTERS_FILE = "f0_registers.json"


@dataclass(frozen=True)
class F0Registers:
    """Each training speaker's register (:class:`LogF0Statistics`) and the tracker that measured it: what a
    conversion to a speaker named by its label needs to move F0 when no audio of that speaker is given.

    Example
    -------
    >>> rate = 16000
    >>> time = np.arange(rate // 2) / rate
    >>> tone = lambda hz: sum(np.sin(2 * np.pi * hz * k * time) / k for k in range(1, 11))
    >>> registers = F0Registers.measure({"MABC0": [tone(110.0)], "FXYZ0": [tone(220.0)]}, rate)
    >>> round(float(np.exp(registers.speakers["FXYZ0"].mean - registers.speakers["MABC0"].mean)), 2)
    2.0
    """

    tracker: str
    speakers: dict

    @classmethod
    def measure(cls, audio_by_speaker, sample_rate, tracker=DEFAULT_F0_TRACKER, load=None):
        """The registers of ``{speaker: [waveform or path, ...]}`` (paths read by ``load``, default
        SpeechBrain's ``read_audio``); a speaker whose audio has fewer than two voiced frames is left out,
        with a warning."""
        if load is None:
            from speechbrain.dataio.dataio import read_audio as load
        speakers = {}
        for speaker, items in sorted(audio_by_speaker.items()):
            waveforms = [load(item) if isinstance(item, (str, Path)) else item for item in items]
            try:
                speakers[speaker] = LogF0Statistics.of_audio(waveforms, sample_rate, tracker)
            except ValueError as error:
                logger.warning("speaker %s has no F0 register: %s", speaker, error)
        return cls(tracker, speakers)

    def save(self, path):
        """Writes the registers as JSON (atomically)."""
        write_json_atomic(path, {"tracker": self.tracker, "speakers": {
            name: {"mean": s.mean, "std": s.std, "frames": s.frames} for name, s in self.speakers.items()}})

    @classmethod
    def load(cls, path):
        """The registers :meth:`save` wrote; an error naming the file when it is not such a file."""
        try:
            data = json.loads(Path(path).read_text())
            if data["tracker"] not in F0_TRACKERS:
                raise ValueError(f"unknown tracker {data['tracker']!r}")
            speakers = {name: LogF0Statistics(float(s["mean"]), float(s["std"]), int(s["frames"]))
                        for name, s in data["speakers"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"{path} is not a file of F0 registers ({error})") from None
        return cls(data["tracker"], speakers)

    def of(self, speaker, tracker):
        """``speaker``'s register, or ``None`` when it has none here or was measured by another tracker
        than ``tracker`` (trackers disagree by up to an octave on some voices: a register is only comparable
        with F0 measured the same way)."""
        if speaker not in self.speakers:
            return None
        if tracker != self.tracker:
            logger.warning("the registers were measured by %s, the conversion tracks F0 with %s: the source's "
                           "pitch is kept (give audio of the target, or use f0_tracker=%r)", self.tracker, tracker,
                           self.tracker)
            return None
        return self.speakers[speaker]


#: How far (semitones) a target's mean log F0 must lie from the source's before ``world_voiced_far`` moves
#: pitch: adult speaking registers spread about 2 semitones (one SD) around their gender's mean and the two
#: genders' means lie about 10 apart, so 4 separates within-gender pairs (kept by the gain path, whose words
#: WORLD's vocoding would cost) from cross-gender ones. Fixed from those figures, before any run.
FAR_REGISTER_SEMITONES = 4.0


def registers_far_apart(source_f0, target_f0, semitones=FAR_REGISTER_SEMITONES):
    """Whether ``target_f0`` (:class:`LogF0Statistics`; ``None``: no register to move to, so no) lies more
    than ``semitones`` from the register of the source's F0 track ``source_f0`` (Hz per frame, 0 unvoiced;
    too few voiced frames: no).

    Example
    -------
    >>> source = np.array([0.0, 118.0, 120.0, 122.0, 0.0])
    >>> [registers_far_apart(source, LogF0Statistics(float(np.log(hz)), 0.1, 100)) for hz in (130.0, 240.0)]
    [False, True]
    """
    if target_f0 is None:
        return False
    try:
        source = LogF0Statistics.of([source_f0])
    except ValueError:
        return False
    return bool(abs(12 * (target_f0.mean - source.mean) / np.log(2)) > semitones)


#: D4C marks a voiced frame it finds aperiodic by an aperiodicity of 1 in every band (WORLD then synthesises
#: it as noise); a frame whose least aperiodic band reaches this is such a frame.
APERIODIC = 0.999


def periodic_f0(f0, aperiodicity):
    """``f0`` (Hz per frame, 0 unvoiced) with 0 also where D4C's ``aperiodicity`` marks the frame aperiodic:
    the frames WORLD synthesises with pulses.

    Example
    -------
    >>> periodic_f0(np.array([0.0, 120.0, 120.0]), np.array([[1.0, 1.0], [0.2, 1.0], [1.0, 1.0]])).tolist()
    [0.0, 120.0, 0.0]
    """
    return np.where(np.asarray(aperiodicity).min(axis=1) < APERIODIC, f0, 0.0)


#: Frames of WORLD analysis and synthesis kept on either side of the frames a caller needs (``needed``): a span
#: synthesised on its own settles within a few frames of its edges.
SPAN_MARGIN = 5


def spans(needed, margin=SPAN_MARGIN):
    """``[(start, stop), ...]``: the runs of frames within ``margin`` of a ``needed`` frame.

    Example
    -------
    >>> spans(np.array([0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0], dtype=bool), margin=2)
    [(2, 7), (10, 15)]
    """
    near = np.convolve(np.asarray(needed, dtype=float), np.ones(2 * margin + 1), mode="same") > 0
    edges = np.flatnonzero(np.diff(np.concatenate([[0], near.astype(int), [0]])))
    return [(int(start), int(stop)) for start, stop in zip(edges[::2], edges[1::2])]


def world_resynthesis(wav, sample_rate, mel_gain_db, filterbank, target_f0=None, f0_tracker=DEFAULT_F0_TRACKER,
                      unvoiced=None, analysed=None, frame_period=10.0, d4c_threshold=0.85, needed=None):
    """``wav`` resynthesised by WORLD with the spectral envelope changed by ``mel_gain_db`` and, given
    ``target_f0`` (:class:`LogF0Statistics`), F0 moved to that register.

    Arguments
    ---------
    wav : torch.Tensor
        The source waveform.
    sample_rate : int
    mel_gain_db : torch.Tensor or None
        ``(frames, mels)``: the model's change of each log-Mel frame (new minus old, in dB), at a 10 ms hop;
        ``None``: the envelope as analysed (a copy-synthesis, or F0 moved alone).
    filterbank : torch.Tensor or None
        ``(stft_bins, mels)`` weights of the Mel filterbank (``FeatureInverter.matrix``): how each band
        covers frequency, over ``[0, sample_rate / 2]`` (unread where ``mel_gain_db`` is ``None``).
    target_f0 : LogF0Statistics, optional
        The target's register; ``None`` keeps the source's F0.
    f0_tracker : str
        How the source's F0 is analysed (:data:`F0_TRACKERS`); measure ``target_f0`` with the same one.
    unvoiced : torch.Tensor, optional
        Audio as long as ``wav`` heard wherever the tracker finds no voicing, or D4C finds the frame aperiodic
        (cross-faded over one frame), e.g. the gain path's output of the same change; ``None``: WORLD's noise
        excitation there too.
    analysed : tuple, optional
        ``analyse_f0(wav, sample_rate, tracker=f0_tracker)`` when the caller has it already (not analysed
        twice).
    frame_period : float
        WORLD's frame period in ms (the model's hop, 10, by default).
    d4c_threshold : float
        D4C's threshold above which a voiced frame it finds aperiodic is synthesised as noise (0.85, WORLD's).
    needed : numpy.ndarray, optional
        Bool per frame: only these frames of the output need to be WORLD's (a caller that hears only some of
        them), so the envelope, the aperiodicity and the synthesis are taken around them only
        (:func:`spans`), F0 and its register still from the whole; elsewhere the output is ``unvoiced``
        (required with it). ``None``: every frame.

    Returns
    -------
    torch.Tensor
        The converted waveform, as long as the input.
    """
    world = pyworld_module()
    samples = np.ascontiguousarray(wav.detach().cpu().double().numpy())
    if needed is not None and unvoiced is None:
        raise ValueError("world_resynthesis: needed frames leave the others to the unvoiced audio: give it")
    if analysed is None:
        analysed = analyse_f0(samples, sample_rate, frame_period=frame_period, tracker=f0_tracker)
    f0, times = analysed
    converted = f0
    if target_f0 is not None and (f0 > 0).sum() >= 2:
        converted = LogF0Statistics.of([f0]).convert(f0, target_f0)
    if mel_gain_db is not None:
        # the bands' gains on the STFT bins (each bin: the weighted mean of the bands covering it), then on WORLD's
        weights = filterbank.double()
        bin_gain = (mel_gain_db.double() @ weights.T) / weights.sum(dim=1).clamp_min(1e-8)  # (frames, stft bins)
        stft_freqs = np.linspace(0, sample_rate / 2, weights.shape[0])
        frame_index = np.linspace(0, len(bin_gain) - 1, len(f0))  # WORLD's frames onto the model's
        rows = bin_gain.numpy()[np.clip(np.round(frame_index).astype(int), 0, len(bin_gain) - 1)]
    if needed is not None:  # the caller's frames onto WORLD's (the same hop; a frame more or less at the end)
        needed = np.pad(np.asarray(needed, dtype=bool), (0, max(0, len(f0) - len(needed))))[:len(f0)]
    taken = [(0, len(f0))] if needed is None else spans(needed)
    out = np.zeros(len(samples))
    aperiodicity = np.ones((len(f0), 1))  # outside the spans: aperiodic, so the unvoiced audio is heard there
    hop = int(round(frame_period * sample_rate / 1000))
    for start, stop in taken:
        envelope = world.cheaptrick(samples, f0[start:stop], times[start:stop], sample_rate, f0_floor=F0_FLOOR)
        periodicity = world.d4c(samples, f0[start:stop], times[start:stop], sample_rate, threshold=d4c_threshold)
        if aperiodicity.shape[1] != periodicity.shape[1]:
            aperiodicity = np.ones((len(f0), periodicity.shape[1]))
        aperiodicity[start:stop] = periodicity
        if mel_gain_db is not None:
            world_freqs = np.linspace(0, sample_rate / 2, envelope.shape[1])
            gain_db = np.stack([np.interp(world_freqs, stft_freqs, row) for row in rows[start:stop]])
            envelope = envelope * np.power(10.0, gain_db / 10.0)  # the envelope is a power spectrum
        span = world.synthesize(converted[start:stop], np.ascontiguousarray(envelope), periodicity, sample_rate,
                                frame_period=frame_period)
        at = start * hop  # a span's first frame is centred at its time: WORLD synthesises it from sample 0
        span = span[: max(0, len(samples) - at)]
        out[at:at + len(span)] = span
    if unvoiced is not None:
        # WORLD's own pulses only where it synthesises any: a frame the tracker voices but D4C finds aperiodic
        # (above its threshold) is all noise in WORLD's output, with no pitch to move, so the other audio
        # keeps the original excitation there too
        voiced = voiced_weight(periodic_f0(converted, aperiodicity), len(samples), sample_rate,
                               frame_period=frame_period / 1000)
        out = voiced * out + (1.0 - voiced) * unvoiced.detach().cpu().double().numpy()
    return torch.from_numpy(out).float()


def voiced_weight(f0, num_samples, sample_rate, frame_period=0.01, fade=0.01):
    """Per sample: 1 inside the frames ``f0`` voices (frame ``i`` centred at ``i * frame_period`` seconds, as
    WORLD's), 0 outside, ramped over ``fade`` seconds at each edge.

    Example
    -------
    >>> weight = voiced_weight(np.array([0.0, 100.0, 100.0, 0.0]), 400, 10000)
    >>> float(weight[0]), float(weight[200]), float(weight[399])
    (0.0, 1.0, 0.0)
    """
    nearest_frame = np.clip(np.round(np.arange(num_samples) / sample_rate / frame_period).astype(int), 0, len(f0) - 1)
    hard = (np.asarray(f0)[nearest_frame] > 0).astype(np.float64)
    ramp = np.hanning(max(3, int(fade * sample_rate)) + 2)[1:-1]
    return np.clip(np.convolve(hard, ramp / ramp.sum(), mode="same"), 0.0, 1.0)


__all__ = ["DEFAULT_F0_TRACKER", "F0_TRACKERS", "F0Registers", "FAR_REGISTER_SEMITONES", "LogF0Statistics",
           "REGISTERS_FILE", "analyse_f0", "periodic_f0", "pyworld_module", "registers_far_apart", "tracker_settings",
           "voiced_weight", "world_resynthesis"]
