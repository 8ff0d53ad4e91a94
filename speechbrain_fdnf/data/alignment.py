"""Frame alignment of two readings of the same sentence, by their phone segments.

TIMIT and the embedded corpus have sentences read by several speakers (SA,
SX). Two readings with the same non-silence phone sequence
(:func:`reads_in_parallel`) are aligned segment by segment (the i-th non-silence
segment of one to the i-th of the other, linear time warp inside each segment).
One definition of a parallel reading serves both of its users: training's paired
frames (:func:`speechbrain_fdnf.data.frames.parallel_frame_pairs`, over
:func:`sentence_groups`) and the evaluation's parallel conversion distortion
(:func:`parallel_readings`).

Authors
 * speechbrain-fdnf developers
"""

import torch

from speechbrain_fdnf.data.phones import SILENCE


def speech_segments(entry):
    """``(starts, ends, phones)`` of the non-silence segments of a prepared utterance (folded phones)."""
    kept = [i for i, phone in enumerate(entry["phones39"]) if phone != SILENCE]
    return ([entry["starts"][i] for i in kept], [entry["ends"][i] for i in kept],
            [entry["phones39"][i] for i in kept])


def reads_in_parallel(entry, other):
    """Whether two prepared utterances are parallel readings: the same (non-empty) text read by two
    speakers with the same non-silence phone sequence.

    Example
    -------
    >>> a = {"text": "Hi.", "speaker": "A", "starts": [0], "ends": [9], "phones39": ["ay"]}
    >>> reads_in_parallel(a, dict(a, speaker="B")), reads_in_parallel(a, a), reads_in_parallel(a, dict(a, speaker="B", text=""))
    (True, False, False)
    """
    return (bool(entry.get("text")) and entry.get("text") == other.get("text") and entry["speaker"] != other["speaker"]
            and speech_segments(entry)[2] == speech_segments(other)[2])


def sentence_groups(keys, entries):
    """``{text: [key, ...]}``: the ``keys`` (in their order) of the ``entries`` with a text, grouped by it."""
    groups = {}
    for key in keys:
        if entries[key].get("text"):
            groups.setdefault(entries[key]["text"], []).append(key)
    return groups


def parallel_readings(utterances, references, seed=0):
    """For each utterance, one parallel reading (:func:`reads_in_parallel`) among ``references``, drawn with
    ``seed``: ``[(utterance entry, reading entry), ...]`` in the utterances' sorted order; utterances
    without one are left out.

    Arguments
    ---------
    utterances, references : dict
        Prepared annotations (id -> entry), e.g. the held-out split and all splits of the training speakers.

    Returns
    -------
    list of (dict, dict)
    """
    groups = sentence_groups(sorted(references), references)
    generator = torch.Generator().manual_seed(seed)
    pairs = []
    for key in sorted(utterances):
        entry = utterances[key]
        readings = [references[other] for other in groups.get(entry.get("text"), [])
                    if reads_in_parallel(entry, references[other])]
        if readings:
            pairs.append((entry, readings[int(torch.randint(len(readings), (1,), generator=generator))]))
    return pairs


def aligned_frames(entry, reference, num_frames, reference_frames, hop):
    """Frames of ``entry`` inside its speech segments and the frames of ``reference`` at the same relative
    position inside the same segments (``None`` when the two phone sequences differ). A matched frame's
    centre always lies inside the matching segment, so both frames carry the same phone label.

    Frame ``t`` is centred at sample ``t * hop`` (SpeechBrain's ``Fbank``).

    Example
    -------
    >>> a = {"starts": [0, 100, 300], "ends": [100, 300, 400], "phones39": ["sil", "aa", "iy"]}
    >>> b = {"starts": [0, 200, 600], "ends": [200, 600, 800], "phones39": ["aa", "iy", "sil"]}
    >>> frames, matched = aligned_frames(a, b, 5, 9, 100)  # a: aa 100-300, iy 300-400; b: aa 0-200, iy 200-600
    >>> frames.tolist(), matched.tolist()
    ([1, 2, 3], [0, 1, 2])
    """
    starts, ends, phones = speech_segments(entry)
    ref_starts, ref_ends, ref_phones = speech_segments(reference)
    if phones != ref_phones or not phones:
        return None
    starts, ends = torch.tensor(starts, dtype=torch.float64), torch.tensor(ends, dtype=torch.float64)
    ref_starts = torch.tensor(ref_starts, dtype=torch.float64)
    ref_ends = torch.tensor(ref_ends, dtype=torch.float64)
    centres = torch.arange(num_frames, dtype=torch.float64) * hop
    segment = torch.searchsorted(starts, centres, right=True) - 1
    inside = (segment >= 0) & (centres < ends[segment.clamp_min(0)])
    frames, segment = torch.nonzero(inside).flatten(), segment[inside]
    position = (centres[frames] - starts[segment]) / (ends[segment] - starts[segment])
    mapped = ref_starts[segment] + position * (ref_ends[segment] - ref_starts[segment])
    # the nearest reference frame whose centre lies inside the same segment (rounding alone can
    # cross a boundary); a segment shorter than a hop may hold no centre, and its frames no match
    first = torch.ceil(ref_starts[segment] / hop)
    last = torch.minimum(torch.ceil(ref_ends[segment] / hop) - 1, torch.tensor(reference_frames - 1.0))
    inside = first <= last
    matched = torch.minimum(torch.maximum((mapped / hop).round(), first), last)
    return frames[inside], matched[inside].long()
