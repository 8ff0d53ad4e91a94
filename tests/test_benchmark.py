"""The benchmark script keeps running (a smoke run on tiny settings; no timing is asserted)."""

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def load_bench(name="bench_flows"):
    spec = importlib.util.spec_from_file_location(name, ROOT / f"benchmarks/{name}.py")
    module = importlib.util.module_from_spec(spec)
    # registered under its name, as importlib's recipe for a source file does: a script another one imports
    # (units_f0_gap takes units_word_loss's command line) is then this module, and doctest finds its functions
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(path.stem for path in (ROOT / "benchmarks").glob("*.py")
                                         if ">>>" in path.read_text()))
def test_the_benchmarks_examples_hold(name):
    """The doctests of the benchmark scripts (outside the package, so pytest's doctest collection misses them)."""
    import doctest

    failed, tried = doctest.testmod(load_bench(name), optionflags=doctest.ELLIPSIS)
    assert tried and not failed


def test_benchmark_writes_its_tables(tmp_path):
    bench = load_bench()
    models = ["ours", "ours-default"] + [peer for peer in ("zuko", "nflows") if importlib.util.find_spec(peer)]
    out = tmp_path / "table.md"
    assert bench.main(["--batch-sizes", "16", "--repeats", "1", "--round-seconds", "0.01", "--no-memory",
                       "--models", *models, "--out", str(out)]) == 0
    table = out.read_text()
    assert "| ours | 651,584 | 16 |" in table  # 8 couplings of 20 -> 256 -> 256 -> 40 conditioners
    assert "GFLOP/s" in table and "Ratios ours / peer" in table


def test_benchmark_compares_the_spline_flows(tmp_path):
    bench = load_bench()
    peers = [peer for peer, module in (("zuko-nsf", "zuko"), ("nflows-nsf", "nflows")) if importlib.util.find_spec(module)]
    out = tmp_path / "spline.md"
    assert bench.main(["--batch-sizes", "16", "--repeats", "1", "--round-seconds", "0.01", "--no-memory",
                       "--models", "ours-spline", *peers, *(["--peers", *peers] if peers else []),
                       "--out", str(out)]) == 0
    table = out.read_text()
    assert "| ours-spline | 1,515,104 | 16 |" in table  # 8 couplings of 20 -> 256 -> 256 -> 20 x (3 x 8 - 1)
    assert all(f"| ours-spline | {peer} | 16 |" in table for peer in peers)  # a ratio row per peer


def test_benchmark_prints_ratios_for_each_of_our_models_and_the_bfloat16_rate(tmp_path):
    bench = load_bench()
    out = tmp_path / "default.md"
    assert bench.main(["--batch-sizes", "16", "--repeats", "1", "--round-seconds", "0.01", "--no-memory",
                       "--models", "ours-default-bf16", "ours-default", "ours", "--ours", "ours-default-bf16",
                       "ours-default", "--peers", "ours", "ours-default", "--out", str(out)]) == 0
    table = out.read_text()
    default, lowered = "ours default (+ActNorm +LU)", "ours default (+ActNorm +LU) bf16 conditioners"
    assert f"| {lowered} | 678,144 | 16 |" in table  # lowering the conditioners adds no parameter
    for mine, peer in ((lowered, "ours"), (lowered, default), (default, "ours")):
        assert f"| {mine} | {peer} | 16 |" in table
    assert f"| {default} | {default} |" not in table  # never a model against itself
    assert "bfloat16 dense rate" in table


def test_every_model_has_the_same_size_and_trains():
    bench = load_bench()
    import torch

    if not (importlib.util.find_spec("zuko") and importlib.util.find_spec("nflows")):
        pytest.skip("zuko and nflows are benchmark extras (pip install -e '.[bench]')")
    x = torch.randn(32, bench.DIM)
    for group in (["ours", "zuko", "nflows"], ["ours-spline", "zuko-nsf", "nflows-nsf"]):
        adapters = [bench.BUILDERS[name](torch.device("cpu")) for name in group]
        assert len({adapter.parameters for adapter in adapters}) == 1, group
        for adapter in adapters:  # each peer is a working flow: decode inverts encode, the loss is finite
            assert torch.allclose(adapter.decode(adapter.encode(x)), x, atol=1e-4)
            assert torch.isfinite(adapter.loss(x))
    default = bench.BUILDERS["nflows-default"](torch.device("cpu"))  # the shipped flow's peer works too
    assert torch.allclose(default.decode(default.encode(x)), x, atol=1e-4)


