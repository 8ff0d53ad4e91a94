"""Conversion judged by independent judges: the trials, the judges' arithmetic, and the judges on real audio."""

import itertools
import json

import numpy as np
import pytest
import torch
from conftest import without_package

from speechbrain_fdnf.evaluation import conversion
from speechbrain_fdnf.evaluation.config import EvaluationConfig
from speechbrain_fdnf.evaluation.judges import PhoneErrorCounter, PocketsphinxPhoneJudge, eer_threshold, spoken_phones
from speechbrain_fdnf.manipulations import DEFAULT_WITH_AUDIO, DEFAULT_WITH_TAGGER, build


def fake_entries(speakers=6, utterances=8, texts=4):
    """Prepared-looking entries: speakers of both genders, sentences shared between speakers."""
    entries = {}
    for s in range(speakers):
        for u in range(utterances):
            speaker = f"{'MF'[s % 2]}S{s}"
            entries[f"{speaker}_{u}"] = {"speaker": speaker, "gender": speaker[0], "wav": f"{speaker}_{u}.wav",
                                         "text": f"sentence {u % texts}", "starts": [0, 100], "ends": [100, 200],
                                         "phones39": ["sil", f"p{u % texts}"]}
    return entries


def test_trial_lists_are_disjoint_and_seeded():
    entries = fake_entries()
    material = conversion.split_material(entries, seed=3)
    for item in material.values():
        lists = [{entry["wav"] for entry in part} for part in (item.references, item.enrolment, item.readings)]
        assert [len(part) for part in lists] == [3, 3, 2]
        assert not (lists[0] & lists[1] or lists[0] & lists[2] or lists[1] & lists[2])  # disjoint
    trials = conversion.draw_trials(material, 12, seed=3)
    again = conversion.draw_trials(conversion.split_material(entries, seed=3), 12, seed=3)
    assert [(t.source["wav"], t.target) for t in trials] == [(t.source["wav"], t.target) for t in again]
    other = conversion.draw_trials(conversion.split_material(entries, seed=4), 12, seed=4)
    assert [(t.source["wav"], t.target) for t in trials] != [(t.source["wav"], t.target) for t in other]
    for index, trial in enumerate(trials):
        assert trial.target != trial.source["speaker"]
        assert trial.source in material[trial.source["speaker"]].readings  # sources are readings only
        assert trial.same_gender == (index % 2 == 0)  # same- and cross-gender alternate
        if trial.parallel is not None:  # the target's reading of the same sentence, never its enrolment
            assert trial.parallel["text"] == trial.source["text"] and trial.parallel["speaker"] == trial.target
            assert trial.parallel not in material[trial.target].enrolment
    assert sum(trial.parallel is not None for trial in trials) > len(trials) // 2  # parallel targets preferred


def test_training_speakers_are_converted_from_held_out_readings_and_enrolled_from_other_training_audio():
    train = fake_entries(utterances=5)
    heldout = {f"{key}_h": dict(entry, wav=entry["wav"] + ".h") for key, entry in fake_entries(utterances=2).items()}
    blocks = conversion.build_blocks({"train": train, "heldout": heldout}, 8, seed=1)
    assert [block.name for block in blocks] == ["training speakers"] and blocks[0].by_name
    for item in blocks[0].material.values():
        assert len(item.references) == 3 and len(item.enrolment) == 2
        assert all(entry["wav"].endswith(".h") for entry in item.readings)
        assert not {e["wav"] for e in item.references} & {e["wav"] for e in item.enrolment}


def test_valid_speakers_are_a_block_of_their_own_and_need_the_valid_split():
    test = fake_entries()
    apart = {f"{key}_v": dict(entry, wav=entry["wav"] + ".v", speaker=entry["speaker"] + "V") for key, entry in test.items()}
    blocks = conversion.build_blocks({"test": test, "valid speakers": apart}, 8, seed=1, names=["valid speakers"])
    assert [block.name for block in blocks] == ["valid speakers"] and not blocks[0].by_name
    longer = {f"{key}_{copy}": dict(entry, wav=f"{entry['wav']}.{copy}") for key, entry in apart.items() for copy in (1, 2)}
    (wide,) = conversion.build_blocks({"valid speakers": longer}, 8, seed=1, names=["valid speakers"], references=6)
    assert {len(item.references) for item in wide.material.values()} == {6}  # 16 utterances a speaker: 6 / 3 / 7
    trials = blocks[0].trials
    assert trials and all(t.source["wav"].endswith(".v") and t.target.endswith("V") for t in trials)
    for values, problem in (({"scored_split": "valid"}, "needs conversion_valid_speakers"),
                            ({"conversion_valid_speakers": "prepared_apart"}, "scored_split: valid")):
        with pytest.raises(ValueError, match=problem):
            EvaluationConfig.from_dict({"output_root": "", "models": {}, "conversion_blocks": ["valid speakers"], **values})
    EvaluationConfig.from_dict({"output_root": "", "models": {}, "conversion_blocks": ["valid speakers"],
                                "scored_split": "valid", "conversion_valid_speakers": "prepared_apart"})


