"""Non-parametric manipulation (kNN-VC style) in a factorial flow's kept subspaces: one implementation.

:class:`FrameMatcher` is what :meth:`SpeechFactorizer.match
<speechbrain_fdnf.inference.SpeechFactorizer.match>` runs for users and what the evaluation's
matching rows (:class:`~speechbrain_fdnf.evaluation.movers.NearestNeighbourMatching`) and the
parallel conversion distortion score: each frame becomes the mean of the ``k`` pool frames
nearest to it in the subspaces of the factors it keeps, optionally only among pool frames to
which the model assigns the frame's own kept classes (the gate).

Authors
 * speechbrain-fdnf developers
"""

import torch


def nearest_mean(queries, keys, values, k, query_classes=None, key_classes=None):
    """For each query, the mean of the ``values`` of its ``k`` nearest ``keys`` (Euclidean).

    With ``query_classes`` and ``key_classes`` (one class per query and per
    key) the classes gate the match: a query averages only keys of its own
    class, wherever at least ``k`` keys have it (elsewhere, all keys).

    Example
    -------
    >>> keys = torch.tensor([[0.0], [1.0], [5.0]])
    >>> nearest_mean(torch.tensor([[0.2], [4.0]]), keys, torch.tensor([[10.0], [20.0], [30.0]]), k=2)
    tensor([[15.],
            [25.]])
    >>> nearest_mean(torch.tensor([[0.2]]), keys, torch.tensor([[10.0], [20.0], [30.0]]), k=1,
    ...              query_classes=torch.tensor([1]), key_classes=torch.tensor([0, 0, 1]))
    tensor([[30.]])
    """
    k = min(k, len(keys))
    nearest = gated_distances(queries, keys, k, query_classes, key_classes).topk(k, dim=-1, largest=False).indices
    return values[nearest.to(values.device)].mean(dim=-2)


def gated_distances(queries, keys, k, query_classes=None, key_classes=None):
    """``(queries, keys)`` Euclidean distances; with classes, infinite to every key of another class wherever
    the query's own class has at least ``k`` keys (elsewhere all keys stay open), so the ``k`` nearest are
    of its class when there are enough of them. Computed where the keys are (a model's codes may be on a GPU).
    """
    distances = torch.cdist(queries.to(keys.device), keys)
    if query_classes is not None:
        same = query_classes.to(keys.device)[:, None] == key_classes.to(keys.device)[None, :]
        gated = same.sum(dim=1, keepdim=True) >= k
        distances = distances.masked_fill(~same & gated, float("inf"))
    return distances


def neighbouring_classes(classes, starts):
    """For every frame, the class of the segment before its own and of the segment after it (``-1`` at an
    utterance's edge): a segment is a run of one class within one utterance.

    ``starts``: ``(n,)`` bool, True at each utterance's first frame (frames of an utterance consecutive).

    Example
    -------
    >>> previous, following = neighbouring_classes(torch.tensor([4, 4, 7, 7, 2, 5, 5]),
    ...                                            torch.tensor([True, False, False, False, False, True, False]))
    >>> previous.tolist(), following.tolist()
    ([-1, -1, 4, 4, 7, -1, -1], [7, 7, 2, 2, -1, -1, -1])
    """
    _, count, label, followed = segment_table(classes, starts)
    before, after = segment_neighbours(label, followed)
    segment = torch.repeat_interleave(torch.arange(len(count)), count)  # each frame's segment
    return before[segment].to(classes.device), after[segment].to(classes.device)


def utterance_starts(lengths):
    """``(sum(lengths),)`` bool, True at each utterance's first frame, for the frames of utterances of ``lengths``
    concatenated in order.

    Example
    -------
    >>> utterance_starts([2, 0, 3]).tolist()
    [True, False, True, False, False]
    """
    lengths = torch.as_tensor(list(lengths), dtype=torch.long)
    starts = torch.zeros(int(lengths.sum()), dtype=torch.bool)
    starts[(torch.cumsum(lengths, 0) - lengths)[lengths > 0]] = True
    return starts