def test_the_peers_at_our_training_precision_train_in_bfloat16_and_encode_in_float32():
    bench = load_bench()
    import torch

    if not importlib.util.find_spec("nflows"):
        pytest.skip("nflows is a benchmark extra (pip install -e '.[bench]')")
    x = torch.randn(32, bench.DIM)
    plain, lowered = (bench.BUILDERS[name](torch.device("cpu")) for name in ("nflows", "nflows-bf16"))
    assert lowered.name == "nflows bf16 autocast" and lowered.parameters == plain.parameters
    seen = []  # the conditioners' products of a training step run in bfloat16 ...
    handles = [module.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
               for module in lowered.module.modules() if isinstance(module, torch.nn.Linear)]
    loss = lowered.loss(x)
    assert loss.dtype == torch.float32 and torch.isfinite(loss) and set(seen) == {torch.bfloat16}
    seen.clear()
    z = lowered.encode(x)  # ... and encoding stays float32, as ours in eval mode
    assert set(seen) == {torch.float32} and torch.allclose(lowered.decode(z), x, atol=1e-4)
    for handle in handles:
        handle.remove()


@pytest.mark.slow
def test_evaluation_scaling_benchmark_times_every_stage(tmp_path):
    bench = load_bench("bench_evaluation")
    from speechbrain_fdnf.evaluation import sections

    before = {name: getattr(owner, name) for owner, name, _ in bench.STAGES}
    out = tmp_path / "evaluation.md"
    assert bench.main(["--train-frames", "1200", "2400", "--speakers", "4", "--probe-epochs", "1", "--no-warmup",
                       "--out", str(out)]) == 0
    assert {name: getattr(owner, name) for owner, name, _ in bench.STAGES} == before  # the driver is restored
    rows = {line.split(" | ")[0].lstrip("| "): line for line in out.read_text().splitlines() if line.startswith("| ")}
    for stage in ("MLP probes (trained)", "encoding the training frames", "phone decoder fit",
                  "posterior tables (incl. ceiling, oracle, matching, gates)", "leakage probes", "t-SNE figure", "total"):
        assert stage in rows, stage
    assert sections.posterior_table.__module__ == "speechbrain_fdnf.evaluation.tables"  # the stage was unwrapped


def test_growth_exponent():
    bench = load_bench("bench_evaluation")
    assert bench.exponent([1000, 4000], [2.0, 8.0]) == pytest.approx(1.0)  # linear
    assert bench.exponent([1000, 4000], [1.0, 16.0]) == pytest.approx(2.0)  # quadratic
    assert bench.exponent([1000, 4000], [0.0, 1.0]) != bench.exponent([1000, 4000], [0.0, 1.0])  # nan: unreadable


