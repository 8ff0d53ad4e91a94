"""Conversion judged as the field judges it: whole converted utterances, by judges the project never trains.

Speaker conversion is run through the converter's own code
(:func:`speechbrain_fdnf.convert.convert`, the path a user takes) on seeded trials, and
every converted utterance is judged by

* a speaker encoder trained on real speech (:class:`~speechbrain_fdnf.evaluation.judges.SpeakerEncoderJudge`):
  cosine to the target's and to the source's enrolment, whether it is closer to the target,
  whether it passes as the target at the equal-error threshold of real trials, and the EER between
  converted-as-target and real-target trials (50 %: the judge cannot tell them apart);
* the model's own speaker embedding (the mean of the speaker subspace), for comparison;
* two phone recognizers (:class:`~speechbrain_fdnf.evaluation.judges.CTCPhoneJudge`,
  :class:`~speechbrain_fdnf.evaluation.judges.PocketsphinxPhoneJudge`): phone error rate
  against the source's reference phones (the words must stay);
* the output's median F0 against the target's, in semitones;
* with ``conversion_quality``, DNSMOS's overall quality (:class:`~speechbrain_fdnf.evaluation.judges.QualityJudge`),
  read against the copy-synthesis and real-reading rows.

Blocks of trials, each speaker's utterances split (seeded) into three disjoint lists:
``references`` (the converter's audio of the target), ``enrolment`` (the judge's) and
``readings`` (converted as sources, judged as the real target's readings):

* ``test speakers``: any-to-any conversion between speakers no model saw, the target given by
  its references only (3 / 3 / the rest of each speaker's test utterances);
* ``training speakers``: held-out (or valid) utterances converted to another training speaker,
  the target given by name to the shift and by 3 of its training utterances to matching;
  2 other training utterances enrol it with the judge;
* ``valid speakers``: as the test block, between the test speakers of a corpus prepared apart
  (``conversion_valid_speakers``; an embedded corpus synthesized with another seed), scored only
  with the valid split: settings are chosen on voices no model saw without reading the test speakers.

Rows that frame the numbers: copy-synthesis (the gain path with no change, and frame selection
from the source's own references), the real target's readings, and the frame-perfect rows
(the target's own reading of the same sentence, aligned to the source by phone segments: the
best any frame-by-frame conversion with the source's durations can do, through either
resynthesis).

Authors
 * speechbrain-fdnf developers
"""

import copy
import logging
import random
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

import numpy as np
import soundfile
import torch

from speechbrain_fdnf.convert import PITCH_METHODS, FeatureInverter, convert
from speechbrain_fdnf.evaluation.config import (
    CONVERSION_BLOCKS,
    CONVERSION_REFERENCES,
    TEST_SPEAKERS,
    TRAINING_SPEAKERS,
    VALID_SPEAKERS,
)
from speechbrain_fdnf.evaluation.formatting import fmt
from speechbrain_fdnf.manipulations import DEFAULT_WITH_AUDIO, REGISTRY, build, resolve, serves_tagged_default
from speechbrain_fdnf.data.alignment import aligned_frames, reads_in_parallel
from speechbrain_fdnf.data.audio import as_written
from speechbrain_fdnf.evaluation.judges import JUDGE_EXTRA, PhoneErrorCounter, eer_threshold, equal_error_rate, spoken_phones
from speechbrain_fdnf.evaluation.listening import record_example, write_page
from speechbrain_fdnf.files import hop_samples, prepared_split_path, read_prepared_split
from speechbrain_fdnf.pitch import DEFAULT_F0_TRACKER, FAR_REGISTER_SEMITONES, world_resynthesis
from speechbrain_fdnf.validation import InputError, InputWarning

logger = logging.getLogger(__name__)

#: The blocks of trials, in the report's order.
BLOCKS = CONVERSION_BLOCKS
#: Utterances per speaker given to the converter and to the judge's enrolment (test speakers; training
#: speakers: 3 training utterances to the converter, the other training utterances to the judge).
REFERENCES, ENROLMENT = CONVERSION_REFERENCES, 3
#: Row names every report has (the contract of ``results.json``'s ``conversion.rows``).
COPY, COPY_SELECT, REAL = "copy-synthesis (gain path, no change)", "copy-synthesis (select from own audio)", "real target reading"
PERFECT_GAIN, PERFECT_SELECT = "frame-perfect (target's aligned frames, gain)", "frame-perfect (target's aligned frames, select)"
DEFAULT = "converter default"
COPY_WORLD = "copy-synthesis (WORLD, no change)"


def world_row_names(tracker=DEFAULT_F0_TRACKER, method="world"):
    """``(copy-synthesis row, default row)`` of a path through WORLD (``method``: ``world``, or
    ``world_voiced``, WORLD in the voiced frames only) with F0 by ``tracker``: the converter's default
    tracker keeps the plain names, another adds ``, F0 by <tracker>``.

    Example
    -------
    >>> world_row_names("harvest")[0]
    'copy-synthesis (WORLD, no change), F0 by harvest'
    >>> world_row_names(method="world_voiced")[1]
    "converter default via WORLD in voiced frames, gain elsewhere (F0 to the target's register)"
    """
    by = "" if tracker == DEFAULT_F0_TRACKER else f", F0 by {tracker}"
    if method == "world":
        return COPY_WORLD + by, f"{DEFAULT} via WORLD (F0 to the target's register{by})"
    if method == "world_voiced_far":
        far = f"registers over {FAR_REGISTER_SEMITONES:g} semitones apart"
        return (f"copy-synthesis (WORLD in voiced frames where the {far}, no change: the gain path){by}",
                f"{DEFAULT} via WORLD in voiced frames where the {far}, gain otherwise (F0 to the target's "
                f"register{by})")
    return (f"copy-synthesis (WORLD in voiced frames, gain elsewhere, no change){by}",
            f"{DEFAULT} via WORLD in voiced frames, gain elsewhere (F0 to the target's register{by})")