def context_mismatch(query_classes, query_lengths, key_classes, key_lengths):
    """``(queries, keys)`` in {0, 0.5, 1}: the share of a query's two neighbouring segments' classes (before, after;
    :func:`neighbouring_classes`) that a key's do not share: a key heard in another context costs more. Queries and
    keys are frames of utterances of ``query_lengths`` and ``key_lengths``, concatenated.

    Example
    -------
    >>> # the query's middle frame (a 2 between 1 and 3) against the keys: its twin 0, a 2 after a 4 one half
    >>> context_mismatch(torch.tensor([1, 2, 3]), [3], torch.tensor([1, 2, 3, 4, 2, 3]), [3, 3])[1].tolist()
    [1.0, 0.0, 1.0, 1.0, 0.5, 1.0]
    """
    query_before, query_after = neighbouring_classes(query_classes, utterance_starts(query_lengths).to(query_classes.device))
    key_before, key_after = neighbouring_classes(key_classes, utterance_starts(key_lengths).to(key_classes.device))
    key_before, key_after = key_before.to(query_before.device), key_after.to(query_before.device)
    return ((query_before[:, None] != key_before[None, :]).float()
            + (query_after[:, None] != key_after[None, :]).float()) / 2


def continuous_selection(distances, successors, candidates=8, continuity=1.0):
    """One pool frame per query frame, favouring runs of consecutive pool frames (unit selection).

    Among each query's ``candidates`` nearest pool frames, the path through the queries that minimises
    the sum of distances (divided by the median nearest distance, so the cost has no unit) plus
    ``continuity`` for every step that does not move on to the next frame of the same pool utterance.
    ``continuity=0`` is the plain nearest frame; larger values trade closeness for longer stretches of
    real audio, whose frames join without seams.

    Arguments
    ---------
    distances : torch.Tensor
        ``(queries, pool)``, e.g. from :func:`gated_distances` (infinite: never chosen).
    successors : torch.Tensor
        ``(pool,)`` bool: whether pool frame ``j + 1`` follows frame ``j`` in the same utterance.
    candidates : int
        Pool frames considered per query.
    continuity : float
        The cost of a jump.

    Returns
    -------
    torch.Tensor
        ``(queries,)`` pool indices.

    Example
    -------
    >>> distances = torch.tensor([[0.0, 0.5, 5.0, 5.0], [1.1, 5.0, 1.0, 5.0], [5.0, 5.0, 5.0, 1.0]])
    >>> successors = torch.tensor([True, True, True, False])
    >>> continuous_selection(distances, successors, candidates=2, continuity=0.0).tolist()
    [0, 2, 3]
    >>> continuous_selection(distances, successors, candidates=2, continuity=1.0).tolist()  # one run: 1, 2, 3
    [1, 2, 3]
    """
    candidates = min(candidates, distances.shape[1])
    cost, index = distances.topk(candidates, dim=1, largest=False)  # (queries, candidates)
    finite = cost[:, 0][torch.isfinite(cost[:, 0])]
    cost = cost / finite.median().clamp_min(1e-8) if len(finite) else cost
    successors = successors.to(index.device)
    score, back = cost[0], []
    for step in range(1, len(index)):
        # (previous candidate, candidate): free when the candidate is the previous one's successor
        follows = (index[step][None, :] == index[step - 1][:, None] + 1) & successors[index[step - 1]][:, None]
        total = score[:, None] + continuity * (~follows)
        score, best = total.min(dim=0)
        score = score + cost[step]
        back.append(best)
    path = [int(score.argmin())]
    for best in reversed(back):
        path.append(int(best[path[-1]]))
    chosen = torch.tensor(path[::-1], device=index.device)
    return index[torch.arange(len(index), device=index.device), chosen]


