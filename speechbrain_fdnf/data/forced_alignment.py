"""Phone alignment of transcribed speech: pocketsphinx, then acoustic models trained on the corpus itself.

The f-DNF needs a phone label per frame; a corpus with transcripts only gets them here, offline.

1. **pocketsphinx** (:func:`first_pass`): CMU's en-us acoustic model and CMUdict, both inside
   pocketsphinx's wheel, align each utterance's words (pronunciations from
   :class:`~speechbrain_fdnf.data.lexicon.Lexicon`: CMUdict, eSpeak NG for the words it lacks) and
   then its phones. The word pass runs an FSG search, which on speech unlike CMU's training data can
   end inside the sentence (silence outscores the remaining words and they fall out of the beam);
   such an utterance is tried again with a lower silence insertion probability, then with wider
   beams (:data:`POCKETSPHINX_RUNGS`). Runs in parallel over the cores, one line per utterance
   appended to a cache file: a killed run resumes where it stopped.
2. **Refinement on the corpus** (:class:`CorpusAligner`), as the Montreal Forced Aligner trains its
   models on the corpus it aligns: a frame classifier on the corpus's own log-Mel frames is trained
   on the current alignments, then every utterance is aligned again by Viterbi through its phone
   sequence (optional silence between words) with the classifier's scaled likelihoods;
   ``rounds`` times. CMU's model is trained on other speech, at 10 ms steps, with three-state
   phones (30 ms at least); the corpus's own model fits its speakers and recording conditions, and
   utterances pocketsphinx could not align are aligned from their dictionary pronunciation.

:func:`align_corpus` runs both (the preparation keeps the result in the prepared splits). Accuracy against eSpeak NG's exact phone
boundaries (the embedded corpus) is measured by ``benchmarks/bench_alignment.py``.

Authors
 * speechbrain-fdnf developers
"""

import json
import logging
import multiprocessing
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile
import torch
from tqdm import tqdm

from speechbrain_fdnf.data.lexicon import Lexicon, pocketsphinx_models
from speechbrain_fdnf.data.phones import SILENCE, TIMIT39, fold_phone
from speechbrain_fdnf.data.phones import merge_segments as merged
from speechbrain_fdnf.files import write_json_atomic

logger = logging.getLogger(__name__)

#: pocketsphinx works on 16 kHz audio, in 10 ms frames of 410 samples.
ALIGNER_RATE = 16000
_HOP, _WINDOW = 160, 410
#: Decoder settings tried in turn until the word pass reaches the end of the transcript: the
#: defaults; a silence insertion probability low enough that silence cannot swallow the words left;
#: that with wider beams.
POCKETSPHINX_RUNGS = ({}, {"silprob": 1e-8}, {"silprob": 1e-8, "beam": 1e-60, "pbeam": 1e-60, "wbeam": 1e-40})
#: The refinement's shortest phone in 10 ms frames: 2 or 3 changed no boundary score by half a point
#: (``benchmarks/bench_alignment.py --min_frames``; docs/RESULTS.md section 3).
MIN_PHONE_FRAMES = 1


@dataclass
class AlignmentItem:
    """One utterance to align: its id, a mono 16 kHz audio file and its words (normalised)."""

    key: str
    wav: str
    words: list = field(default_factory=list)


def labels_at(segments, centres):
    """The label of the segment covering each sample position in ``centres`` (contiguous ``(start, end,
    label)`` segments; positions past the last one take its label).

    Example
    -------
    >>> labels_at([(0, 100, "sil"), (100, 250, "aa")], np.array([0, 99, 100, 300])).tolist()
    ['sil', 'sil', 'aa', 'aa']
    """
    ends = np.array([end for _, end, _ in segments])
    which = np.minimum(np.searchsorted(ends, centres, side="right"), len(segments) - 1)
    return np.array([segments[i][2] for i in which])