@pytest.mark.slow
def test_corpus_calibration_reports_what_the_probes_read(corpus, tmp_path, monkeypatch):
    bench = load_bench("calibrate_corpus")
    from speechbrain_fdnf.recipe_utils import load_hparams

    hparams = load_hparams(ROOT / "hparams/fdnf.yaml", {"output_root": str(tmp_path), "data_folder": str(corpus)})
    report = bench.calibrate(hparams, subset=4, probe_epochs=1, num_frames=300)
    assert report["subset"] == 4 and report["train_speakers"] == 6
    for key in ("p_phone", "phone_accuracy", "p_speaker_all", "p_speaker_subset", "speaker_accuracy_subset"):
        assert 0.0 < report[key] <= 1.0, key
    assert report["p_speaker_subset"] > 1 / 4 and report["ceiling_speaker"] > 0  # real frames of the target speaker
    # the model-free mean shift moves its target toward the target class (the cheap guide of the corpus knobs)
    assert report["mean_shift_speaker"] > 0 and report["mean_shift_phone"] > 0
    assert -1 < report["mean_shift_speaker_phone_cost"] < 1 and -1 < report["mean_shift_phone_speaker_cost"] < 1
    # the independent speaker encoder tells the two test speakers apart better than chance
    assert 0.0 <= report["eer_test"] < 0.5
    # per phone: the same posterior split by the frames' phone, its frame-weighted mean the whole subset's
    by_phone = report["p_speaker_by_phone"]
    assert sum(count * value for count, value in by_phone.values()) / sum(c for c, _ in by_phone.values()) == \
        pytest.approx(report["p_speaker_subset"], abs=1e-5)
    assert "sil" not in by_phone and f"{by_phone['iy'][1]:.3f}" in bench.markdown_by_phone({"small": report})
    table = bench.markdown({"small": report})
    assert "| TIMIT (the paper) |" in table and f"{report['p_phone']:.3f}" in table
    assert f"{report['eer_test']:.3f} |" in table
    chosen_on = bench.calibrate(hparams, subset=4, probe_epochs=1, num_frames=300, split="valid", judge=False)
    assert chosen_on["p_phone"] != report["p_phone"] and chosen_on["eer_test"] is None  # other utterances
    with pytest.raises(ValueError, match="split"):
        bench.calibrate(hparams, split="test")

    # the numbers are the probes' own: a probe that knows nothing reads chance everywhere
    from speechbrain_fdnf.evaluation.probes import FeatureProbe

    monkeypatch.setattr(FeatureProbe, "posteriors", lambda self, feats: torch.full((len(feats), self.net[-1].out_features),
                                                                                  1.0 / self.net[-1].out_features))
    # and the EER is the judge's: embeddings that tell no one apart read 0.5
    monkeypatch.setattr(bench.SpeakerEncoderJudge, "embed_files", lambda self, paths: np.ones((len(paths), 4)))
    blind = bench.calibrate(hparams, subset=4, probe_epochs=1, num_frames=300)
    assert blind["p_phone"] == pytest.approx(1 / 39) and blind["p_speaker_subset"] == pytest.approx(1 / 4)
    assert blind["ceiling_speaker"] == pytest.approx(0.0, abs=1e-6) and blind["eer_test"] == pytest.approx(0.5)


def test_alignment_benchmark_scores_the_aligner_against_exact_boundaries(corpus, tmp_path):
    bench = load_bench("bench_alignment")
    out = tmp_path / "alignment.md"
    bench.main([str(corpus), "--limit", "8", "--rounds", "0", "1", "--espeak", "missing", "--workers", "1",
                "--min_frames", "1", "2", "--splits", "all", "train", "--out", str(out)])
    rows = [line for line in out.read_text().splitlines() if line.startswith("| CMUdict")]
    # pocketsphinx alone, then the refinement with each shortest phone; every utterance, then the training ones
    assert len(rows) == 6 and "/ 8 |" in rows[0] and rows[2].split("|")[2].strip() == "8 / 8"
    assert "phones of 2+ frames (train speakers)" in rows[5]
    trained_utterances = int(rows[1].split("|")[2].split("/")[1])
    assert 0 < trained_utterances <= 8
    for row in rows:  # the boundaries within 20 ms are those the aligner has too, times the share of those within 20 ms
        within_20 = float(row.split("|")[3].split("/")[1].strip(" %")) / 100
        timed, of_timed = (float(cell.strip(" %")) / 100 for cell in row.split("|")[5].split("/"))
        assert within_20 == pytest.approx(timed * of_timed, abs=0.002)
    assert "Where the phone sequences disagree" in out.read_text()


