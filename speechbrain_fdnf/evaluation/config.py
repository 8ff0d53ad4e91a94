"""The evaluation's settings: one typed config, every default in one place, unknown keys an error.

Authors
 * speechbrain-fdnf developers
"""

from dataclasses import dataclass, field, fields
from typing import Dict, List

import torch

from speechbrain_fdnf.factors import PAPER_FACTORS
from speechbrain_fdnf.pitch import DEFAULT_F0_TRACKER, F0_TRACKERS

#: The conversion section's blocks of trials, in the report's order (:mod:`~speechbrain_fdnf.evaluation.conversion`).
#: The conversion blocks' names: the test speakers (scored), the training speakers and the unseen valid speakers
#: (chosen on: the valid split's blocks).
TEST_SPEAKERS, TRAINING_SPEAKERS, VALID_SPEAKERS = "test speakers", "training speakers", "valid speakers"
CONVERSION_BLOCKS = (TEST_SPEAKERS, TRAINING_SPEAKERS, VALID_SPEAKERS)

#: Reference utterances of each target the converter gets in every block of trials.
CONVERSION_REFERENCES = 3
#: The converter's ways of making audio (:data:`speechbrain_fdnf.convert.METHODS`) that the conversion
#: section can score (it has no Griffin-Lim rows).
CONVERSION_METHODS = ("gain", "world", "world_voiced", "world_voiced_far")
#: Gates of the matching rows (``knn_gates``) -> what their row names add: the phone inferred over a
#: window of frames, or decoded along the utterance (``ClassSequenceDecoder``); the speaker over the utterance.
GATES = {"window": "", "decoded": ", phones decoded"}
#: Splits the tables may score: heldout (reports) or valid (choosing settings).
SCORED_SPLITS = ("heldout", "valid")


