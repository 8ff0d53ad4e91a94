"""The transcribed-corpus path end to end: synthesis in LibriSpeech's and VCTK's layouts, forced alignment,
training through the per-dataset recipes, then the evaluation and a reuse recipe on the prepared corpus."""

import json
import subprocess
import sys

import pytest

from conftest import ROOT, TINY

MODEL_TINY = [arg for arg in TINY if not arg.startswith("--embedded_corpus_size")]


def run(*command, timeout=900):
    result = subprocess.run([sys.executable, *map(str, command)], cwd=ROOT, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_the_issue_command_synthesizes_librispeech_and_trains_on_forced_alignments(tmp_path):
    corpus, out = tmp_path / "librispeech", tmp_path / "run"
    run("-m", "speechbrain_fdnf.data.synthesize", corpus, "--size", "small", "--layout", "librispeech")
    assert (corpus / "SPEAKERS.TXT").exists() and not list(corpus.rglob("*.PHN"))
    run("-m", "speechbrain_fdnf.data.synthesize", corpus, "--size", "small", "--layout", "librispeech")  # reused
    run(ROOT / "recipes/LibriSpeech/train_fdnf.py", ROOT / "hparams/fdnf.yaml", f"--data_folder={corpus}",
        f"--output_root={out}", *MODEL_TINY)
    options = json.loads((out / "prepared" / "prepare_options.json").read_text())
    assert options["options"]["layout"] == "librispeech" and options["forced_alignment"]["utterances"] > 0
    assert set(json.loads((out / "fdnf" / "1234" / "nll.json").read_text())["nll_nats_per_dim"]) == {"heldout", "test"}
    assert (out / "fdnf" / "1234" / "inference" / "hyperparams.yaml").exists()
    # the evaluation takes the same corpus by name and finds the trained model
    run(ROOT / "recipes/TIMIT/evaluate.py", ROOT / "hparams/experiments/forced_vs_exact.yaml", f"--output_root={out}",
        "--seeds=[1234]", f"--data_overrides={{corpus: librispeech, data_folder: {corpus}}}",
        "--train_missing=False")
    report = (out / "evaluation" / "results.md").read_text()
    assert "| f-DNF |" in report


@pytest.mark.slow
def test_the_vctk_recipe_trains_and_a_reuse_recipe_reads_the_prepared_corpus(vctk, tmp_path):
    out = tmp_path / "run"
    run(ROOT / "recipes/VCTK/train_fdnf.py", ROOT / "hparams/fdnf.yaml", f"--data_folder={vctk}",
        f"--output_root={out}", *MODEL_TINY)
    train = json.loads((out / "prepared" / "train.json").read_text())
    assert all(entry["wav"].endswith(".flac") and "/audio/" in entry["wav"] for entry in train.values())
    # given the corpus root alone, the reuse recipe prepares it as the training run did (its layout recorded)
    run(ROOT / "recipes/TIMIT/speaker_id.py", ROOT / "hparams/speaker_id.yaml", f"--output_root={out}",
        f"--data_folder={vctk}")
    speakers = len({entry["speaker"] for entry in train.values()})
    assert f"# Speaker identification among {speakers} speakers" in (out / "speaker_id.md").read_text()