def test_valid_speakers_apart_from_the_corpus_are_read_and_the_corpus_own_are_refused(tmp_path):
    from speechbrain_fdnf.files import write_json_atomic

    test = fake_entries()
    apart = {f"{key}_v": dict(entry, wav=entry["wav"] + ".v", speaker=entry["speaker"] + "V") for key, entry in test.items()}
    write_json_atomic(tmp_path / "test.json", apart)
    assert conversion.valid_speaker_entries(tmp_path, test) == apart
    write_json_atomic(tmp_path / "test.json", test)  # the corpus's own test speakers: never chosen on
    with pytest.raises(ValueError, match="the corpus's own"):
        conversion.valid_speaker_entries(tmp_path, {}, test)
    renamed = {key: dict(entry, speaker=entry["speaker"] + "V") for key, entry in test.items()}  # same recordings
    write_json_atomic(tmp_path / "test.json", renamed)
    with pytest.raises(ValueError, match="the corpus's own"):
        conversion.valid_speaker_entries(tmp_path, test)
    same_names = {key: dict(entry, wav=entry["wav"] + ".v") for key, entry in test.items()}  # other voices, same names
    write_json_atomic(tmp_path / "test.json", same_names)
    assert conversion.valid_speaker_entries(tmp_path, test) == same_names
    with pytest.raises(FileNotFoundError, match="timit_prepare.py"):
        conversion.valid_speaker_entries(tmp_path / "missing")


def test_world_rows_come_once_per_f0_tracker_and_unknown_trackers_are_refused():
    from unittest import mock

    config = EvaluationConfig.from_dict({"output_root": "", "models": {}, "conversion_manipulations": ["cells"],
                                         "conversion_methods": ["gain", "world", "world_voiced"],
                                         "conversion_f0_trackers": ["dio", "harvest"]})
    converters = mock.MagicMock()
    rows = conversion.conversion_rows({"f-DNF": mock.MagicMock(tagger=None)}, "f-DNF", converters, config)
    for method, tracker in itertools.product(("world", "world_voiced"), ("dio", "harvest")):
        copy_row, default_row = conversion.world_row_names(tracker, method)
        assert copy_row in rows and default_row in rows
        converters.copy_world.assert_any_call(tracker, method)
        assert any(call.kwargs.get("f0_tracker") == tracker and call.args[1:] == (method,)
                   for call in converters.with_audio.call_args_list)
    assert sum("WORLD" in row for row in rows) == 8  # a copy and a default per method and tracker
    assert conversion.world_row_names("dio")[0] == conversion.COPY_WORLD  # the default tracker: the plain names
    separate = mock.MagicMock()
    separate.with_audio.side_effect = lambda *args, **kwargs: mock.MagicMock()  # a new conversion per row
    gain_only = conversion.conversion_rows({"f-DNF": mock.MagicMock(tagger=None)}, "f-DNF", separate,
                                           EvaluationConfig.from_dict({"output_root": "", "models": {}}))
    assert not any("WORLD" in row for row in gain_only)
    # the registered manipulation with the default's options is the default's conversions, scored once
    default_twin = conversion.row_name("f-DNF", build(DEFAULT_WITH_AUDIO))
    assert gain_only[default_twin] is gain_only[conversion.DEFAULT]
    assert sum(make is gain_only[conversion.DEFAULT] for make in gain_only.values()) == 2
    # a folder with a contextual tagger: the default is the converter's for it (whole phones of the target)
    tagged = conversion.conversion_rows({"f-DNF": mock.MagicMock(tagger=object())}, "f-DNF", separate,
                                        EvaluationConfig.from_dict({"output_root": "", "models": {}}))
    assert tagged[conversion.row_name("f-DNF", build(DEFAULT_WITH_TAGGER), tagger=True)] is tagged[conversion.DEFAULT]
    with pytest.raises(ValueError, match="conversion_f0_trackers"):
        EvaluationConfig.from_dict({"output_root": "", "conversion_f0_trackers": ["yin"]})