def segment_table(classes, starts):
    """The segments of frames: runs of one class within one utterance, as ``(first frame, frame count, class,
    whether the next segment follows it in the same utterance)``, four ``(segments,)`` tensors.

    ``starts``: ``(n,)`` bool, True at each utterance's first frame (as :func:`neighbouring_classes`).

    Example
    -------
    >>> first, count, label, followed = segment_table(torch.tensor([4, 4, 7, 2, 2]),
    ...                                               torch.tensor([True, False, False, True, False]))
    >>> first.tolist(), count.tolist(), label.tolist(), followed.tolist()
    ([0, 2, 3], [2, 1, 2], [4, 7, 2], [True, False, False])
    """
    classes, starts = classes.long().cpu(), starts.cpu()
    boundary = starts.clone()
    boundary[1:] |= classes[1:] != classes[:-1]
    first = torch.nonzero(boundary).flatten()
    count = torch.diff(torch.cat([first, torch.tensor([len(classes)])]))
    followed = torch.zeros(len(first), dtype=torch.bool)
    followed[:-1] = ~starts[first[1:]]
    return first, count, classes[first], followed


def segment_neighbours(label, followed):
    """``(before, after)``: the class of the segment before and after each segment of :func:`segment_table`
    (``-1`` at an utterance's edge).

    Example
    -------
    >>> before, after = segment_neighbours(torch.tensor([4, 7, 2]), torch.tensor([True, False, False]))
    >>> before.tolist(), after.tolist()
    ([-1, 4, -1], [7, -1, -1])
    """
    before = torch.cat([torch.tensor([-1]), torch.where(followed[:-1], label[:-1], -1)])
    after = torch.where(followed, torch.roll(label, -1), -1)
    return before, after


def neighbour_mismatch(query, pool, class_distance=None):
    """``(query, pool)``: how unlike each query segment's neighbour class is each pool segment's
    (:func:`segment_neighbours`, ``-1`` at an edge): 1 where they differ and 0 where they agree, or with
    ``class_distance`` ``(classes, classes)`` that distance between two classes (an edge against a class: 1).

    Example
    -------
    >>> mismatch = neighbour_mismatch(torch.tensor([0, -1]), torch.tensor([0, 1, -1]))
    >>> mismatch.tolist()
    [[0.0, 1.0, 1.0], [1.0, 1.0, 0.0]]
    >>> neighbour_mismatch(torch.tensor([0, -1]), torch.tensor([0, 1, -1]), torch.tensor([[0.0, 0.25], [0.25, 0.0]])).tolist()
    [[0.0, 0.25, 1.0], [1.0, 1.0, 0.0]]
    """
    if class_distance is None:
        return (query[:, None] != pool[None, :]).float()
    edge = len(class_distance)  # the edge as one more class, 1 from every other
    padded = torch.ones(edge + 1, edge + 1, dtype=torch.float32)
    padded[:edge, :edge] = class_distance.float().cpu()
    padded[edge, edge] = 0.0
    return padded[torch.where(query < 0, edge, query)[:, None], torch.where(pool < 0, edge, pool)[None, :]]


def segment_summaries(points, first, count, parts=3):
    """``(segments, parts * dim)``: each segment's mean point over its first, middle and last third (``parts``
    stretches of equal length; a stretch too short to hold a frame takes the segment's mean), so that a
    summary hears how a phone moves (a diphthong, a transition) and not only where it sits.

    Example
    -------
    >>> points = torch.tensor([[0.0], [3.0], [6.0], [10.0]])
    >>> segment_summaries(points, torch.tensor([0, 3]), torch.tensor([3, 1])).tolist()
    [[0.0, 3.0, 6.0], [10.0, 10.0, 10.0]]
    """
    segment = torch.repeat_interleave(torch.arange(len(first)), count)
    position = torch.arange(len(segment)) - first[segment]
    stretch = segment * parts + position * parts // count[segment]
    points = points.cpu()
    sums = torch.zeros(len(first) * parts, points.shape[1], dtype=points.dtype).index_add_(0, stretch, points)
    frames = torch.zeros(len(first) * parts, dtype=points.dtype).index_add_(0, stretch, torch.ones(len(points), dtype=points.dtype))
    means = torch.zeros(len(first), points.shape[1], dtype=points.dtype).index_add_(0, segment, points) / count[:, None]
    summaries = torch.where(frames[:, None] > 0, sums / frames.clamp_min(1)[:, None], means.repeat_interleave(parts, 0))
    return summaries.reshape(len(first), -1)


