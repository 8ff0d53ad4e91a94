"""The contextual phone tagger: trained by its recipe, better than the model's own gate, used by the gates."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from speechbrain_fdnf.lobes.tagger import FrameTagger
from speechbrain_fdnf.tagging import load_tagger, save_tagger

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("normalization, cnn_channels, cnn_blocks", [("global", 0, 1), ("utterance", 0, 1),
                                                                    ("utterance", 3, 1), ("utterance", 3, 2)])
def test_a_saved_tagger_loads_with_its_architecture_and_tags_alike(tmp_path, normalization, cnn_channels, cnn_blocks):
    tagger = FrameTagger(input_size=6, num_classes=4, hidden_size=8, num_layers=2, normalization=normalization,
                         cnn_channels=cnn_channels, change_penalty=1.5, cnn_blocks=cnn_blocks).eval()
    utterances = [torch.randn(20 + i, 6) * 3 + 1 + i for i in range(3)]
    tagger.fit_normalization(utterances)
    centred = torch.cat([u - u.mean(dim=0) for u in utterances]) if normalization == "utterance" else torch.cat(utterances)
    torch.testing.assert_close(tagger.mean, centred.mean(dim=0))  # the statistics of what the network is given
    assert load_tagger(tmp_path) is None  # a folder without one
    save_tagger(tmp_path, tagger)
    loaded = load_tagger(tmp_path)
    feats = torch.randn(2, 11, 6)
    assert torch.allclose(loaded(feats), tagger(feats))
    assert loaded.change_penalty == 1.5 and torch.equal(loaded.tag(feats[0]), tagger.tag(feats[0]))
    # per utterance, each utterance's own level per band is taken away (over its frames, not its padding)
    lengths = torch.tensor([1.0, 7 / 11])
    shifted = feats + torch.tensor([[[5.0]], [[-9.0]]])
    same = torch.allclose(loaded(shifted, lengths)[1, :7], loaded(feats, lengths)[1, :7], atol=1e-5)
    assert same == (normalization == "utterance")
    padding_moved = feats.clone()
    padding_moved[1, 7:] += 50.0
    torch.testing.assert_close(loaded(padding_moved, lengths)[1, :7], loaded(feats, lengths)[1, :7])
    # a padded utterance is tagged as it is alone (the convolutional front end never reads the padding)
    torch.testing.assert_close(loaded(feats, lengths)[1, :7], loaded(feats[1:, :7])[0])
    assert loaded.tag(feats[0, :1]).shape == (1,)  # one frame is enough
    with pytest.raises(ValueError, match="normalization must be one of"):
        FrameTagger(input_size=6, num_classes=4, normalization="speaker")
    if normalization == "global":  # a tagger saved before the option (no key in its config) was normalised globally
        config = json.loads((tmp_path / "phone_tagger.json").read_text())
        del config["normalization"], config["cnn_channels"], config["change_penalty"], config["cnn_blocks"]
        (tmp_path / "phone_tagger.json").write_text(json.dumps(config))
        older = load_tagger(tmp_path)
        assert older.config["normalization"] == "global" and torch.allclose(older(feats), tagger(feats))
        assert older.config["cnn_channels"] == 0 and older.cnn is None  # nor had it a convolutional front end
        assert older.config["cnn_blocks"] == 1
        assert older.change_penalty == 0.0  # and it read each frame's most likely class
    if cnn_blocks > 1:  # the blocks one after the other, the bands pooled in pairs by each
        assert len(loaded.cnn) == cnn_blocks and loaded.rnn_input == 6 // 2 ** cnn_blocks * cnn_channels
    with pytest.raises(ValueError, match="cnn_blocks"):
        FrameTagger(input_size=6, num_classes=4, cnn_channels=2, cnn_blocks=0)


def test_the_change_penalty_is_fitted_to_spell_the_valid_phones_with_the_fewest_errors():
    """A flicker of one frame into another phone inserts phones at penalty 0 and is gone at a small penalty; a large
    one swallows real phones too: the fit takes the smallest penalty of the fewest errors."""
    from speechbrain_fdnf.tagging import fit_change_penalty, phone_sequence_error

    def posteriors(*rows):
        return torch.tensor(rows).log()

    flicker = posteriors([0.9, 0.05, 0.05], [0.4, 0.55, 0.05], [0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.9, 0.05])
    short = posteriors([0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.1, 0.1, 0.8], [0.05, 0.9, 0.05], [0.05, 0.9, 0.05])
    frames = {"flicker": (torch.zeros(5, 2), torch.tensor([0, 0, 0, 1, 1])),
              "short": (torch.ones(5, 2), torch.tensor([0, 0, 2, 1, 1]))}
    tagger = FrameTagger(input_size=2, num_classes=3, hidden_size=4, num_layers=1)
    tagger.log_posteriors = lambda feats: flicker if float(feats[0, 0]) == 0 else short
    errors = fit_change_penalty(tagger, frames, penalties=(0.0, 0.5, 1.0, 8.0))
    assert errors[0.0] == pytest.approx(2 / 5)  # the flicker: two phones inserted, of five labelled
    assert errors[0.5] == errors[1.0] == 0.0
    assert errors[8.0] == pytest.approx(3 / 5)  # too large: the real phones of these few frames swallowed too
    assert tagger.change_penalty == 0.5 and tagger.config["change_penalty"] == 0.5
    assert phone_sequence_error(tagger.tag, frames) == 0.0
    with pytest.raises(ValueError, match="change_penalty must be at least 0"):
        tagger.change_penalty = -1.0


def test_the_tagger_reads_context_a_frame_alone_cannot():
    """Frames of two classes that look the same alone, told apart by what follows: a per-frame classifier is at
    chance, the bidirectional tagger learns it."""
    torch.manual_seed(0)
    feats, labels = [], []
    for _ in range(64):
        label = torch.randint(2, (1,)).item()
        cue = torch.full((3, 2), 2.0 * label - 1.0)  # the class shows only in the frames after the ambiguous one
        feats.append(torch.cat([torch.zeros(5, 2), cue]) + 0.1 * torch.randn(8, 2))
        labels.append(torch.tensor([label] * 5 + [2] * 3))
    tagger = FrameTagger(input_size=2, num_classes=3, hidden_size=16, num_layers=1)
    optimizer = torch.optim.Adam(tagger.parameters(), lr=0.02)
    batch, target = torch.stack(feats), torch.stack(labels)
    for _ in range(150):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(tagger(batch).transpose(1, 2), target).backward()
        optimizer.step()
    tagger.eval()
    right = sum(int((tagger.tag(f)[:5] == l[:5]).all()) for f, l in zip(feats, labels))
    assert right >= 60  # of 64 utterances, every ambiguous frame right


def test_the_augmentation_changes_training_batches_only(tmp_path):
    """train_tagger's augmentation sees every training batch, at its padded shape, and never a valid one; the
    frames it is given are a copy (SpeechBrain's warping writes into its input)."""
    from speechbrain.augment.freq_domain import Warping

    from speechbrain_fdnf.tagging import train_tagger

    torch.manual_seed(0)
    frames = {split: {f"{split}{i}": (torch.randn(5 + i, 12), torch.randint(3, (5 + i,))) for i in range(count)}
              for split, count in (("train", 5), ("valid", 2))}
    kept = {uid: feats.clone() for uid, (feats, _) in frames["train"].items()}
    seen, warp = [], Warping(dim=2)

    def augmentation(feats):
        seen.append(feats.shape)
        return warp(feats)

    train_tagger(frames, 3, tmp_path, number_of_epochs=2, batch_size=2, augmentation=augmentation, hidden_size=8,
                 num_layers=1)
    # 5 training utterances in batches of 2 (shuffled), twice; the valid ones never
    assert sorted(shape[0] for shape in seen) == [1, 1, 2, 2, 2, 2] and all(shape[2] == 12 for shape in seen)
    assert all(torch.equal(frames["train"][uid][0], feats) for uid, feats in kept.items())


def test_the_learning_rate_falls_linearly_to_the_final_one_and_resumes_there(tmp_path, monkeypatch):
    """With ``final_lr`` each epoch trains at its point of the line from ``lr`` to ``final_lr``; a run resumed from
    its checkpoints goes on at the rate it had reached; without it, ``lr`` throughout."""
    from speechbrain_fdnf.tagging import TaggerBrain, train_tagger

    torch.manual_seed(0)
    frames = {split: {f"{split}{i}": (torch.randn(5 + i, 6), torch.randint(3, (5 + i,))) for i in range(count)}
              for split, count in (("train", 4), ("valid", 2))}
    rates = []
    fit_batch = TaggerBrain.fit_batch
    monkeypatch.setattr(TaggerBrain, "fit_batch", lambda self, batch: rates.append(
        self.optimizer.param_groups[0]["lr"]) or fit_batch(self, batch))
    options = dict(batch_size=4, lr=0.004, hidden_size=8, num_layers=1)
    train_tagger(frames, 3, tmp_path / "annealed", number_of_epochs=3, final_lr=0.001, **options)
    assert [round(rate, 6) for rate in rates] == [0.004, 0.0025, 0.001]  # one batch per epoch
    rates.clear()
    train_tagger(frames, 3, tmp_path / "annealed", number_of_epochs=4, final_lr=0.001, **options)  # resumed
    assert [round(rate, 6) for rate in rates] == [0.001]
    rates.clear()
    train_tagger(frames, 3, tmp_path / "constant", number_of_epochs=2, **options)
    assert rates == [0.004, 0.004]


@pytest.mark.slow
def test_the_recipe_trains_a_tagger_that_beats_the_models_gate_and_the_gates_use_it(trained, tmp_path):
    from speechbrain_fdnf.inference import SpeechFactorizer

    model = tmp_path / "inference"
    shutil.copytree(trained[0], model)  # the tagger is saved into the model folder: not the shared one
    command = [sys.executable, str(ROOT / "recipes/TIMIT/train_tagger.py"), str(ROOT / "hparams/phone_tagger.yaml"),
               f"--model_folder={model}", f"--prep_folder={trained[1]}", f"--output_folder={tmp_path / 'tagger'}",
               "--number_of_epochs=40", "--lr=0.005", "--hidden_size=64", "--num_layers=1", "--change_penalty=null"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    accuracy = json.loads((tmp_path / "tagger" / "results.json").read_text())["accuracy"]
    assert accuracy["heldout"]["tagger"] > accuracy["heldout"]["gate"]
    assert "| test speakers" in (tmp_path / "tagger" / "results.md").read_text()
    report = json.loads((tmp_path / "tagger" / "results.json").read_text())  # the penalty fitted on valid, saved
    fitted = {float(penalty): error for penalty, error in report["fitted_penalties"].items()}
    assert report["change_penalty"] == min(fitted, key=lambda penalty: (fitted[penalty], penalty))
    assert load_tagger(model).change_penalty == report["change_penalty"]

    factorizer = SpeechFactorizer.from_hparams(source=model)
    assert factorizer.tagger is not None
    entries = json.loads((trained[1] / "train.json").read_text())
    speakers = sorted({entry["speaker"] for entry in entries.values()})
    source = next(e["wav"] for e in entries.values() if e["speaker"] == speakers[0])
    references = [e["wav"] for e in entries.values() if e["speaker"] == speakers[1]][:3]
    calls = []
    original = factorizer.tagger.log_posteriors
    factorizer.tagger.log_posteriors = lambda feats: calls.append(len(feats)) or original(feats)
    converted = factorizer.select(source, "speaker", references)
    assert torch.isfinite(converted).all()
    assert len(calls) == 1 + len(references)  # the source and every reference tagged by it
    assert torch.isfinite(factorizer.select(source, "speaker", references, tagged=False)).all() and len(calls) == 4
    # cells: the per-phone differences weighted by the tagger's posteriors only when asked
    untagged = factorizer.transfer(source, "speaker", references)
    assert len(calls) == 4
    tagged = factorizer.transfer(source, "speaker", references, tagged=True)
    assert len(calls) == 8 and tagged.shape == untagged.shape and not torch.allclose(tagged, untagged)
    # the converter's default with audio of the target: whole phones named by the tagger (units)
    from speechbrain_fdnf.convert import convert
    units = factorizer.select_units(source, "speaker", references)
    assert len(calls) == 12 and units.shape == (len(factorizer.features(source)),)
    wav = factorizer.load_audio(source)
    by_default = convert(factorizer, wav, "speaker", references=references)
    torch.testing.assert_close(by_default, convert(factorizer, wav, "speaker", references=references,
                                                   manipulation="units"))
    assert len(calls) == 20
    # a target's pool is read as each of its utterances is alone (a run never decoded across two of them)
    penalised = SpeechFactorizer.from_hparams(source=model)
    penalised.tagger.change_penalty = 4.0
    target = penalised.target_audio(references)
    torch.testing.assert_close(target.tagged_phones(), torch.cat([penalised.tagged_phones(item) for item in target.features]))
    factorizer.tagger = None  # back to the model's own gate, and to cells as the default
    assert torch.isfinite(factorizer.select(source, "speaker", references)).all() and len(calls) == 20
    calls.clear()
    assert torch.equal(factorizer.transfer(source, "speaker", references, tagged=True), untagged)
    torch.testing.assert_close(convert(factorizer, wav, "speaker", references=references),
                               convert(factorizer, wav, "speaker", references=references, manipulation="cells"))
    assert not calls


def test_a_new_export_keeps_the_tagger_while_the_phone_classes_stay(tmp_path):
    from hyperpyyaml import load_hyperpyyaml
    from speechbrain.dataio.encoder import CategoricalEncoder
    from speechbrain.processing.features import InputNormalization

    from speechbrain_fdnf.export import export_model
    from speechbrain_fdnf.lobes import with_class_counts

    (tmp_path / "train.yaml").write_text("""
sample_rate: 16000
context: 0
input_dim: 40
compute_features: !new:speechbrain.lobes.features.Fbank {n_mels: 40}
model: !new:speechbrain_fdnf.lobes.DiscriminativeFlow
    flow: !new:speechbrain_fdnf.lobes.RealNVP {input_dim: 40, num_blocks: 2, hidden_size: 16}
    prior: !new:speechbrain_fdnf.lobes.FactorialGaussianPrior
        factors: [{name: phone, dim: 4}]
        residual_dim: 36
        mean_init: random
""")
    model = with_class_counts(load_hyperpyyaml((tmp_path / "train.yaml").read_text())["model"], {"phone": 3})
    normalize = InputNormalization(norm_type="global")
    normalize(torch.randn(100, 1, 40), torch.ones(100), epoch=0)

    def export(phones):
        encoder = CategoricalEncoder()
        encoder.update_from_iterable(phones)
        return export_model(tmp_path / "inference", model, normalize, {"phone": encoder}, tmp_path / "train.yaml")

    folder = export(["aa", "iy", "sil"])
    tagger = FrameTagger(input_size=40, num_classes=3, hidden_size=8, num_layers=1).eval()
    save_tagger(folder, tagger)
    export(["aa", "iy", "sil"])  # the run trained on: same classes, the tagger stays
    feats = torch.randn(1, 7, 40)
    assert torch.allclose(load_tagger(folder)(feats), tagger(feats))
    export(["aa", "iy", "uw"])  # other classes: the tagger would index them wrongly, so it goes
    assert load_tagger(folder) is None
