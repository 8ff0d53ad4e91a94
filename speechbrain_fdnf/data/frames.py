"""Frame-level data: log-Mel features with a phone and a speaker label per frame.

A flow over single frames wants i.i.d. frames, so utterances are featurized
once (SpeechBrain ``DynamicItemDataset`` pipelines and ``Fbank``), every frame
gets the phone whose segment covers the frame centre and the utterance's
speaker, gender and dialect, and the result is cached to disk as one tensor.
:class:`FrameSet` then serves shuffled frame batches from memory, with
optional context splicing (gathered per batch, never materialised) and
optional silence exclusion.

Memory: 40 float32 features are 160 bytes a frame; full TIMIT (~1.1 M training
frames with silence) is ~180 MB of features plus ~45 MB of int64 labels.

Authors
 * speechbrain-fdnf developers
"""

import copy
import hashlib
import json
import logging
from pathlib import Path

import torch
from speechbrain.dataio.dataio import read_audio
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.dataio.encoder import CategoricalEncoder
from speechbrain.utils.data_pipeline import provides, takes

from speechbrain_fdnf.data.alignment import aligned_frames, reads_in_parallel, sentence_groups
from speechbrain_fdnf.factors import FRAME_LEVEL_LABELS, LABEL_SETS, LABELS  # noqa: F401  (re-exported)
from speechbrain_fdnf.features import splice  # noqa: F401  (re-exported: its home before 0.5)
from speechbrain_fdnf.files import atomic_write, hop_samples

logger = logging.getLogger(__name__)


class FrameDataError(ValueError):
    """A problem in the frame data; the message names the utterance."""


def build_encoders(train_json, save_folder=None):
    """One ``CategoricalEncoder`` per label set, built from the training annotations.

    Each label set's classes come from the factor schema
    (:meth:`LabelSet.classes <speechbrain_fdnf.factors.LabelSet.classes>`): phones use the fixed
    39-class inventory so that a class with no training frame still has an index (and can be
    reported); speakers, genders and dialects are the sorted labels of the training annotations,
    so the same ``train.json`` always gives the same indices. With ``save_folder`` each
    encoder is also saved there as ``<name>_encoder.txt``.

    Returns
    -------
    dict
        Label name -> CategoricalEncoder.
    """
    data = json.loads(Path(train_json).read_text())
    encoders = {}
    for name, label_set in LABEL_SETS.items():
        labels = label_set.classes(data)
        encoder = CategoricalEncoder()
        encoder.update_from_iterable(labels)
        encoder.expect_len(len(labels))
        if save_folder is not None:
            encoder.save(str(Path(save_folder) / f"{name}_encoder.txt"))
        encoders[name] = encoder
    return encoders


def frame_labels(starts, ends, num_frames, hop, num_samples):
    """Index of the segment covering each frame centre (``-1`` where none does).

    SpeechBrain's ``Fbank`` centres frame ``t`` at sample ``t * hop``.

    Example
    -------
    >>> frame_labels(torch.tensor([0, 250]), torch.tensor([250, 400]), 3, 160, 400)  # centres 0, 160, 320
    tensor([0, 0, 1])
    >>> frame_labels(torch.tensor([0, 250]), torch.tensor([250, 300]), 3, 160, 300)  # 320 is past the audio
    tensor([ 0,  0, -1])
    """
    centres = torch.arange(num_frames) * hop
    index = torch.searchsorted(starts, centres, right=True) - 1
    covered = (index >= 0) & (centres < ends[index.clamp_min(0)]) & (centres < num_samples)
    return torch.where(covered, index, torch.full_like(index, -1))