def phone_segments_of_frames(labels, num_samples, hop, offset=0):
    """Contiguous ``(start, end, label)`` sample segments of per-frame labels; frame ``t``'s segment
    starts at ``t * hop + offset`` (clipped to the audio) and the last one ends at ``num_samples``.

    Example
    -------
    >>> phone_segments_of_frames(["sil", "aa", "aa", "b"], 400, 100, offset=-50)
    [(0, 50, 'sil'), (50, 250, 'aa'), (250, 400, 'b')]
    """
    segments = []
    for t, label in enumerate(labels):
        start = min(max(t * hop + offset, 0), num_samples)
        if segments and segments[-1][2] == label:
            continue
        if segments:
            segments[-1] = (segments[-1][0], start, segments[-1][2])
        segments.append((start, num_samples, label))
    return [segment for segment in segments if segment[1] > segment[0]]


# ---- 1. pocketsphinx --------------------------------------------------------------------------


class PocketsphinxAligner:
    """Word and phone alignment of one utterance by pocketsphinx (see the module docstring).

    Arguments
    ---------
    dictionary : str or Path
        A CMUdict-format file holding every word the utterances use.
    """

    def __init__(self, dictionary):
        from pocketsphinx import Config, Decoder

        acoustic_model, _ = pocketsphinx_models()
        self.decoders = [Decoder(Config(hmm=str(acoustic_model), dict=str(dictionary), loglevel="FATAL",
                                        **{key: str(value) for key, value in rung.items()}))
                         for rung in POCKETSPHINX_RUNGS]

    def align(self, samples, words):
        """``(segments, rung)``: folded ``(start, end, phone)`` sample segments covering the audio and the
        index of the decoder settings that aligned it; ``(None, None)`` when none reached the end."""
        pcm = np.asarray(samples, dtype=np.int16).tobytes()
        for rung, decoder in enumerate(self.decoders):
            try:
                decoder.set_align_text(" ".join(words))
                decoder.start_utt()
                decoder.process_raw(pcm, full_utt=True)
                decoder.end_utt()
                found = [unit.word.split("(")[0] for unit in decoder.seg() or []
                         if not unit.word.startswith(("<", "[", "+"))]
                if found != list(words):
                    continue
                decoder.set_alignment()
                decoder.start_utt()
                decoder.process_raw(pcm, full_utt=True)
                decoder.end_utt()
                labels = []
                for word in decoder.get_alignment():
                    for phone in word:
                        labels += [fold_phone(phone.name)] * phone.duration
            except RuntimeError:
                continue
            # a boundary between frames t-1 and t lies between their window centres
            return phone_segments_of_frames(labels, len(samples), _HOP, offset=(_WINDOW - _HOP) // 2), rung
        return None, None


_WORKER = {}


def _start_worker(dictionary, pool=False):
    if pool:  # one thread per worker process; the calling process keeps its own setting
        torch.set_num_threads(1)
    _WORKER["aligner"] = PocketsphinxAligner(dictionary)


def _align_item(item):
    samples, rate = soundfile.read(item.wav, dtype="int16")
    if rate != ALIGNER_RATE:
        raise ValueError(f"{item.wav}: {rate} Hz, the aligner needs {ALIGNER_RATE} Hz")
    segments, rung = _WORKER["aligner"].align(samples, item.words)
    return item.key, segments, rung


def read_cache_lines(path):
    """``{key: record}`` of a JSON-lines cache; a last line cut short by a killed run is ignored."""
    records = {}
    if Path(path).exists():
        for line in Path(path).read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            records[record["key"]] = record
    return records


def first_pass(items, dictionary, cache, workers=None, progress=True):
    """pocketsphinx alignment of ``items`` (:class:`AlignmentItem`), in parallel, cached line by line
    in ``cache`` (a killed run resumes). Returns ``{key: {"segments": [...] or None, "rung": int}}``."""
    done = read_cache_lines(cache)
    todo = [item for item in items if item.key not in done]
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo)))
    if len(done) and todo:
        logger.info("Resuming the pocketsphinx pass: %d of %d utterances are done", len(items) - len(todo), len(items))
    Path(cache).parent.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(items), initial=len(items) - len(todo), unit="utt", desc="aligning (pocketsphinx)",
               disable=not progress)
    if Path(cache).exists() and not Path(cache).read_bytes().endswith(b"\n"):
        with open(cache, "a") as handle:  # end the line a killed run cut short
            handle.write("\n")
    with open(cache, "a") as handle, bar:
        def record(key, segments, rung):
            done[key] = {"key": key, "segments": segments, "rung": rung}
            handle.write(json.dumps(done[key]) + "\n")
            handle.flush()
            bar.update()

        if workers == 1:
            _start_worker(str(dictionary))
            for item in todo:
                record(*_align_item(item))
        elif todo:
            context = multiprocessing.get_context("spawn")
            with context.Pool(workers, initializer=_start_worker, initargs=(str(dictionary), True)) as pool:
                for result in pool.imap_unordered(_align_item, todo, chunksize=4):
                    record(*result)
    return done