def _candidate_results(p_phone, p_speaker, ceiling, deltas):
    """A results.json of benchmarks/choose_corpus.sh's evaluation: VAE and NF rows over the 40 speakers."""
    def cell(target, other, p_other):
        return {"delta_target": {"mean": target}, "delta_other": {"mean": other}, "p_other_x": {"mean": p_other}}

    models = {model: {"speakers_subset": {"phone": cell(*deltas[model, "phone"], p_speaker),
                                          "speaker": cell(*deltas[model, "speaker"], p_phone)}}
              for model in ("VAE", "NF")}
    reference = {"speakers_subset": {"phone": cell(0.6, -0.1, p_speaker), "speaker": cell(ceiling, 0.0, p_phone)}}
    return {"summary": {"models": models, "reference": {"real-frame ceiling": reference}}}


def test_the_corpus_choice_reads_the_runs_and_applies_the_rule(tmp_path):
    """The choice table's numbers are the candidates' evaluation results, and the rule picks the eligible candidate
    nearest the paper's label-free rows: not a nearer one whose probes are out of bounds."""
    import json

    choose = load_bench("choose_corpus")
    paper = {(m, t): choose.paper_row(m, t) for m in ("VAE", "NF") for t in ("phone", "speaker")}
    near = {key: (a - 0.02, b - 0.02) for key, (a, b) in paper.items()}
    far = {key: (a - 0.2, b - 0.2) for key, (a, b) in paper.items()}
    exact = dict(paper)
    candidates = {"far": (0.60, 0.61, 0.62, far), "near": (0.58, 0.60, 0.60, near),
                  "exact_but_easy_phones": (0.70, 0.61, 0.62, exact)}  # p(q|x) 0.18 from TIMIT's: out of bounds
    for spread, (name, (p_phone, p_speaker, ceiling, deltas)) in enumerate(candidates.items()):
        corpus = tmp_path / name / "embedded_corpus_demo"
        corpus.mkdir(parents=True)
        (corpus / "corpus.json").write_text(json.dumps({"options": {"train_speakers": 140, "voice_spread": spread}}))
        folder = tmp_path / name / "evaluation_valid"
        folder.mkdir(parents=True)
        (folder / "results.json").write_text(json.dumps(_candidate_results(p_phone, p_speaker, ceiling, deltas)))
    out = tmp_path / "choice.md"
    choose.main([str(tmp_path), "--out", str(out)])
    text = out.read_text()
    assert "**near (chosen)**" in text and "Chosen by the rule of hparams/experiments/choose_corpus.yaml: near" in text
    row = next(line for line in text.splitlines() if line.startswith("| exact_but_easy_phones"))
    assert "| 0.700 |" in row and row.endswith("| 0.000 | 8 / 8 | no |")  # nearest the paper, yet not eligible
    assert "| 0.020 | 8 / 8 | yes |" in next(line for line in text.splitlines() if "near (chosen)" in line)
    assert "| `voice_spread: 1` |" in text and "train_speakers" not in text  # the knobs, read from each manifest


