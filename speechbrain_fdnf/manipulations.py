"""The converter's manipulations, one small object each, registered once by name.

A manipulation changes the frames of one utterance toward a target: ``shift`` (the paper's class-mean
shift), ``cells`` (per-phone differences estimated from audio of the target), ``knn`` (the mean of the
nearest frames of the target's audio), ``select`` (real frames of the target's audio, resynthesised
from their own STFT) and ``units`` (as ``select``, a whole phone at a time). Each is a class whose
constructor holds its options (declared once in ``OPTIONS``, with their type, default and help) and whose
:meth:`~Manipulation.frames` does the work through :class:`~speechbrain_fdnf.inference.SpeechFactorizer`. :data:`REGISTRY` lists them: the
command line's ``--manipulation`` choices and options, :func:`speechbrain_fdnf.convert.convert` and
the evaluation's conversion rows are all built from it, so a new manipulation is one class here.

Example
-------
>>> sorted(REGISTRY)
['cells', 'knn', 'select', 'shift', 'units']
>>> build("knn", k=8)
Knn(k=8, gate=True, tagger=True)
>>> build("knn", shrink=3.0)
Traceback (most recent call last):
...
ValueError: manipulation 'knn' takes no option 'shrink' (its options: k, gate, tagger)
>>> build("units", fallback="silence")
Traceback (most recent call last):
...
ValueError: manipulation 'units': option 'fallback' must be one of nearest, source, source_f0, cells, cells_features, got 'silence'

Authors
 * speechbrain-fdnf developers
"""

from dataclasses import dataclass, replace

from speechbrain_fdnf.factors import is_frame_level
from speechbrain_fdnf.matching import UNIT_INTONATIONS, UNIT_JOINS, UNIT_NEIGHBOUR_DISTANCES, UNIT_STRETCHES

#: name -> Manipulation subclass, in the order the command line lists them.
REGISTRY = {}
#: What ``manipulation="auto"`` is with audio of the target where the model folder has no contextual phone tagger
#: (chosen on unseen valid speakers, docs/RESULTS.md 6c, 6g); without audio of the target, ``shift``.
DEFAULT_WITH_AUDIO = "cells"
#: ... and where it has one, for an utterance-level factor (the speaker): whole phones of the target, named by the
#: tagger (chosen by the same rule on the same kind of trials, docs/RESULTS.md 6g).
DEFAULT_WITH_TAGGER = "units"


#: What the ``tagger`` option of the manipulations that read each frame's phone does.
TAGGER_HELP = ("each frame's phone from the model folder's contextual tagger where it has one, else from the model's own "
               "posteriors (knn, select, units: the gate's phone; cells: the phone weights of the per-phone differences)")


@dataclass(frozen=True)
class Option:
    """One option of a manipulation: its type, default, the command line's help and, for a named choice, the
    names it takes (``()``: any value of its type)."""

    type: type
    default: object
    help: str
    choices: tuple = ()

    @classmethod
    def named(cls, default, help, words):
        """A named choice among the keys of ``words`` (choice -> what it does), its help ``help`` followed by each
        choice's words.

        Example
        -------
        >>> Option.named("a", "how", {"a": "one way", "b": "another"}).help
        'how: a: one way; b: another'
        """
        return cls(str, default, f"{help}: " + "; ".join(f"{name}: {said}" for name, said in words.items()),
                   choices=tuple(words))