# ---- 2. refinement on the corpus ----------------------------------------------------------------


@dataclass
class AlignmentGraph:
    """The phone states of one utterance's transcript: each word's pronunciations as parallel chains,
    an optional silence before the first word and after every word.

    ``phones[s]`` is state ``s``'s class index (into ``TIMIT39``), ``predecessors[s]`` the states it
    may be entered from (itself included: a phone lasts one frame or more), ``initial`` and ``final``
    the states a path may start and end in.
    """

    phones: list
    predecessors: list
    initial: list
    final: list

    @classmethod
    def of_words(cls, pronunciations, min_frames=1):
        """The graph of a transcript from its words' pronunciations (``[[[folded phone, ...], ...], ...]``:
        per word, its alternatives). Each phone (and each silence) is a chain of ``min_frames`` states, the
        last of them repeatable: it lasts at least that many frames, as in an HMM's left-to-right topology.

        Example
        -------
        >>> graph = AlignmentGraph.of_words([[["hh", "ay"]], [["dh", "eh", "r"], ["dh", "ah", "r"]]])
        >>> [TIMIT39[p] for p in graph.phones]
        ['sil', 'hh', 'ay', 'sil', 'dh', 'eh', 'r', 'dh', 'ah', 'r', 'sil']
        >>> graph.predecessors[4], graph.predecessors[7], graph.initial, graph.final
        ([4, 2, 3], [7, 2, 3], [0, 1], [6, 9, 10])
        >>> longer = AlignmentGraph.of_words([[["hh", "ay"]]], min_frames=2)
        >>> [TIMIT39[p] for p in longer.phones], longer.predecessors[1:5], longer.initial
        (['sil', 'sil', 'hh', 'hh', 'ay', 'ay', 'sil', 'sil'], [[1, 0], [1], [3, 2], [3]], [0, 2])
        """
        if min_frames < 1:
            raise ValueError(f"min_frames must be at least 1, got {min_frames}")
        index = {phone: i for i, phone in enumerate(TIMIT39)}
        phones, predecessors = [], []

        def chain(phone, entered_from):
            """Appends ``phone``'s chain of states; returns (its first state, its last state)."""
            first = len(phones)
            for step in range(min_frames):
                state = len(phones)
                phones.append(index[phone])
                predecessors.append(list(entered_from) if step == 0 else [state - 1])
            predecessors[-1].insert(0, len(phones) - 1)  # the last state repeats
            return first, len(phones) - 1

        start_silence, end = chain(SILENCE, [])
        entries, initial = [end], [start_silence]  # states the next word may follow; the start's are the initial states
        first_word = True
        for alternatives in pronunciations:
            ends = []
            for pronunciation in dict.fromkeys(tuple(p) for p in alternatives):  # folding can make two alike
                previous = None
                for phone in pronunciation:
                    first, last = chain(phone, [previous] if previous is not None else entries)
                    if previous is None and first_word:
                        initial.append(first)
                    previous = last
                ends.append(previous)
            _, silence = chain(SILENCE, ends)
            entries = ends + [silence]
            first_word = False
        return cls(phones, predecessors, initial, entries)


