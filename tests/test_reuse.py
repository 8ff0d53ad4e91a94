"""The reuse recipes: CTC phone recognition and speaker verification on f-DNF features (tiny settings)."""

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import recipe
from speechbrain.utils.metric_stats import ErrorRateStats

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--embedded_corpus_size=small", "--num_blocks=2", "--hidden_size=32", "--lr=0.003", "--batch_size=256",
        "--number_of_epochs=1"]


def run(script, yaml, *args):
    command = [sys.executable, str(ROOT / "recipes/TIMIT" / script), str(ROOT / "hparams" / yaml), *args]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An output root with a 1-epoch f-DNF and speaker DNF trained by the recipe on the small corpus."""
    root = tmp_path_factory.mktemp("reuse")
    for model in ("fdnf", "dnf_speaker"):
        run("train_fdnf.py", f"{model}.yaml", f"--output_root={root}", *TINY)
    return root


@pytest.mark.slow
def test_phone_recognition_runs_every_feature_set_end_to_end(trained):
    run("phone_recognition.py", "phone_recognition.yaml", f"--output_root={trained}", "--number_of_epochs=1")
    results = json.loads((trained / "phone_recognition" / "results.json").read_text())
    assert set(results["per"]) == {"fbank", "z", "z_content", "speaker_normalized"}
    assert all(0 <= per <= 100 for per in results["per"].values())
    assert all(seconds > 0 for seconds in results["train_seconds"].values())
    table = (trained / "phone_recognition" / "results.md").read_text()
    assert "| z_content | " in table and results["reference_speaker"] in table
    # the latent without its speaker subspace is narrower than the whole latent
    features = torch.load(trained / "phone_recognition" / "features_z_content.pt")["features"]["test"]
    whole = torch.load(trained / "phone_recognition" / "features_z.pt")["features"]["test"]
    uid = next(iter(features))
    assert features[uid].shape[0] == whole[uid].shape[0] and features[uid].shape[1] < whole[uid].shape[1]


def test_the_phone_error_rate_of_an_exact_transcription_is_zero():
    module = recipe("phone_recognition")
    brain = module.PhoneCTCBrain(modules={}, hparams={"blank_index": 0, "per_stats": ErrorRateStats})
    brain.label_encoder = SimpleNamespace(decode_ndim=lambda batch: [[str(int(i)) for i in seq] for seq in batch])
    # frames spell 3 5 _ 5 7 (blank between the repeated 5s), then padding
    path = [3, 5, 0, 5, 7, 7]
    log_probs = torch.full((1, 8, 9), -30.0)
    log_probs[0, torch.arange(len(path)), torch.tensor(path)] = 0.0
    batch = SimpleNamespace(id=["utt"], phones_encoded=(torch.tensor([[3, 5, 5, 7]]), torch.tensor([1.0])))
    brain.on_stage_start(module.sb.Stage.TEST)
    brain.compute_objectives((log_probs, torch.tensor([len(path) / 8])), batch, module.sb.Stage.TEST)
    assert brain.per_metrics.summarize("error_rate") == 0.0
    wrong = SimpleNamespace(id=["utt"], phones_encoded=(torch.tensor([[3, 5, 7, 7]]), torch.tensor([1.0])))
    brain.on_stage_start(module.sb.Stage.TEST)
    brain.compute_objectives((log_probs, torch.tensor([len(path) / 8])), wrong, module.sb.Stage.TEST)
    assert brain.per_metrics.summarize("error_rate") == pytest.approx(25.0)  # one substitution in four
    assert module.collapse_repeats(["sil", "sil", "aa", "aa", "b"]) == ["sil", "aa", "b"]


def test_the_trial_list_keeps_enrolment_and_test_apart(prepared):
    module = recipe("speaker_verification")
    test = prepared[1]["test"]
    enrol, tests, trials = module.build_trials(test, 3, seed=1)
    enrolled = {uid for uids in enrol.values() for uid in uids}
    assert enrolled and not enrolled & set(tests)
    assert enrolled | set(tests) == set(test)
    assert len(trials) == len(enrol) * len(tests)
    for speaker, uid, target in trials:
        assert target == (test[uid]["speaker"] == speaker)
    assert sum(t for *_, t in trials) == len(tests)  # every test utterance is one speaker's target
    assert module.build_trials(test, 3, seed=1) == (enrol, tests, trials)
    with pytest.raises(ValueError, match="at least two"):
        module.build_trials(test, 100, seed=1)


@pytest.mark.slow
def test_speaker_verification_runs_every_embedding_end_to_end(trained):
    run("speaker_verification.py", "speaker_verification.yaml", f"--output_root={trained}", "--xvector_epochs=1")
    results = json.loads((trained / "speaker_verification" / "results.json").read_text())
    names = {"mean Fbank (baseline)", "f-DNF factor_embedding", "speaker DNF mean latent", "x-vector"}
    assert set(results["eer"]) == names and set(results["min_dcf"]) == names
    assert all(0 <= eer <= 1 for eer in results["eer"].values())
    assert all(0 <= dcf <= 1 for dcf in results["min_dcf"].values())
    assert results["trials"]["target"] > 0 and results["trials"]["nontarget"] > 0
    assert "| x-vector | 128 |" in (trained / "speaker_verification" / "results.md").read_text()


def test_a_missing_model_is_a_clear_error(tmp_path, prepared):
    result = subprocess.run(
        [sys.executable, str(ROOT / "recipes/TIMIT/speaker_verification.py"), str(ROOT / "hparams/speaker_verification.yaml"),
         f"--output_root={tmp_path}", f"--prep_folder={prepared[0]}"], cwd=ROOT, capture_output=True, text=True,
        timeout=300)
    assert result.returncode != 0 and "fdnf/1234/inference" in result.stderr


@pytest.mark.parametrize("name", ["phone_recognition", "speaker_verification"])
def test_recipe_docstring_examples(name):
    import doctest

    outcome = doctest.testmod(recipe(name))
    assert outcome.attempted > 0 and outcome.failed == 0