#: How the frame-selecting manipulations overlap-add the frames they choose (their ``overlap`` option).
OVERLAPS = {
    "own": "each frame with its own phase, where it lies in its recording",
    "phase_vocoder": "phases carried on across repeated frames and jumps between recordings (identity phase locking)",
    "phase_vocoder_within": "phases carried on across repeated frames within a stretch of one recording, each jump "
                            "starting with its own",
    "phase_vocoder_overlapping": "as phase_vocoder_within, and across frames skipped within one recording while their "
                                 "windows overlap (a squeezed rendition)",
    "phase_vocoder_aligned": "as phase_vocoder_within, and each jump's frame moved by up to half a hop to where its "
                             "waveform continues the one before (no cancelling at the join)",
    "wsola": "each frame moved up to half a pitch period from its place to continue the waveform before it (WSOLA)",
}
OVERLAP = Option.named("own", "how the chosen frames are overlap-added", OVERLAPS)
#: ``units`` stretches whole renditions onto the source's phones: a repeated frame with its own phase restarts its
#: waveform every hop, a buzz at the frame rate that pitch trackers hear as an octave down; carried on within each
#: stretch, the median F0 came 0.5 semitone nearer the target's for no lost words (docs/RESULTS.md 6r); carried on
#: across the jumps between renditions too, DNSMOS rated it 0.07 higher on fresh unseen speakers for 0.2 phone
#: errors in a hundred (the quality rule, docs/RESULTS.md 6z).
UNITS_OVERLAP = replace(OVERLAP, default="phase_vocoder")
#: Frames chosen from several places overlap-add into a waveform whose spectrum is not theirs: partials cancel where
#: their phases disagree, at every join and repeated frame. The ``consistency`` option: how many Griffin-Lim
#: iterations, from the frames' own phases, make the frames and the waveform agree
#: (:meth:`speechbrain_fdnf.convert.FeatureInverter.consistent`).
CONSISTENCY_ITERATIONS = {"none": 0, "griffin_lim": 16}
CONSISTENCIES = {
    "none": "the frames overlap-added as they are",
    "griffin_lim": f"their phases moved by {CONSISTENCY_ITERATIONS['griffin_lim']} fast Griffin-Lim iterations from "
                   "their own until the waveform they make has their magnitudes",
}
CONSISTENCY = Option.named("none", "whether the overlap-added frames are made a consistent spectrogram", CONSISTENCIES)


def register(cls):
    """Class decorator: adds a :class:`Manipulation` subclass to :data:`REGISTRY` under its ``name``."""
    if cls.name in REGISTRY:
        raise ValueError(f"a manipulation named {cls.name!r} is already registered")
    REGISTRY[cls.name] = cls
    return cls


class Manipulation:
    """One way of changing an utterance's frames toward a target.

    Subclasses set ``name``, ``OPTIONS`` (option -> :class:`Option`), ``needs_references`` (audio of the
    target) and ``resynthesis`` (``"features"``: the new frames go through the converter's ``--method``;
    ``"frames"``: :meth:`frames` returns indices of reference frames, whose own STFT is overlap-added),
    and implement :meth:`frames`.
    """

    name = ""
    OPTIONS = {}
    needs_references = False
    resynthesis = "features"

    def __init__(self, **options):
        unknown = set(options) - set(self.OPTIONS)
        if unknown:
            raise ValueError(f"manipulation {self.name!r} takes no option {', '.join(map(repr, sorted(unknown)))} "
                             f"(its options: {', '.join(self.OPTIONS) or 'none'})")
        for key, option in self.OPTIONS.items():
            value = option.type(options.get(key, option.default))
            if option.choices and value not in option.choices:
                raise ValueError(f"manipulation {self.name!r}: option {key!r} must be one of {', '.join(option.choices)}, "
                                 f"got {value!r}")
            setattr(self, key, value)

    def get_params(self):
        """The options as set (scikit-learn's name for it): what a report row is named after."""
        return {key: getattr(self, key) for key in self.OPTIONS}

    def __repr__(self):
        return f"{type(self).__name__}(" + ", ".join(f"{k}={v!r}" for k, v in self.get_params().items()) + ")"

    def check(self, factor, target, references):
        """Refuses a call this manipulation cannot serve (a ``ValueError`` saying what is missing)."""
        if self.needs_references and references is None:
            raise ValueError(f"manipulation {self.name!r} works from audio of the target: give references (--enrol or --enrolment)")

    def frames(self, factorizer, feats, factor, target=None, source=None, references=None, wav=None):
        """The manipulated raw features of ``feats`` (or, for ``resynthesis == "frames"``, reference frame indices).
        ``wav``: the utterance as the converter analysed it (:meth:`SpeechFactorizer.analysed
        <speechbrain_fdnf.inference.SpeechFactorizer.analysed>`; ``feats`` are its features), which a manipulation
        that reads its codes takes instead, so that they are computed once per conversion."""
        raise NotImplementedError