def viterbi_path(log_likelihood, graph):
    """The best path through ``graph`` (:class:`AlignmentGraph`): the state of each frame, or ``None``
    when no path fits the frames.

    Example
    -------
    >>> scores = np.log(np.array([[.9, .1], [.8, .2], [.1, .9], [.2, .8]]))
    >>> graph = AlignmentGraph([1, 0, 1], [[0], [1, 0], [2, 1]], initial=[0, 1], final=[2])
    >>> viterbi_path(scores, graph).tolist()
    [1, 1, 2, 2]
    """
    frames, count = len(log_likelihood), len(graph.phones)
    width = max(len(p) for p in graph.predecessors)
    # predecessors padded with a state that always scores -inf
    table = np.full((count, width), count)
    for state, previous in enumerate(graph.predecessors):
        table[state, : len(previous)] = previous
    emissions = log_likelihood[:, graph.phones]
    score = np.full(count + 1, -np.inf)
    score[graph.initial] = emissions[0, graph.initial]
    back = np.zeros((frames, count), dtype=np.int64)
    for t in range(1, frames):
        candidates = score[table]
        choice = np.argmax(candidates, axis=1)
        back[t] = table[np.arange(count), choice]
        score[:count] = candidates[np.arange(count), choice] + emissions[t]
    last = max(graph.final, key=lambda state: score[state])
    if not np.isfinite(score[last]):
        return None
    path = np.empty(frames, dtype=np.int64)
    for t in range(frames - 1, -1, -1):
        path[t] = last
        last = back[t, last]
    return path