def test_the_conversion_choice_keeps_the_words_first_then_the_voice(tmp_path):
    """The rule of hparams/experiments/choose_conversion.yaml on a results.json: a row that loses the words is never
    chosen however often it is verified, a tie within one trial goes to the lower PER, and the test speakers'
    block is refused."""
    import json

    choose = load_bench("choose_conversion")

    def row(verified, per):
        return {"trials": 40, "verified_as_target": verified, "closer_to_target": 1.0, "per_recognizer": per,
                "f0_gap_semitones": 3.0, "cross_gender": {"trials": 20, "verified_as_target": verified / 2}}

    rows = {choose.COPY: row(0.0, 5.0), "f-DNF shift (deviation 1)": row(0.95, 6.0),  # no audio of the target: not a candidate
            "f-DNF select (gated, tagger)": row(0.90, 30.0),  # 25 points over copy-synthesis: loses the words
            "f-DNF knn (k 4, gated, tagger)": row(0.60, 18.0), "f-DNF cells (shrink 5, tagger)": row(0.58, 12.0),
            "f-DNF cells (shrink 5, model's phones)": row(0.40, 11.0)}
    results = {"seeds": [1234], "conversion": {"block": "training speakers", "rows": rows}}
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    out = tmp_path / "choice.md"
    choose.main([str(path), "--out", str(out)])
    text = out.read_text()
    assert "| **f-DNF cells (shrink 5, tagger) (chosen)** |" in text  # 0.58 ties 0.60 within a trial, at lower PER
    assert "| f-DNF select (gated, tagger) | 0.900 |" in text and text.count("| no |") == 1
    assert "shift" not in text
    # a second run on the same trials: its rows join the choice
    more = tmp_path / "more.json"
    more.write_text(json.dumps({"seeds": [1234], "conversion": {"block": "training speakers", "rows": {
        choose.COPY: row(0.0, 5.0), "f-DNF select (context 1, gated, tagger)": row(0.70, 19.0)}}}))
    choose.main([str(path), str(more), "--out", str(out)])
    assert "| **f-DNF select (context 1, gated, tagger) (chosen)** | 0.700 |" in out.read_text()
    # without a floor, a run where no row keeps the words chooses nothing (the default stays)
    lost = {row: dict(values, per_recognizer=values["per_recognizer"] + 40.0) if row != choose.COPY else values
            for row, values in rows.items()}
    path.write_text(json.dumps({"seeds": [1234], "conversion": {"block": "training speakers", "rows": lost}}))
    choose.main([str(path), "--out", str(out)])
    assert "none keeps the words" in out.read_text() and "(chosen)" not in out.read_text()
    # with a floor on the share closer to the target: a row under it does not convert and is never chosen
    rows["f-DNF cells (shrink 5, tagger)"]["closer_to_target"] = 0.6
    path.write_text(json.dumps({"seeds": [1234], "conversion": {"block": "valid speakers", "rows": rows}}))
    choose.main([str(path), "--closer-floor", "0.75", "--out", str(out)])
    text = out.read_text()
    assert "| **f-DNF knn (k 4, gated, tagger) (chosen)** | 0.600 |" in text and "| no | no |" not in text
    assert next(line for line in text.splitlines() if "cells (shrink 5, tagger)" in line).endswith("| yes | no |")
    for other in ("f-DNF knn (k 4, gated, tagger)", "f-DNF cells (shrink 5, model's phones)"):
        rows[other]["closer_to_target"] = 0.5  # none converts and keeps the words: the converting row with fewest errors
    path.write_text(json.dumps({"seeds": [1234], "conversion": {"block": "valid speakers", "rows": rows}}))
    choose.main([str(path), "--closer-floor", "0.75", "--out", str(out)])
    assert "| **f-DNF select (gated, tagger) (chosen)** |" in out.read_text()
    # a folder without a tagger never runs a row that reads it: among the others, the converting row with fewest errors
    choose.main([str(path), "--closer-floor", "0.75", "--phones", "model", "--out", str(out)])
    text = out.read_text()
    assert "tagger)" not in text and "without a tagger" in text
    assert "| **f-DNF cells (shrink 5, model's phones) (chosen)** |" not in text  # it does not convert (0.5)
    rows["f-DNF cells (shrink 5, model's phones)"]["closer_to_target"] = 0.8
    path.write_text(json.dumps({"seeds": [1234], "conversion": {"block": "valid speakers", "rows": rows}}))
    choose.main([str(path), "--closer-floor", "0.75", "--phones", "model", "--out", str(out)])
    assert "| **f-DNF cells (shrink 5, model's phones) (chosen)** |" in out.read_text()
    choose.main([str(path), "--closer-floor", "0.75", "--phones", "tagger", "--out", str(out)])
    assert "model's phones" not in out.read_text().split("Block:")[0]
    more.write_text(json.dumps({"seeds": [1], "conversion": {"block": "valid speakers", "rows": rows}}))
    with pytest.raises(SystemExit, match="not the trials of"):
        choose.main([str(path), str(more)])
    path.write_text(json.dumps({"seeds": [1234], "conversion": {"block": "test speakers", "rows": rows}}))
    with pytest.raises(SystemExit, match="never choose on the test speakers"):
        choose.main([str(path)])