def _options_digest(json_path, options):
    stat = Path(json_path).stat()
    blob = json.dumps([str(Path(json_path).resolve()), stat.st_size, stat.st_mtime_ns, options], sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()


def feature_settings(compute_features):
    """The settings of a SpeechBrain ``Fbank`` that change its output (they key the frame caches).

    Example
    -------
    >>> from speechbrain.lobes.features import Fbank
    >>> settings = feature_settings(Fbank(n_mels=40))
    >>> settings["n_mels"], settings["sample_rate"], settings["hop_length"]
    (40, 16000, 160)
    """
    stft, mel = compute_features.compute_STFT, compute_features.compute_fbanks
    return {
        "sample_rate": stft.sample_rate, "n_fft": stft.n_fft, "win_length": stft.win_length,
        "hop_length": stft.hop_length, "window_sum": round(float(stft.window.sum()), 6), "n_mels": mel.n_mels,
        "f_min": mel.f_min, "f_max": mel.f_max, "filter_shape": mel.filter_shape, "log_mel": mel.log_mel,
        "top_db": mel.top_db,
        "deltas": compute_features.deltas, "context": compute_features.context,
    }


def featurize(
    json_path,
    cache_path,
    encoders,
    compute_features,
    allow_unknown=(),
    on_nonfinite="raise",
):
    """Computes and caches the frames of one annotation file.

    Arguments
    ---------
    json_path : str or Path
        Annotation file from :func:`speechbrain_fdnf.data.timit.prepare_timit`.
    cache_path : str or Path
        The ``.pt`` cache; reused when it was made from the same file and options.
    encoders : dict
        From :func:`build_encoders`.
    compute_features : speechbrain.lobes.features.Fbank
        The feature extractor (the yaml's ``compute_features``); its settings
        are part of the cache key.
    allow_unknown : tuple of str
        Label sets whose unseen values become ``-1`` (e.g. ``("speaker",)`` for
        TIMIT's test speakers, scored with the speaker marginalised). Any other
        unseen label is an error naming the utterance.
    on_nonfinite : str
        ``"raise"``: a NaN/Inf feature is an error naming the utterance;
        ``"skip"``: the utterance is dropped and counted.

    Returns
    -------
    dict
        ``feats`` (frames x n_mels), ``labels`` (name -> int64 tensor),
        ``utterance`` (frame -> utterance index), ``utterances`` (ids) and
        ``stats`` (counts).
    """
    options = dict(features=feature_settings(compute_features),
                   allow_unknown=sorted(allow_unknown), on_nonfinite=on_nonfinite,
                   encoders={k: sorted(e.lab2ind.items()) for k, e in encoders.items()})
    digest = _options_digest(json_path, options)
    cache_path = Path(cache_path)
    if cache_path.exists():
        cached = torch.load(cache_path, weights_only=False)
        if cached.get("digest") == digest:
            return cached
    hop = hop_samples(compute_features)
    dataset = DynamicItemDataset.from_json(str(json_path))

    @takes("wav")
    @provides("sig")
    def audio_pipeline(wav):
        return read_audio(wav)

    dataset.add_dynamic_item(audio_pipeline)
    dataset.set_output_keys(["id", "sig", "starts", "ends", "num_samples"] + sorted({label_set.entry_key for label_set in LABEL_SETS.values()}))

    feats, labels, utterance, ids = [], {name: [] for name in LABEL_SETS}, [], []
    stats = {"utterances": 0, "frames": 0, "uncovered_frames": 0, "skipped_nonfinite": []}
    with torch.no_grad():
        for item in dataset:
            sig = item["sig"]
            if sig.dim() != 1:
                raise FrameDataError(f"utterance {item['id']}: expected mono audio, got shape {tuple(sig.shape)}")
            utt_feats = compute_features(sig[None])[0]
            if not torch.isfinite(utt_feats).all():
                if on_nonfinite == "skip":
                    logger.warning("Skipping utterance %s: non-finite features", item["id"])
                    stats["skipped_nonfinite"].append(item["id"])
                    continue
                raise FrameDataError(f"utterance {item['id']} ({item.get('wav', '')}): NaN or Inf in its features")
            segment = frame_labels(torch.tensor(item["starts"]), torch.tensor(item["ends"]),
                                   utt_feats.shape[0], hop, item["num_samples"])
            keep = segment >= 0
            stats["uncovered_frames"] += int((~keep).sum())
            segment = segment[keep]
            for name, label_set in LABEL_SETS.items():
                per_frame = label_set.per_frame(item, segment.tolist())
                labels[name].append(_encode(encoders[name], per_frame, name, item["id"], name in allow_unknown))
            feats.append(utt_feats[keep])
            utterance.append(torch.full((len(segment),), len(ids), dtype=torch.long))
            ids.append(item["id"])
    if not feats:
        raise FrameDataError(f"{json_path}: no frames")
    result = {
        "digest": digest,
        "feats": torch.cat(feats),
        "labels": {name: torch.cat(values) for name, values in labels.items()},
        "utterance": torch.cat(utterance),
        "utterances": ids,
        "stats": stats,
    }
    stats.update(utterances=len(ids), frames=len(result["feats"]))
    with atomic_write(cache_path) as tmp:
        torch.save(result, tmp)
    return result


def _encode(encoder, values, name, utt_id, allow_unknown):
    known = encoder.lab2ind
    unknown = sorted({v for v in values if v not in known})
    if unknown and not allow_unknown:
        raise FrameDataError(
            f"utterance {utt_id}: {name} label(s) {unknown} were never seen in training "
            f"(the {name} encoder knows {len(known)} labels)"
        )
    return torch.tensor([known.get(v, -1) for v in values], dtype=torch.long)


class FrameBatch:
    """A batch of frames and their labels; ``.to(device)`` like SpeechBrain's batches.

    Attributes
    ----------
    feats : torch.Tensor
        ``(batch, dim)``.
    labels : dict
        Label name -> ``(batch,)`` int64 tensor (``-1`` for unknown).
    positions : torch.Tensor, optional
        ``(batch,)`` positions of the frames in the :class:`FrameSet` they come from.
    """

    def __init__(self, feats, labels, positions=None):
        self.feats = feats
        self.labels = labels
        self.positions = positions

    def to(self, device):
        """Moves every tensor to ``device``."""
        positions = None if self.positions is None else self.positions.to(device)
        return FrameBatch(self.feats.to(device), {k: v.to(device) for k, v in self.labels.items()}, positions)

    def __len__(self):
        return self.feats.shape[0]


def _identity_collate(batch):
    return batch


class FrameSet(torch.utils.data.Dataset):
    """Frames from a :func:`featurize` cache, served in batches.

    :meth:`batch` builds a whole :class:`FrameBatch` at once (one gather, no
    per-frame Python); a ``DataLoader`` with ``collate_fn=FrameSet.collate``
    uses it through ``__getitems__`` and keeps up with large batches.

    Arguments
    ---------
    cache : dict
        The output of :func:`featurize`.
    context : int
        Splice ``context`` frames on each side (edge frames repeated within
        the utterance); the feature dimension becomes ``n_mels * (2k + 1)``.
    exclude_silence : bool
        Drop frames whose phone is silence.
    silence_index : int, optional
        Index of ``"sil"`` in the phone encoder (needed with ``exclude_silence``).

    Example
    -------
    >>> cache = {"feats": torch.arange(12.).view(6, 2), "utterance": torch.tensor([0, 0, 0, 1, 1, 1]),
    ...          "labels": {"phone": torch.tensor([0, 1, 2, 0, 1, 2]), "speaker": torch.tensor([0, 0, 0, 1, 1, 1])}}
    >>> frames = FrameSet(cache, context=1, exclude_silence=True, silence_index=0)
    >>> len(frames), frames.dim
    (4, 6)
    >>> frames.batch([0]).feats  # frame 1 of utterance 0 with its neighbours
    tensor([[0., 1., 2., 3., 4., 5.]])
    """

    collate = staticmethod(_identity_collate)

    def __init__(self, cache, context=0, exclude_silence=False, silence_index=None):
        super().__init__()
        self.feats = cache["feats"]
        bad = ~torch.isfinite(self.feats).all(dim=1)
        if bad.any():  # a cache from elsewhere, or edited: never train on it
            names = cache.get("utterances")
            where = sorted({names[i] if names else f"#{i}" for i in cache["utterance"][bad].tolist()})
            raise FrameDataError(f"{int(bad.sum())} frames with NaN or Inf features, in utterance(s) {where[:5]}"
                                 f"{' ...' if len(where) > 5 else ''}")
        self.context = int(context)
        keep = torch.ones(len(self.feats), dtype=torch.bool)
        if exclude_silence:
            if silence_index is None:
                raise ValueError("exclude_silence needs silence_index")
            keep &= cache["labels"]["phone"] != silence_index
        self.rows = torch.nonzero(keep).flatten()
        self.labels = {name: values[self.rows] for name, values in cache["labels"].items()}
        self.utterance = cache["utterance"][self.rows]
        self.utterance_ids = cache.get("utterances")
        utt = cache["utterance"]
        # cache rows of utterance u: boundaries[u] .. boundaries[u + 1] - 1
        self.boundaries = torch.searchsorted(utt, torch.arange(int(utt.max()) + 2)) if len(utt) else torch.zeros(1)
        if self.context:
            self._first = self.boundaries[utt[self.rows]]
            self._last = self.boundaries[utt[self.rows] + 1] - 1
        self.dim = self.feats.shape[1] * (2 * self.context + 1)

    def __len__(self):
        return len(self.rows)

    def batch(self, indices):
        """The frames ``indices`` (positions in this set) as one :class:`FrameBatch`."""
        indices = torch.as_tensor(indices, dtype=torch.long)
        rows = self.rows[indices]
        if self.context:
            feats = splice(self.feats, self.context, rows, self._first[indices], self._last[indices])
        else:
            feats = self.feats[rows]
        return FrameBatch(feats, {name: values[indices] for name, values in self.labels.items()}, indices)

    def __getitem__(self, index):
        return self.batch([index])

    def __getitems__(self, indices):
        # A DataLoader calls this with a whole batch of indices: one gather, no per-frame Python.
        return self.batch(indices)

    def all(self):
        """Every frame as one :class:`FrameBatch`."""
        return self.batch(torch.arange(len(self)))

    def restricted(self, keep):
        """The frames where ``keep`` (``(len(self),)`` bools) holds, as a set of its own (same cache, same splicing).

        Example
        -------
        >>> cache = {"feats": torch.arange(8.).view(4, 2), "utterance": torch.tensor([0, 0, 1, 1]),
        ...          "labels": {"speaker": torch.tensor([0, 0, 1, 1])}}
        >>> frames = FrameSet(cache, context=1).restricted(torch.tensor([False, False, True, True]))
        >>> len(frames), frames.labels["speaker"].tolist(), frames.batch([0]).feats.tolist()
        (2, [1, 1], [[4.0, 5.0, 4.0, 5.0, 6.0, 7.0]])
        """
        subset = copy.copy(self)
        subset.rows = self.rows[keep]
        subset.labels = {name: values[keep] for name, values in self.labels.items()}
        subset.utterance = self.utterance[keep]
        if self.context:
            subset._first, subset._last = self._first[keep], self._last[keep]
        subset._lookup = None
        return subset

    def positions(self, rows):
        """Positions in this set of cache ``rows`` (``-1`` for rows it leaves out, e.g. silence)."""
        if getattr(self, "_lookup", None) is None:  # built once, on first use (pairing calls this per utterance pair)
            self._lookup = torch.full((len(self.feats),), -1, dtype=torch.long)
            self._lookup[self.rows] = torch.arange(len(self.rows))
        return self._lookup[rows]

    def batches(self, batch_size):
        """Consecutive :class:`FrameBatch` es of at most ``batch_size`` frames, in order."""
        for start in range(0, len(self), batch_size):
            yield self.batch(torch.arange(start, min(start + batch_size, len(self))))


def parallel_frame_pairs(frames, entries, hop):
    """Aligned frames of two speakers reading the same sentence: ``(pairs, 2)`` positions in ``frames``.

    Every two utterances of ``frames`` that read in parallel (the same text,
    different speakers, the same non-silence phone sequence:
    :func:`~speechbrain_fdnf.data.alignment.reads_in_parallel`, the definition
    the evaluation's parallel distortion uses too) are aligned by their phone
    segments (:func:`~speechbrain_fdnf.data.alignment.aligned_frames`);
    each aligned frame gives one pair (frames left out of the set, such as
    silence, give none). A paired frame shares phone and phonetic context with
    its partner and differs in speaker.

    Arguments
    ---------
    frames : FrameSet
        Built from a cache that lists its ``utterances`` ids.
    entries : dict
        The prepared annotations of those utterances (id -> entry with
        ``text``, ``speaker`` and phone segments).
    hop : int
        Frame shift in samples.

    Returns
    -------
    torch.LongTensor
    """
    if frames.utterance_ids is None:
        raise ValueError("the frame cache does not list its utterances; featurize it again")
    index_of = {uid: index for index, uid in enumerate(frames.utterance_ids)}
    first, pairs = frames.boundaries, []
    for keys in sentence_groups(frames.utterance_ids, entries).values():
        for i, key_a in enumerate(keys):
            for key_b in keys[i + 1 :]:
                entry_a, entry_b = entries[key_a], entries[key_b]
                if not reads_in_parallel(entry_a, entry_b):
                    continue
                a, b = index_of[key_a], index_of[key_b]
                aligned = aligned_frames(entry_a, entry_b, int(first[a + 1] - first[a]), int(first[b + 1] - first[b]), hop)
                if aligned is None:
                    continue
                position = torch.stack([frames.positions(first[a] + aligned[0]), frames.positions(first[b] + aligned[1])], 1)
                pairs.append(position[(position >= 0).all(1)])
    return torch.cat(pairs) if pairs else torch.zeros(0, 2, dtype=torch.long)


def utterance_frame_pairs(frames, factor="phone", seed=0, attempts=8):
    """Frames of one utterance with different ``factor`` labels: ``(pairs, 2)`` positions in ``frames``.

    Every frame is paired with a random frame of the same utterance whose
    ``factor`` class differs (frames whose ``attempts`` draws all hit their
    own class give no pair). Such a pair shares its speaker, and everything
    else the speaker keeps through one utterance, and differs in phone: the
    counterpart of :func:`parallel_frame_pairs` for the speaker subspace,
    available in any corpus.

    Arguments
    ---------
    frames : FrameSet
    factor : str
        Label that must differ within a pair.
    seed : int
        Seed of the draw (the pairs are fixed for a run).
    attempts : int
        Draws per frame before it is left unpaired.

    Returns
    -------
    torch.LongTensor

    Example
    -------
    >>> cache = {"feats": torch.zeros(5, 2), "utterance": torch.tensor([0, 0, 0, 1, 1]),
    ...          "labels": {"phone": torch.tensor([0, 1, 1, 2, 2])}}
    >>> pairs = utterance_frame_pairs(FrameSet(cache))
    >>> pairs[:, 0].tolist()  # frames 3 and 4 have no other phone in their utterance
    [0, 1, 2]
    >>> bool((pairs[1:, 1] == 0).all())
    True
    """
    generator = torch.Generator().manual_seed(seed)
    utterance, labels = frames.utterance, frames.labels[factor]
    start = torch.searchsorted(utterance, utterance)  # a set's rows keep the cache's utterance order
    size = torch.searchsorted(utterance, utterance, right=True) - start
    first = torch.arange(len(frames))
    partner = torch.full_like(first, -1)
    for _ in range(attempts):
        todo = partner < 0
        if not todo.any():
            break
        draw = start[todo] + (torch.rand(int(todo.sum()), generator=generator) * size[todo]).long()
        partner[todo] = torch.where(labels[draw] != labels[todo], draw, -1)
    found = partner >= 0
    return torch.stack([first[found], partner[found]], 1)
