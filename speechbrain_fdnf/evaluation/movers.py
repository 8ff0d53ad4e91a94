"""Movers for the posterior tables: each changes one factor of a batch of frames, ``move(batch, factor, other, new)``.

A model's manipulation (:func:`shift_by_class_means`, the very
:meth:`FeatureFlow.manipulate <speechbrain_fdnf.engine.FeatureFlow.manipulate>` users call), the
reference rows that explain the numbers (:class:`RealFrameCeiling`: real frames of the target
cell; :class:`CellMeanOracle`: a perfectly additive latent; :class:`FeatureMeanShift`: the class-mean
shift in the features themselves, no model), and non-parametric matching: in
standardised features (:class:`NearestNeighbourMatching`, the baseline) and in a factorial
flow's kept subspace (:class:`ModelMatching`: the :class:`~speechbrain_fdnf.matching.FrameMatcher`
that :meth:`SpeechFactorizer.match <speechbrain_fdnf.inference.SpeechFactorizer.match>` runs).

Authors
 * speechbrain-fdnf developers
"""

import torch

from speechbrain_fdnf.evaluation.tables import cell_ids
from speechbrain_fdnf.lobes.priors import ClassMeanAccumulator
from speechbrain_fdnf.matching import FrameMatcher, nearest_mean


def shift_by_class_means(engine, deviation=1.0):
    """The protocol's manipulation as a mover for :func:`posterior_table`:
    ``x' = f(f^-1(x) + mu_target - mu_source)`` with the engine's class means
    (with ``deviation`` != 1, that share of the frame's deviation from the
    source mean is kept: :meth:`FeatureFlow.manipulate <speechbrain_fdnf.engine.FeatureFlow.manipulate>`)."""

    def move(batch, factor, other, new):
        return engine.manipulate(batch.feats, factor, source=batch.labels[factor], target=new, deviation=deviation)

    return move


class RealFrameCeiling:
    """The best any manipulation can score under the probes: each frame replaced by a real frame of its
    target cell (its kept class, the target class), drawn from the first pool that has the cell.

    Arguments
    ---------
    pools : list of FrameBatch
        E.g. ``[held-out frames, training frames]``.
    num_classes : dict
        Label set -> number of classes.
    seed : int
        Seeds the draws.
    keep_missing : bool
        Leave a frame whose target cell has no frame as it is (whole utterances moved to one target class
        meet such cells); otherwise that is an error.

    Example
    -------
    >>> from speechbrain_fdnf.data.frames import FrameBatch
    >>> pool = FrameBatch(torch.arange(4.)[:, None], {"phone": torch.tensor([0, 1, 0, 1]),
    ...                                                "speaker": torch.tensor([0, 0, 1, 1])})
    >>> ceiling = RealFrameCeiling([pool], {"phone": 2, "speaker": 2})
    >>> batch = FrameBatch(torch.zeros(2, 1), {"phone": torch.tensor([0, 1]), "speaker": torch.tensor([0, 0])})
    >>> ceiling(batch, "speaker", "phone", torch.tensor([1, 1]))[:, 0].tolist()  # same phone, speaker 1
    [2.0, 3.0]
    """

    def __init__(self, pools, num_classes, seed=0, keep_missing=False):
        self.pools, self.num_classes, self.keep_missing = pools, num_classes, keep_missing
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, batch, factor, other, new):
        wanted = batch.labels[other] * self.num_classes[factor] + new
        moved, found = batch.feats.clone(), torch.zeros(len(new), dtype=torch.bool)
        for pool in self.pools:
            sorted_cells, order = torch.sort(cell_ids(pool.labels, factor, other, self.num_classes[factor]))
            first = torch.searchsorted(sorted_cells, wanted)
            count = torch.searchsorted(sorted_cells, wanted, right=True) - first
            take = ~found & (count > 0)
            offset = (torch.rand(len(new), generator=self.generator) * count.clamp_min(1)).long()
            moved[take] = pool.feats[order[(first + offset)[take]]]
            found |= take
        if not found.all() and not self.keep_missing:  # keep_missing: such a frame stays as it is
            raise ValueError(f"{int((~found).sum())} target cells have no frame in any pool")
        return moved


