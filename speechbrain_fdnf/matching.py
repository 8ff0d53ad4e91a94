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
    classes = classes.long()
    ends = torch.roll(starts, -1)
    ends[-1] = True
    # a new segment where the class changes or an utterance starts; its id counts segments
    boundary = starts.clone()
    boundary[1:] |= classes[1:] != classes[:-1]
    segment = torch.cumsum(boundary.long(), 0) - 1
    first = torch.nonzero(boundary).flatten()  # each segment's first frame
    segment_class = classes[first]
    segment_starts_utterance = starts[first]
    segment_ends_utterance = ends[torch.cat([first[1:] - 1, torch.tensor([len(classes) - 1], device=first.device)])]
    before = torch.cat([torch.tensor([-1], device=classes.device), segment_class[:-1]])
    before[segment_starts_utterance] = -1
    after = torch.cat([segment_class[1:], torch.tensor([-1], device=classes.device)])
    after[segment_ends_utterance] = -1
    return before[segment], after[segment]


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
