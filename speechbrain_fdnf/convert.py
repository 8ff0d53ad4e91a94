"""Hear a manipulation: change the speaker (or a phone) of an utterance and write a WAV.

How the frames change (``manipulation``) is one of the registered manipulations of
:mod:`speechbrain_fdnf.manipulations` (``shift``, the paper's class-mean shift; ``cells``,
per-phone differences from audio of the target; ``knn``, the mean of the target's nearest frames;
``select``, real frames of the target resynthesised from their own STFT, which carries the target's
pitch, harmonics and fine envelope that 40 Mel bands lose; ``units``, the same a whole phone at a time);
each one's options come with it.

With ``auto`` (the default) and audio of the target: :data:`DEFAULT_WITH_TAGGER` where the model folder
has a contextual phone tagger (and the factor is the speaker), else :data:`DEFAULT_WITH_AUDIO`; without
it, ``shift``. ``docs/RESULTS.md`` judges each of them with a speaker encoder and two phone
recognizers. The model works on log-Mel frames, so the changed frames (all but ``select``'s and ``units``')
become audio in one of five ways (``method``), none needing a download:

* ``gain`` (default): the difference between the manipulated and the original
  log-Mel frames is a per-band gain; it is spread onto the STFT bins through
  the filterbank's own weights and applied to the original STFT, which keeps
  the original phase and the harmonic detail the 40 Mel bands cannot hold;
* ``world``: WORLD's pitch-synchronous analysis and synthesis (:mod:`speechbrain_fdnf.pitch`): the
  source's spectral envelope takes the same per-band gain, its aperiodicity is kept, and F0 moves to
  the target's register (log-F0 mean and spread of the ``--enrol`` audio; for a training speaker
  named with ``--speaker``, the register its training run measured and exported), which the other two
  cannot do: the way to convert across genders;
* ``world_voiced``: WORLD where its F0 tracker hears voicing (and D4C finds the frame periodic), the
  ``gain`` path's output elsewhere (cross-faded over a frame): fricatives, stop bursts and frames the
  tracker leaves unvoiced keep the original excitation instead of WORLD's shaped noise;
* ``world_voiced_far``: ``world_voiced`` when the target's register lies more than
  :data:`~speechbrain_fdnf.pitch.FAR_REGISTER_SEMITONES` from the source's (in practice: across genders),
  else the ``gain`` path: within a gender the source's pitch is already near the target's, and WORLD's
  vocoding costs words;
* ``griffinlim``: the manipulated Mel power spectrum is mapped back to a
  linear spectrum (least squares through the filterbank, clamped at zero) and
  torchaudio's ``GriffinLim`` estimates a phase. It hears only the features,
  so it also shows what the features lose.

Command line::

    python -m speechbrain_fdnf.convert --model results/fdnf/1234/inference \\
        --wav in.wav --speaker MABC0 [--out out.wav]
    python -m speechbrain_fdnf.convert --model DIR --wav in.wav --enrol new1.wav new2.wav
    python -m speechbrain_fdnf.convert --model DIR --wav in.wav --enrol new1.wav new2.wav --manipulation select
    python -m speechbrain_fdnf.convert --model DIR --wav a.wav b.wav c.wav --enrol new1.wav new2.wav --out converted/
    python -m speechbrain_fdnf.convert --model DIR --enrol new1.wav new2.wav --save_enrolment new.pt  # analysed once,
    python -m speechbrain_fdnf.convert --model DIR --wav in.wav --enrolment new.pt                   # then per call
    python -m speechbrain_fdnf.convert --model DIR --wav in.wav --factor phone --source aa --target iy
    python -m speechbrain_fdnf.convert --model DIR --wav in_44k_stereo.flac --speaker MABC0  # resampled, mixed down
    python -m speechbrain_fdnf.convert --model DIR --list speaker

Authors
 * speechbrain-fdnf developers
"""

import argparse
import logging
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio
from speechbrain.processing.features import ISTFT, Filterbank

from speechbrain_fdnf.data.audio import as_written
from speechbrain_fdnf.factors import is_frame_level
from speechbrain_fdnf.inference import InferenceInputError, SpeechFactorizer
from speechbrain_fdnf.matching import utterance_starts
from speechbrain_fdnf.target_audio import TargetAudio
from speechbrain_fdnf.pitch import (
    DEFAULT_F0_TRACKER,
    F0_FLOOR,
    F0_TRACKERS,
    analyse_f0,
    registers_far_apart,
    world_resynthesis,
)
from speechbrain_fdnf.manipulations import (  # noqa: F401  (DEFAULT_WITH_AUDIO: named here before 0.6)
    DEFAULT_WITH_AUDIO,
    DEFAULT_WITH_TAGGER,
    CONSISTENCY_ITERATIONS,
    FALLBACKS,
    REGISTRY,
    Manipulation,
    all_options,
    build,
    resolve,
    serves_tagged_default,
    split_options,
)