#: How :func:`segment_selection` costs a join between renditions that do not follow each other in a reference
#: (``units``' ``joins``).
UNIT_JOINS = {
    "fixed": "every join costs --join",
    "spectral": "a join costs --join times how far apart the frames meeting at it lie, against the median join",
}
#: Whether the renditions follow the source's intonation (``units``' ``intonation``).
UNIT_INTONATIONS = {
    "ignored": "each phone's rendition chosen whatever its pitch",
    "source": "each phone's rendition pitched in the target's register where the source's phone sits in its own "
              "(a cost of 1 per standard deviation of log F0; WORLD's tracker, the world extra)",
}


#: How ``units`` fits a rendition onto the length of the phone it stands for (``units``' ``stretch``).
UNIT_STRETCHES = {
    "uniform": "every frame of the rendition stretched or squeezed alike",
    "middle": "its first and last two frames heard one to one (those whose 25 ms windows reach across the phone's "
              "edge: a burst, a transition), only the middle stretched or squeezed",
}
#: How ``units`` costs a rendition heard between other neighbouring phones than the source's (``units``'
#: ``neighbour_distance``; :func:`neighbour_mismatch`).
UNIT_NEIGHBOUR_DISTANCES = {
    "identity": "a neighbour that differs costs --neighbours, whichever phone it is",
    "prior": "--neighbours times how far apart the two neighbours' prior means lie in the flow's phone subspace "
             "(the median pair: 1): a rendition between phones like the source's costs little",
}
#: The frames kept one to one at each end of a rendition with ``stretch="middle"``: frames within two 10 ms hops of a
#: phone's edge see across it through their 25 ms window.
EDGE_FRAMES = 2