def test_world_choice_rule_needs_words_voice_and_more_cross_gender_verification(tmp_path):
    """choose_world.yaml's rule: WORLD passes only if its copy keeps the words and the voice and its default is
    verified as often as gain's, more often across genders, without losing more than 5 PER points."""
    import json

    choose = load_bench("choose_conversion")
    copy_world, default_world = choose.world_row_names("dio")
    copy_harvest, default_harvest = choose.world_row_names("harvest")

    def row(verified, per, cross):
        return {"trials": 40, "verified_as_target": verified, "closer_to_target": 1.0, "per_recognizer": per,
                "f0_gap_semitones": 2.0, "cross_gender": {"trials": 20, "verified_as_target": cross}}

    rows = {choose.COPY: row(0.0, 10.0, 0.0), choose.DEFAULT: row(0.50, 20.0, 0.20),
            copy_world: row(0.0, 11.5, 0.0), default_world: row(0.49, 24.0, 0.40),  # ties, more across: passes
            copy_harvest: row(0.0, 13.0, 0.0), default_harvest: row(0.70, 21.0, 0.60)}  # copy loses words
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"seeds": [1234], "conversion": {"block": "training speakers", "rows": rows}}))
    out = tmp_path / "world.md"
    choose.main([str(path), "--resynthesis", "--out", str(out)])
    text = out.read_text()
    assert "* world, F0 by dio: passes" in text
    assert "* world, F0 by harvest: does not pass: its copy-synthesis loses words (13.0 % PER" in text
    rows[default_world] = row(0.60, 26.0, 0.10)  # more verified overall, but fewer across genders and 6 PER points
    path.write_text(json.dumps({"seeds": [1234], "conversion": {"block": "training speakers", "rows": rows}}))
    choose.main([str(path), "--resynthesis", "--out", str(out)])
    verdict = next(line for line in out.read_text().splitlines() if line.startswith("* world, F0 by dio"))
    assert "not verified more often across genders" in verdict and "loses words (26.0 % PER" in verdict


def test_f0_tracker_rule_takes_the_fastest_that_voices_and_holds_the_register_as_well():
    choose = load_bench("choose_f0_tracker")

    def numbers(voicing, jumps, spread, rtf):
        return {"voicing": voicing, "octave jumps": jumps, "register spread": spread, "rtf": rtf}

    results = {"harvest": numbers(0.91, 0.003, 1.2, 0.2), "fast but unvoiced": numbers(0.80, 0.001, 1.0, 0.005),
               "fast, octave errors": numbers(0.90, 0.010, 1.0, 0.004), "good": numbers(0.88, 0.002, 1.1, 0.006)}
    assert choose.choose(results) == "good"
    results["good"]["register spread"] = 1.3  # a less steady register than Harvest's: Harvest stays
    assert choose.choose(results) == "harvest"


def test_f0_tracker_choice_reads_training_speakers_voicing_from_the_labels(tmp_path):
    """On a tiny TIMIT-layout corpus of voice-like tones whose .PHN says which part is voiced, both trackers
    agree with the labels on most frames, a speaker's two readings share a register, and a choice is written."""
    pytest.importorskip("pyworld")
    import soundfile

    choose = load_bench("choose_f0_tracker")
    rate = 16000
    for speaker, f0 in (("MAAA0", 110.0), ("FBBB0", 220.0)):
        folder = tmp_path / "TRAIN" / "DR1" / speaker
        folder.mkdir(parents=True)
        for utterance in ("SI1", "SX2"):
            time = np.arange(rate) / rate
            wav = sum(np.sin(2 * np.pi * f0 * k * time) / k for k in range(1, 11)) * 0.1
            wav[rate // 2:] = np.random.default_rng(0).normal(0, 0.01, rate // 2)  # then a voiceless hiss
            soundfile.write(folder / f"{utterance}.WAV", wav, rate, subtype="PCM_16", format="WAV")
            (folder / f"{utterance}.PHN").write_text(f"0 {rate // 2} aa\n{rate // 2} {rate} s\n")
    out = tmp_path / "trackers.md"
    assert choose.main([str(tmp_path), "--speakers", "2", "--out", str(out)]) == 0
    table = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in out.read_text().splitlines()
             if line.startswith("| harvest") or line.startswith("| dio (range 0.3)")}
    assert set(table) == {"harvest", "dio (range 0.3)"}
    for cells in table.values():
        assert float(cells[1]) > 0.75  # voicing agreement with the labels (DIO's wide range voices some hiss)
        assert float(cells[3]) < 0.5   # the two readings of a speaker: the same register
    assert "Chosen by the rule" in out.read_text()