@dataclass
class EvaluationConfig:
    """What ``recipes/TIMIT/evaluate.py`` reads from its yaml (``hparams/evaluate.yaml`` documents each key).

    Example
    -------
    >>> config = EvaluationConfig.from_dict({"output_root": "results", "models": {"NF": "hparams/nf.yaml"}})
    >>> config.knn_k, config.table_pairs(), config.eval_folder
    (4, [('phone', 'speaker'), ('speaker', 'phone')], 'results/evaluation')
    >>> EvaluationConfig.from_dict({"output_root": "results", "models": {}, "knn": 4})
    Traceback (most recent call last):
    ...
    ValueError: unknown evaluation setting(s) ['knn']; known: ...
    """

    output_root: str
    # display name -> model yaml, or {hparams: yaml, overrides: {...}, beyond_paper: bool}
    models: Dict[str, object] = field(default_factory=dict)
    eval_folder: str = ""
    seeds: List[int] = field(default_factory=lambda: [1234])
    scored_split: str = "heldout"
    train_missing: bool = True
    # train what is missing (the models when train_missing; the conversion section's phone judge) and stop without
    # evaluating: make demo trains the judge beside the flows this way
    train_only: bool = False
    train_overrides: Dict[str, object] = field(default_factory=dict)
    data_overrides: Dict[str, object] = field(default_factory=dict)
    # the posterior tables: (factor changed, factor that should stay)
    tables: List[List[str]] = field(default_factory=lambda: [list(PAPER_FACTORS), list(reversed(PAPER_FACTORS))])
    num_frames: int = 2000
    # the report's sections, in order (:data:`speechbrain_fdnf.evaluation.sections.SECTIONS`); empty: all of them
    sections: List[str] = field(default_factory=list)
    knn_k: int = 4
    knn_gates: List[str] = field(default_factory=list)
    knn_gate_smooth: int = 1
    deviation_scales: List[float] = field(default_factory=list)
    probe_hidden: int = 512
    probe_epochs: int = 8
    leakage_max_train: int = 20000
    tsne_classes: int = 6
    tsne_per_class: int = 80
    # the paper's implied setup: probes and targets over a seeded subset of this many training speakers (0: off)
    table_speakers: int = 0
    # utterance-level speaker tables over this many held-out utterances (0: off)
    utterance_tables: int = 0
    # utterance-level conversion judged by independent judges (:mod:`speechbrain_fdnf.evaluation.conversion`)
    conversion_utterances: int = 0
    conversion_model: str = "f-DNF"
    conversion_blocks: List[str] = field(default_factory=lambda: ["test speakers", "training speakers"])
    # a prepared folder whose test split holds speakers the models never saw and the test block never uses (an
    # embedded corpus synthesized with another seed): with scored_split valid, the block "valid speakers"
    # converts between them any to any, as the test block does between the test speakers (choosing settings
    # on unseen voices without reading the test speakers)
    conversion_valid_speakers: str = ""
    # the registered manipulations that get rows (empty: all of them)
    conversion_manipulations: List[str] = field(default_factory=list)
    conversion_candidates: int = 8
    conversion_continuity: List[float] = field(default_factory=lambda: [1.0])
    conversion_shrink: List[float] = field(default_factory=lambda: [5.0])
    conversion_context: List[float] = field(default_factory=lambda: [0.0])
    # options that name a choice, and the choices besides each manipulation's default that get a row beside its
    # first variant: how select and units overlap-add their frames (manipulations.OVERLAPS), what units hears
    # where the target's audio lacks a phone (manipulations.FALLBACKS)
    conversion_choices: Dict[str, List[str]] = field(
        default_factory=lambda: {"overlap": ["phase_vocoder"], "fallback": ["nearest"]})
    conversion_f0: bool = True
    # reference utterances of each target the converter gets (a speaker needs twice as many besides one
    # reading: the test speakers' 8 utterances give 3 at most)
    conversion_references: int = CONVERSION_REFERENCES
    # each trial's source this many dB louder before every row converts it (copy-synthesis too; the references and
    # real readings as recorded): a recording at another level than the corpus's
    conversion_source_level_db: float = 0.0
    # rows of each manipulation with audio of the target given only this many of its reference utterances
    # (fewer than conversion_references: how much audio of the target each needs)
    conversion_reference_counts: List[int] = field(default_factory=list)
    # ways of making audio beside the gain path: "world" adds WORLD's copy-synthesis and the default through
    # WORLD (F0 moved to the target's register; the world extra, pyworld); "world_voiced" the same with WORLD
    # in the voiced frames only; "world_voiced_far" that only where the registers lie far apart, else gain
    conversion_methods: List[str] = field(default_factory=lambda: ["gain"])
    # WORLD's F0 trackers that get the WORLD rows (speechbrain_fdnf.pitch.F0_TRACKERS; the converter's
    # default, dio, gives the rows their plain names, another adds ", F0 by <tracker>")
    conversion_f0_trackers: List[str] = field(default_factory=lambda: [DEFAULT_F0_TRACKER])
    # DNSMOS (speechmos) on every converted utterance: about 0.3 s each on one core
    conversion_quality: bool = True
    conversion_examples: bool = True
    phone_recognizer: str = ""
    # where the models and the judges run ("cpu", "cuda:0"); empty: CUDA when present (SpeechBrain's
    # infer_device, as a Brain chooses), else CPU. The probes and the frame caches stay on the CPU.
    device: str = ""
    phone_recognizer_hparams: str = "hparams/phone_recognition.yaml"
    phone_recognizer_overrides: Dict[str, object] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, values):
        """The config of a loaded yaml (a dict); a key it does not know is an error naming it."""
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown evaluation setting(s) {unknown}; known: {sorted(known)}")
        config = cls(**values)
        config.check()
        return config

    def __post_init__(self):
        if not self.eval_folder:
            self.eval_folder = f"{self.output_root}/evaluation"
        if not self.phone_recognizer:
            self.phone_recognizer = f"{self.output_root}/phone_recognition"
        if not self.device:
            from speechbrain.utils.distributed import infer_device

            self.device = infer_device()

    def check(self):
        """Errors for values no evaluation can use."""
        if self.scored_split not in SCORED_SPLITS:
            raise ValueError(f"scored_split must be heldout or valid, got {self.scored_split!r}")
        from speechbrain_fdnf.manipulations import REGISTRY, all_options

        unknown = set(self.conversion_manipulations) - set(REGISTRY)
        if unknown:
            raise ValueError(f"conversion_manipulations: unknown manipulation(s) {sorted(unknown)}; known: {list(REGISTRY)}")
        options = all_options()
        for key, listed in self.conversion_choices.items():
            known = options[key][0].choices if key in options else ()
            if not known or set(listed) - set(known):
                raise ValueError(f"conversion_choices: {key}: {listed}; " + (f"known: {list(known)}" if known else
                                 f"options that name a choice: {[k for k, (o, _) in options.items() if o.choices]}"))
        unknown_trackers = set(self.conversion_f0_trackers) - set(F0_TRACKERS)
        if unknown_trackers or not self.conversion_f0_trackers:
            raise ValueError(f"conversion_f0_trackers: {self.conversion_f0_trackers}; known: {list(F0_TRACKERS)}")
        unknown = set(self.conversion_methods) - set(CONVERSION_METHODS)
        if unknown:
            raise ValueError(f"conversion_methods: unknown method(s) {sorted(unknown)}; known: {list(CONVERSION_METHODS)}")
        try:
            torch.device(self.device)
        except RuntimeError as error:
            raise ValueError(f"device: {self.device!r} is not a torch device ({error})") from None
        if set(self.conversion_blocks) - set(CONVERSION_BLOCKS):
            raise ValueError(f"conversion_blocks: unknown block(s) "
                             f"{sorted(set(self.conversion_blocks) - set(CONVERSION_BLOCKS))}; known: {list(CONVERSION_BLOCKS)}")
        if VALID_SPEAKERS in self.conversion_blocks and not (self.conversion_valid_speakers and self.scored_split == "valid"):
            raise ValueError("conversion_blocks: the block 'valid speakers' needs conversion_valid_speakers (a prepared "
                             "folder of speakers apart from training and test) and scored_split: valid")
        if self.conversion_references < 1:
            raise ValueError(f"conversion_references must be at least 1, got {self.conversion_references}")
        if any(not 1 <= count < self.conversion_references for count in self.conversion_reference_counts):
            raise ValueError(f"conversion_reference_counts: each at least 1 and below the blocks' {self.conversion_references} "
                             f"reference utterances, got {self.conversion_reference_counts}")
        unknown = set(self.knn_gates) - set(GATES)
        if unknown:
            raise ValueError(f"knn_gates: unknown gate(s) {sorted(unknown)}; known: {list(GATES)}")

    def table_pairs(self):
        """``[(target, other), ...]``: the posterior tables."""
        return [tuple(pair) for pair in self.tables]

    def label_sets(self):
        """Every label set the tables, the probes and the t-SNE grid need, in a stable order."""
        names = list(PAPER_FACTORS)
        for pair in self.table_pairs():
            names += [name for name in pair if name not in names]
        return names

    def get(self, key, default=None):
        """``config.get(key)`` as on the dict the evaluation took before 0.5."""
        return getattr(self, key, default)

    def __getitem__(self, key):
        return getattr(self, key)