@dataclass
class Material:
    """One speaker's utterances (prepared entries) in three disjoint lists."""

    references: List[dict]
    enrolment: List[dict]
    readings: List[dict]


@dataclass
class Trial:
    """One conversion: a reading of ``source`` spoken by ``target``; ``parallel``: the target's own reading of
    the same sentence (not in its enrolment), where it has one."""

    source: dict
    target: str
    parallel: dict = None
    target_gender: str = ""

    @property
    def same_gender(self):
        return self.source["gender"] == self.target_gender


@dataclass
class Block:
    """The trials of one block and the speakers' material."""

    name: str
    material: Dict[str, Material]
    trials: List[Trial] = field(default_factory=list)
    by_name: bool = False  # the converter knows the targets by name (training speakers)
    skipped: Dict[str, str] = field(default_factory=dict)  # speakers left out as targets, and why


def split_material(entries, seed, references=REFERENCES, enrolment=ENROLMENT):
    """``{speaker: Material}`` of prepared entries, each speaker's utterances shuffled with ``seed`` (``references``
    for the converter, ``enrolment`` for the judge, the rest as readings; at least one reading).

    Example
    -------
    >>> entries = {f"S{i}_{j}": {"speaker": f"S{i}", "wav": f"{i}{j}.wav"} for i in range(2) for j in range(8)}
    >>> material = split_material(entries, seed=1)
    >>> [len(part) for part in (material["S0"].references, material["S0"].enrolment, material["S0"].readings)]
    [3, 3, 2]
    >>> few = split_material({key: entries[key] for key in list(entries)[:6]}, seed=1)["S0"]  # 6 utterances
    >>> [len(part) for part in (few.references, few.enrolment, few.readings)]
    [2, 3, 1]
    """
    by_speaker = {}
    for key in sorted(entries):
        by_speaker.setdefault(entries[key]["speaker"], []).append(entries[key])
    material = {}
    for speaker, items in by_speaker.items():
        items = list(items)
        random.Random(f"{seed}-{speaker}").shuffle(items)
        # a speaker with few utterances gives up references first, then enrolment: one reading is left
        given = min(references, (len(items) - 1) // 2)
        enrolled = min(enrolment, len(items) - 1 - given)
        material[speaker] = Material(items[:given], items[given:given + enrolled], items[given + enrolled:])
    return material


def training_material(train, readings, seed, references=REFERENCES):
    """``{speaker: Material}`` of training speakers: ``references`` of their training utterances for the
    converter, the other training utterances for the judge, their ``readings`` (held-out or valid) as sources."""
    by_speaker, material = {}, {}
    for key in sorted(train):
        by_speaker.setdefault(train[key]["speaker"], []).append(train[key])
    for speaker, items in by_speaker.items():
        random.Random(f"{seed}-{speaker}").shuffle(items)
        given = min(references, len(items) - 1)  # at least one training utterance enrols the speaker
        own = sorted((entry for entry in readings.values() if entry["speaker"] == speaker), key=lambda e: e["wav"])
        material[speaker] = Material(items[:given], items[given:], own)
    return {speaker: item for speaker, item in material.items() if item.readings and item.enrolment}


def draw_trials(material, count, seed):
    """``count`` seeded trials: sources cycle through the speakers (in a shuffled order) and their readings;
    even trials go to a speaker of the source's gender, odd ones to the other gender; among the candidates,
    speakers with a parallel reading of the source's sentence (outside their enrolment) are preferred."""
    rng = random.Random(seed)
    speakers = sorted(material)
    rng.shuffle(speakers)
    gender = {speaker: item.readings[0]["gender"] for speaker, item in material.items()}
    trials = []
    for index in range(count):
        speaker = speakers[index % len(speakers)]
        readings = material[speaker].readings
        source = readings[(index // len(speakers)) % len(readings)]
        same = index % 2 == 0
        candidates = [other for other in sorted(material) if other != speaker and (gender[other] == gender[speaker]) == same]
        if not candidates:
            continue
        parallel = {other: next((entry for entry in material[other].readings + material[other].references
                                 if reads_in_parallel(source, entry)), None) for other in candidates}
        preferred = [other for other in candidates if parallel[other] is not None] or candidates
        target = rng.choice(preferred)
        trials.append(Trial(source, target, parallel[target], target_gender=gender[target]))
    return trials


def valid_speaker_entries(folder, *corpus_splits):
    """The entries of the ``test`` split of ``folder`` (``conversion_valid_speakers``): speakers to choose settings
    on. A missing folder is an error saying how to make one; one that shares a recording with ``corpus_splits``
    (the corpus's own prepared splits: the test speakers above all) is refused, so that no setting is ever
    chosen on the test speakers by way of this block. A speaker's name the corpus also has is only warned
    about: corpora synthesized with other seeds draw names from the same pool for other voices.

    Example
    -------
    >>> valid_speaker_entries(getfixture("tmp_path"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: conversion_valid_speakers: ... has no test.json; make speakers apart ...
    """
    if not prepared_split_path(folder, "test").exists():
        raise FileNotFoundError(
            f"conversion_valid_speakers: {folder} has no test.json; make speakers apart from the training and test "
            f"speakers, e.g. python -m speechbrain_fdnf.corpus.synthesize <corpus> --seed 4321 --train-speakers 7 "
            f"--test-speakers 24, then python recipes/TIMIT/timit_prepare.py <corpus> {folder}")
    entries = read_prepared_split(folder, "test")
    wavs = {Path(entry["wav"]).resolve() for split in corpus_splits for entry in split.values()}
    shared = sorted({entry["speaker"] for entry in entries.values() if Path(entry["wav"]).resolve() in wavs})
    if shared:
        raise ValueError(f"conversion_valid_speakers: {folder}'s test speakers {shared[:5]} are the corpus's own "
                         "(training or test) recordings: choose settings on speakers apart from both")
    names = {entry["speaker"] for split in corpus_splits for entry in split.values()}
    same_names = sorted({entry["speaker"] for entry in entries.values()} & names)
    if same_names:
        logger.warning("conversion_valid_speakers: %s has speakers named as the corpus's own (%s), with other "
                       "recordings: taken as other voices", folder, ", ".join(same_names[:5]))
    return entries


def valid_speaker_block(factorizer, prepared, count, seed):
    """The valid speakers' block of ``count`` trials between the test speakers of the prepared corpus ``prepared``
    (speakers apart from the model's), drawn as an evaluation with ``conversion_valid_speakers`` draws it, the
    targets ``factorizer``'s converter would refuse left out: what the diagnostic scripts in ``benchmarks/`` convert."""
    return build_blocks({VALID_SPEAKERS: read_prepared_split(prepared, "test")}, count, seed, [VALID_SPEAKERS],
                        enrolment_speech=enrolment_problem(factorizer))[0]


def build_blocks(utterances, count, seed, names=BLOCKS, enrolment_speech=None, references=REFERENCES):
    """The blocks of ``names`` (:data:`BLOCKS`) that the prepared ``utterances`` allow: ``test`` entries give the
    test block, ``train`` with ``heldout`` (the scored split) the training block, ``valid speakers`` entries
    (speakers apart from training and test, for choosing settings) the valid speakers' block.

    ``enrolment_speech`` (a function of a speaker's reference entries, returning ``None`` when they are
    enough to convert to, else why not) leaves out, before any trial is drawn, the speakers the converter
    would refuse as targets; they are counted in each block's ``skipped`` (speaker -> why). ``references``:
    utterances of each target for the converter (fewer where a speaker has too few, :func:`split_material`).
    """
    def unseen_speakers(entries):  # any to any between speakers no model saw
        material = split_material(entries, seed, references)
        return {speaker: item for speaker, item in material.items() if item.readings and item.enrolment}

    blocks = []
    if utterances.get("test"):
        blocks.append(Block(TEST_SPEAKERS, unseen_speakers(utterances["test"])))
    if utterances.get("train") and utterances.get("heldout"):
        blocks.append(Block(TRAINING_SPEAKERS, training_material(utterances["train"], utterances["heldout"], seed, references),
                            by_name=True))
    if utterances.get(VALID_SPEAKERS):
        blocks.append(Block(VALID_SPEAKERS, unseen_speakers(utterances[VALID_SPEAKERS])))
    blocks = [block for block in blocks if block.name in names]
    for block in blocks:
        if enrolment_speech is not None:
            problems = {speaker: enrolment_speech(item.references) for speaker, item in block.material.items()}
            block.skipped = {speaker: problem for speaker, problem in problems.items() if problem}
            block.material = {speaker: item for speaker, item in block.material.items() if speaker not in block.skipped}
            for speaker, problem in block.skipped.items():
                logger.warning("Conversion, %s: speaker %s left out as a target (%s)", block.name, speaker, problem)
        block.trials = draw_trials(block.material, count, seed) if len(block.material) > 1 else []
    return [block for block in blocks if block.trials]


def enrolment_problem(factorizer):
    """A function of reference entries: ``None`` when ``factorizer`` takes them as an enrolment set (each
    with speech, together ``audio_check.min_enrol_speech`` seconds of it), else the refusal's message."""

    def problem(entries):
        try:
            with warnings.catch_warnings():  # a weak but usable set is not a reason to leave a speaker out
                warnings.simplefilter("ignore", InputWarning)
                factorizer.checked_references([entry["wav"] for entry in entries])
        except InputError as error:
            return str(error)
        return None

    return problem


def slug(name):
    """A file-name-safe form of a row name."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def median_f0(wav, sample_rate):
    """The median F0 (Hz) over the voiced frames of a waveform, by Praat's autocorrelation pitch (60-400 Hz;
    ``praat-parselmouth``, the judge extra): a tool independent of the converter's WORLD analysis, and one
    that leaves unvoiced frames and silence out (torchaudio's ``detect_pitch_frequency``, the judge before,
    gives every frame a pitch, so its median read a real reading 1.6 semitones from its own speaker's).
    0 where no frame is voiced."""
    try:
        import parselmouth
    except ImportError as err:
        raise ImportError(f"the F0 judge needs Praat ({err}); {JUDGE_EXTRA}") from err
    wav = torch.as_tensor(np.asarray(wav)).flatten().double().numpy()
    track = parselmouth.Sound(wav, sampling_frequency=sample_rate).to_pitch(pitch_floor=60.0, pitch_ceiling=400.0)
    voiced = track.selected_array["frequency"]
    voiced = voiced[voiced > 0]
    return float(np.median(voiced)) if len(voiced) else 0.0


class Converters:
    """The rows' conversions of one block: ``row name -> function(trial) -> waveform`` for a factorizer.

    Arguments
    ---------
    factorizer : SpeechFactorizer
        The model whose converter options all get rows (the f-DNF).
    block : Block
        The trials' material.
    config : EvaluationConfig
        ``conversion_continuity``, ``conversion_candidates``, ``knn_k``.
    """

    def __init__(self, factorizer, block, config):
        self.factorizer, self.block, self.config = factorizer, block, config
        self.inverter = FeatureInverter(factorizer.hparams.compute_features)
        self.rate = factorizer.hparams.sample_rate
        self._audio, self._means, self._targets = {}, {}, {}

    def audio(self, entry):
        if entry["wav"] not in self._audio:
            self._audio[entry["wav"]] = self.factorizer.load_audio(entry["wav"]).cpu()
        return self._audio[entry["wav"]]

    def source(self, trial):
        """The trial's source as every row converts it: its recording, ``conversion_source_level_db`` louder (a
        recording at another level than the corpus's; 0: as recorded)."""
        level = self.config.conversion_source_level_db
        return self.audio(trial.source) * 10 ** (level / 20) if level else self.audio(trial.source)

    def references(self, speaker, count=None):
        """The converter's audio of ``speaker`` (its first ``count`` references; ``None``: all), analysed once for
        every trial toward it (:class:`~speechbrain_fdnf.target_audio.TargetAudio`), as a caller converting many
        utterances to one voice would. Too little speech to enrol is the converter's ``InputError``, on every ask."""
        if (speaker, count) not in self._targets:
            given = [self.audio(entry) for entry in self.block.material[speaker].references][:count]
            self._targets[speaker, count] = self.factorizer.target_audio(given)
        return self._targets[speaker, count]

    def target(self, factorizer, trial):
        """The shift's target: the class name (training speakers), or the mean code of the references."""
        if self.block.by_name:
            return trial.target
        key = (id(factorizer), trial.target)
        if key not in self._means:
            self._means[key] = factorizer.enrol(self.references(trial.target), "speaker")
        return self._means[key]

    def shift(self, factorizer, manipulation):
        """A manipulation toward the target's class (by name, or its enrolled mean), of ``factorizer``."""
        return lambda trial: convert(factorizer, self.source(trial), "speaker", self.target(factorizer, trial),
                                     manipulation=manipulation)

    def with_audio(self, manipulation, method="gain", references=None, f0_tracker=DEFAULT_F0_TRACKER):
        """A manipulation from the target's references (as the command line's ``--enrol``), made audio by
        ``method`` (:data:`~speechbrain_fdnf.convert.METHODS`; through WORLD with ``f0_tracker``). ``references``:
        only the first that many of them; a trial whose first ones hold too little speech to enrol (the
        converter refuses them) has no output."""

        def run(trial):
            try:
                return convert(self.factorizer, self.source(trial), "speaker", method=method,
                               references=self.references(trial.target, references), manipulation=manipulation,
                               f0_tracker=f0_tracker)
            except InputError as error:
                if references is None:  # the blocks enrol only speakers with enough speech in all their references
                    raise
                logger.info("Conversion: no output with %d reference(s) of %s: %s", references, trial.target, error)
                return None

        return run

    def copy_world(self, f0_tracker=DEFAULT_F0_TRACKER, method="world"):
        """The source through WORLD's analysis (F0 by ``f0_tracker``) and synthesis, nothing changed (its F0
        and envelope kept); ``method="world_voiced"``: in its voiced frames only, the source itself elsewhere;
        ``"world_voiced_far"``: the gain path's copy (a source's register is its own)."""
        if method == "world_voiced_far":
            return self.copy

        def run(trial):
            wav = self.source(trial)
            return world_resynthesis(wav, self.rate, None, None, f0_tracker=f0_tracker,
                                     unvoiced=wav if method == "world_voiced" else None)

        return run

    def copy(self, trial):
        feats = self.factorizer.features(self.source(trial))[:, self.factorizer.centre_bands].cpu()
        return self.inverter.apply_gain(self.source(trial), feats, feats)

    def copy_select(self, trial):
        return convert(self.factorizer, self.source(trial), "speaker", manipulation="select",
                       references=self.references(trial.source["speaker"]))

    def real(self, trial):
        """The target's reading that stands beside this trial (:meth:`real_entry`)."""
        return self.audio(self.real_entry(trial))

    def real_entry(self, trial):
        """The target's parallel reading of the source's sentence where it is one of its readings, else its first."""
        readings = self.block.material[trial.target].readings
        return trial.parallel if trial.parallel in readings else readings[0]

    def frame_perfect(self, select):
        """The source with every speech frame replaced by the target's aligned frame of the same sentence."""
        factorizer, centre = self.factorizer, self.factorizer.centre_bands
        hop = hop_samples(factorizer.hparams.compute_features)

        def run(trial):
            if trial.parallel is None:
                return None
            wav, reading = self.source(trial), self.audio(trial.parallel)
            feats, target = factorizer.features(wav).cpu(), factorizer.features(reading).cpu()
            matched = aligned_frames(trial.source, trial.parallel, len(feats), len(target), hop)
            if matched is None:
                return None
            mine, theirs = matched
            if select:
                spectra = self.inverter.stft(wav[None].float())[0]
                spectra[mine] = self.inverter.stft(reading[None].float())[0][theirs]
                return self.inverter.istft(spectra[None], sig_length=len(wav))[0]
            moved = feats.clone()
            moved[mine] = target[theirs]
            return self.inverter.apply_gain(wav, feats[:, centre], moved[:, centre])

        return run


class ConversionJudges:
    """The judges, loaded once: the speaker encoder, the phone recognizers, the model's own embedding and
    the quality judge (DNSMOS; ``None``: no quality column)."""

    def __init__(self, speaker, recognizers, own=None, quality=None):
        self.speaker, self.recognizers, self.own, self.quality = speaker, recognizers, own, quality


def evaluate_block(block, rows, judges, converters, examples=None, f0=True):
    """Judges every row's conversions of one block.

    Arguments
    ---------
    block : Block
        Trials and material.
    rows : dict
        Row name -> ``function(trial) -> waveform or None`` (None: no output for this trial).
    judges : ConversionJudges
        The judges.
    converters : Converters
        The block's conversions: they load the audio (at the model's rate), and their
        :meth:`Converters.real_entry` is the reading whose phones score the :data:`REAL` row.
    examples : Path, optional
        Where to write the first trials' outputs of every row as WAV files.
    f0 : bool
        Measure the outputs' median F0.

    Returns
    -------
    dict
        ``{"trials", "real_eer", "threshold", "rows": {row: metrics}}``; shares in 0-1, EER and PER in %.
    """
    rate = converters.rate

    def unit(vector):
        vector = np.asarray(vector, dtype=float)
        return vector / max(np.linalg.norm(vector), 1e-12)

    enrolled, own_enrolled, f0_of = {}, {}, {}
    for speaker, item in block.material.items():
        audio = [converters.audio(entry) for entry in item.enrolment]
        enrolled[speaker] = unit(np.mean([judges.speaker.embed_wav(wav.numpy(), rate) for wav in audio], axis=0))
        if judges.own is not None:
            own_enrolled[speaker] = np.mean([judges.own(wav) for wav in audio], axis=0)
        if f0:
            f0_of[speaker] = float(np.median([median_f0(wav, rate) for wav in audio]))
    own_centre = np.mean(list(own_enrolled.values()), axis=0) if own_enrolled else None
    own_enrolled = {speaker: unit(vector - own_centre) for speaker, vector in own_enrolled.items()}
    # real trials: every reading against every enrolment (the threshold, and the real side of the spoof EER)
    real_scores, real_same, real_target = [], [], []
    for speaker, item in block.material.items():
        for entry in item.readings:
            embedding = unit(judges.speaker.embed_wav(converters.audio(entry).numpy(), rate))
            for other, enrolment in enrolled.items():
                real_scores.append(float(embedding @ enrolment))
                real_same.append(other == speaker)
                if other == speaker:
                    real_target.append(real_scores[-1])
    real_eer, threshold = eer_threshold(real_scores, real_same)
    results = {"trials": len(block.trials), "real_eer": 100 * real_eer, "threshold": threshold, "rows": {}}
    scored = {}  # id of a row's function -> the row that scored it: a row sharing it (the default's twin) is copied
    for name, make in rows.items():
        if id(make) in scored:
            results["rows"][name] = copy.deepcopy(results["rows"][scored[id(make)]])
            continue
        scored[id(make)] = name
        scores = []
        counters = {judge: PhoneErrorCounter() for judge in judges.recognizers}
        for index, trial in enumerate(block.trials):
            wav = make(trial)
            if wav is None:
                continue
            wav = as_written(wav.detach().float().cpu())  # judged as the converter writes it
            embedding = unit(judges.speaker.embed_wav(wav.numpy(), rate))
            source = trial.source["speaker"]
            row = {"cos_target": float(embedding @ enrolled[trial.target]), "cos_source": float(embedding @ enrolled[source]),
                   "same_gender": trial.same_gender}
            if judges.own is not None:
                own = unit(judges.own(wav) - own_centre)
                row.update(own_cos_target=float(own @ own_enrolled[trial.target]),
                           own_cos_source=float(own @ own_enrolled[source]))
            if f0:
                row["f0_gap"] = abs(12 * np.log2(max(median_f0(wav, rate), 1.0) / max(f0_of[trial.target], 1.0)))  # 0: unvoiced
            if judges.quality is not None:
                row["dnsmos"] = judges.quality.scores(wav, rate)["ovrl"]
            scores.append(row)
            phones = spoken_phones((converters.real_entry(trial) if name == REAL else trial.source)["phones39"])
            for judge_name, judge in judges.recognizers.items():
                counters[judge_name].add(phones, judge(wav, rate))
            if examples is not None and index < 2:
                block_folder = Path(examples) / block.name.replace(" ", "_")
                folder = block_folder / slug(name)
                folder.mkdir(parents=True, exist_ok=True)
                converted = folder / f"{index}_{source}_to_{trial.target}.wav"
                soundfile.write(str(converted), wav.numpy(), rate)
                record_example(block_folder, dict(
                    row=name, index=index, source=trial.source["wav"], converted=converted, target=trial.target,
                    target_reading=converters.real_entry(trial)["wav"], cos_target=row["cos_target"],
                    cos_source=row["cos_source"], verified=row["cos_target"] >= threshold,
                    same_gender=trial.same_gender, f0_gap=row.get("f0_gap")))
        results["rows"][name] = summarise(scores, threshold, real_target, counters, own=judges.own is not None, f0=f0,
                                          quality=judges.quality is not None)
    return results


def summarise(scores, threshold, real_target, counters, own=True, f0=True, quality=False):
    """One row's numbers: means and shares over its trials, same- and cross-gender apart. Every row has the
    same keys, so that seeds aggregate; a row without outputs (no trial had a parallel reading) has
    ``trials`` 0 and ``nan`` elsewhere."""

    def mean(key, items):
        return float(np.mean([item[key] for item in items])) if items else float("nan")

    def shares(items):
        return {"trials": len(items), "cos_target": mean("cos_target", items), "cos_source": mean("cos_source", items),
                "closer_to_target": mean("closer", items), "verified_as_target": mean("verified", items)}

    for item in scores:
        item["closer"], item["verified"] = item["cos_target"] > item["cos_source"], item["cos_target"] >= threshold
    row = shares(scores)
    target = [item["cos_target"] for item in scores]
    row["spoof_eer"] = 100 * equal_error_rate(list(real_target) + target, [True] * len(real_target) + [False] * len(target)) \
        if target else float("nan")
    if own:
        row["own_cos_target"], row["own_cos_source"] = mean("own_cos_target", scores), mean("own_cos_source", scores)
        for item in scores:
            item["own_closer"] = item["own_cos_target"] > item["own_cos_source"]
        row["own_closer_to_target"] = mean("own_closer", scores)
    if f0:
        row["f0_gap_semitones"] = mean("f0_gap", scores)
    if quality:
        row["dnsmos_ovrl"] = mean("dnsmos", scores)
    for judge_name, counter in counters.items():
        row[judge_name] = 100 * counter.rate()
    row["same_gender"] = shares([item for item in scores if item["same_gender"]])
    row["cross_gender"] = shares([item for item in scores if not item["same_gender"]])
    return row


def load_judges(config, factorizer):
    """The judges of :func:`evaluate_block`: Resemblyzer, the CTC recognizer of ``config.phone_recognizer``
    (on ``factorizer``'s log-Mel frames), pocketsphinx, ``factorizer``'s own speaker embedding, and DNSMOS when
    ``config.conversion_quality``."""
    from speechbrain_fdnf.evaluation.judges import CTCPhoneJudge, PocketsphinxPhoneJudge, QualityJudge, SpeakerEncoderJudge

    centre = factorizer.centre_bands
    recognizer = CTCPhoneJudge(config.phone_recognizer, config.phone_recognizer_hparams,
                               features=lambda wav: factorizer.features(wav)[:, centre], device=config.device)
    independent = PocketsphinxPhoneJudge()
    recognizers = {"per_recognizer": lambda wav, rate: recognizer.phones(wav),
                   "per_independent": independent.phones}
    own = lambda wav: factorizer.factor_embedding(torch.as_tensor(wav).float(), "speaker").cpu().numpy()  # noqa: E731
    quality = QualityJudge() if config.conversion_quality else None
    return ConversionJudges(SpeakerEncoderJudge(config.device), recognizers, own, quality)


#: Yes/no options whose other setting gets a row beside a manipulation's first variant: ``own_audio`` (the chosen
#: frames' log-Mel through the gain path instead of their audio) and ``keep_phone`` (the difference in the phone's
#: subspace too, or not).
TWINNED_OPTIONS = ("own_audio", "keep_phone")
#: The options that name a choice (:attr:`~speechbrain_fdnf.manipulations.Option.choices`), each choice in a row's
#: words; a row names them only where they are not the manipulation's default, and the evaluation's
#: ``conversion_choices`` lists those that get a row beside a manipulation's first variant.
CHOICE_WORDS = {
    "overlap": {"own": "own phases", "phase_vocoder": "phase continued", "wsola": "waveforms aligned",
                "phase_vocoder_within": "phases carried within renditions",
                "phase_vocoder_overlapping": "phases carried across overlapping frames",
                "phase_vocoder_aligned": "phases carried within renditions, joins aligned"},
    "fallback": {"nearest": "nearest frames where the target lacks the phone",
                 "source": "source's frames where the target lacks the phone",
                 "source_f0": "source's frames at the target's F0 where the target lacks the phone",
                 "cells": "cells at the target's F0 where the target lacks the phone",
                 "cells_features": "cells in the frames at the target's F0 where the target lacks the phone"},
    "space": {"latent": "in the latent", "features": "in the log-Mel frames"},
    "joins": {"fixed": "every join alike", "spectral": "joins costed by their frames"},
    "intonation": {"ignored": "pitch unseen", "source": "source's intonation"},
    "stretch": {"uniform": "renditions fitted alike", "middle": "renditions fitted in the middle"},
    "consistency": {"none": "frames as overlap-added", "griffin_lim": "phases made consistent"},
    "consonants": {"target": "target's unvoiced consonants", "source": "source's unvoiced consonants"},
    "neighbour_distance": {"identity": "neighbours alike or not", "prior": "neighbours by their prior means"},
    "unsure": {"target": "renditions of every tagged phone", "fallback": "fallback where the tagger is unsure"},
}


def manipulation_variants(config, tagger=False):
    """``{manipulation name: [options, ...]}``: the rows each registered manipulation gets, from its defaults and
    the evaluation's sweeps (``conversion_shrink``, ``conversion_candidates``, ``conversion_continuity``,
    ``conversion_context``, ``knn_k``); a manipulation with a ``gate`` option also gets its first variant
    ungated, one with a ``deviation`` the target class mean itself (deviation 0), one with ``own_audio`` its
    chosen frames heard as features through the gain path, one with ``keep_phone`` its first variant with the other
    setting, one with an option of :data:`CHOICE_WORDS` its first variant with each other choice that
    ``conversion_choices`` lists for it; with ``tagger`` (the model folder has a
    contextual phone tagger), one with a ``tagger`` option its first variant with the other source of phones too,
    so that the tagger's share is measured on the same trials."""
    sweeps = {"shrink": list(config.conversion_shrink), "continuity": list(config.conversion_continuity),
              "candidates": [config.conversion_candidates], "k": [config.knn_k or 4],
              "context": list(config.conversion_context)}
    variants = {}
    for name, cls in REGISTRY.items():
        if config.conversion_manipulations and name not in config.conversion_manipulations:
            continue
        rows = [{}]
        for key in cls.OPTIONS:
            if key in sweeps:
                rows = [dict(row, **{key: value}) for row in rows for value in sweeps[key]]
        if tagger and "tagger" in cls.OPTIONS:
            rows.append(dict(rows[0], tagger=not cls.OPTIONS["tagger"].default))
        if "gate" in cls.OPTIONS:
            rows.append(dict(rows[0], gate=False))
        if "deviation" in cls.OPTIONS:
            rows.append(dict(rows[0], deviation=0.0))
        for key in TWINNED_OPTIONS:  # the first variant with the other setting of each yes/no option it has
            if key in cls.OPTIONS:
                rows.append(dict(rows[0], **{key: not cls.OPTIONS[key].default}))
        for key, option in cls.OPTIONS.items():  # the first variant with each listed other choice of its options
            rows += [dict(rows[0], **{key: other}) for other in config.conversion_choices.get(key, [])
                     if key in CHOICE_WORDS and other != option.default]
        variants[name] = rows
    return variants


def row_name(model, manipulation, tagger=False):
    """A report row's name: the model, the manipulation and its options (``f-DNF knn (k 4, gated)``); the source of
    the phones (``tagger`` or ``model's phones``) only where the model folder has a tagger and the phone is read."""
    params = manipulation.get_params()
    words = []
    for key, value in params.items():
        if key == "gate":
            words.append("gated" if value else "ungated")
        elif key == "tagger":
            if tagger and params.get("gate", True):
                words.append("tagger" if value else "model's phones")
        elif key == "own_audio":
            if not value:  # the chosen frames as features: named only where it is not the default
                words.append("as features")
        elif key in CHOICE_WORDS:
            if value != REGISTRY[manipulation.name].OPTIONS[key].default:  # named only where it is not the default
                words.append(CHOICE_WORDS[key][value])
        elif key == "keep_phone":
            words.append("phone subspace kept" if value else "whole latent")
        else:
            words.append(f"{key} {value:g}")
    return f"{model} {manipulation.name}" + (f" ({', '.join(words)})" if words else "")


def conversion_rows(models, main, converters, config):
    """``{row: function(trial)}``: the framing rows, every model's shift, and every variant of every registered
    manipulation (:func:`manipulation_variants`) for ``main``."""
    factorizer = models[main]
    default = build(resolve("auto", True, serves_tagged_default(factorizer, "speaker")))  # as convert() resolves it
    rows = {COPY: converters.copy, COPY_SELECT: converters.copy_select, REAL: converters.real,
            PERFECT_GAIN: converters.frame_perfect(select=False), PERFECT_SELECT: converters.frame_perfect(select=True),
            DEFAULT: converters.with_audio(default)}  # the converter's default given --enrol audio
    # through WORLD, F0 moved: its copy-synthesis, and the default of the manipulations that change features (a
    # manipulation that overlap-adds the target's own frames, as the default of a folder with a tagger, has no method)
    for method in PITCH_METHODS:
        if method not in config.conversion_methods:
            continue
        for tracker in config.conversion_f0_trackers:
            copy_row, default_row = world_row_names(tracker, method)
            rows[copy_row] = converters.copy_world(tracker, method)
            rows[default_row] = converters.with_audio(build(DEFAULT_WITH_AUDIO), method, f0_tracker=tracker)
    for name, other in models.items():
        if other is not factorizer:
            rows[row_name(name, build("shift"))] = converters.shift(other, build("shift"))
    tagger = factorizer.tagger is not None
    for name, variants in manipulation_variants(config, tagger).items():
        for options in variants:
            manipulation = build(name, **options)
            row = row_name(main, manipulation, tagger)
            if name == default.name and manipulation.get_params() == default.get_params():
                rows[row] = rows[DEFAULT]  # the same conversions: scored once (evaluate_block reuses them)
            else:
                rows[row] = converters.shift(factorizer, manipulation) if not manipulation.needs_references \
                    else converters.with_audio(manipulation)
            if options is variants[0] and manipulation.needs_references:  # how much audio of the target it needs
                for count in config.conversion_reference_counts:
                    rows[f"{row}, {count} of the {config.conversion_references} reference utterances"] = \
                        converters.with_audio(manipulation, references=count)
    return rows


def evaluate_conversion(models, utterances, config, seed):
    """The conversion results of one seed: ``{"blocks": {block: evaluate_block(...)}}``.

    Arguments
    ---------
    models : dict
        Display name -> ``SpeechFactorizer`` of every model with a speaker subspace.
    utterances : dict
        Prepared entries: ``train``, ``heldout`` (the scored split) and, for the test block, ``test``.
    config : EvaluationConfig
        ``conversion_*`` settings (``conversion_model``: the model whose every option gets a row).
    seed : int
        Seeds the trials.
    """
    main = config.conversion_model if config.conversion_model in models else next(iter(models))
    factorizer = models[main]
    judges = load_judges(config, factorizer)
    results = {"blocks": {}}
    blocks = build_blocks(utterances, config.conversion_utterances, seed, config.conversion_blocks,
                          references=config.conversion_references,
                          enrolment_speech=enrolment_problem(factorizer))
    if not blocks:  # e.g. only the test speakers asked for, while the valid split is scored (no test data then)
        logger.warning("Conversion: none of the blocks %s has trials with these data (scored split: %s)",
                       config.conversion_blocks, config.scored_split)
    for block in blocks:
        logger.info("Conversion: %s, %d trials", block.name, len(block.trials))
        converters = Converters(factorizer, block, config)
        rows = conversion_rows(models, main, converters, config)
        examples = Path(config.eval_folder, "conversions") if config.conversion_examples else None
        results["blocks"][block.name] = evaluate_block(block, rows, judges, converters, examples=examples,
                                                       f0=config.conversion_f0)
        results["blocks"][block.name]["skipped_speakers"] = len(block.skipped)
    if config.conversion_examples and results["blocks"]:
        logger.info("Conversion: listen at %s", write_page(Path(config.eval_folder, "conversions")))
    return results


def contract_rows(summary):
    """``{"block", "rows": {row: {metric: mean}}, "blocks": {...}}`` of aggregated conversion results: the rows of
    the first block (test speakers when scored on held-out data) that had outputs, as plain numbers, the
    shares in 0-1."""

    def plain(values):
        if isinstance(values, dict) and "mean" in values and "values" in values:
            return values["mean"]
        return {key: plain(value) for key, value in values.items()} if isinstance(values, dict) else values

    blocks = plain(summary["blocks"])
    first = next(iter(blocks), None)
    rows = {name: row for name, row in blocks[first]["rows"].items() if row["trials"] > 0} if first else {}
    return {"block": first, "rows": rows, "blocks": blocks}


def conversion_report(summary, config):
    """The report's conversion section: one table per block, then same- and cross-gender shares."""
    lines = ["## Conversion judged by independent judges (whole utterances, through the converter)", "",
             "Resemblyzer (a speaker encoder trained on real speech) hears each converted utterance: cosine to the "
             "target's and the source's enrolment, share closer to the target, share verified as the target at the "
             "equal-error threshold of real trials, and the EER between converted and real target trials (spoof EER; "
             "50 % = indistinguishable). Phone error rates (%) against the source's phones by the project's CTC "
             "recognizer (trained on real corpus audio) and by pocketsphinx's CMU en-us model (free phone decoding). "
             "F0 gap: the output's median F0 to the target's, in semitones. Own: the model's speaker embedding. DNSMOS: "
             "the overall quality (1-5) Microsoft's DNSMOS predicts from human ratings of real speech (read it against "
             "the copy-synthesis and real-reading rows).", ""]
    for name, block in summary["blocks"].items():
        skipped = block.get("skipped_speakers", {}).get("mean", 0)
        left_out = f"; {skipped:.0f} speakers left out as targets, too little speech to enrol" if skipped else ""
        lines += [f"### {name.capitalize()}: {block['trials']['mean']:.0f} trials (real trials: EER "
                  f"{block['real_eer']['mean']:.1f} %, threshold {block['threshold']['mean']:.3f}{left_out})", "",
                  "| row | verified | closer | cos target | cos source | spoof EER | PER recognizer | PER pocketsphinx "
                  "| F0 gap | own closer | DNSMOS |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        block_rows = {row: values for row, values in block["rows"].items() if values["trials"]["mean"] > 0}
        for row, values in block_rows.items():
            def get(key, signed=False):
                return fmt(values[key], signed) if key in values else "-"
            lines.append(f"| {row} | {get('verified_as_target')} | {get('closer_to_target')} | {get('cos_target')} | "
                         f"{get('cos_source')} | {get('spoof_eer')} | {get('per_recognizer')} | "
                         f"{get('per_independent')} | {get('f0_gap_semitones')} | {get('own_closer_to_target')} | "
                         f"{get('dnsmos_ovrl')} |")
        lines += ["", "| row | same-gender verified | same-gender closer | cross-gender verified | cross-gender closer |",
                  "|---|---|---|---|---|"]
        for row, values in block_rows.items():
            same, cross = values["same_gender"], values["cross_gender"]
            cells = [fmt(part[key]) if part["trials"]["mean"] > 0 else "-" for part in (same, cross)
                     for key in ("verified_as_target", "closer_to_target")]
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
        lines.append("")
    if config.conversion_examples:
        lines += [f"Examples (the first two trials of every row), to listen to side by side with the source and the "
                  f"target's real reading: `{Path(config.eval_folder, 'conversions', 'index.html')}`", ""]
    return lines