def test_conversion_benchmark_times_each_row_it_is_given(trained, tmp_path, monkeypatch):
    bench = load_bench("bench_conversion")
    manipulation, method, tracker = bench.parse_row("select:context=3,tagger=false@gain")
    assert (manipulation.name, manipulation.context, manipulation.tagger, method) == ("select", 3.0, False, "gain")
    assert bench.parse_row("cells@world/harvest")[1:] == ("world", "harvest")
    with pytest.raises(SystemExit, match="no F0 tracker 'harvest' for gain"):
        bench.parse_row("cells@gain/harvest")
    with pytest.raises(SystemExit, match="no option 'shrink'"):
        bench.parse_row("knn:shrink=2")
    with pytest.raises(SystemExit, match="no resynthesis 'vocoder'"):
        bench.parse_row("cells@vocoder")
    model, prepared = trained
    out = tmp_path / "rtf.md"
    monkeypatch.setattr("sys.argv", ["bench", "--model", str(model), "--prepared", str(prepared), "--utterances", "1",
                                     "--references", "2", "--reference_seconds", "0", "--targets", "1", "--rounds", "1", "--rows",
                                     "shift", "cells@world",
                                     "--out", str(out)])
    bench.main()
    table = out.read_text()
    assert "| this checkout | shift | " in table and "| 1.00 |" in table  # the peer row's ratio to itself
    assert "| this checkout | cells@world | " in table and "input checks" in table
    rows = {line.split(" | ")[1]: line.strip("| ").split(" | ") for line in table.splitlines()
            if line.startswith("| this checkout")}
    assert rows["shift"][4:] == ["-"] * 4  # no audio of the target to analyse once, nor to save
    assert float(rows["cells@world"][4]) > 0  # from audio of the target: also with it analysed once per round
    assert float(rows["cells@world"][6]) > 0  # and read from its saved analysis on every call
    assert "to each of 1 target speakers" in table
    with pytest.raises(SystemExit, match="last 1000.0 s"):  # references as long as asked for, or none
        bench.pick_material(prepared, 1, 2, reference_seconds=1000.0)


def test_an_options_twin_passes_only_when_rated_better_without_losing_words_or_the_voice(tmp_path):
    import json

    choose = load_bench("choose_conversion")

    def row(verified, per, dnsmos):
        return {"trials": 80, "verified_as_target": verified, "closer_to_target": 1.0, "per_recognizer": per,
                "f0_gap_semitones": 2.0, "dnsmos_ovrl": dnsmos, "cross_gender": {"trials": 40, "verified_as_target": verified}}

    base, twin = "f-DNF units (join 1, tagger)", "f-DNF units (join 1, tagger, phase continued)"
    rows = {choose.COPY: row(0.0, 12.0, 2.0), base: row(0.95, 30.0, 1.70), twin: row(0.94, 30.8, 1.80),
            "f-DNF select (gated, tagger)": row(0.9, 37.0, 1.4)}
    path, out = tmp_path / "results.json", tmp_path / "twin.md"
    path.write_text(json.dumps({"seeds": [1234], "conversion": {"block": "valid speakers", "rows": rows}}))
    choose.main([str(path), "--twin", "phase continued", "--out", str(out)])
    text = out.read_text()
    assert f"* {twin}: passes" in text and "select" not in text
    rows[twin] = row(0.90, 30.8, 1.80)  # four trials fewer verified
    path.write_text(json.dumps({"seeds": [1234], "conversion": {"block": "valid speakers", "rows": rows}}))
    choose.main([str(path), "--twin", "phase continued", "--out", str(out)])
    assert "does not pass: verified less often (0.900 against 0.950)" in out.read_text()
    # the words rule: fewer phone errors, without losing the voice to the judge nor to its spoof test
    fallback = "f-DNF units (join 1, tagger, source's frames where the target lacks the phone)"
    rows[base]["spoof_eer"] = 45.0
    rows[fallback] = dict(row(0.94, 28.5, 1.70), spoof_eer=41.0)
    path.write_text(json.dumps({"seeds": [1234], "conversion": {"block": "valid speakers", "rows": rows}}))
    words = ["--twin", "source's frames where the target lacks the phone", "--rule", "words", "--out", str(out)]
    choose.main([str(path), *words])
    assert f"* {fallback}: passes" in out.read_text()
    rows[fallback]["spoof_eer"] = 38.0  # told from the target's real readings more easily
    path.write_text(json.dumps({"seeds": [1234], "conversion": {"block": "valid speakers", "rows": rows}}))
    choose.main([str(path), *words])
    assert "does not pass: told from real readings more easily (38.000 against 45.000)" in out.read_text()