def rendition_positions(frames, count, edges=0):
    """``(frames,)``: which frame of a rendition of ``count`` frames each of ``frames`` output frames hears: spread
    evenly (``edges`` 0), or with up to ``edges`` frames at each end heard one to one and only the middle stretched
    or squeezed (at least one frame of the middle is left on either side), so that how the phone begins and ends
    keeps its timing.

    Example
    -------
    >>> rendition_positions(6, 3).tolist()
    [0, 0, 1, 1, 2, 2]
    >>> rendition_positions(9, 6, edges=2).tolist()  # stretched: 0, 1 and 4, 5 kept, the middle 2, 3 repeated
    [0, 1, 2, 2, 3, 3, 3, 4, 5]
    >>> rendition_positions(5, 9, edges=2).tolist()  # squeezed: the middle skips, the edges do not
    [0, 1, 4, 7, 8]
    >>> rendition_positions(4, 4, edges=2).tolist()
    [0, 1, 2, 3]
    """
    kept = max(min(edges, (min(frames, count) - 1) // 2), 0)
    inner_out, inner_in = frames - 2 * kept, count - 2 * kept
    inner = kept + ((torch.arange(inner_out) + 0.5) * inner_in / inner_out).long()
    return torch.cat([torch.arange(kept), inner, torch.arange(count - kept, count)])


def segment_pitch(pitch, first, count):
    """``(segments,)``: each segment's mean of ``pitch`` over its frames where it is finite (voiced), NaN for a
    segment with none.

    Example
    -------
    >>> nan = float("nan")
    >>> segment_pitch(torch.tensor([1.0, nan, 3.0, nan]), torch.tensor([0, 3]), torch.tensor([3, 1])).tolist()[0]
    2.0
    """
    segment = torch.repeat_interleave(torch.arange(len(first)), count)
    voiced = torch.isfinite(pitch).double()
    sums = torch.zeros(len(first), dtype=torch.float64).index_add_(0, segment, torch.nan_to_num(pitch.double().cpu()) * voiced)
    frames = torch.zeros(len(first), dtype=torch.float64).index_add_(0, segment, voiced)
    return torch.where(frames > 0, sums / frames.clamp_min(1), float("nan")).float()


def join_distances(frames, first, count):
    """``(segments, segments)``: how far apart the frames heard on either side of a join of segment ``a`` then
    segment ``b`` lie (the last frame of ``a``, the first of ``b``), divided by the median over all pairs: a join no
    rougher than most costs about 1, a smooth one less, an abrupt one more.

    Example
    -------
    >>> frames = torch.tensor([[0.0], [1.0], [1.0], [5.0]])  # segments [0, 1] and [1, 5]: 1 then 1 meet smoothly
    >>> join_distances(frames, torch.tensor([0, 2]), torch.tensor([2, 2])).tolist()  # 5 then 0 abruptly
    [[1.0, 0.0], [5.0, 4.0]]
    """
    last = frames[first + count - 1].float().cpu()
    distances = torch.cdist(last, frames[first].float().cpu())
    return distances / distances.median().clamp_min(1e-8)


def segment_selection(query_points, query_classes, pool_points, pool_classes, pool_lengths, join=1.0,
                      neighbours=1.0, duration=1.0, query_fallback=False, pool_frames=None, query_pitch=None,
                      pool_pitch=None, intonation=1.0, edges=0, query_own=(), class_distance=None,
                      query_confidence=None, confident=0.0):
    """One pool frame per query frame, chosen a whole segment at a time (unit selection of phones).

    The query (one utterance) and the pool (utterances of ``pool_lengths``, concatenated) are cut into
    segments, runs of one class (:func:`segment_table`). Every query segment takes one pool segment of its own
    class, heard whole: its frames are stretched or squeezed onto the query segment's length, so each phone of
    the query is one real rendition of that phone from the pool, not a patchwork of frames from several. The
    choice minimises, along the query, the distance between the segments' summaries (:func:`segment_summaries`,
    divided by the median nearest distance so that the costs have no unit), plus ``neighbours`` times the share
    of the two neighbouring classes that differ (:func:`context_mismatch`'s measure: a phone heard between the
    same phones sounds as it should there), plus ``duration`` times ``|log(pool length / query length)|``, plus
    ``join`` for every pair of consecutive query segments whose choices are not consecutive in one pool
    utterance (where they are, the real transition between them is heard; with ``pool_frames``, ``join`` times
    :func:`join_distances`: a join between renditions that meet smoothly costs less than an abrupt one). With
    ``query_pitch`` and ``pool_pitch`` (each frame's log F0 standardised by its own speaker's register, NaN where
    unvoiced), ``intonation`` times the difference of the segments' mean (:func:`segment_pitch`; nothing where
    either is unvoiced): each phone's rendition sits in the target's register where the query's phone sits in
    its own (the query's intonation, heard in the pool's voice). A query segment whose class no pool
    segment has takes, frame by frame, the nearest pool frames of any class
    (:func:`continuous_selection`, ``join`` as its continuity), or with ``query_fallback`` its own frames: index
    ``len(pool) + i`` stands for query frame ``i`` (the pool followed by the query); so do the segments of the
    classes ``query_own``, whatever the pool has, and those whose ``query_confidence`` (each frame's probability of
    its class) averages under ``confident``: a class the query may not have is not given the pool's rendition of it.

    Arguments
    ---------
    query_points, pool_points : torch.Tensor
        ``(frames, dim)`` points of the matching space.
    query_classes, pool_classes : torch.Tensor
        ``(frames,)`` class of each frame (e.g. the tagger's phone).
    pool_lengths : list of int
        Frames of each pool utterance.
    join, neighbours, duration : float
        The costs above.
    query_fallback : bool
        Keep the query's own frames in the segments no pool segment can serve.
    pool_frames : torch.Tensor, optional
        ``(pool frames, dim)`` what is heard of each pool frame (log-Mel bands): joins cost by how far apart.
    query_pitch, pool_pitch : torch.Tensor, optional
        ``(frames,)`` standardised log F0, NaN where unvoiced: the intonation cost.
    intonation : float
        Cost per standard deviation of log F0 between a query segment and its rendition.
    edges : int
        Frames at each end of a rendition heard one to one, only its middle stretched or squeezed
        (:func:`rendition_positions`; 0: all alike).
    query_own : sequence of int
        Classes whose query segments keep their own frames (with ``query_fallback`` only) although the pool has
        them; the pool's segments of those classes still serve as the neighbours of the others.
    class_distance : torch.Tensor, optional
        ``(classes, classes)`` how unlike two classes are (0 for a class and itself): a neighbour that differs
        costs that much instead of 1 (an utterance's edge against a class still 1).
    query_confidence : torch.Tensor, optional
        ``(query frames,)`` each frame's probability of its class (e.g. the tagger's posterior of its phone).
    confident : float
        With ``query_fallback`` and ``query_confidence``, the mean confidence a query segment needs to take a pool
        segment; below it, it keeps its own frames (0: every segment takes one).

    Returns
    -------
    torch.Tensor
        ``(query frames,)`` pool indices (and, with ``query_fallback``, query frames after the pool).

    Example
    -------
    >>> # pool: one utterance "1 1 2 2" and one "2 2 2 2 3"; the query "1 1 1 2 2 2"
    >>> pool_classes = torch.tensor([1, 1, 2, 2, 2, 2, 2, 2, 3])
    >>> pool_points = torch.arange(9.0)[:, None]
    >>> query = torch.tensor([1, 1, 1, 2, 2, 2])
    >>> segment_selection(torch.zeros(6, 1), query, pool_points, pool_classes, [4, 5], neighbours=0.0).tolist()
    [0, 1, 1, 2, 3, 3]
    >>> # no join cost, far points: the 2s come from the second utterance's segment, nearer to 5
    >>> segment_selection(torch.full((6, 1), 5.0), query, pool_points, pool_classes, [4, 5], join=0.0,
    ...                   neighbours=0.0, duration=0.0).tolist()
    [0, 1, 1, 4, 6, 7]
    >>> # a class (4) the pool lacks: its frames are the query's own (9 + 3, 9 + 4) with query_fallback
    >>> segment_selection(torch.zeros(5, 1), torch.tensor([1, 1, 1, 4, 4]), pool_points, pool_classes, [4, 5],
    ...                   neighbours=0.0, query_fallback=True).tolist()
    [0, 1, 1, 12, 13]
    >>> # ... and so are those of a segment whose class is in doubt (the 2s at 0.4 on average, under 0.5)
    >>> segment_selection(torch.zeros(6, 1), query, pool_points, pool_classes, [4, 5], neighbours=0.0,
    ...                   query_fallback=True, query_confidence=torch.tensor([0.9, 0.9, 0.9, 0.3, 0.5, 0.4]),
    ...                   confident=0.5).tolist()
    [0, 1, 1, 12, 13, 14]
    >>> # ... and so are those of a class it has (1) where query_own names it
    >>> segment_selection(torch.zeros(5, 1), torch.tensor([1, 1, 1, 4, 4]), pool_points, pool_classes, [4, 5],
    ...                   neighbours=0.0, query_fallback=True, query_own=[1]).tolist()
    [9, 10, 11, 12, 13]
    >>> # "1 1", then two renditions of "2 2" alike but for how they meet the 1s: joins costed by their frames
    >>> # take the one that meets them smoothly (frames 4, 5), every join alike the first
    >>> pool_classes, heard = torch.tensor([1, 1, 2, 2, 2, 2]), torch.tensor([[0.0], [0.0], [10.0], [10.0], [1.0], [1.0]])
    >>> [segment_selection(torch.zeros(4, 1), torch.tensor([1, 1, 2, 2]), torch.zeros(6, 1), pool_classes, [2, 2, 2],
    ...                    neighbours=0.0, pool_frames=frames).tolist() for frames in (None, heard)]
    [[0, 1, 2, 3], [0, 1, 4, 5]]
    >>> # with the intonation cost, the rendition whose pitch sits where the query's does (high: +1)
    >>> [segment_selection(torch.zeros(2, 1), torch.tensor([2, 2]), torch.zeros(6, 1), pool_classes, [2, 2, 2],
    ...                    query_pitch=torch.tensor([1.0, 1.0]), pool_pitch=torch.tensor([0.0, 0.0, -1.0, -1.0, 1.0, 1.0]),
    ...                    intonation=weight).tolist() for weight in (0.0, 1.0)]
    [[2, 3], [4, 5]]
    """
    query_first, query_count, query_class, query_followed = segment_table(
        query_classes, utterance_starts([len(query_classes)]))
    pool_first, pool_count, pool_class, pool_followed = segment_table(pool_classes, utterance_starts(pool_lengths))
    # exact distances (cdist's matrix-product shortcut leaves ~1e-3 where two summaries are equal): where the
    # query is the pool, the median nearest distance is 0 and the unit below would blow that noise up
    distances = torch.cdist(segment_summaries(query_points.float(), query_first, query_count),
                            segment_summaries(pool_points.float(), pool_first, pool_count),
                            compute_mode="donot_use_mm_for_euclid_dist")
    same = query_class[:, None] == pool_class[None, :]
    distances = distances.masked_fill(~same, float("inf"))
    nearest = distances.min(dim=1).values
    finite = nearest[torch.isfinite(nearest)]
    cost = distances / (finite.median().clamp_min(1e-8) if len(finite) else 1.0)
    if neighbours:
        query_before, query_after = segment_neighbours(query_class, query_followed)
        pool_before, pool_after = segment_neighbours(pool_class, pool_followed)
        cost = cost + neighbours * (neighbour_mismatch(query_before, pool_before, class_distance)
                                    + neighbour_mismatch(query_after, pool_after, class_distance)) / 2
    if duration:
        cost = cost + duration * (pool_count[None, :].float().log() - query_count[:, None].float().log()).abs()
    if query_pitch is not None and pool_pitch is not None and intonation:
        apart = (segment_pitch(query_pitch, query_first, query_count)[:, None]
                 - segment_pitch(pool_pitch, pool_first, pool_count)[None, :]).abs()
        cost = cost + intonation * torch.nan_to_num(apart, nan=0.0)
    # with pool_frames, the cost of hearing pool segment b after a by how the two meet (pool segments squared)
    joins = join * join_distances(pool_frames, pool_first, pool_count) if pool_frames is not None else None
    if query_fallback and len(query_own):  # served by the query's own frames: no pool segment can serve them
        cost = cost.masked_fill(torch.isin(query_class, torch.as_tensor(list(query_own)))[:, None], float("inf"))
    if query_fallback and query_confidence is not None and confident > 0:  # ... nor where its class is in doubt
        doubtful = segment_summaries(query_confidence.float()[:, None], query_first, query_count, parts=1)[:, 0] < confident
        cost = cost.masked_fill(doubtful[:, None], float("inf"))
    covered = torch.isfinite(cost).any(dim=1)
    # Viterbi over the pool segments: the step from segment i to i + 1 of the same utterance is free, any other
    # costs join; a query segment no pool segment can serve breaks the chain (its frames are chosen apart)
    score, back = torch.where(covered[0], cost[0], torch.zeros_like(cost[0])), []
    for step in range(1, len(cost)):
        if joins is not None and covered[step - 1]:
            jump, jumped_from = (score[:, None] + joins).min(dim=0)
        else:  # every join alike (or after frames chosen apart, where none is measured): the best score so far
            jump, jumped_from = (score.min() + join).expand(len(score)), score.argmin().expand(len(score))
        onward = torch.cat([torch.tensor([float("inf")]), torch.where(pool_followed[:-1], score[:-1], float("inf"))])
        if not (covered[step] and covered[step - 1]):
            onward = torch.full_like(onward, float("inf"))
        from_jump = jump <= onward
        back.append(torch.where(from_jump, jumped_from, torch.arange(len(score)) - 1))
        score = torch.minimum(jump, onward) + (cost[step] if covered[step] else torch.zeros_like(score))
    path = [int(score.argmin())]
    for best in reversed(back):
        path.append(int(best[path[-1]]))
    path = path[::-1]
    chosen = torch.empty(len(query_classes), dtype=torch.long)
    successors = ~torch.roll(utterance_starts(pool_lengths), -1)  # pool frame j + 1 follows j in its utterance
    for segment, pool_segment in enumerate(path):
        start, frames = int(query_first[segment]), int(query_count[segment])
        if covered[segment]:  # the pool segment stretched or squeezed onto the query segment's frames
            chosen[start:start + frames] = pool_first[pool_segment] + rendition_positions(
                frames, int(pool_count[pool_segment]), edges)
        elif query_fallback:
            chosen[start:start + frames] = len(pool_classes) + torch.arange(start, start + frames)
        else:
            chosen[start:start + frames] = continuous_selection(
                torch.cdist(query_points[start:start + frames].float().cpu(), pool_points.float().cpu()), successors,
                continuity=join).cpu()
    return chosen


class FrameMatcher:
    """kNN matching of frames in the subspaces of a factorial flow's kept factors.

    Arguments
    ---------
    engine : FeatureFlow
        A model whose prior has ``kept`` factors.
    kept : list of str
        The factors the match keeps (their subspaces are the matching space; the gate infers their classes).
    k : int
        Neighbours averaged.
    smooth : int
        Half-width of the window a frame-level kept factor is inferred over without a decoder.
    decoders : dict, optional
        Factor -> ``ClassSequenceDecoder``: a frame-level kept factor is decoded along the utterance instead.

    Example
    -------
    >>> from speechbrain.processing.features import InputNormalization
    >>> from speechbrain_fdnf.engine import FeatureFlow
    >>> from speechbrain_fdnf.lobes import DiscriminativeFlow, FactorialGaussianPrior, RealNVP
    >>> prior = FactorialGaussianPrior([{"name": "phone", "dim": 2, "num_classes": 3},
    ...                                 {"name": "speaker", "dim": 2, "num_classes": 2}], mean_init="random")
    >>> normalize = InputNormalization(norm_type="global")
    >>> _ = normalize(torch.randn(50, 1, 4), torch.ones(50), epoch=0)
    >>> engine = FeatureFlow(DiscriminativeFlow(RealNVP(4, num_blocks=2, hidden_size=8), prior).eval(), normalize)
    >>> matcher = FrameMatcher(engine, ["phone"], k=1)
    >>> pool = torch.randn(6, 4)
    >>> moved = matcher(engine.encode(pool[:2]), engine.encode(pool), pool)  # a pool frame is its own nearest
    >>> torch.equal(moved, pool[:2])
    True
    """

    def __init__(self, engine, kept, k=4, smooth=1, decoders=None):
        self.engine, self.kept, self.k, self.smooth, self.decoders = engine, list(kept), k, smooth, decoders or {}
        slices = engine.prior.slices
        self.dimensions = torch.cat([torch.arange(slices[name].start, slices[name].stop) for name in self.kept])

    def embed(self, codes):
        """The matching space: the kept factors' subspaces of ``codes``."""
        return codes[..., self.dimensions.to(codes.device)]

    @torch.no_grad()
    def classes(self, codes, utterance, tagged=None):
        """One id per frame for the model's inferred classes of all kept factors together (the gate's classes).

        ``utterance``: ``(n,)`` utterance of each frame, each utterance's frames consecutive (see
        :meth:`FeatureFlow.inferred_classes <speechbrain_fdnf.engine.FeatureFlow.inferred_classes>`).
        ``tagged``: ``{factor: (n,) classes}`` inferred elsewhere (a contextual tagger), used for those factors.
        """
        joint = torch.zeros(len(codes), dtype=torch.long, device=codes.device)
        for name in self.kept:
            inferred = tagged[name].to(codes.device) if tagged and name in tagged else \
                self.engine.inferred_classes(codes, name, utterance, self.smooth, self.decoders.get(name))
            joint = joint * self.engine.prior.means(name).shape[0] + inferred
        return joint

    @torch.no_grad()
    def __call__(self, codes, pool_codes, pool_frames, query_classes=None, pool_classes=None):
        """Each of ``codes`` ``(n, latent_dim)`` replaced by the mean of the ``pool_frames`` of its ``k`` nearest
        ``pool_codes``; with both ``query_classes`` and ``pool_classes`` (:meth:`classes`), gated by them."""
        return self.nearest(self.embed(codes), self.embed(pool_codes), pool_frames, query_classes, pool_classes)

    @torch.no_grad()
    def nearest(self, points, pool_points, pool_frames, query_classes=None, pool_classes=None):
        """:meth:`__call__` for codes already in the matching space (:meth:`embed`), e.g. a pool embedded once."""
        gate = {} if query_classes is None else {"query_classes": query_classes, "key_classes": pool_classes}
        return nearest_mean(points, pool_points, pool_frames, self.k, **gate)