@register
class Shift(Manipulation):
    """The paper's ``x' = f(f^-1(x) + mu_target - mu_source)`` (:meth:`SpeechFactorizer.manipulate`)."""

    name = "shift"
    OPTIONS = {"deviation": Option(float, 1.0, "share of each frame's deviation from its class mean kept (1: the "
                                                "paper's, 0: the target class mean)")}

    def check(self, factor, target, references):
        if target is None:
            raise ValueError("manipulation 'shift' needs a target: a class name, or an enrolled mean (--enrol)")

    def frames(self, factorizer, feats, factor, target=None, source=None, references=None, wav=None):
        return factorizer.manipulate(feats, factor, target, source=None if is_frame_level(factor) else source,
                                     deviation=self.deviation)


#: Where ``cells`` takes its per-phone differences (its ``space`` option).
CELL_SPACES = {
    "latent": "the f-DNF's codes, decoded by the flow",
    "features": "the log-Mel frames themselves, no flow (more of the words, a little less of the voice)",
}


@register
class Cells(Manipulation):
    """Per-phone differences from audio of the target, in the speaker's subspace (:meth:`SpeechFactorizer.transfer`)."""

    name = "cells"
    needs_references = True
    OPTIONS = {"shrink": Option(float, 5.0, "frames' worth of the overall mean in each phone's mean"),
               "tagger": Option(bool, False, TAGGER_HELP),
               "keep_phone": Option(bool, False, "leave the phone's subspace as it is: the per-phone difference moves "
                                                 "the speaker's subspace (and the residual) only, as the paper's shift "
                                                 "(fewer phone errors, but a new voice barely moves; off, the default "
                                                 "chosen on unseen valid speakers: the whole latent moves; "
                                                 "docs/RESULTS.md 6c)"),
               "space": Option.named("latent", "where the per-phone differences are taken", CELL_SPACES)}

    def frames(self, factorizer, feats, factor, target=None, source=None, references=None, wav=None):
        return factorizer.transfer(feats if wav is None else wav, factor, references, shrink=self.shrink, tagged=self.tagger,
                                   keep_phone=self.keep_phone, space=self.space)


@register
class Knn(Manipulation):
    """The mean of the nearest frames of the target's audio in the kept subspaces (:meth:`SpeechFactorizer.match`)."""

    name = "knn"
    needs_references = True
    OPTIONS = {"k": Option(int, 4, "neighbours averaged"),
               "gate": Option(bool, True, "match among the reference frames of the frame's own decoded phone only"),
               "tagger": Option(bool, True, TAGGER_HELP)}

    def frames(self, factorizer, feats, factor, target=None, source=None, references=None, wav=None):
        return factorizer.match(feats if wav is None else wav, factor, references, k=self.k, gate=self.gate,
                                tagged=self.tagger)


@register
class Select(Manipulation):
    """Real frames of the target's audio, chosen as ``knn`` matches but favouring runs of consecutive frames
    (:meth:`SpeechFactorizer.select`); their own STFT is overlap-added (or, with ``own_audio`` off, their
    log-Mel frames are heard through the converter's method)."""

    name = "select"
    needs_references = True
    OPTIONS = {"candidates": Option(int, 8, "reference frames considered per frame"),
               "continuity": Option(float, 1.0, "cost of a jump between reference frames (0: the nearest frame)"),
               "gate": Option(bool, True, "select among the reference frames of the frame's own decoded phone only"),
               "tagger": Option(bool, True, TAGGER_HELP),
               "context": Option(float, 0.0, "with the gate, the cost of a reference frame whose neighbouring phones "
                                             "differ from the frame's (the continuity's unit; 0: context unseen)"),
               "overlap": OVERLAP,
               "consistency": CONSISTENCY,
               "own_audio": Option(bool, True, "overlap-add the chosen frames' own audio; off: their log-Mel frames "
                                               "become the new features, heard through --method (gain keeps the "
                                               "source's excitation; world moves its F0 to the target's register)")}

    @property
    def resynthesis(self):
        return "frames" if self.own_audio else "features"

    def check(self, factor, target, references):
        if references is None or is_frame_level(factor):
            raise ValueError(f"manipulation {self.name!r} resynthesises real frames of the target: it needs reference "
                             "audio of the target (--enrol) and an utterance-level factor such as the speaker")

    def frames(self, factorizer, feats, factor, target=None, source=None, references=None, wav=None):
        return factorizer.select(feats if wav is None else wav, factor, references, candidates=self.candidates,
                                 continuity=self.continuity, gate=self.gate, tagged=self.tagger, context=self.context,
                                 features=not self.own_audio)