def test_the_gpu_exactness_check_compares_every_conversion_and_a_saved_target_between_devices(trained, tmp_path):
    exactness = load_bench("gpu_exactness")
    model, prepared = trained
    out = tmp_path / "exactness.md"
    # on a machine without a GPU it compares the CPU with itself: every check runs, and must pass
    assert exactness.main(["--model", str(model), "--prepared", str(prepared), "--device", "cpu", "--utterances", "1",
                           "--out", str(out)]) == 0
    table = out.read_text()
    assert "| full float32 (the package's) |" in table and "| units @ gain | 0.00e+00 | 1.00000 |" in table
    assert "| cpu | cpu | yes | yes |" in table and "Checks: all passed" in table


def test_the_unseen_voices_probe_counts_each_speakers_commonest_tagger_errors():
    """The tagger's confusions on the stock voices: speech frames only (silence and unlabelled frames never count),
    labelled -> tagged by phone name, commonest first, each as a share of that speaker's speech frames; each
    utterance tagged once for the shares and the confusions alike."""
    probe = load_bench("unseen_voices")
    names = ["h#", "aa", "ae", "iy"]
    utterances = {  # speaker -> its one utterance's (labelled, tagged)
        "A": ([0, 1, 1, 1, 2, 2, 3, -1], [1, 2, 2, 1, 2, 1, 3, 0]),  # aa -> ae twice, ae -> aa once; h# and -1 ignored
        "B": ([3, 3, 3, 3], [3, 3, 3, 3]),
    }
    frames, tags, calls = {}, {}, []
    for speaker, (labels, tagged) in utterances.items():
        feats = torch.randn(len(labels), 2)
        frames[speaker] = {speaker: (feats, torch.tensor(labels))}
        tags[id(feats)] = torch.tensor(tagged)
    tag = probe.memoised_tags(SimpleNamespace(tag=lambda feats: calls.append(1) or tags[id(feats)]))
    confusions = probe.tagger_confusions(tag, frames, names, silence=0, count=5)
    assert confusions["A"] == [("aa", "ae", pytest.approx(2 / 6)), ("ae", "aa", pytest.approx(1 / 6))]
    assert confusions["B"] == []
    every, by_speaker = probe.tagger_accuracy(tag, frames, silence=0)
    assert by_speaker == {"A": pytest.approx(3 / 6), "B": 1.0} and every == pytest.approx(7 / 10)
    assert len(calls) == 2


def test_the_tagger_training_benchmark_times_both_lstms_and_finds_them_agreeing(tmp_path):
    """Both LSTMs timed, the padded one's speed-up against the packed one read in the same run, and the two agreeing
    on outputs and gradients (the table says to how much)."""
    import re

    out = tmp_path / "tagger_training.md"
    load_bench("bench_tagger_training").main(["--threads", "1", "--rounds", "1", "--batch_size", "3", "--out", str(out)])
    table = out.read_text()
    assert "| cpu, 1 thread(s) | SpeechBrain's LSTM, packed |" in table and "| padded, each direction apart |" in table
    outputs, gradients = (float(value) for value in re.search(r"Outputs agree to (\S+), gradients to (\S+) ", table).groups())
    assert outputs < 1e-5 and gradients < 1e-4