class CorpusAligner:
    """A frame classifier on the corpus's own log-Mel frames, and Viterbi alignment with it.

    Arguments
    ---------
    context : int
        Frames of context on each side of the classified frame.
    hidden : int
        Width of the classifier's two hidden layers.
    epochs : int
        Training epochs per :meth:`fit`.
    seed : int
        Seed of the classifier's initialisation and batches.
    """

    def __init__(self, context=5, hidden=512, epochs=4, seed=0):
        from speechbrain.lobes.features import Fbank

        self.context, self.hidden, self.epochs, self.seed = context, hidden, epochs, seed
        self.fbank = Fbank(sample_rate=ALIGNER_RATE, n_mels=40)
        self.hop = ALIGNER_RATE // 100
        self.model = None

    def features(self, wav):
        """Per-utterance normalised log-Mel frames of one audio file, with context: ``[frames, dim]``."""
        samples, rate = soundfile.read(wav, dtype="float32")
        if rate != ALIGNER_RATE:
            raise ValueError(f"{wav}: {rate} Hz, the aligner needs {ALIGNER_RATE} Hz")
        with torch.no_grad():
            feats = self.fbank(torch.from_numpy(samples)[None])[0]
        feats = (feats - feats.mean(0)) / (feats.std(0) + 1e-5)
        padded = torch.cat([feats[:1].expand(self.context, -1), feats, feats[-1:].expand(self.context, -1)])
        return padded.unfold(0, 2 * self.context + 1, 1).transpose(1, 2).flatten(1)

    def frame_labels(self, segments, frames):
        """The class index of each frame (centred at ``t * hop``) under ``segments``."""
        index = {phone: i for i, phone in enumerate(TIMIT39)}
        return torch.tensor([index[label] for label in labels_at(segments, np.arange(frames) * self.hop)])

    def fit(self, features, labels):
        """Trains a fresh classifier on ``features`` (list of ``[frames, dim]``) and ``labels``."""
        generator = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        inputs, targets = torch.cat(features), torch.cat(labels)
        self.model = torch.nn.Sequential(
            torch.nn.Linear(inputs.shape[1], self.hidden), torch.nn.ReLU(),
            torch.nn.Linear(self.hidden, self.hidden), torch.nn.ReLU(),
            torch.nn.Linear(self.hidden, len(TIMIT39)))
        optimiser = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        for _ in range(self.epochs):
            for batch in torch.randperm(len(inputs), generator=generator).split(512):
                loss = torch.nn.functional.cross_entropy(self.model(inputs[batch]), targets[batch])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        counts = torch.bincount(targets, minlength=len(TIMIT39)).double()
        self.log_prior = torch.log((counts + 1) / (counts + 1).sum()).float()
        return self

    def align(self, features, graph, num_samples):
        """Folded ``(start, end, phone)`` segments of one utterance through its :class:`AlignmentGraph`,
        or ``None``."""
        with torch.no_grad():
            scores = torch.log_softmax(self.model(features), dim=-1) - self.log_prior
        path = viterbi_path(scores.numpy().astype(np.float64), graph)
        if path is None:
            return None
        labels = [TIMIT39[graph.phones[state]] for state in path]
        # frame t is centred at t * hop: a boundary lies half a hop before the first frame after it
        return phone_segments_of_frames(labels, num_samples, self.hop, offset=-self.hop // 2)


def align_corpus(items, folder, lexicon=None, rounds=2, workers=None, progress=True, seed=0, max_fit_frames=600_000,
                 min_frames=MIN_PHONE_FRAMES):
    """Phone alignments of ``items`` (:class:`AlignmentItem`), cached in ``folder``.

    Arguments
    ---------
    items : list of AlignmentItem
    folder : str or Path
        Working folder: the dictionary used, the pocketsphinx pass's cache (resumable) and ``report.json``
        (the alignments themselves are kept by the caller: the prepared splits).
    lexicon : Lexicon, optional
        Pronunciations (default: CMUdict with eSpeak NG for the rest).
    rounds : int
        Refinement rounds on the corpus (0: pocketsphinx's alignments as they are).
    workers : int, optional
        Processes of the pocketsphinx pass (default: one per core).
    max_fit_frames : int
        Frames the refinement's classifier trains on per round (a seeded sample of utterances; about
        100 min of speech by default, 1 GB of features).
    min_frames : int
        The refinement's shortest phone, in 10 ms frames (:meth:`AlignmentGraph.of_words`).

    Returns
    -------
    alignments : dict
        ``key -> [(start, end, folded phone), ...]`` for every aligned utterance.
    report : dict
        ``unalignable`` (key -> why), ``pocketsphinx_rungs`` (utterances per decoder setting),
        ``espeak_words`` (pronunciations guessed by eSpeak NG).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lexicon = lexicon or Lexicon()
    unalignable = {}
    for item in items:
        missing = lexicon.missing(item.words)
        if not item.words:
            unalignable[item.key] = "empty transcript"
        elif missing:
            unalignable[item.key] = f"no pronunciation for {', '.join(missing)}"
    alignable = [item for item in items if item.key not in unalignable]
    dictionary = folder / "dictionary.dict"
    words = sorted({word for item in alignable for word in item.words})
    dictionary.write_text("".join(f"{word}{'' if k == 0 else f'({k + 1})'} {' '.join(pron)}\n"
                                  for word in words for k, pron in enumerate(lexicon.pronunciations(word))))
    # the pass's cache belongs to the lexicon: another one aligns again
    first = first_pass(alignable, dictionary, folder / f"pocketsphinx-{lexicon.identity()}.jsonl", workers, progress)
    rungs = [0] * (len(POCKETSPHINX_RUNGS) + 1)
    for item in alignable:
        rung = first[item.key]["rung"]
        rungs[len(POCKETSPHINX_RUNGS) if rung is None else rung] += 1
    wavs = {item.key: item.wav for item in alignable}
    alignments = {item.key: [tuple(s) for s in first[item.key]["segments"]]
                  for item in alignable if first[item.key]["segments"]}
    if rounds and alignments:
        aligner = CorpusAligner(seed=seed)
        # every pronunciation of every word: the corpus's model chooses, as pocketsphinx did
        lexicon_phones = {word: [[fold_phone(p) for p in pron] for pron in lexicon.pronunciations(word)]
                          for item in alignable for word in item.words}
        training_features = {}
        for number in range(rounds):
            # the classifier learns from a seeded sample of aligned utterances (bounded memory on any corpus)
            keys = sorted(alignments)
            random.Random(seed + number).shuffle(keys)
            inputs, labels, frames = [], [], 0
            for key in keys:
                if key not in training_features:
                    training_features[key] = aligner.features(wavs[key])
                inputs.append(training_features[key])
                labels.append(aligner.frame_labels(alignments[key], len(inputs[-1])))
                frames += len(inputs[-1])
                if frames >= max_fit_frames:
                    break
            training_features = {key: training_features[key] for key in keys[: len(inputs)]}
            aligner.fit(inputs, labels)
            refined = {}
            for item in tqdm(alignable, desc=f"realigning (round {number + 1}/{rounds})", disable=not progress):
                features = training_features.get(item.key)
                graph = AlignmentGraph.of_words([lexicon_phones[word] for word in item.words], min_frames)
                segments = aligner.align(aligner.features(item.wav) if features is None else features, graph,
                                         soundfile.info(item.wav).frames)
                if segments:
                    refined[item.key] = segments
            alignments = refined
    for item in alignable:
        if item.key not in alignments:
            unalignable[item.key] = "the aligner found no path through its phones (audio shorter than its transcript?)"
    report = {"unalignable": unalignable, "pocketsphinx_rungs": rungs, "espeak_words": sorted(
        word for word, pron in lexicon.guessed.items() if pron)}
    write_json_atomic(folder / "report.json", report)
    return alignments, report


def comparable(reference, hypothesis):
    """``reference`` and ``hypothesis`` segments merged (one segment per run of a phone), the hypothesis given
    an empty silence at each edge of the utterance where the reference has silence and it has none (see
    :func:`boundary_errors`).

    Example
    -------
    >>> comparable([(0, 5, "sil"), (5, 9, "aa")], [(0, 4, "aa"), (4, 9, "aa")])[1]
    [(0, 0, 'sil'), (0, 9, 'aa')]
    """
    reference, hypothesis = merged(reference), merged(hypothesis)
    if hypothesis and reference[0][2] == SILENCE != hypothesis[0][2]:
        hypothesis = [(hypothesis[0][0], hypothesis[0][0], SILENCE)] + hypothesis
    if hypothesis and reference[-1][2] == SILENCE != hypothesis[-1][2]:
        hypothesis = hypothesis + [(hypothesis[-1][1], hypothesis[-1][1], SILENCE)]
    return reference, hypothesis


def boundary_errors(reference, hypothesis):
    """Per reference phone boundary, its distance in samples to the same boundary of ``hypothesis``
    (``inf`` where the hypothesis lacks it). Both are folded ``(start, end, phone)`` segments; the
    phone sequences are matched by :class:`difflib.SequenceMatcher`, and a boundary is the start of a
    matched phone whose predecessor is matched too. Where the reference has silence at an edge of the
    utterance and the hypothesis does not, the hypothesis's boundary there is that edge (a speech
    segment from the first sample says speech starts there): eSpeak NG leaves about 11 ms of silence
    before the first phone, shorter than the aligner's frames.

    Example
    -------
    >>> ref = [(0, 10, "sil"), (10, 30, "aa"), (30, 50, "b"), (50, 60, "sil")]
    >>> hyp = [(0, 12, "sil"), (12, 35, "aa"), (35, 60, "sil")]
    >>> boundary_errors(ref, hyp).tolist()
    [2.0, inf, inf]
    >>> boundary_errors(ref, [(0, 30, "aa"), (30, 60, "b")]).tolist()  # no silence at either edge
    [10.0, 0.0, 10.0]
    """
    from difflib import SequenceMatcher

    reference, hypothesis = comparable(reference, hypothesis)
    matcher = SequenceMatcher(None, [s[2] for s in reference], [s[2] for s in hypothesis], autojunk=False)
    partner = {}
    for i, j, size in matcher.get_matching_blocks():
        partner.update({i + k: j + k for k in range(size)})
    errors = []
    for i in range(1, len(reference)):
        if i in partner and i - 1 in partner and partner[i] == partner[i - 1] + 1:
            errors.append(abs(reference[i][0] - hypothesis[partner[i]][0]))
        else:
            errors.append(np.inf)
    return np.array(errors, dtype=np.float64)


def frame_agreement(reference, hypothesis, hop):
    """``(agreeing, total)`` frames (centred at ``t * hop + hop // 2``) of the reference's speech
    (non-silence) whose hypothesis label is the same."""
    centres = np.arange(hop // 2, reference[-1][1], hop)
    ref, hyp = labels_at(reference, centres), labels_at(hypothesis, centres)
    speech = ref != SILENCE
    return int((ref[speech] == hyp[speech]).sum()), int(speech.sum())