logger = logging.getLogger(__name__)
METHODS = ("gain", "griffinlim", "world", "world_voiced", "world_voiced_far")
#: The methods that move F0 to the target's register (WORLD's analysis; the ``world`` extra, pyworld).
PITCH_METHODS = ("world", "world_voiced", "world_voiced_far")
#: ``--manipulation`` choices: ``auto`` and every registered manipulation (:mod:`speechbrain_fdnf.manipulations`).
MANIPULATIONS = ("auto", *REGISTRY)
MAX_GAIN_DB = 40.0


class FeatureInverter:
    """Turns log-Mel frames computed by a SpeechBrain ``Fbank`` back into audio.

    Arguments
    ---------
    fbank : speechbrain.lobes.features.Fbank
        The feature extractor the model was trained with (its STFT and
        filterbank settings are reused).
    n_iter : int
        Griffin-Lim iterations.

    Example
    -------
    >>> from speechbrain.lobes.features import Fbank
    >>> fbank = Fbank(n_mels=40)
    >>> inverter = FeatureInverter(fbank)
    >>> wav = torch.randn(8000) * 0.1
    >>> feats = fbank(wav[None])[0]
    >>> same = inverter.apply_gain(wav, feats, feats)  # no change in the features: the same audio
    >>> torch.allclose(same, wav, atol=1e-4)
    True
    >>> inverter.griffin_lim(feats, length=8000).shape
    torch.Size([8000])
    """

    def __init__(self, fbank, n_iter=32):
        self.stft = fbank.compute_STFT
        mel = fbank.compute_fbanks
        self.sample_rate = self.stft.sample_rate
        self.multiplier = mel.multiplier  # 10: the features are 10 log10 of Mel power
        linear = Filterbank(n_mels=mel.n_mels, log_mel=False, filter_shape=mel.filter_shape, f_min=mel.f_min,
                            f_max=mel.f_max, n_fft=mel.n_fft, sample_rate=mel.sample_rate)
        # The filterbank is linear once the log is off: its response to each STFT bin is its matrix.
        self.matrix = linear(torch.eye(mel.n_stft)[None])[0]  # (bins, mels)
        self.istft = ISTFT(sample_rate=self.sample_rate, n_fft=self.stft.n_fft,
                           win_length=self.stft.win_length * 1000 // self.sample_rate,
                           hop_length=self.stft.hop_length * 1000 // self.sample_rate)
        self.n_iter = n_iter

    def selected_frames(self, spectra, chosen, successors, continue_phase=False, carry_steps=None, align_jumps=False):
        """The STFT frames ``chosen`` of ``spectra`` ``(frames, bins, 2)`` (real, imaginary).

        With ``continue_phase``, their magnitudes with phases carried on from one output frame to the next as a
        phase vocoder with identity phase locking does (Laroche and Dolson): each spectral peak of a chosen frame
        advances from the previous output frame's phase at that bin by the frame's own advance over the frame
        before it in its recording (``successors[j]``: frame ``j + 1`` follows frame ``j``; a recording's first
        frame takes the advance of the frame after it), and every other bin keeps its phase relative to its
        nearest peak, so that a partial stays one partial. A repeated frame (a stretched phone) or a jump between
        recordings then continues each partial instead of restarting it; a run of consecutive frames comes out
        as it was. With ``carry_steps`` too, phases are carried on only where an output frame lies 0 to
        ``carry_steps`` frames after the previous one in the same recording (1: the same frame again or the next,
        a stretched phone; :meth:`overlapping_steps`: any frame whose window overlaps the previous one's there, a
        squeezed phone too); a jump elsewhere starts with the new frame's own phases, its waveform as recorded.
        With ``align_jumps`` too, that waveform is moved in time (a linear phase: a circular shift of the windowed
        frame) by up to half a hop, to where it best continues the previous output frame carried on by its own
        advance (the lag of their cross-spectrum's largest real part): the two overlap-add without cancelling at
        the join, as unit selection's pitch-synchronous joins do, and the frames after it carry the shift on.

        Example
        -------
        >>> from speechbrain.lobes.features import Fbank
        >>> inverter = FeatureInverter(Fbank(n_mels=40))
        >>> spectra = inverter.stft(torch.randn(1, 4000))[0]
        >>> run = torch.arange(len(spectra))
        >>> follows = torch.ones(len(spectra), dtype=torch.bool)
        >>> torch.allclose(inverter.selected_frames(spectra, run, follows, continue_phase=True), spectra, atol=1e-4)
        True
        """
        picked = spectra[chosen]
        if not continue_phase or len(chosen) < 2:
            return picked
        frames = torch.view_as_complex(spectra.double().contiguous())
        # the phases read below are the chosen frames' and their neighbours' (their advances): only those computed
        read = torch.unique(torch.cat([chosen - 1, chosen, chosen + 1]).clamp(0, len(frames) - 1))
        phase = torch.zeros(frames.shape, dtype=torch.float64)
        phase[read] = frames[read].angle()
        bins = torch.arange(frames.shape[1])
        # each frame's advance over the one before it in its recording (a recording's first frame: the next one's)
        advance = torch.cat([torch.zeros(1, len(bins), dtype=torch.float64), phase[1:] - phase[:-1]])
        follows = torch.cat([torch.tensor([False]), successors[:-1]])  # frame j follows frame j - 1
        nominal = 2 * math.pi * bins.double() * self.stft.hop_length / self.stft.n_fft
        advance = torch.where(follows[:, None], advance,
                              torch.where(successors[:, None], torch.cat([advance[1:], nominal[None, :]]), nominal))
        # each bin's nearest spectral peak in every chosen frame (the first of a plateau is its peak)
        level = frames[chosen].abs()
        peak = torch.ones_like(level, dtype=torch.bool)
        peak[:, 1:] &= level[:, 1:] > level[:, :-1]
        peak[:, :-1] &= level[:, :-1] >= level[:, 1:]
        index = bins.expand_as(level)
        left = torch.cummax(torch.where(peak, index, -1), dim=1).values
        right = len(bins) - 1 - torch.cummax(torch.where(peak, len(bins) - 1 - index, -1).flip(1), dim=1).values.flip(1)
        right = torch.where(right < len(bins), right, left)
        left = torch.where(left >= 0, left, right)
        nearest = torch.where(index - left <= right - index, left, right)
        # a bin's phase: its peak's, carried on from the previous output frame, and its own offset from that peak
        offset = phase[chosen] - phase[chosen[:, None], nearest] + advance[chosen[:, None], nearest]
        carried = torch.empty(len(chosen), len(bins), dtype=torch.float64)
        carried[0] = phase[chosen[0]]
        restart = torch.zeros(len(chosen), dtype=torch.bool)
        if carry_steps is not None:  # a jump: another recording, backwards, or further on than carry_steps
            recording = torch.cumsum(torch.cat([torch.tensor([True]), ~successors[:-1]]).long(), 0)
            step = chosen[1:] - chosen[:-1]
            restart[1:] = (recording[chosen[1:]] != recording[chosen[:-1]]) | (step < 0) | (step > carry_steps)
        if align_jumps:  # the delays a jump's frame may take, up to half a hop either way, and a bin's phase per sample
            reach = self.stft.hop_length // 2
            lags = torch.cat([torch.arange(reach + 1), torch.arange(self.stft.n_fft - reach, self.stft.n_fft)])
            shift = 2 * math.pi * bins.double() / self.stft.n_fft
        for step in range(1, len(chosen)):
            if not restart[step]:
                carried[step] = carried[step - 1, nearest[step]] + offset[step]
                continue
            carried[step] = phase[chosen[step]]
            if align_jumps:
                expected = carried[step - 1] + advance[chosen[step - 1]]  # the previous frame, one hop on
                cross = level[step - 1] * level[step] * torch.exp(1j * (expected - carried[step]))
                agreement = torch.fft.irfft(cross, n=self.stft.n_fft)[lags]  # at each delay of the new frame
                carried[step] -= shift * lags[int(agreement.argmax())]  # its phases then nearest the expected ones
        return torch.view_as_real(torch.polar(level, carried)).to(spectra.dtype)

    def overlapping_steps(self):
        """The largest step between frames of one recording whose analysis windows still overlap (25 ms windows
        every 10 ms: 2).

        Example
        -------
        >>> from speechbrain.lobes.features import Fbank
        >>> FeatureInverter(Fbank(n_mels=40)).overlapping_steps()
        2
        """
        return -(-self.stft.win_length // self.stft.hop_length) - 1

    def frame_count(self, samples):
        """How many STFT frames :attr:`stft` makes of ``samples`` samples (centred frames: one per hop, and one more).

        Example
        -------
        >>> from speechbrain.lobes.features import Fbank
        >>> inverter = FeatureInverter(Fbank(n_mels=40))
        >>> inverter.frame_count(4000) == inverter.stft(torch.zeros(1, 4000)).shape[1]
        True
        """
        return samples // self.stft.hop_length + 1

    def aligned_frames(self, waveforms, chosen, tolerance=None):
        """The STFT frames ``chosen`` of ``waveforms`` (their frames concatenated in order, as :meth:`stft` frames
        each), each taken up to ``tolerance`` seconds from its own place where its waveform best continues the
        frame before it: WSOLA (Verhelst and Roelands' waveform-similarity overlap-add). Each output frame's
        natural continuation is the audio one hop after the previous output frame in that frame's recording; of
        the candidate positions around the chosen frame, the one most like it (normalised cross-correlation) is
        taken. A repeated frame (a stretched phone) then moves on by whole pitch periods and a jump between
        recordings lands in phase, where frames with their own phases restart every partial; unlike a phase
        vocoder it keeps each frame's waveform, its transients too. A run of consecutive frames continues itself
        exactly, so it comes out as it was. ``tolerance`` (default half a period of the lowest F0 the pitch
        analysis looks for, :data:`~speechbrain_fdnf.pitch.F0_FLOOR`) makes the search span one pitch period of
        every voice.

        Example
        -------
        >>> from speechbrain.lobes.features import Fbank
        >>> inverter = FeatureInverter(Fbank(n_mels=40))
        >>> wav = torch.randn(4000)
        >>> spectra = inverter.stft(wav[None])[0]
        >>> run = torch.arange(len(spectra))
        >>> torch.allclose(inverter.aligned_frames([wav], run), spectra, atol=1e-3)
        True
        """
        hop, n_fft = self.stft.hop_length, self.stft.n_fft
        slack = int(round((0.5 / F0_FLOOR if tolerance is None else tolerance) * self.sample_rate))
        window = torch.zeros(n_fft, dtype=torch.float64)  # torch.stft's: the window centred in the FFT's length
        start = (n_fft - self.stft.win_length) // 2
        window[start:start + self.stft.win_length] = self.stft.window.double()
        # each recording zero-padded (as the STFT's centring does, and for the search's reach past either end)
        margin = n_fft // 2 + slack + hop
        signal, frame_starts = [], []
        offset = 0
        for wav in waveforms:
            wav = torch.as_tensor(wav).detach().double().cpu().flatten()
            signal.append(torch.nn.functional.pad(wav, (margin, margin)))
            frame_starts.append(offset + margin - n_fft // 2 + hop * torch.arange(self.frame_count(len(wav))))
            offset += len(wav) + 2 * margin
        signal = torch.cat(signal).numpy()
        nominal = torch.cat(frame_starts)[chosen].numpy()
        energy = np.concatenate([[0.0], np.cumsum(signal ** 2)])  # candidates' norms from running sums
        starts = nominal.copy()
        for step in range(1, len(nominal)):
            natural = signal[starts[step - 1] + hop:starts[step - 1] + hop + n_fft]
            if not natural.any():  # silence to continue: the frame's own place
                continue
            low = nominal[step] - slack
            region = signal[low:nominal[step] + slack + n_fft]
            norms = np.sqrt(energy[low + n_fft:low + n_fft + 2 * slack + 1] - energy[low:low + 2 * slack + 1])
            similarity = np.correlate(region, natural, mode="valid") / np.maximum(norms, 1e-12)
            starts[step] = low + int(np.argmax(similarity))
        segments = torch.from_numpy(np.stack([signal[at:at + n_fft] for at in starts])) * window
        return torch.view_as_real(torch.fft.rfft(segments)).to(torch.float32)

    def mel_power(self, feats):
        """Mel power of log-Mel frames."""
        return torch.pow(10.0, feats / self.multiplier)

    @torch.no_grad()
    def apply_gain(self, wav, feats, new_feats, refine=4):
        """``wav`` with the spectral change ``new_feats - feats`` applied to its STFT (phase kept).

        A Mel band's gain spreads onto the STFT bins through the filterbank's
        weights; since neighbouring bands overlap, the result's bands miss
        their targets a little, so ``refine`` passes correct the bin gains
        with what is still missing (measured on the modified spectrum).
        """
        spec = self.stft(wav[None].float())[0]  # (frames, bins, 2)
        if spec.shape[0] != new_feats.shape[0]:
            raise ValueError(f"{spec.shape[0]} STFT frames but {new_feats.shape[0]} feature frames")
        power = spec.pow(2).sum(-1)
        weights = self.matrix.sum(dim=1).clamp_min(1e-8)  # how much of each bin the bands cover

        def spread(band_db):  # (frames, mels) dB -> (frames, bins) dB
            return (band_db.to(self.matrix) @ self.matrix.T) / weights

        def bands_db(bin_db):  # log-Mel frames of the spectrum with these bin gains
            mel = (power * torch.pow(10.0, bin_db / self.multiplier)) @ self.matrix
            return self.multiplier * torch.log10(mel.clamp_min(1e-10))

        bin_db = spread(new_feats - feats)
        for _ in range(refine):  # (bounded: near-silent bins cannot reach any target)
            bin_db = (bin_db + spread(new_feats - bands_db(bin_db))).clamp(-MAX_GAIN_DB, MAX_GAIN_DB)
        gain = torch.pow(10.0, bin_db / (2 * self.multiplier))  # amplitude
        return self.istft((spec * gain[..., None])[None], sig_length=len(wav))[0]

    @torch.no_grad()
    def consistent(self, frames, length, n_iter, momentum=0.99):
        """A waveform of ``length`` samples whose STFT has the magnitudes of ``frames`` ``(frames, bins, 2)`` as
        nearly as ``n_iter`` Griffin-Lim iterations reach, starting from their own phases (fast Griffin-Lim:
        Perraudin, Balazs and Søndergaard, with ``momentum``; 0 iterations: ``frames`` overlap-added as they are).

        Frames taken from different places do not overlap-add into a signal with their magnitudes: where their
        phases disagree, partials cancel at each join or repeated frame. The iterations keep every frame's
        magnitude and move its phases until the frames and the waveform they make agree; starting from the
        frames' own phases, a run of frames that already agrees is left as it was.

        Example
        -------
        >>> from speechbrain.lobes.features import Fbank
        >>> inverter = FeatureInverter(Fbank(n_mels=40))
        >>> wav = torch.randn(4000)
        >>> spectra = inverter.stft(wav[None])[0]
        >>> torch.allclose(inverter.consistent(spectra, 4000, n_iter=8), wav, atol=1e-3)
        True
        """
        current = torch.view_as_complex(frames.float().contiguous())
        magnitude, previous = current.abs(), None
        for _ in range(n_iter):
            wav = self.istft(torch.view_as_real(current)[None], sig_length=length)
            rebuilt = torch.view_as_complex(self.stft(wav)[0].contiguous())
            pushed = rebuilt if previous is None else rebuilt + momentum * (rebuilt - previous)
            previous = rebuilt
            current = magnitude * pushed / pushed.abs().clamp_min(1e-12)  # their magnitudes, the new phases
        return self.istft(torch.view_as_real(current)[None], sig_length=length)[0]

    @torch.no_grad()
    def griffin_lim(self, feats, length=None):
        """A waveform whose log-Mel frames approximate ``feats`` (phase by Griffin-Lim)."""
        mel = self.mel_power(feats.float())  # (frames, mels)
        linear = torch.linalg.lstsq(self.matrix.T, mel.T).solution.clamp_min(0.0)  # (bins, frames)
        griffin = torchaudio.transforms.GriffinLim(
            n_fft=self.stft.n_fft, win_length=self.stft.win_length, hop_length=self.stft.hop_length,
            window_fn=torch.hamming_window, power=2.0, n_iter=self.n_iter, length=length)
        return griffin(linear)


@torch.no_grad()
def convert(factorizer, wav, factor, target=None, source=None, method="gain", n_iter=32, references=None,
            manipulation="auto", target_f0=None, f0_tracker=DEFAULT_F0_TRACKER, needed=None, **options):
    """Changes ``factor`` of every frame of an utterance and returns the new waveform.

    Arguments
    ---------
    factorizer : SpeechFactorizer
        The loaded model.
    wav : str, Path, torch.Tensor or TargetAudio
        The utterance: a file (any format, rate and channel count; see
        :meth:`SpeechFactorizer.load_audio`) or a mono waveform at the model's sample rate, or it analysed
        (:meth:`SpeechFactorizer.analysed`: its features and codes computed once for every conversion of it).
    factor : str
        The factor to change (e.g. ``"speaker"``).
    target : str or torch.Tensor
        ``shift``: target class name, or a mean vector from :meth:`SpeechFactorizer.enrol`.
    source : str, optional
        The current class. For a frame-level factor (phone), only the frames
        the model assigns to ``source`` are changed; for an utterance-level
        factor it replaces the model's guess of the utterance's class.
    method : str
        How changed frames become audio: one of :data:`METHODS` (see the module docstring).
    n_iter : int
        Griffin-Lim iterations.
    references : list or TargetAudio, optional
        Audio of the target (paths or waveforms; ``knn`` also takes features), or it analysed once for many
        conversions (:meth:`SpeechFactorizer.target_audio`: its features, codes, phones and register are
        computed once, not on every call).
    manipulation : str or Manipulation
        A name of :data:`MANIPULATIONS` (``"auto"``: with ``references``, ``units`` where the model folder has a
        contextual phone tagger and the factor is the speaker, else ``cells``; without them, ``shift``) or a
        :class:`~speechbrain_fdnf.manipulations.Manipulation` object with its options.
    target_f0 : speechbrain_fdnf.pitch.LogF0Statistics, optional
        :data:`PITCH_METHODS`: the target's register (default: measured on ``references``, else for a training
        speaker named by ``target`` the register the model folder holds; without any, the source's F0 is
        kept). A caller converting many utterances to one target measures it once by passing ``references``
        as a :class:`~speechbrain_fdnf.target_audio.TargetAudio`.
    f0_tracker : str
        :data:`PITCH_METHODS`: WORLD's F0 tracker (:data:`~speechbrain_fdnf.pitch.F0_TRACKERS`): ``dio``
        (default) or ``harvest``, thirty times slower.
    needed : numpy.ndarray, optional
        ``world_voiced``: bool per frame, the only frames the caller hears (``units``' fallback hears the phones
        the target's audio lacks): WORLD works around them only, the gain path's audio elsewhere
        (:func:`~speechbrain_fdnf.pitch.world_resynthesis`). ``None``: the whole utterance.
    **options
        Options of the manipulation by name (``deviation``; ``shrink``; ``k``, ``gate``; ``candidates``,
        ``continuity``, ``gate``; ``join``, ``neighbours``, ``duration``: :mod:`speechbrain_fdnf.manipulations`); those of other manipulations are
        ignored, so one set of options serves every choice.

    Returns
    -------
    torch.Tensor
        The converted waveform, as long as the input.
    """
    if isinstance(manipulation, Manipulation):
        chosen = manipulation
    else:
        unknown = set(options) - set(all_options())
        if unknown:
            raise TypeError(f"convert() got unknown option(s) {sorted(unknown)}; the manipulations take "
                            f"{sorted(all_options())}")
        name = resolve(manipulation, references is not None, serves_tagged_default(factorizer, factor))
        chosen = build(name, **split_options(options).get(name, {}))
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if f0_tracker not in F0_TRACKERS:
        raise ValueError(f"f0_tracker must be one of {F0_TRACKERS}, got {f0_tracker!r}")
    chosen.check(factor, target, references)
    # checked once, and analysed once however many parts of the conversion read it (units' fallback converts it again)
    utterance = analysed_audio(factorizer, wav)
    wav = utterance.audio[0]
    if references is not None:  # analysed once, however many parts of the conversion read them
        references = factorizer.target_audio(references)
    if chosen.resynthesis == "frames":
        return resynthesise_selected(factorizer, utterance, factor, references, chosen)
    feats = utterance.pool
    new_feats = chosen.frames(factorizer, feats, factor, target=target, source=source, references=references,
                              wav=utterance)
    if is_frame_level(factor) and source is not None:
        keep = factorizer.class_posterior(feats, factor).argmax(dim=-1) != factorizer.class_index(factor, source)
        new_feats = torch.where(keep[:, None], feats, new_feats)
        logger.info("%d of %d frames are %s %s", int((~keep).sum()), len(keep), factor, source)
    centre = factorizer.centre_bands
    feats, new_feats = feats[:, centre], new_feats[:, centre]  # spliced context: the centre frame
    inverter = FeatureInverter(factorizer.hparams.compute_features, n_iter=n_iter)
    if method == "gain":
        return inverter.apply_gain(wav.cpu(), feats.cpu(), new_feats.cpu())
    if method in PITCH_METHODS:
        rate = factorizer.hparams.sample_rate
        if target_f0 is None:
            target_f0 = target_register(factorizer, factor, target, references, f0_tracker)
        unvoiced = inverter.apply_gain(wav.cpu(), feats.cpu(), new_feats.cpu()) if method != "world" else None
        analysed = None
        if method == "world_voiced_far":
            analysed = analyse_f0(wav.cpu().double().numpy(), rate, tracker=f0_tracker)
            if not registers_far_apart(analysed[0], target_f0):
                return unvoiced
        return world_resynthesis(wav.cpu(), rate, (new_feats - feats).cpu(), inverter.matrix, target_f0, f0_tracker,
                                 unvoiced=unvoiced, analysed=analysed, needed=needed if method == "world_voiced" else None)
    return inverter.griffin_lim(new_feats.cpu(), length=len(wav))


def target_register(factorizer, factor, target, references, f0_tracker=DEFAULT_F0_TRACKER):
    """The register F0 moves to (:class:`~speechbrain_fdnf.pitch.LogF0Statistics`): measured on ``references``
    when audio of the target is given, else, for a speaker named by its label, the one the model folder holds
    (:attr:`SpeechFactorizer.f0_registers`); ``None`` (the source's pitch is kept) without either."""
    if references is not None:
        return factorizer.target_audio(references).register(f0_tracker)
    registers = factorizer.f0_registers
    register = registers.of(target, f0_tracker) if factor == "speaker" and isinstance(target, str) and registers else None
    if register is None:
        logger.info("no F0 register of the target %s: the source's pitch is kept (give audio of the target)", target)
    return register


def analysed_audio(factorizer, wav):
    """``wav`` (a path, a waveform, or one analysed by :meth:`SpeechFactorizer.analysed`) checked and analysed, as
    audio: the converter's input."""
    utterance = factorizer.analysed(wav if isinstance(wav, TargetAudio) else factorizer.waveform(wav))
    if not utterance.audio:
        raise InferenceInputError("the converter takes audio: the utterance given was analysed from features")
    return utterance


def resynthesise_selected(factorizer, wav, factor, references, manipulation):
    """The audio of a manipulation that selects real frames (``select``, ``units``): the STFT frames of
    ``references`` that it chooses for each frame of ``wav``, overlap-added (an index past the references' frames
    is one of ``wav``'s own: ``units``' ``fallback``, heard as :func:`fallback_audio`)."""
    references = factorizer.target_audio(references)
    if len(references.audio) != len(references):  # audio comes back checked, 1-D
        raise InferenceInputError(f"manipulation {manipulation.name!r} needs the references as audio (paths or 1-D "
                                  "waveforms), not features")
    utterance = analysed_audio(factorizer, wav)  # its codes, read by the match and by the fallback, computed once
    wav = utterance.audio[0]
    chosen = manipulation.frames(factorizer, None, factor, references=references, wav=utterance).cpu()
    inverter = FeatureInverter(factorizer.hparams.compute_features)
    audio = [item.float().cpu() for item in references.audio]
    pool_frames = sum(inverter.frame_count(len(item)) for item in audio)
    if len(chosen) and int(chosen.max()) >= pool_frames:  # the input's own frames: only those are heard
        needed = np.zeros(inverter.frame_count(len(wav)), dtype=bool)
        needed[(chosen[chosen >= pool_frames] - pool_frames).numpy()] = True
        audio.append(fallback_audio(factorizer, utterance, factor, references,
                                    getattr(manipulation, "fallback", "source"), needed=needed).float().cpu())
    overlap = getattr(manipulation, "overlap", "own")
    if overlap == "wsola":
        picked = inverter.aligned_frames(audio, chosen)
    else:
        spectra = [inverter.stft(item[None])[0] for item in audio]
        successors = ~torch.roll(utterance_starts([len(item) for item in spectra]), -1)  # frame j + 1 follows j
        carry_steps = {"phase_vocoder_within": 1, "phase_vocoder_aligned": 1,
                       "phase_vocoder_overlapping": inverter.overlapping_steps()}
        picked = inverter.selected_frames(torch.cat(spectra), chosen, successors, continue_phase=overlap != "own",
                                          carry_steps=carry_steps.get(overlap),
                                          align_jumps=overlap == "phase_vocoder_aligned")
    return inverter.consistent(picked, len(wav), CONSISTENCY_ITERATIONS[getattr(manipulation, "consistency", "none")])


def fallback_audio(factorizer, wav, factor, references, fallback="source", needed=None):
    """The audio whose frames ``units`` hears in the phones the ``references`` lack, as long as ``wav``: for
    ``fallback`` (:data:`~speechbrain_fdnf.manipulations.FALLBACKS`) ``source``, ``wav`` itself; ``source_f0``,
    ``wav`` through WORLD with its envelope kept and F0 moved to the references' register (WORLD where it hears
    voicing, ``wav`` elsewhere); ``cells``, ``wav`` converted by ``cells`` through ``world_voiced``
    (``cells_features``: with its differences taken in the log-Mel frames). The source's
    own frames keep its words where the target has no rendition of the phone; the others keep its voice from
    being heard there, a pitch an octave off above all. ``needed`` (bool per frame): the frames that will be
    heard, where the cells fallbacks' WORLD works (:func:`convert`'s); the whole utterance by default. ``wav`` may
    be analysed (:meth:`SpeechFactorizer.analysed`): the cells fallbacks read its codes from it."""
    utterance = analysed_audio(factorizer, wav)
    wav = utterance.audio[0]
    if fallback == "source":
        return wav
    if fallback in ("cells", "cells_features"):
        cells = build("cells", space="features" if fallback == "cells_features" else "latent")
        return convert(factorizer, utterance, factor, references=references, manipulation=cells,
                       method="world_voiced", needed=needed)
    if fallback != "source_f0":
        raise ValueError(f"no fallback audio {fallback!r}: one of {', '.join(name for name in FALLBACKS if name != 'nearest')}")
    register = target_register(factorizer, factor, None, references)
    return world_resynthesis(wav.cpu(), factorizer.hparams.sample_rate, None, None, register, unvoiced=wav.cpu())


def select_frames(factorizer, wav, factor, references, gate=True, candidates=8, continuity=1.0):
    """``convert(..., manipulation="select")`` with these options (its name before 0.6)."""
    select = build("select", gate=gate, candidates=candidates, continuity=continuity)
    select.check(factor, None, references)
    return resynthesise_selected(factorizer, factorizer.waveform(wav), factor, references, select)


def default_output(wav, factor, target):
    """``<wav stem>_<factor>-<target>.wav`` next to the original."""
    wav = Path(wav)
    return wav.with_name(f"{wav.stem}_{factor}-{target}.wav")


def output_paths(wavs, out, factor, target):
    """Where each of ``wavs`` is written: ``out`` itself for one input (default: :func:`default_output`), for
    several the folder ``out`` (default: next to each input), each named as :func:`default_output` names it. Two
    inputs that would overwrite one output are an error naming both, before anything is converted.

    Example
    -------
    >>> [str(path) for path in output_paths(["a/x.wav", "b/y.wav"], "out", "speaker", "S1")]
    ['out/x_speaker-S1.wav', 'out/y_speaker-S1.wav']
    >>> output_paths(["a/x.wav", "b/x.wav"], "out", "speaker", "S1")
    Traceback (most recent call last):
    ...
    ValueError: a/x.wav and b/x.wav would both be written to out/x_speaker-S1.wav: convert them into separate folders
    """
    if len(wavs) == 1:
        return [Path(out) if out else default_output(wavs[0], factor, target)]
    paths = [default_output(wav, factor, target) for wav in wavs]
    if out:
        paths = [Path(out) / path.name for path in paths]
    written = {}
    for wav, path in zip(wavs, paths):
        if path in written:
            raise ValueError(f"{written[path]} and {wav} would both be written to {path}: convert them into "
                             "separate folders")
        written[path] = wav
    return paths


def main(argv=None):
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m speechbrain_fdnf.convert", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="folder written by the training recipe (<output_folder>/inference)")
    parser.add_argument("--wav", nargs="+", help="input audio: any format, sample rate and channel count soundfile "
                        "reads (resampled to the model's rate and mixed down); the output is at the model's rate. "
                        "Several: each converted to the same target, whose --enrol audio is analysed once")
    parser.add_argument("--factor", default="speaker", help="factor to change (default: speaker)")
    parser.add_argument("--speaker", help="target speaker (shorthand for --factor speaker --target S)")
    parser.add_argument("--target", help="target class of --factor")
    parser.add_argument("--enrol", nargs="+", metavar="WAV", help="target = a speaker unseen in training, from these WAVs")
    parser.add_argument("--enrolment", metavar="FILE", help="as --enrol, from a target analysed once and saved by "
                        "--save_enrolment (its audio, codes, phones and F0 register not analysed again)")
    parser.add_argument("--save_enrolment", metavar="FILE", help="with --enrol: write its audio analysed to FILE for "
                        "later --enrolment (then converts --wav, if given)")
    parser.add_argument("--source", help="current class (default: the model's guess)")
    parser.add_argument("--manipulation", choices=MANIPULATIONS, default="auto",
                        help="how the frames change: " + "; ".join(f"{name}: {cls.__doc__.splitlines()[0]}"
                                                                    for name, cls in REGISTRY.items())
                        + f"; auto: with --enrol, {DEFAULT_WITH_TAGGER} where the model folder has a phone tagger "
                          f"(and the factor is the speaker), else {DEFAULT_WITH_AUDIO}; without --enrol, shift")
    parser.add_argument("--method", choices=METHODS, default="gain",
                        help="how changed frames become audio (manipulations that select real frames have their own)")
    parser.add_argument("--f0_tracker", choices=F0_TRACKERS, default=DEFAULT_F0_TRACKER,
                        help=f"--method world*: WORLD's F0 tracker (default {DEFAULT_F0_TRACKER}; harvest: about 30 "
                             "times slower)")
    # every manipulation's options, from the registry; one not given keeps each manipulation's own default
    for key, (option, owners) in all_options().items():
        defaults = " / ".join(str(REGISTRY[owner].OPTIONS[key].default) for owner in owners)
        used_by = f" (--manipulation {' / '.join(owners)}; default {defaults})"
        if option.type is bool:
            parser.add_argument(f"--{key}", action=argparse.BooleanOptionalAction, default=None, help=option.help + used_by)
        else:
            parser.add_argument(f"--{key}", type=option.type, default=None, choices=option.choices or None,
                                help=option.help + used_by)
    parser.add_argument("--ungated", dest="gate", action="store_false", help="the same as --no-gate (kNN-VC's matching)")
    parser.add_argument("--iterations", type=int, default=32, help="Griffin-Lim iterations")
    parser.add_argument("--out", help="output WAV (default: next to the input, <stem>_<factor>-<target>.wav); with "
                        "several --wav, the folder they are written to under those names (created)")
    parser.add_argument("--list", metavar="LABELS", help="print the classes of a label set (e.g. speaker) and exit")
    parser.add_argument("--min-enrol-speech", type=float, default=None, metavar="SECONDS",
                        help="seconds of speech --enrol needs in all (default 2; lower it knowingly: a voice "
                             "estimated from less is weak)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # weak inputs (clipped, little speech) are one line each on stderr, like the errors
    warnings.formatwarning = lambda message, category, *rest, **kwargs: f"warning: {message}\n"
    try:
        factorizer = SpeechFactorizer.from_hparams(source=args.model, run_opts={"device": args.device})
        if args.min_enrol_speech is not None:
            factorizer.audio_check.min_enrol_speech = args.min_enrol_speech
        if args.list:
            print("\n".join(map(str, factorizer.labels(args.list))))
            return 0
        factor = "speaker" if args.speaker else args.factor
        chosen = [option for option in ("speaker", "target", "enrol", "enrolment") if getattr(args, option)]
        if len(chosen) != 1 or not (args.wav or args.save_enrolment):
            parser.error("give --wav and exactly one of --speaker, --target, --enrol or --enrolment")
        if args.save_enrolment and not args.enrol:
            parser.error("--save_enrolment saves the analysis of --enrol audio: give it")
        with_audio = bool(args.enrol or args.enrolment)
        manipulation = resolve(args.manipulation, with_audio, serves_tagged_default(factorizer, factor))
        if REGISTRY[manipulation].needs_references and not with_audio:
            parser.error(f"--manipulation {manipulation} works from audio of the target: give it with --enrol (or --enrolment)")
        # checked and analysed once (or read back analysed)
        references = factorizer.target_audio(args.enrol) if args.enrol else \
            factorizer.load_target_audio(args.enrolment) if args.enrolment else None
        if args.save_enrolment:
            references.save(args.save_enrolment)
            print(f"{args.save_enrolment} ({len(references)} references analysed; give it as --enrolment)")
            if not args.wav:
                return 0
        if with_audio:
            target, name = factorizer.enrol(references, factor), f"enrolled-{manipulation}"
        else:
            target = name = args.speaker or args.target
            factorizer.class_index(factor, target)  # unknown class: a clear error before any work
        if args.source is not None:
            factorizer.class_index(factor, args.source)
        options = {key: getattr(args, key) for key in all_options() if getattr(args, key) is not None}
        chosen = build(manipulation, **split_options(options)[manipulation])
        outputs = output_paths(args.wav, args.out, factor, name)
        if len(outputs) > 1 and args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
        rate, written = factorizer.hparams.sample_rate, 0
        try:
            for path, out in zip(args.wav, outputs):  # one target for all: its audio analysed once (references)
                converted = as_written(convert(factorizer, path, factor, target, source=args.source,
                                               method=args.method, n_iter=args.iterations, references=references,
                                               manipulation=chosen, f0_tracker=args.f0_tracker))
                soundfile.write(str(out), converted.cpu().numpy(), rate)
                written += 1
                print(f"{out} ({len(converted) / rate:.2f} s, {rate} Hz, {factor} -> {name}, {manipulation}"
                      + ("" if chosen.resynthesis == "frames" else f", {args.method}") + ")")
        finally:
            if written < len(outputs) > 1:  # a bad input stops the batch: say what was done before it
                print(f"{written} of {len(outputs)} inputs converted before the error below", file=sys.stderr)
        return 0
    except (FileNotFoundError, InferenceInputError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