class FeatureMeanShift:
    """The model-free mean shift: ``x' = x + m(target) - m(source)`` with the mean *input features* of each
    class of the training frames (no flow). What it costs the other factor measures how much the
    factors' differences depend on each other in the data itself: on speech whose voices differ in
    what all their phones share, a speaker's mean shift barely touches the phone.

    Arguments
    ---------
    train : FrameBatch
        Training frames (their class means are the shift's).
    num_classes : dict
        Label set -> number of classes.

    Example
    -------
    >>> from speechbrain_fdnf.data.frames import FrameBatch
    >>> train = FrameBatch(torch.tensor([[0.0], [2.0], [10.0]]), {"speaker": torch.tensor([0, 0, 1])})
    >>> shift = FeatureMeanShift(train, {"speaker": 2})
    >>> batch = FrameBatch(torch.tensor([[1.0]]), {"speaker": torch.tensor([0])})
    >>> shift(batch, "speaker", "phone", torch.tensor([1]))[:, 0].tolist()  # 1 + 10 - 1
    [10.0]
    """

    def __init__(self, train, num_classes):
        self.train, self.num_classes = train, num_classes
        self._means = {}

    def class_means(self, factor):
        """``(num_classes, dim)`` mean features of each class of ``factor`` in the training frames."""
        if factor not in self._means:
            accumulator = ClassMeanAccumulator(self.num_classes[factor], self.train.feats.shape[1])
            accumulator.add(self.train.feats.double(), self.train.labels[factor])
            self._means[factor] = accumulator.means()[0].to(self.train.feats.dtype)
        return self._means[factor]

    def __call__(self, batch, factor, other, new):
        means = self.class_means(factor).to(batch.feats.device)
        return batch.feats + means[new] - means[batch.labels[factor]]


class CellMeanOracle:
    """A perfectly additive latent's manipulation: ``z' = z + m(kept, target) - m(kept, source)``
    with the empirical mean code of each (kept class, factor class) cell of the training frames.

    It separates what non-additive class means cost from what within-cell
    deviations that do not carry over cost.

    Arguments
    ---------
    engine : FeatureFlow
        The model.
    train : FrameBatch
        Training frames (their cell means are the oracle's).
    num_classes : dict
        Label set -> number of classes.
    codes : torch.Tensor, optional
        ``engine.encode_all(train.feats)``, when the caller already has it.
    """

    def __init__(self, engine, train, num_classes, codes=None):
        self.engine, self.train, self.num_classes, self.codes = engine, train, num_classes, codes
        self._means = {}

    @torch.no_grad()
    def cell_means(self, factor, other):
        """``(num_other * num_factor, latent_dim)`` mean codes of the training cells."""
        if (factor, other) not in self._means:
            if self.codes is None:
                self.codes = self.engine.encode_all(self.train.feats)
            accumulator = ClassMeanAccumulator(self.num_classes[other] * self.num_classes[factor], self.codes.shape[1],
                                               device=self.codes.device)
            cells = cell_ids(self.train.labels, factor, other, self.num_classes[factor])
            accumulator.add(self.codes, cells.to(self.codes.device))
            self._means[(factor, other)] = accumulator.means()[0].float()
        return self._means[(factor, other)]

    def __call__(self, batch, factor, other, new):
        means = self.cell_means(factor, other)
        base = batch.labels[other] * self.num_classes[factor]
        codes = self.engine.encode(batch.feats)
        shift = (means[base + new] - means[base + batch.labels[factor]]).to(codes.device)
        return self.engine.decode(codes + shift).to(batch.feats.device)


