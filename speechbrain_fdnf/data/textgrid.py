"""Phone alignments in Praat TextGrids, as the Montreal Forced Aligner writes them, read with praatio.

MFA writes one TextGrid per utterance with a ``words`` and a ``phones`` tier (``<speaker> - phones``
when it aligns several speakers into one file); phones are ARPAbet with stress digits
(``english_us_arpa``), silences ``sil``/``sp``/``spn`` or empty intervals. Labels are folded to the
39 TIMIT classes by :func:`~speechbrain_fdnf.data.phones.fold_phone`.

Authors
 * speechbrain-fdnf developers
"""

from pathlib import Path

from speechbrain_fdnf.data.phones import fold_phone, merge_segments


class TextGridError(ValueError):
    """A TextGrid that cannot serve as a phone alignment; the message names the file."""


def phones_tier_name(names):
    """The phones tier among tier ``names``: ``phones``, else the one ending in ``phones`` (MFA's
    ``<speaker> - phones``), case-insensitive; ``None`` if there is none.

    Example
    -------
    >>> phones_tier_name(["words", "phones"]), phones_tier_name(["p225 - words", "p225 - phones"]), phones_tier_name(["words"])
    ('phones', 'p225 - phones', None)
    """
    lowered = {name.lower().strip(): name for name in names}
    if "phones" in lowered:
        return lowered["phones"]
    return next((name for key, name in lowered.items() if key.endswith("phones")), None)


def save_textgrid(path, segments, sample_rate, words=None):
    """Writes folded or ARPAbet ``(start, end, phone)`` sample segments as an MFA-style TextGrid (a
    ``phones`` tier, silence written ``sil``; ``words``: ``(start, end, word)`` for a ``words`` tier)."""
    from praatio import textgrid
    from praatio.data_classes.interval_tier import IntervalTier

    end = segments[-1][1] / sample_rate
    grid = textgrid.Textgrid()
    if words:
        grid.addTier(IntervalTier("words", [(s / sample_rate, e / sample_rate, w) for s, e, w in words], 0, end))
    grid.addTier(IntervalTier("phones", [(s / sample_rate, e / sample_rate, p) for s, e, p in segments], 0, end))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    grid.save(str(path), format="long_textgrid", includeBlankSpaces=True)


def read_textgrid_phones(path, sample_rate, num_samples):
    """The folded ``(start, end, phone)`` sample segments of a TextGrid's phones tier, covering
    ``[0, num_samples)``: gaps and the edges become silence, the last segment is clipped to the audio.

    Raises
    ------
    TextGridError
        Naming the file: unreadable, no phones tier, an unknown label, overlapping intervals, or
        intervals ending well past the audio (more than 10 ms).
    """
    from praatio import textgrid

    try:
        grid = textgrid.openTextgrid(str(path), includeEmptyIntervals=True, reportingMode="silence")
    except Exception as err:  # praatio raises several types for malformed files
        raise TextGridError(f"{path}: not a readable TextGrid ({err})") from None
    name = phones_tier_name(grid.tierNames)
    if name is None:
        raise TextGridError(f"{path}: no phones tier (tiers: {', '.join(grid.tierNames) or 'none'})")
    segments, previous = [], 0
    for interval in grid.getTier(name).entries:
        start, end = round(interval.start * sample_rate), min(round(interval.end * sample_rate), num_samples)
        if interval.start * sample_rate > num_samples + sample_rate // 100:
            raise TextGridError(f"{path}: interval at {interval.start:.3f} s starts past the audio's "
                                f"{num_samples / sample_rate:.3f} s")
        try:
            phone = fold_phone(interval.label)
        except KeyError as err:
            raise TextGridError(f"{path}: {err.args[0]} (interval {interval.start:.3f}-{interval.end:.3f} s)") from None
        if start < previous:
            raise TextGridError(f"{path}: interval {interval.start:.3f}-{interval.end:.3f} s overlaps the one before")
        if start > previous:
            segments.append((previous, start, "sil"))
        if end > start:
            segments.append((start, end, phone))
        previous = max(previous, end)
    if previous < num_samples:
        segments.append((previous, num_samples, "sil"))
    if all(phone == "sil" for _, _, phone in segments):
        raise TextGridError(f"{path}: the phones tier holds no phone")
    return merge_segments(segments)