def test_world_in_voiced_frames_only_takes_the_other_audio_where_the_tracker_hears_no_voice_or_d4c_no_period():
    pytest.importorskip("pyworld")
    from speechbrain.lobes.features import Fbank
    from speechbrain_fdnf.convert import FeatureInverter
    from speechbrain_fdnf.pitch import analyse_f0, periodic_f0, pyworld_module, world_resynthesis

    rate = 16000
    time = np.arange(rate) / rate
    wav = sum(np.sin(2 * np.pi * 140.0 * k * time) / k for k in range(1, 11)) * 0.1  # a voiced half second,
    wav[rate // 2:] = np.random.default_rng(0).normal(0, 0.02, rate // 2)  # then a voiceless hiss
    wav = torch.from_numpy(wav).float()
    matrix = FeatureInverter(Fbank(sample_rate=rate, n_mels=40)).matrix
    unchanged = torch.zeros(101, 40)
    other = torch.full_like(wav, 0.5)  # stands for the gain path's output
    plain = world_resynthesis(wav, rate, unchanged, matrix)
    mixed = world_resynthesis(wav, rate, unchanged, matrix, unvoiced=other)
    assert torch.equal(world_resynthesis(wav, rate, None, None), plain)  # no change given: the envelope as analysed
    # 10 ms frames; the tone voiced, much of the hiss not (DIO at its chosen speed, 4, hears a voice in 26 of
    # these 40 frames of white hiss, but voices fewer of the corpus's voiceless consonants than at speed 1)
    f0, times = analyse_f0(wav.numpy(), rate)
    assert (f0[10:45] > 0).all() and (f0[55:95] == 0).sum() > 10
    # WORLD's pulses where the tracker voices and D4C finds the frame periodic (D4C sends a voiced frame it
    # finds aperiodic to noise: aperiodicity 1 in every band)
    aperiodicity = pyworld_module().d4c(wav.double().numpy(), f0, times, rate)
    voiced = periodic_f0(f0, aperiodicity) > 0
    assert voiced[10:45].all() and ((f0 > 0) & ~voiced)[55:95].any()  # the hiss has frames of both kinds
    hop = rate // 100
    checked = {True: 0, False: 0}
    for frame in range(2, len(voiced) - 2):
        if voiced[frame - 2:frame + 3].all() or not voiced[frame - 2:frame + 3].any():  # a frame away from an edge
            expected = plain if voiced[frame] else other
            span = slice(frame * hop - hop // 2, frame * hop + hop // 2)
            assert torch.allclose(mixed[span], expected[span], atol=1e-5), frame
            checked[bool(voiced[frame])] += 1
    assert checked[True] > 20 and checked[False] > 3


def test_world_around_the_needed_frames_only_hears_there_as_over_the_whole_and_elsewhere_the_other_audio():
    pytest.importorskip("pyworld")
    from speechbrain.lobes.features import Fbank
    from speechbrain_fdnf.convert import FeatureInverter
    from speechbrain_fdnf.pitch import LogF0Statistics, SPAN_MARGIN, world_resynthesis

    rate = 16000
    time = np.arange(rate) / rate
    pitch = 120.0 * (1 + 0.2 * np.sin(2 * np.pi * time))  # a gliding voice, one second
    wav = torch.from_numpy(sum(np.sin(2 * np.pi * k * np.cumsum(pitch) / rate) / k for k in range(1, 11)) * 0.1).float()
    inverter = FeatureInverter(Fbank(sample_rate=rate, n_mels=40))
    gain = torch.zeros(101, 40)
    gain[:, 10:20] = 6.0  # a change of the envelope, and F0 a fifth up
    register = LogF0Statistics(float(np.log(180.0)), 0.1, 100)
    other = torch.zeros_like(wav)
    needed = np.zeros(101, dtype=bool)
    needed[30:40] = needed[70:72] = True
    whole = world_resynthesis(wav, rate, gain, inverter.matrix, register, unvoiced=other)
    around = world_resynthesis(wav, rate, gain, inverter.matrix, register, unvoiced=other, needed=needed)

    def heard(audio):  # the Mel spectrum (dB) over the needed frames
        power = inverter.stft(audio[None])[0].pow(2).sum(-1) @ inverter.matrix
        return 10 * torch.log10(power[torch.from_numpy(needed)].mean(0) + 1e-10)

    # where the caller listens, the spectrum is the whole synthesis's within 2 dB a band (WORLD's pulses start anew
    # in a span: the waveforms differ in the pulses' phase, which 25 ms windows of a 150-200 Hz voice hear)
    assert (heard(around) - heard(whole)).abs().mean() < 2.0
    # far from every needed frame nothing of WORLD is synthesised: the other audio (silence here) is heard
    hop = rate // 100
    far = [frame for frame in range(101) if np.abs(np.flatnonzero(needed) - frame).min() > SPAN_MARGIN + 2]
    assert far and all(around[frame * hop - hop // 2:frame * hop + hop // 2].abs().max() < 1e-6 for frame in far[1:-1])
    with pytest.raises(ValueError, match="unvoiced"):
        world_resynthesis(wav, rate, gain, inverter.matrix, register, needed=needed)

def test_targets_whose_references_the_converter_would_refuse_are_left_out_and_counted():
    refused = {"MS0", "FS3"}

    def enrolment_speech(entries):  # as conversion.enrolment_problem: None, or the converter's refusal
        speaker = entries[0]["speaker"]
        return f"enrolment ({entries[0]['wav']}): 0.40 s of speech, at least 2.00 s needed" if speaker in refused else None

    (block,) = conversion.build_blocks({"test": fake_entries()}, 12, seed=2, enrolment_speech=enrolment_speech)
    assert set(block.skipped) == refused and "0.40 s of speech" in block.skipped["MS0"]
    assert not refused & set(block.material)
    assert block.trials and not refused & {trial.target for trial in block.trials} \
        and not refused & {trial.source["speaker"] for trial in block.trials}


def test_every_named_choice_of_every_manipulation_has_a_rows_words():
    """A row names a choice option's value (conversion.CHOICE_WORDS); a choice without words would fail the report."""
    from speechbrain_fdnf.manipulations import all_options

    named = {key: set(option.choices) for key, (option, _) in all_options().items() if option.choices}
    assert named == {key: set(words) for key, words in conversion.CHOICE_WORDS.items()}


def test_a_source_level_scales_every_rows_source_and_nothing_else():
    """conversion_source_level_db: each trial's source as a recording at another level; references as recorded."""
    from types import SimpleNamespace

    converters = conversion.Converters.__new__(conversion.Converters)
    wav = torch.randn(1600)
    converters._audio = {"source.wav": wav}
    trial = SimpleNamespace(source={"wav": "source.wav"})
    for level, gain in ((0.0, 1.0), (-12.0, 10 ** (-12 / 20)), (6.0, 10 ** (6 / 20))):
        converters.config = EvaluationConfig.from_dict({"output_root": "", "conversion_source_level_db": level})
        torch.testing.assert_close(converters.source(trial), wav * gain)
    assert converters.audio({"wav": "source.wav"}) is wav  # the recording itself, for any other use, unchanged


def test_every_registered_manipulation_gets_rows_named_by_its_options():
    from speechbrain_fdnf import manipulations

    config = EvaluationConfig.from_dict({"output_root": "", "models": {}, "conversion_shrink": [2.0, 5.0]})
    variants = conversion.manipulation_variants(config)
    assert set(variants) == set(manipulations.REGISTRY)
    names = [conversion.row_name("f-DNF", manipulations.build(name, **options))
             for name, rows in variants.items() for options in rows]
    assert len(names) == len(set(names))  # one row per variant
    assert "f-DNF cells (shrink 2, whole latent)" in names and "f-DNF cells (shrink 5, whole latent)" in names
    assert "f-DNF cells (shrink 2, phone subspace kept)" in names  # the first variant's twin
    assert "f-DNF knn (k 4, gated)" in names and "f-DNF knn (k 4, ungated)" in names
    assert "f-DNF shift (deviation 0)" in names
    only = EvaluationConfig.from_dict({"output_root": "", "conversion_manipulations": ["select"], "conversion_context": [0, 2]})
    assert list(conversion.manipulation_variants(only)) == ["select"]
    select_rows = conversion.manipulation_variants(only)["select"]
    # + ungated, + its frames as features, + their phases continued
    assert [row.get("context") for row in select_rows] == [0, 2, 0, 0, 0]
    assert [row.get("own_audio") for row in select_rows] == [None, None, None, False, None]
    assert [row.get("overlap") for row in select_rows] == [None, None, None, None, "phase_vocoder"]
    assert "f-DNF select (candidates 8, continuity 1, gated, context 0, as features)" in names
    # units carries phases on everywhere by default: the evaluation's phase_vocoder choice gives it no second row
    assert not any(name.startswith("f-DNF units") and "phase continued" in name for name in names)
    assert "f-DNF units (join 1, neighbours 1, duration 1, nearest frames where the target lacks the phone)" in names
    choices = EvaluationConfig.from_dict({"output_root": "", "conversion_manipulations": ["units"], "conversion_choices": {
        "fallback": ["nearest", "source_f0", "cells"], "overlap": ["wsola"]}})
    units_rows = conversion.manipulation_variants(choices)["units"]
    # + its frames aligned, + each other fallback
    assert [row.get("fallback") for row in units_rows] == [None, None, "nearest", "source_f0", "cells"]
    assert [row.get("overlap") for row in units_rows] == [None, "wsola", None, None, None]
    cells_features = EvaluationConfig.from_dict({"output_root": "", "conversion_manipulations": ["units"],
                                                 "conversion_choices": {"fallback": ["cells_features"]}})
    assert len(conversion.manipulation_variants(cells_features)["units"]) == 1  # the default's own: no second row
    for wrong in ({"fallback": ["silence"]}, {"join": [1.0]}):
        with pytest.raises(ValueError, match="conversion_choices"):
            EvaluationConfig.from_dict({"output_root": "", "conversion_choices": wrong})
    with pytest.raises(ValueError, match="unknown manipulation"):
        EvaluationConfig.from_dict({"output_root": "", "conversion_manipulations": ["selct"]})
    # with a tagger in the model folder, each manipulation that reads the phone gets a twin with the other source
    tagged = [conversion.row_name("f-DNF", manipulations.build(name, **options), tagger=True)
              for name, rows in conversion.manipulation_variants(config, tagger=True).items() for options in rows]
    assert len(tagged) == len(names) + 4 and len(tagged) == len(set(tagged))  # cells, knn, select, units
    assert {"f-DNF cells (shrink 2, model's phones, whole latent)", "f-DNF cells (shrink 2, tagger, whole latent)",
            "f-DNF knn (k 4, gated, tagger)", "f-DNF units (join 1, neighbours 1, duration 1, tagger)",
            "f-DNF units (join 1, neighbours 1, duration 1, model's phones)",
            "f-DNF knn (k 4, gated, model's phones)", "f-DNF knn (k 4, ungated)"} <= set(tagged)

    @manipulations.register
    class Louder(manipulations.Manipulation):  # a new manipulation is one class: it gets its row
        """Every frame 3 dB louder."""

        name = "louder"
        OPTIONS = {"db": manipulations.Option(float, 3.0, "gain in dB")}

        def frames(self, factorizer, feats, factor, target=None, source=None, references=None, wav=None):
            return feats + self.db

    try:
        assert conversion.manipulation_variants(config)["louder"] == [{}]
        with pytest.raises(ValueError, match="already registered"):
            manipulations.register(Louder)
    finally:
        del manipulations.REGISTRY["louder"]


def test_eer_threshold_separates_target_from_non_target_trials():
    rng = np.random.default_rng(0)
    target, other = rng.normal(0.8, 0.05, 500), rng.normal(0.5, 0.05, 5000)
    eer, threshold = eer_threshold(np.concatenate([target, other]), [True] * 500 + [False] * 5000)
    assert eer < 0.01 and 0.6 < threshold < 0.7  # between the two score clouds
    assert np.mean(target >= threshold) == pytest.approx(1 - eer, abs=0.01)


def test_phone_error_rate_counts_edits_over_the_reference():
    counter = PhoneErrorCounter()
    counter.add(["a", "b", "c", "d"], ["a", "x", "c"])  # one substitution, one deletion
    counter.add(["e"], ["e", "f"])  # one insertion
    assert counter.rate() == pytest.approx(3 / 5)
    assert spoken_phones(["sil", "a", "a", "sil", "a", "b"]) == ["a", "b"]


def test_the_contract_rows_are_plain_numbers_of_the_first_block():
    stat = {"mean": 0.5, "std": 0.0, "values": [0.5]}
    none = {"mean": 0.0, "std": 0.0, "values": [0.0]}
    summary = {"blocks": {"test speakers": {"trials": stat, "rows": {
        "converter default": {"trials": stat, "verified_as_target": stat},
        "frame-perfect (no parallel reading)": {"trials": none, "verified_as_target": stat}}},
        "training speakers": {"trials": stat, "rows": {}}}}
    rows = conversion.contract_rows(summary)
    assert rows["block"] == "test speakers"
    assert rows["rows"] == {"converter default": {"trials": 0.5, "verified_as_target": 0.5}}  # rows with outputs


def test_a_missing_phone_judge_package_is_a_clear_error_naming_the_extra(monkeypatch):
    without_package(monkeypatch, "pocketsphinx")
    with pytest.raises(ImportError, match=r"speechbrain-fdnf\[judge\]"):
        PocketsphinxPhoneJudge()


def test_a_missing_phone_recognizer_says_how_to_train_it(tmp_path):
    from speechbrain_fdnf.evaluation.judges import CTCPhoneJudge

    with pytest.raises(FileNotFoundError, match="phone_recognition.py"):
        CTCPhoneJudge(tmp_path, "hparams/phone_recognition.yaml", features=None)


@pytest.mark.slow
def test_the_judges_on_real_audio(trained):
    """Copy-synthesis verifies as its own speaker, a converter that returns the target's real reading scores
    exactly the real-target row, and pocketsphinx reads the corpus far better than chance."""
    from speechbrain_fdnf.evaluation.judges import QualityJudge, SpeakerEncoderJudge
    from speechbrain_fdnf.inference import SpeechFactorizer

    factorizer = SpeechFactorizer.from_hparams(source=trained[0])
    test = json.loads((trained[1] / "test.json").read_text())
    blocks = conversion.build_blocks({"test": test}, 4, seed=1)
    assert len(blocks) == 1 and blocks[0].name == "test speakers" and len(blocks[0].trials) >= 2
    block = blocks[0]
    independent = PocketsphinxPhoneJudge()
    judges = conversion.ConversionJudges(SpeakerEncoderJudge(), {"per_independent": independent.phones},
                                         quality=QualityJudge())
    converters = conversion.Converters(factorizer, block, EvaluationConfig.from_dict({"output_root": "r"}))
    calls = []

    def copy_counted(trial):
        calls.append(trial)
        return converters.copy(trial)

    rows = {conversion.COPY: copy_counted, conversion.REAL: converters.real,
            "returns the target's reading": converters.real, "the same copy, listed twice": copy_counted}
    # as the source's own voice: every trial's target is its source
    own = conversion.Block(block.name, block.material, [conversion.Trial(t.source, t.source["speaker"], None,
                                                                         target_gender=t.source["gender"])
                                                        for t in block.trials])
    copies = {conversion.COPY: converters.copy}
    try:
        import pyworld  # noqa: F401  (the world extra)
        copies[conversion.COPY_WORLD] = converters.copy_world()
    except ImportError:
        pass
    copies = conversion.evaluate_block(own, copies, judges, converters, f0=False)
    assert copies["rows"][conversion.COPY]["verified_as_target"] == 1.0
    if conversion.COPY_WORLD in copies["rows"]:  # WORLD's analysis and synthesis keeps the voice
        assert copies["rows"][conversion.COPY_WORLD]["verified_as_target"] >= 0.75
    result = conversion.evaluate_block(block, rows, judges, converters, f0=True)
    # a row sharing another's conversions is scored once and reported under both names
    assert len(calls) == len(block.trials)
    assert result["rows"]["the same copy, listed twice"] == result["rows"][conversion.COPY]
    real, cheat = result["rows"][conversion.REAL], result["rows"]["returns the target's reading"]
    for key in ("cos_target", "cos_source", "verified_as_target", "closer_to_target", "spoof_eer"):
        assert cheat[key] == pytest.approx(real[key])  # the speaker judge cannot tell it from the real row
    assert cheat["per_independent"] >= real["per_independent"]  # ... the phone judges score it on the source's words
    assert real["closer_to_target"] == 1.0 and result["rows"][conversion.COPY]["closer_to_target"] == 0.0
    assert real["spoof_eer"] >= 25.0  # the real readings are among the real target trials
    assert cheat["dnsmos_ovrl"] == pytest.approx(real["dnsmos_ovrl"])  # the quality judge hears the same audio
    assert 0.5 < real["dnsmos_ovrl"] < 5.5 and np.isfinite(result["rows"][conversion.COPY]["dnsmos_ovrl"])
    # pocketsphinx hears the words: a reading's decoded phones are nearer its own phones than another sentence's
    entries = [block.material[speaker].readings[0] for speaker in sorted(block.material)]
    decoded = independent.phones(converters.audio(entries[0]).numpy(), converters.rate)
    own, other = PhoneErrorCounter(), PhoneErrorCounter()
    own.add(spoken_phones(entries[0]["phones39"]), decoded)
    other.add(spoken_phones(entries[1]["phones39"]), decoded)
    assert entries[0]["text"] != entries[1]["text"] and own.rate() < other.rate()
    assert torch.isfinite(torch.tensor(real["f0_gap_semitones"]))


@pytest.mark.slow
def test_world_resynthesis_moves_f0_to_the_target_register_across_genders(trained):
    pytest.importorskip("pyworld")
    from speechbrain_fdnf.convert import convert
    from speechbrain_fdnf.inference import SpeechFactorizer
    from speechbrain_fdnf.convert import PITCH_METHODS
    from speechbrain_fdnf.pitch import F0_TRACKERS

    flow = SpeechFactorizer.from_hparams(source=trained[0])
    rate = flow.hparams.sample_rate
    by_speaker = {}
    for entry in sorted(json.loads((trained[1] / "train.json").read_text()).values(), key=lambda e: e["wav"]):
        by_speaker.setdefault(entry["speaker"], []).append(entry["wav"])
    # the evaluation's own F0 judge (Praat), not WORLD's tracker; eSpeak's rough voices make every
    # tracker unsure within a gender, so the test takes the clearest cross-gender pair: the highest
    # female voice to the lowest male one
    register = {speaker: float(np.median([conversion.median_f0(flow.load_audio(path), rate) for path in paths[:3]]))
                for speaker, paths in by_speaker.items()}
    source = max((s for s in register if s[0] == "F"), key=register.get)
    target = min((s for s in register if s[0] == "M"), key=register.get)
    wav, references = flow.load_audio(by_speaker[source][0]), by_speaker[target][:3]

    def gap(converted):
        return abs(12 * np.log2(conversion.median_f0(converted, rate) / register[target]))

    gain = convert(flow, wav, "speaker", references=references)
    assert gap(gain) > 4.0  # the gain path keeps the source's pitch, far from the target's
    for method, tracker in itertools.product(PITCH_METHODS, F0_TRACKERS):  # whichever tracker analyses the F0
        world = convert(flow, wav, "speaker", references=references, method=method, f0_tracker=tracker)
        assert world.shape == wav.shape and torch.isfinite(world).all()
        # WORLD moves it into the target's register (world_voiced: where the tracker hears voicing, which is
        # where a judge's pitch is)
        assert gap(world) < 2.0 and gap(world) < gap(gain) - 3.0, (method, tracker)
    with pytest.raises(ValueError, match="f0_tracker must be one of"):
        convert(flow, wav, "speaker", references=references, method="world", f0_tracker="yin")
    # units' fallbacks that move F0: the source's audio there is in the target's register too
    from speechbrain_fdnf.convert import fallback_audio

    checked = flow.checked_references(references)
    for fallback in ("source_f0", "cells", "cells_features"):
        moved = fallback_audio(flow, wav, "speaker", checked, fallback)
        # (source_f0 keeps the source's envelope, a woman's formants at a man's pitch: Praat reads it 2.3
        # semitones off the register where the gain path is 20 off; cells moves the envelope too, 0.2 off)
        assert moved.shape == wav.shape and gap(moved) < 3.0 and gap(moved) < gap(gain) - 3.0, fallback
    # a training speaker named by its label: the register its training run measured and exported moves F0
    from speechbrain_fdnf.pitch import REGISTERS_FILE, analyse_f0

    assert (trained[0] / REGISTERS_FILE).is_file() and set(flow.f0_registers.speakers) == set(by_speaker)
    named = convert(flow, wav, "speaker", target=target, manipulation="shift", method="world")
    assert gap(named) < 2.0 and gap(named) < gap(gain) - 3.0
    # without a register to move to (none in the folder, or one measured by another tracker than the
    # conversion's) WORLD keeps the F0 it analysed
    for tracker, registers in (("harvest", flow.f0_registers), ("dio", None)):
        flow.f0_registers = registers
        kept = convert(flow, wav, "speaker", target=target, manipulation="shift", method="world", f0_tracker=tracker)
        before, after = (analyse_f0(audio.numpy(), rate, tracker=tracker)[0] for audio in (wav, kept))
        # (read again by the same tracker, the converted envelope moves its reading by up to half a semitone)
        assert abs(12 * np.log2(np.median(after[after > 0]) / np.median(before[before > 0]))) < 1.0, tracker


@pytest.mark.slow
def test_world_only_for_far_registers_takes_the_gain_path_within_a_register_and_moves_pitch_across(trained):
    pytest.importorskip("pyworld")
    from speechbrain_fdnf.convert import convert
    from speechbrain_fdnf.inference import SpeechFactorizer
    from speechbrain_fdnf.pitch import FAR_REGISTER_SEMITONES, LogF0Statistics, analyse_f0

    flow = SpeechFactorizer.from_hparams(source=trained[0])
    rate = flow.hparams.sample_rate
    entry = min(json.loads((trained[1] / "train.json").read_text()).values(), key=lambda e: e["wav"])
    wav = flow.load_audio(entry["wav"])
    own = LogF0Statistics.of([analyse_f0(wav.numpy(), rate)[0]])
    target = flow.labels("speaker")[0]
    options = dict(manipulation="shift", method="world_voiced_far")
    near = LogF0Statistics(own.mean + 0.5 * FAR_REGISTER_SEMITONES / 12 * np.log(2), own.std, 100)
    far = LogF0Statistics(own.mean - 12 / 12 * np.log(2), own.std, 100)  # an octave down
    gain = convert(flow, wav, "speaker", target=target, manipulation="shift")
    assert torch.equal(convert(flow, wav, "speaker", target=target, target_f0=near, **options), gain)
    moved = convert(flow, wav, "speaker", target=target, target_f0=far, **options)
    voiced = convert(flow, wav, "speaker", target=target, target_f0=far, manipulation="shift", method="world_voiced")
    assert torch.equal(moved, voiced)
    median = {name: np.median(f0[f0 > 0]) for name, f0 in
              (("before", analyse_f0(wav.numpy(), rate)[0]), ("after", analyse_f0(moved.numpy(), rate)[0]))}
    assert 12 * np.log2(median["after"] / median["before"]) < -8  # about an octave down


@pytest.mark.slow
def test_the_registers_are_measured_once_per_training_split_and_are_the_exported_ones(trained, tmp_path):
    pytest.importorskip("pyworld")
    import shutil

    from speechbrain_fdnf.pitch import REGISTERS_FILE, F0Registers
    from speechbrain_fdnf.recipe_utils import speaker_registers

    exported = F0Registers.load(trained[0] / REGISTERS_FILE)
    prepared = tmp_path / "prepared"
    shutil.copytree(trained[1], prepared)
    hparams = {"prep_folder": str(prepared), "sample_rate": 16000}
    assert speaker_registers(hparams) == exported  # the training run's cache, not measured again
    assert speaker_registers(dict(hparams, f0_registers=False)) is None
    # another training split (one speaker's utterances gone) is measured again, into a cache of its own
    entries = json.loads((prepared / "train.json").read_text())
    gone = sorted(exported.speakers)[0]
    (prepared / "train.json").write_text(json.dumps({k: e for k, e in entries.items() if e["speaker"] != gone}))
    caches = set(prepared.glob("f0_registers_*.json"))
    again = speaker_registers(hparams)
    assert set(again.speakers) == set(exported.speakers) - {gone} and len(set(prepared.glob("f0_registers_*.json"))) \
        == len(caches) + 1
    assert all(again.speakers[name] == exported.speakers[name] for name in again.speakers)


def test_a_file_of_f0_registers_round_trips_and_a_broken_one_is_an_error_naming_it(tmp_path):
    from speechbrain_fdnf.pitch import F0Registers, LogF0Statistics

    registers = F0Registers("dio", {"MABC0": LogF0Statistics(4.7, 0.2, 300)})
    registers.save(tmp_path / "registers.json")
    assert F0Registers.load(tmp_path / "registers.json") == registers
    assert registers.of("MABC0", "dio") == registers.speakers["MABC0"]
    assert registers.of("FXYZ0", "dio") is None and registers.of("MABC0", "harvest") is None
    for text in ("{", '{"tracker": "yin", "speakers": {}}', '{"tracker": "dio", "speakers": {"M": {"mean": 1}}}'):
        (tmp_path / "broken.json").write_text(text)
        with pytest.raises(ValueError, match="broken.json is not a file of F0 registers"):
            F0Registers.load(tmp_path / "broken.json")


@pytest.mark.slow
def test_the_quality_judge_hears_noise_and_takes_any_sample_rate(corpus):
    """DNSMOS rates a reading with white noise at 0 dB SNR noisier (background score) and worse overall than the
    reading alone, whatever rate the audio comes at."""
    pytest.importorskip("speechmos")
    import soundfile
    import torchaudio
    from speechbrain_fdnf.evaluation.judges import QualityJudge

    wav, rate = soundfile.read(str(next(iter(sorted(corpus.glob("TEST/DR*/*/*.WAV"))))), dtype="float32")
    clean = torch.from_numpy(wav)
    noisy = clean + torch.randn(len(clean), generator=torch.Generator().manual_seed(0)) * clean.pow(2).mean().sqrt()
    judge = QualityJudge()
    scores = judge.scores(clean, rate)
    assert judge.scores(noisy, rate)["bak"] < scores["bak"] - 0.5
    assert judge.scores(noisy, rate)["ovrl"] < scores["ovrl"]
    resampled = torchaudio.functional.resample(clean, rate, 22050)
    assert judge.scores(resampled, 22050)["ovrl"] == pytest.approx(scores["ovrl"], abs=0.3)
    # speechmos's own numbers (it also runs the P.808 model, whose score the judge does not read), short and long,
    # and at 2.139375 s, where the library's float arithmetic drops one of its windows
    for audio in (clean, torch.cat([clean] * 5), torch.cat([clean] * 3)[:34230]):
        expected = judge.dnsmos.run(audio.double().numpy(), rate)
        got = judge.scores(audio, rate)
        assert len(judge.segments(audio.double().numpy())) >= 1
        for key in ("ovrl", "sig", "bak"):
            assert got[key] == pytest.approx(float(expected[f"{key}_mos"]), abs=1e-5)



def test_phases_carried_within_renditions_keep_a_stretched_tone_one_tone_and_start_each_jump_as_recorded():
    """``phase_vocoder_within``: a repeated frame continues its partials as the phase vocoder does (a tone at half
    speed stays one tone), and an output frame that jumps to another place is that frame as recorded;
    ``phase_vocoder_overlapping`` carries them across skipped frames too (a tone at double speed)."""
    import math

    from speechbrain.lobes.features import Fbank
    from speechbrain_fdnf.convert import FeatureInverter

    inverter, rate = FeatureInverter(Fbank(n_mels=40)), 16000
    tone = 0.5 * torch.sin(2 * math.pi * 220.0 * torch.arange(rate) / rate)
    spectra = inverter.stft(tone[None])[0]
    follows = torch.ones(len(spectra), dtype=torch.bool)

    def purity(chosen, carry_steps):
        frames = inverter.selected_frames(spectra, chosen, follows, continue_phase=True, carry_steps=carry_steps)
        middle = inverter.istft(frames[None], sig_length=len(chosen) * 160)[0][2000:-2000]
        power = torch.fft.rfft(middle).abs() ** 2
        return float(power[(torch.fft.rfftfreq(len(middle), 1 / rate) - 220.0).abs() < 10].sum() / power.sum())

    stretched = torch.arange(len(spectra)).repeat_interleave(2)[:len(spectra)]
    assert purity(stretched, 1) > 0.95
    # squeezed to half (every other frame): carried only across frames whose windows overlap, it stays one tone;
    # restarted at each skip, it does not
    squeezed = torch.arange(0, len(spectra), 2)
    assert inverter.overlapping_steps() == 2 and purity(squeezed, 2) > 0.95 > 0.8 > purity(squeezed, 1)
    shuffled = torch.randperm(len(spectra), generator=torch.Generator().manual_seed(0))
    frames = inverter.selected_frames(spectra, shuffled, follows, continue_phase=True, carry_steps=1)
    jumps = torch.ones(len(shuffled), dtype=torch.bool)
    jumps[1:] = (shuffled[1:] != shuffled[:-1]) & (shuffled[1:] != shuffled[:-1] + 1)
    assert jumps.sum() > len(shuffled) - 5
    torch.testing.assert_close(frames[jumps], spectra[shuffled][jumps], atol=1e-4, rtol=0)


def test_aligned_jumps_continue_the_waveform_before_them_instead_of_cancelling_it():
    """``phase_vocoder_aligned``: runs of frames taken from anywhere in a voiced sound (a jump every six frames)
    restart with their own phases and partly cancel the frame before at each join; moved in time to continue it,
    the output stays the sound (over 95 % of its power in its partials, where restarts leave under 90 %) at its
    level. Only phases move (every frame keeps its magnitudes), and a jump to a frame that already continues the one
    before (the next frame of an identical recording) is not moved."""
    import math

    from speechbrain.lobes.features import Fbank
    from speechbrain_fdnf.convert import FeatureInverter

    inverter, rate = FeatureInverter(Fbank(n_mels=40)), 16000
    time = torch.arange(rate) / rate
    voice = 0.3 * torch.sin(2 * math.pi * 137.0 * time) + 0.2 * torch.sin(2 * math.pi * 274.0 * time + 1.0)
    spectra = inverter.stft(voice[None])[0]
    follows = torch.ones(len(spectra), dtype=torch.bool)
    starts = torch.randint(0, len(spectra) - 8, (len(spectra) // 6 + 1,), generator=torch.Generator().manual_seed(0))
    chosen = torch.cat([torch.arange(start, start + 6) for start in starts])[:len(spectra)]

    def heard(align):
        frames = inverter.selected_frames(spectra, chosen, follows, continue_phase=True, carry_steps=1,
                                          align_jumps=align)
        torch.testing.assert_close(torch.linalg.vector_norm(frames, dim=-1),
                                   torch.linalg.vector_norm(spectra[chosen], dim=-1), atol=1e-4, rtol=1e-4)
        middle = inverter.istft(frames[None], sig_length=len(chosen) * 160)[0][2000:-2000]
        power = torch.fft.rfft(middle).abs() ** 2
        frequency = torch.fft.rfftfreq(len(middle), 1 / rate)
        near = ((frequency - 137.0).abs() < 10) | ((frequency - 274.0).abs() < 10)
        return float(power[near].sum() / power.sum()), float(middle.pow(2).mean().sqrt())

    (aligned, aligned_level), (restarted, _) = heard(True), heard(False)
    assert aligned > 0.95 > 0.9 > restarted
    assert abs(aligned_level / float(voice.pow(2).mean().sqrt()) - 1) < 0.05
    # two recordings of the same sound: the first's frames 0-49, then a jump to the second's frames 50-99
    twice = torch.cat([spectra, spectra])
    recordings = torch.ones(len(twice), dtype=torch.bool)
    recordings[len(spectra) - 1] = False  # the second recording does not follow the first
    across = torch.cat([torch.arange(50), len(spectra) + torch.arange(50, 100)])
    torch.testing.assert_close(inverter.selected_frames(twice, across, recordings, continue_phase=True, carry_steps=1,
                                                        align_jumps=True), spectra[:100], atol=1e-4, rtol=0)


@pytest.mark.parametrize("overlap", ["phase_vocoder", "wsola"])
def test_continued_phases_or_aligned_waveforms_keep_a_stretched_or_shuffled_tone_one_tone(overlap):
    """A frame-selecting manipulation repeats frames (a stretched phone) and jumps between them: with each frame's
    own phase the partials restart at every step and a tone smears into a buzz; carried on (a phase vocoder with
    identity phase locking) or with each frame moved to where its waveform continues the one before (WSOLA) it
    stays one tone at its level."""
    import math

    from speechbrain.lobes.features import Fbank
    from speechbrain_fdnf.convert import FeatureInverter

    inverter, rate = FeatureInverter(Fbank(n_mels=40)), 16000
    tone = 0.5 * torch.sin(2 * math.pi * 220.0 * torch.arange(rate) / rate)
    spectra = inverter.stft(tone[None])[0]
    follows = torch.ones(len(spectra), dtype=torch.bool)

    def heard(chosen, joined):
        if not joined:
            frames = inverter.selected_frames(spectra, chosen, follows)
        elif overlap == "wsola":
            frames = inverter.aligned_frames([tone], chosen)
        else:
            frames = inverter.selected_frames(spectra, chosen, follows, continue_phase=True)
        middle = inverter.istft(frames[None], sig_length=rate)[0][2000:-2000]
        power = torch.fft.rfft(middle).abs() ** 2
        near = (torch.fft.rfftfreq(len(middle), 1 / rate) - 220.0).abs() < 10
        return float(power[near].sum() / power.sum()), float(middle.abs().max())

    stretched = torch.arange(len(spectra)).repeat_interleave(2)[:len(spectra)]  # every frame twice: half speed
    shuffled = torch.randperm(len(spectra), generator=torch.Generator().manual_seed(0))
    for chosen in (stretched, shuffled):
        (purity, level), (own_purity, _) = heard(chosen, True), heard(chosen, False)
        assert purity > 0.95 > 0.5 > own_purity and abs(level - 0.5) < 0.05


def test_consistency_brings_the_heard_spectrum_to_the_chosen_frames_magnitudes():
    """Frames taken from other places overlap-add into a waveform whose spectrum is not theirs (their phases
    disagree and partials cancel); ``FeatureInverter.consistent``'s Griffin-Lim iterations from their own phases
    bring the waveform's STFT magnitudes nearer theirs, more with more iterations, and leave frames that already
    agree as they were."""
    import math

    from speechbrain.lobes.features import Fbank
    from speechbrain_fdnf.convert import FeatureInverter

    inverter, rate = FeatureInverter(Fbank(n_mels=40)), 16000
    time = torch.arange(rate) / rate
    voice = 0.3 * torch.sin(2 * math.pi * 180.0 * time) + 0.2 * torch.sin(2 * math.pi * 540.0 * time)
    spectra = inverter.stft(voice[None])[0]
    shuffled = spectra[torch.randperm(len(spectra), generator=torch.Generator().manual_seed(0))]
    wanted = torch.view_as_complex(shuffled.contiguous()).abs()

    def distance(iterations):  # spectral convergence: how far the heard magnitudes lie from the chosen ones
        heard = torch.view_as_complex(inverter.stft(inverter.consistent(shuffled, rate, iterations)[None])[0].contiguous())
        return float((heard.abs() - wanted).norm() / wanted.norm())

    plain, few, more = distance(0), distance(4), distance(16)
    assert more < few < plain and more < 0.5 * plain
    torch.testing.assert_close(inverter.consistent(shuffled, rate, 0), inverter.istft(shuffled[None], sig_length=rate)[0])
    torch.testing.assert_close(inverter.consistent(spectra, rate, 16), voice, atol=1e-3, rtol=0)
