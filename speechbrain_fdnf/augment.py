"""Vocal tract length perturbation of log-Mel frames (VTLP; Jaitly and Hinton, 2013).

Voices differ most in where their vocal tracts put the formants: a shorter tract raises them all by about
the same factor. A tagger trained on a few voices learns where those voices put them; scaling each training
utterance's frequency axis by a random factor near 1 shows it every phone with its formants a little higher
or lower, as other speakers say it. SpeechBrain's ``Warping`` (``dim=2``) stretches the bands below a random
centre and squeezes those above; VTLP scales the whole axis by one factor, which is what a vocal tract of
another length does.

The warp is Jaitly and Hinton's: ``f -> alpha * f`` up to a boundary frequency (4800 Hz at 16 kHz), then the
straight line that keeps the top of the band where it is. Each output band reads the input spectrum at the
frequency that warps onto its centre, interpolated between the two nearest bands' centres on the Mel scale
(log energies are smooth across neighbouring Mel bands).

Authors
 * speechbrain-fdnf developers
"""

import torch


def hz_to_mel(hz):
    """The Mel scale of SpeechBrain's filterbanks (HTK's): ``2595 log10(1 + f / 700)``.

    Example
    -------
    >>> round(float(hz_to_mel(torch.tensor(1000.0))))
    1000
    """
    return 2595 * torch.log10(1 + hz / 700)


class VocalTractWarp(torch.nn.Module):
    """Scales each utterance's frequency axis by its own factor drawn uniformly from
    ``[1 - max_change, 1 + max_change]``: a batch ``(batch, frames, bands)`` of log-Mel frames in, the same
    shape out, every frame where it was (so every frame keeps its label).

    Arguments
    ---------
    band_centres : torch.Tensor
        The centre frequency (Hz) of each Mel band, increasing (a SpeechBrain ``Fbank``'s
        ``compute_fbanks.f_central``; :meth:`from_fbank` reads it).
    top_hz : float
        The upper edge of the filterbank (Hz), which the warp keeps in place.
    max_change : float
        Largest relative change of the frequency axis (0.1: factors 0.9 to 1.1, Jaitly and Hinton's range).
    linear_up_to : float
        Boundary frequency (Hz) below which the warp is exactly ``alpha * f`` (Jaitly and Hinton's 4800 Hz
        at 16 kHz); above it, a straight line to ``top_hz``.

    Example
    -------
    >>> warp = VocalTractWarp(torch.linspace(100.0, 7000.0, 20), top_hz=8000.0, max_change=0.1)
    >>> feats = torch.randn(3, 50, 20)
    >>> warp(feats).shape
    torch.Size([3, 50, 20])
    >>> torch.equal(warp.warped(feats, torch.ones(3)), feats)  # a factor of 1 changes nothing
    True
    """

    def __init__(self, band_centres, top_hz, max_change=0.1, linear_up_to=4800.0):
        super().__init__()
        if not 0 <= max_change < 1:
            raise ValueError(f"max_change must lie in [0, 1), got {max_change}")
        centres = torch.as_tensor(band_centres, dtype=torch.float32)
        if len(centres) < 2 or not bool((centres[1:] > centres[:-1]).all()):
            raise ValueError("band_centres must be at least two increasing frequencies")
        self.register_buffer("band_centres", centres, persistent=False)
        self.top_hz = float(top_hz)
        self.max_change = float(max_change)
        self.linear_up_to = min(float(linear_up_to), self.top_hz)

    @classmethod
    def from_fbank(cls, fbank, max_change=0.1):
        """The warp of the bands of a SpeechBrain ``Fbank`` (its centres and upper edge), with the boundary at
        0.6 of its upper edge (Jaitly and Hinton's 4800 Hz of 8000)."""
        mel = fbank.compute_fbanks  # a fixed filterbank: its centres in Hz
        return cls(mel.f_central, mel.f_max, max_change=max_change, linear_up_to=0.6 * mel.f_max)

    def forward(self, feats):
        """``feats`` ``(batch, frames, bands)`` with each utterance warped by a random factor."""
        factors = 1 + self.max_change * (2 * torch.rand(len(feats), device=feats.device) - 1)
        return self.warped(feats, factors)

    def warped(self, feats, factors):
        """``feats`` ``(batch, frames, bands)`` with utterance ``i``'s frequency axis scaled by ``factors[i]``."""
        centres = self.band_centres.to(feats.device)
        sources = self.source_frequencies(centres[None, :], factors.to(feats.device)[:, None])
        # each output band reads the input between its two nearest centres, linearly on the Mel scale
        mel_centres = hz_to_mel(centres)
        mel_sources = torch.minimum(torch.maximum(hz_to_mel(sources), mel_centres[0]), mel_centres[-1])
        upper = torch.searchsorted(mel_centres, mel_sources).clamp(1, len(centres) - 1)
        lower = upper - 1
        weight = ((mel_sources - mel_centres[lower]) / (mel_centres[upper] - mel_centres[lower])).clamp(0, 1)
        frames = feats.shape[1]
        below = feats.gather(2, lower[:, None, :].expand(-1, frames, -1))
        above = feats.gather(2, upper[:, None, :].expand(-1, frames, -1))
        return torch.lerp(below, above, weight[:, None, :].to(feats.dtype))

    def source_frequencies(self, hz, factors):
        """The frequency each of ``hz`` reads under the warp by ``factors`` (the warp's inverse): ``hz / alpha``
        below ``alpha * boundary``, the straight line's inverse above, ``top_hz`` onto itself.

        Example
        -------
        >>> warp = VocalTractWarp(torch.tensor([100.0, 200.0]), top_hz=8000.0)
        >>> warp.source_frequencies(torch.tensor([1100.0, 8000.0]), torch.tensor(1.1))
        tensor([1000., 8000.])
        """
        # the boundary is the lower of (boundary, boundary / alpha), so that alpha * boundary stays below the top
        boundary = self.linear_up_to * torch.clamp(factors, max=1) / factors
        warped_boundary = factors * boundary
        slope = (self.top_hz - warped_boundary) / (self.top_hz - boundary)
        above = self.top_hz - (self.top_hz - hz) / slope
        return torch.where(hz <= warped_boundary, hz / factors, above)
