"""Each speaker's own consonant noise: eSpeak NG plays every voice's fricatives, affricates and stop bursts
from the same recorded samples, so those frames carry no speaker evidence at all, where a real speaker's
anatomy (above all the cavity in front of the constriction, which scales with the vocal tract) shapes them.

:func:`shape_obstruents` warps the frequency axis of the obstruent segments' short-time spectrum by a
speaker's factor and tilts it by a speaker's slope, leaving every other sample of the utterance as it was
(the change is cross-faded in within each segment's own edges). The per-speaker draws are
:func:`speechbrain_fdnf.corpus.speakers.draw_noise_shape`'s (``noise_shape`` in
:class:`~speechbrain_fdnf.corpus.synthesize.CorpusOptions`; 0: none, the corpus as before).

Authors
 * speechbrain-fdnf developers
"""

import numpy as np
import torch

#: TIMIT-61 labels of the segments shaped: fricatives, affricates and stops (their closures are silent;
#: eSpeak renders the noise of all of these from its recorded samples).
OBSTRUENTS = frozenset({"s", "sh", "z", "zh", "f", "v", "th", "dh", "hh", "hv", "ch", "jh", "p", "t", "k", "b", "d",
                        "g"})
#: The tilt's pivot (Hz): the slope leaves this frequency's level as it was.
TILT_PIVOT_HZ = 2000.0
#: STFT of the shaping (32 ms windows at 16 kHz, a quarter hop) and the cross-fade at a segment's edges.
N_FFT, HOP, FADE_SAMPLES = 512, 128, 80


def obstruent_weight(segments, num_samples, fade=FADE_SAMPLES):
    """Per sample: 1 inside the :data:`OBSTRUENTS` segments, 0 elsewhere, ramped up and down over ``fade``
    samples *inside* each segment, so nothing outside a segment changes.

    Example
    -------
    >>> weight = obstruent_weight([(0, 100, "aa"), (100, 400, "s"), (400, 500, "iy")], 500, fade=10)
    >>> float(weight[99]), float(weight[100]), float(weight[250]), float(weight[400])
    (0.0, 0.0, 1.0, 0.0)
    """
    weight = np.zeros(num_samples)
    for start, end, label in segments:
        if label not in OBSTRUENTS or end <= start:
            continue
        ramp = min(fade, (end - start) // 2)
        weight[start:end] = 1.0
        if ramp:
            edge = np.linspace(0.0, 1.0, ramp + 1)[:-1]
            weight[start:start + ramp] = edge
            weight[end - ramp:end] = edge[::-1]
    return weight


def shape_obstruents(audio, segments, warp, tilt_db_per_octave, sample_rate=16000):
    """``audio`` (int16) with the spectrum of its obstruent segments warped and tilted.

    Arguments
    ---------
    audio : numpy.ndarray
        One utterance, int16.
    segments : list of tuple
        Its ``(start, end, TIMIT-61 label)`` segments.
    warp : float
        Frequency factor: the magnitude heard at ``f`` is the one at ``f / warp`` (above 1: higher, as a
        shorter front cavity). The phase is the original's (noise).
    tilt_db_per_octave : float
        Gain slope around :data:`TILT_PIVOT_HZ` (positive: brighter).
    sample_rate : int

    Returns
    -------
    numpy.ndarray
        int16, as long as ``audio``; equal to it outside the obstruent segments.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> noise = (rng.standard_normal(8000) * 2000).astype(np.int16)
    >>> shaped = shape_obstruents(noise, [(0, 4000, "aa"), (4000, 8000, "s")], 1.2, 0.0)
    >>> bool((shaped[:4000] == noise[:4000]).all()), bool((shaped[4200:7800] != noise[4200:7800]).any())
    (True, True)
    """
    weight = obstruent_weight(segments, len(audio))
    if not weight.any() or (warp == 1.0 and tilt_db_per_octave == 0.0):
        return audio
    signal = torch.from_numpy(audio.astype(np.float64))
    window = torch.hann_window(N_FFT, dtype=torch.float64)
    spectrum = torch.stft(signal, N_FFT, HOP, window=window, return_complex=True)  # (bins, frames)
    freqs = np.linspace(0.0, sample_rate / 2, spectrum.shape[0])
    magnitude = spectrum.abs().numpy()
    warped = np.stack([np.interp(freqs / warp, freqs, column, right=0.0) for column in magnitude.T], axis=1)
    octaves = np.log2(np.maximum(freqs, 250.0) / TILT_PIVOT_HZ)
    warped *= (10.0 ** (tilt_db_per_octave * octaves / 20.0))[:, None]
    shaped_spectrum = torch.from_numpy(warped) * torch.exp(1j * spectrum.angle())
    shaped = torch.istft(shaped_spectrum, N_FFT, HOP, window=window, length=len(audio)).numpy()
    out = weight * shaped + (1.0 - weight) * audio
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)


__all__ = ["OBSTRUENTS", "obstruent_weight", "shape_obstruents"]