class NearestNeighbourMatching:
    """Non-parametric manipulation (kNN-VC style, Baas et al., 2023) in any matching space: each frame becomes
    the mean of the ``k`` training frames of its target class nearest to it there (the baseline row
    matches in standardised features; a factorial flow's rows are :class:`ModelMatching`).

    The pool is every training frame of the target class only (the target
    speaker's frames of all phones; the target phone's frames of all
    speakers), so the kept factor has to survive through the matching itself,
    never through a pool filtered by its true label. With a ``gate`` (beyond
    kNN-VC) a frame is matched only among pool frames to which the *model*
    assigns the frame's own kept class (:class:`InferredClasses`), which is
    still the model's inference, not the labels.

    Arguments
    ---------
    train : FrameBatch
        The training frames (the pool).
    embed : callable
        ``embed(feats, kept) -> (n, d)`` vectors to match in, for the kept
        factor ``kept`` (e.g. :func:`standardised_features`).
    k : int
        Neighbours averaged.
    gate : callable, optional
        ``gate(kept) -> (pool classes, scored classes)``: per training frame
        and per frame of the scored set (indexed by the batch's
        ``positions``), a class of the kept factor (:class:`InferredClasses`).

    Example
    -------
    >>> from speechbrain_fdnf.data.frames import FrameBatch
    >>> pool = FrameBatch(torch.tensor([[0.0], [1.0], [10.0], [11.0]]), {"speaker": torch.tensor([0, 0, 1, 1])})
    >>> match = NearestNeighbourMatching(pool, lambda feats, kept: feats % 10, k=1)
    >>> batch = FrameBatch(torch.tensor([[0.9]]), {"speaker": torch.tensor([0])}, positions=torch.tensor([0]))
    >>> match(batch, "speaker", "phone", torch.tensor([1]))  # speaker 1's frame nearest to 0.9 (mod 10)
    tensor([[11.]])
    >>> gate = lambda kept: (torch.tensor([0, 1, 0, 1]), torch.tensor([0]))  # the model says: class 0, like frame 2
    >>> NearestNeighbourMatching(pool, lambda feats, kept: feats % 10, k=1, gate=gate)(batch, "speaker", "phone", torch.tensor([1]))
    tensor([[10.]])
    """

    def __init__(self, train, embed, k=4, gate=None):
        self.train, self.embed, self.k, self.gate = train, embed, k, gate
        self._pool = {}

    @torch.no_grad()
    def __call__(self, batch, factor, other, new):
        queries = self.queries(batch.feats, other)
        pool_classes = query_classes = None
        if self.gate is not None:
            if batch.positions is None:
                raise ValueError("a gated match needs the frames' positions in their FrameSet (FrameSet.batch gives them)")
            pool_classes, scored_classes = self.gate(other)
            query_classes = scored_classes[batch.positions]
        moved = torch.empty_like(batch.feats)
        for target in new.unique().tolist():  # the pool: the training frames of the target class only
            rows = new == target
            members = torch.nonzero(self.train.labels[factor] == target).flatten()
            gate = {} if self.gate is None else {"query_classes": query_classes[rows], "pool_classes": pool_classes[members]}
            moved[rows] = self.match(queries[rows], members, other, **gate)
        return moved

    def queries(self, feats, kept):
        """The scored frames in the matching space of ``kept``."""
        return self.embed(feats, kept)

    def match(self, queries, members, kept, query_classes=None, pool_classes=None):
        """The moved frames of ``queries``, matched among the training frames ``members`` (gated by the classes)."""
        if kept not in self._pool:
            self._pool[kept] = self.embed(self.train.feats, kept)
        gate = {} if query_classes is None else {"query_classes": query_classes, "key_classes": pool_classes}
        return nearest_mean(queries, self._pool[kept][members], self.train.feats[members], self.k, **gate)