#: What ``units`` hears in a phone the target's audio lacks (its ``fallback`` option; the audio of all but the first:
#: :func:`speechbrain_fdnf.convert.fallback_audio`). The default, ``cells_features``: the source's own words there, in
#: a voice moved toward the target's and at its pitch; chosen on fresh unseen speakers by the quality rule (DNSMOS
#: 0.07 higher, 1.9 fewer phone errors in a hundred, as often verified; docs/RESULTS.md 6w).
FALLBACKS = {
    "nearest": "the nearest frames of any phone of the target",
    "source": "the source's own frames (its words, and its voice)",
    "source_f0": "the source's own frames with F0 moved to the target's register by WORLD (its words, its formants)",
    "cells": "the source's frames converted by cells with F0 moved to the target's register (WORLD in voiced frames)",
    "cells_features": "as cells, its per-phone differences taken in the log-Mel frames (no flow)",
}


#: The unvoiced consonants of the 39 folded TIMIT phones (ARPAbet, as CMUdict spells them too): bursts, frication
#: and aspiration, where a phone is told by its timing and noise and a voice has no pitch or formants of its own.
UNVOICED_CONSONANTS = ("p", "t", "k", "f", "th", "s", "sh", "ch", "hh")
#: Where ``units`` takes the unvoiced consonants from (its ``consonants`` option).
CONSONANT_SOURCES = {
    "target": "renditions by the target, as every other phone",
    "source": "the source's own frames, heard as its fallback hears a phone the target's audio lacks (the default "
              "fallback: moved toward the target's voice): the target's voice carried by the voiced phones",
}

#: The tagger's mean posterior of a run's phone under which ``units --unsure fallback`` does not give the run a
#: rendition of that phone: fixed before any run at one half (the tagger finds the phone less likely than not).
UNSURE_BELOW = 0.5
#: What ``units`` hears where the tagger is unsure of a phone (its ``unsure`` option).
UNSURE_PHONES = {
    "target": "the target's rendition of the phone the tagger names, as everywhere",
    "fallback": "the source's own frames through the fallback, as a phone the target's audio lacks: a wrong rendition "
                "is a phone error, the source's frames keep whichever phone it is",
}