class InferredClasses:
    """A gate for :class:`NearestNeighbourMatching`: each frame's kept class as a model infers it from its own
    subspace (:meth:`FeatureFlow.inferred_classes <speechbrain_fdnf.engine.FeatureFlow.inferred_classes>`),
    for the training pool and for the scored frames.

    The classes are :meth:`FrameMatcher.classes <speechbrain_fdnf.matching.FrameMatcher.classes>`, the
    gate of :meth:`SpeechFactorizer.match <speechbrain_fdnf.inference.SpeechFactorizer.match>`: a
    frame-level factor (the phone) is inferred from the ``2 smooth + 1`` frames centred on the
    frame, or decoded along its utterance with the model's ``decoders``; any other (the speaker)
    from its whole utterance, as a converter that sees the utterance would.

    Arguments
    ---------
    engine : FeatureFlow
        A factorial model.
    pool, scored : FrameSet
        The training frames and the frames the tables score.
    smooth : int
        Half-width of the window for frame-level factors.
    pool_codes : torch.Tensor, optional
        The pool's codes, when the caller already has them.
    decoders : dict, optional
        Factor -> ``ClassSequenceDecoder`` (:meth:`FeatureFlow.fit_sequence_decoders
        <speechbrain_fdnf.engine.FeatureFlow.fit_sequence_decoders>`), used instead of the window.
    """

    def __init__(self, engine, pool, scored, smooth=1, pool_codes=None, decoders=None):
        self.engine, self.sets, self.smooth, self.decoders = engine, (pool, scored), smooth, decoders or {}
        self.codes = [pool_codes, None]
        self._classes = {}

    def matcher(self, kept):
        """The :class:`~speechbrain_fdnf.matching.FrameMatcher` that keeps ``kept`` (its classes are the gate's)."""
        return FrameMatcher(self.engine, [kept], smooth=self.smooth, decoders=self.decoders)

    def __call__(self, kept):
        if kept not in self._classes:
            classes = []
            for index, frames in enumerate(self.sets):
                if self.codes[index] is None:
                    self.codes[index] = self.engine.encode_all(frames.all().feats)
                classes.append(self.matcher(kept).classes(self.codes[index], frames.utterance))
            self._classes[kept] = tuple(classes)
        return self._classes[kept]

    def accuracy(self):
        """``{kept factor: {"pool": share, "scored": share}}`` of the frames whose class the model inferred
        right, for every factor the gate was asked for (what the gate's mistakes cost is in the tables)."""
        return {kept: {name: (inferred == frames.labels[kept]).float().mean().item()
                       for name, inferred, frames in zip(("pool", "scored"), classes, self.sets)}
                for kept, classes in self._classes.items()}


class ModelMatching(NearestNeighbourMatching):
    """The matching rows of a factorial flow: :class:`~speechbrain_fdnf.matching.FrameMatcher`, the code
    :meth:`SpeechFactorizer.match <speechbrain_fdnf.inference.SpeechFactorizer.match>` runs, with the
    training frames of the target class as the pool (kNN-VC style, Baas et al., 2023).

    The pool is every training frame of the target class only (the target speaker's frames of all
    phones; the target phone's frames of all speakers), so the kept factor has to survive through
    the matching itself, never through a pool filtered by its true label. With a ``gate`` (beyond
    kNN-VC) a frame is matched only among pool frames to which the *model* assigns the frame's own
    kept class (:class:`InferredClasses`), still the model's inference, not the labels.

    Arguments
    ---------
    engine : FeatureFlow
        A factorial model.
    train : FrameBatch
        The training frames (the pool).
    k : int
        Neighbours averaged.
    train_codes : torch.Tensor, optional
        ``engine.encode_all(train.feats)``, when the caller already has it.
    gate : InferredClasses, optional
        The model's kept classes of the pool and of the scored frames (indexed by the batch's ``positions``).
    """

    def __init__(self, engine, train, k=4, train_codes=None, gate=None):
        super().__init__(train, embed=None, k=k, gate=gate)
        self.engine = engine
        self.train_codes = engine.encode_all(train.feats) if train_codes is None else train_codes
        self._matchers = {}

    def matcher(self, kept):
        """The :class:`~speechbrain_fdnf.matching.FrameMatcher` that keeps ``kept``, with the pool embedded once."""
        if kept not in self._matchers:
            matcher = FrameMatcher(self.engine, [kept], self.k)
            self._matchers[kept] = (matcher, matcher.embed(self.train_codes))
        return self._matchers[kept]

    def queries(self, feats, kept):
        """The scored frames in the kept subspace."""
        return self.matcher(kept)[0].embed(self.engine.encode_all(feats))

    def match(self, queries, members, kept, query_classes=None, pool_classes=None):
        """:meth:`FrameMatcher.nearest <speechbrain_fdnf.matching.FrameMatcher.nearest>` among the training
        frames ``members``."""
        matcher, pool = self.matcher(kept)
        return matcher.nearest(queries, pool[members], self.train.feats[members], query_classes, pool_classes)


def standardised_features(train_feats):
    """A matching space for :class:`NearestNeighbourMatching`: features standardised with the training statistics."""
    mean, std = train_feats.mean(0), train_feats.std(0).clamp_min(1e-5)
    return lambda feats, kept: (feats - mean) / std