@register
class Units(Manipulation):
    """Real frames of the target's audio, a whole phone at a time: each phone of the source takes one rendition of
    that phone by the target, stretched onto its length (:meth:`SpeechFactorizer.select_units`); their own STFT is
    overlap-added."""

    name = "units"
    needs_references = True
    resynthesis = "frames"
    OPTIONS = {"join": Option(float, 1.0, "cost of two consecutive phones taken from places that do not follow each "
                                          "other in the target's audio (the unit: the median nearest distance)"),
               "neighbours": Option(float, 1.0, "cost of a rendition heard between other neighbouring phones"),
               "duration": Option(float, 1.0, "cost per unit of |log(length ratio)| between a phone and its rendition"),
               "tagger": Option(bool, True, TAGGER_HELP),
               "overlap": UNITS_OVERLAP,
               "consistency": CONSISTENCY,
               "fallback": Option.named("cells_features", "what a phone the target's audio lacks is heard as", FALLBACKS),
               "joins": Option.named("fixed", "how a join costs", UNIT_JOINS),
               "intonation": Option.named("ignored", "the pitch of the renditions", UNIT_INTONATIONS),
               "stretch": Option.named("uniform", "how a rendition fits its phone's length", UNIT_STRETCHES),
               "consonants": Option.named("target", f"where the unvoiced consonants ({' '.join(UNVOICED_CONSONANTS)}) "
                                                    "come from", CONSONANT_SOURCES),
               "neighbour_distance": Option.named("identity", "how unlike two neighbouring phones are",
                                                  UNIT_NEIGHBOUR_DISTANCES),
               "unsure": Option.named("target", f"a phone the tagger names with a mean posterior under "
                                                f"{UNSURE_BELOW:g} over its run", UNSURE_PHONES)}

    def check(self, factor, target, references):
        Select.check(self, factor, target, references)
        for option, value in (("consonants", "source"), ("unsure", "fallback")):
            if getattr(self, option) == value and self.fallback == "nearest":
                raise ValueError(f"units: {option} {value!r} are heard through the fallback, and fallback 'nearest' "
                                 "hears no source frames: choose another fallback")

    def frames(self, factorizer, feats, factor, target=None, source=None, references=None, wav=None):
        return factorizer.select_units(wav, factor, references, join=self.join, neighbours=self.neighbours,
                                       duration=self.duration, tagged=self.tagger, source_fallback=self.fallback != "nearest",
                                       joins=self.joins, intonation=self.intonation, stretch=self.stretch,
                                       source_phones=UNVOICED_CONSONANTS if self.consonants == "source" else (),
                                       neighbour_distance=self.neighbour_distance,
                                       confident=UNSURE_BELOW if self.unsure == "fallback" else 0.0)


def build(name, **options):
    """The registered manipulation ``name`` with ``options`` (a ``ValueError`` naming what is unknown)."""
    if name not in REGISTRY:
        raise ValueError(f"manipulation must be one of {', '.join(REGISTRY)} (or auto), got {name!r}")
    return REGISTRY[name](**options)


def resolve(name, with_references, tagged=False):
    """``auto`` as what it stands for: with audio of the target, :data:`DEFAULT_WITH_TAGGER` where ``tagged`` (the
    model folder has a contextual phone tagger and the factor is utterance-level), else :data:`DEFAULT_WITH_AUDIO`;
    without audio of the target, ``shift``.

    Example
    -------
    >>> resolve("auto", True), resolve("auto", True, tagged=True), resolve("auto", False, tagged=True)
    ('cells', 'units', 'shift')
    >>> resolve("knn", True, tagged=True)
    'knn'
    """
    if name == "auto":
        if not with_references:
            return "shift"
        return DEFAULT_WITH_TAGGER if tagged else DEFAULT_WITH_AUDIO
    return name


def serves_tagged_default(factorizer, factor):
    """Whether ``auto`` with audio of the target is :data:`DEFAULT_WITH_TAGGER` for this model and factor: the model
    folder has a contextual phone tagger (``factorizer.tagger``) and ``factor`` is utterance-level."""
    return factorizer.tagger is not None and not is_frame_level(factor)


def split_options(options):
    """``{manipulation name: its options}`` of flat keyword options (``k``, ``shrink``, ...): each option goes to
    every manipulation that declares it (``gate`` to ``knn`` and ``select``)."""
    return {name: {key: value for key, value in options.items() if key in cls.OPTIONS} for name, cls in REGISTRY.items()}


def all_options():
    """Every option of every registered manipulation, once: ``{option: (Option, [manipulation names])}``."""
    listed = {}
    for name, cls in REGISTRY.items():
        for key, option in cls.OPTIONS.items():
            listed.setdefault(key, (option, []))[1].append(name)
    return listed


__all__ = ["CELL_SPACES", "CONSISTENCIES", "CONSISTENCY_ITERATIONS", "CONSONANT_SOURCES", "DEFAULT_WITH_AUDIO",
           "DEFAULT_WITH_TAGGER", "FALLBACKS", "OVERLAPS", "REGISTRY", "UNVOICED_CONSONANTS",
           "Manipulation", "Option", "all_options", "build", "register", "resolve", "serves_tagged_default",
           "split_options"]
