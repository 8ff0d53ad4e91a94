"""The inference interface and the conversion command on a model the recipe trained (tiny settings)."""

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
import torchaudio

from conftest import perturb
from speechbrain_fdnf.convert import main as convert_main
from speechbrain_fdnf.inference import FactorialFlow, InferenceInputError, SpeechFactorizer

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def flow(trained):
    return SpeechFactorizer.from_hparams(source=trained[0])


@pytest.fixture(scope="module")
def utterance(trained):
    """A held-out utterance of a training speaker: ``(wav path, speaker)``."""
    entry = next(iter(json.loads((trained[1] / "heldout.json").read_text()).values()))
    return Path(entry["wav"]), entry["speaker"]


def test_the_recipe_exports_a_self_contained_folder(trained, flow):
    names = {path.name for path in trained[0].iterdir()}
    assert {"hyperparams.yaml", "model.ckpt", "normalize.ckpt", "phone_encoder.txt", "speaker_encoder.txt",
            "phone_decoder.ckpt"} <= names
    assert flow.factors == ["phone", "speaker"] and set(flow.decoders) == {"phone"}
    assert flow.decoders["phone"].num_classes == len(flow.labels("phone"))
    speakers = json.loads((trained[1] / "train.json").read_text())
    assert sorted(flow.labels("speaker")) == sorted({entry["speaker"] for entry in speakers.values()})
    # the folder still loads after a move: nothing in it points back to the training run
    moved = trained[0].parent / "moved"
    shutil.copytree(trained[0], moved)
    again = SpeechFactorizer.from_hparams(source=moved)
    feats = torch.randn(5, 40) * 5
    torch.testing.assert_close(again.encode(feats)["z"], flow.encode(feats)["z"])
    torch.testing.assert_close(again.decoders["phone"].log_transitions, flow.decoders["phone"].log_transitions)


def test_decode_inverts_encode_on_real_speech(flow, utterance):
    feats = flow.features(utterance[0])
    assert feats.shape[1] == 40 and len(feats) > 50
    assert (flow.decode(flow.encode(feats)) - feats).abs().max() < 1e-3  # raw log-Mel values (dB)
    torch.testing.assert_close(flow.features(flow.read_wav(utterance[0])), feats)


def test_manipulation_moves_only_the_target_subspace(flow, utterance):
    feats = flow.features(utterance[0])
    speaker = utterance[1]
    assert torch.allclose(flow.manipulate(feats, "speaker", speaker, source=speaker), feats, atol=1e-3)
    target = next(name for name in flow.labels("speaker") if name != speaker)
    moved = flow.encode(flow.manipulate(feats, "speaker", target, source=speaker))
    before = flow.encode(feats)
    means = flow.model.prior.means("speaker")
    shift = means[flow.class_index("speaker", target)] - means[flow.class_index("speaker", speaker)]
    torch.testing.assert_close(moved["speaker"], before["speaker"] + shift, atol=2e-3, rtol=0)
    for name in ("phone", "residual"):
        torch.testing.assert_close(moved[name], before[name], atol=2e-3, rtol=0)
    # deviation 0: the speaker code becomes the target's mean in every frame
    to_mean = flow.encode(flow.manipulate(feats, "speaker", target, source=speaker, deviation=0.0))
    torch.testing.assert_close(to_mean["speaker"], means[flow.class_index("speaker", target)].expand_as(to_mean["speaker"]),
                               atol=2e-3, rtol=0)
    torch.testing.assert_close(to_mean["phone"], before["phone"], atol=2e-3, rtol=0)


def test_enrolment_target_and_factor_embedding(flow, trained, utterance):
    entries = json.loads((trained[1] / "train.json").read_text()).values()
    other = [e["wav"] for e in entries if e["speaker"] != utterance[1]][:2]
    enrolled = flow.enrol(other, "speaker")
    assert enrolled.shape == (flow.model.prior.means("speaker").shape[1],)
    feats = flow.features(utterance[0])
    embedding = flow.factor_embedding(feats, "speaker")
    moved = flow.manipulate(feats, "speaker", enrolled, source=embedding)
    torch.testing.assert_close(flow.factor_embedding(moved, "speaker"), enrolled, atol=2e-3, rtol=0)


def test_log_likelihood_marginalises_over_classes(flow, utterance):
    feats = flow.features(utterance[0])[:40]
    marginal = flow.log_likelihood(feats)
    per_speaker = torch.stack([flow.log_likelihood(feats, {"speaker": name}) for name in flow.labels("speaker")])
    expected = torch.logsumexp(per_speaker, dim=0) - math.log(per_speaker.shape[0])
    torch.testing.assert_close(marginal, expected, atol=1e-4, rtol=1e-5)
    assert torch.isfinite(marginal).all() and marginal.shape == (40,)


def test_the_class_posterior_at_a_class_mean_picks_that_class(flow, utterance):
    codes = flow.encode(utterance[0])
    for factor in ("phone", "speaker"):
        means = flow.model.prior.means(factor)
        # classes without training frames (e.g. silence) all keep the same mean: only distinct ones can win
        nearest_other = (torch.cdist(means, means) + torch.eye(len(means)) * 1e9).min(-1).values
        distinct = torch.nonzero(nearest_other > 1e-3).flatten()
        assert len(distinct) >= 2
        classes = distinct[torch.arange(len(codes["z"])) % len(distinct)]
        z = codes["z"].clone()
        z[:, flow.model.prior.slices[factor]] = means[classes]
        posterior = flow.class_posterior(flow.decode(z), factor)
        assert posterior.shape == (len(z), len(flow.labels(factor)))
        assert torch.equal(posterior.argmax(-1), classes)


def test_the_names_before_0_5_still_work(flow, utterance):
    from speechbrain_fdnf.brain import read_nll
    from speechbrain_fdnf.corpus.synthesize import synthesize_corpus as moved
    from speechbrain_fdnf.data.synthesize import synthesize_corpus
    from speechbrain_fdnf.engine import nearest_mean
    from speechbrain_fdnf.evaluation.parallel import parallel_pairs
    from speechbrain_fdnf.lobes.transforms import AffineCoupling, normalized_linear

    assert FactorialFlow is SpeechFactorizer  # the name before 0.2
    assert synthesize_corpus is moved and callable(read_nll) and callable(nearest_mean) and callable(parallel_pairs)
    assert AffineCoupling.__module__ == "speechbrain_fdnf.lobes.couplings" and callable(normalized_linear)
    torch.testing.assert_close(flow.read_wav(utterance[0]), flow.load_audio(utterance[0]))


def test_convert_command_writes_a_wav_next_to_the_original(flow, trained, utterance, tmp_path):
    wav = tmp_path / "input.wav"
    shutil.copy(utterance[0], wav)
    target = next(name for name in flow.labels("speaker") if name != utterance[1])
    samples, rate = soundfile.read(str(wav))
    for method in ("gain", "griffinlim"):
        out = tmp_path / f"{method}.wav"
        assert convert_main(["--model", str(trained[0]), "--wav", str(wav), "--speaker", target,
                             "--method", method, "--iterations", "4", "--out", str(out)]) == 0
        converted, converted_rate = soundfile.read(str(out))
        assert converted_rate == rate == 16000 and converted.shape == samples.shape
        assert np.isfinite(converted).all() and np.abs(converted).max() <= 1.0
    assert convert_main(["--model", str(trained[0]), "--wav", str(wav), "--speaker", target]) == 0
    assert (tmp_path / f"input_speaker-{target}.wav").is_file()
    shifted, _ = soundfile.read(str(tmp_path / f"input_speaker-{target}.wav"))
    out = tmp_path / "to_mean.wav"
    assert convert_main(["--model", str(trained[0]), "--wav", str(wav), "--speaker", target, "--deviation", "0",
                         "--out", str(out)]) == 0
    to_mean, _ = soundfile.read(str(out))
    assert to_mean.shape == samples.shape and np.abs(to_mean - shifted).max() > 1e-4
    # the module runs as a command too
    result = subprocess.run([sys.executable, "-m", "speechbrain_fdnf.convert", "--model", str(trained[0]),
                             "--list", "speaker"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0 and target in result.stdout.split()


def test_converting_to_the_same_speaker_keeps_the_audio(flow, utterance):
    from speechbrain_fdnf.convert import convert

    wav = flow.read_wav(utterance[0])
    same = convert(flow, wav, "speaker", utterance[1], source=utterance[1])
    assert (same - wav).abs().max() < 1e-3


def test_bad_arguments_give_clear_errors(flow, trained, utterance, tmp_path, capsys):
    model, wav = str(trained[0]), str(utterance[0])
    assert convert_main(["--model", model, "--wav", wav, "--speaker", "NOBODY"]) == 2
    assert "unknown speaker 'NOBODY'" in capsys.readouterr().err
    assert convert_main(["--model", str(tmp_path / "missing"), "--wav", wav, "--speaker", "X"]) == 2
    assert "does not exist" in capsys.readouterr().err
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    assert convert_main(["--model", model, "--wav", str(empty), "--speaker", utterance[1]]) == 2
    assert "empty.wav: empty file" in capsys.readouterr().err
    garbage = tmp_path / "garbage.flac"
    garbage.write_bytes(b"not audio at all" * 10)
    assert convert_main(["--model", model, "--wav", str(garbage), "--speaker", utterance[1]]) == 2
    assert "garbage.flac: unreadable audio" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: neither --speaker nor --target nor --enrol
        convert_main(["--model", model, "--wav", wav])
    with pytest.raises(InferenceInputError, match=r"shape \(10, 13\), expected \(..., frames, 40\)"):
        flow.encode(torch.randn(10, 13))
    with pytest.raises(InferenceInputError, match="NaN"):
        flow.encode(torch.full((3, 40), float("nan")))
    with pytest.raises(ValueError, match="no 'gender' factor"):
        flow.factor_embedding(wav, "gender")
    with pytest.raises(FileNotFoundError, match="not an exported model"):
        SpeechFactorizer.from_hparams(source=tmp_path)


def test_files_of_any_rate_and_channel_count_are_loaded_as_speechbrain_does_and_converted(flow, trained, utterance,
                                                                                         tmp_path):
    samples, rate = soundfile.read(str(utterance[0]), dtype="float32")
    wav = flow.load_audio(utterance[0])
    torch.testing.assert_close(wav, torch.from_numpy(samples))  # a file at the model's rate, mono: unchanged
    # 44.1 kHz stereo FLAC: resampled to the model's rate and mixed down (SpeechBrain's Pretrained.load_audio)
    high = torch.from_numpy(torchaudio.functional.resample(torch.from_numpy(samples), rate, 44100).numpy())
    stereo = tmp_path / "in_44k_stereo.flac"
    soundfile.write(str(stereo), np.stack([high.numpy(), 0.5 * high.numpy()], axis=1), 44100)
    loaded = flow.load_audio(stereo)
    assert abs(len(loaded) - len(samples)) <= 1
    n = min(len(loaded), len(samples))
    assert torch.corrcoef(torch.stack([loaded[:n], 0.75 * wav[:n]]))[0, 1] > 0.99  # the mean of the two channels
    out = tmp_path / "out.wav"
    assert convert_main(["--model", str(trained[0]), "--wav", str(stereo), "--speaker", utterance[1],
                         "--out", str(out)]) == 0
    info = soundfile.info(str(out))
    assert (info.samplerate, info.channels) == (rate, 1) and abs(info.frames - len(samples)) <= 1


def test_batch_methods_take_padded_waveforms_with_relative_lengths(flow, utterance):
    wav = flow.load_audio(utterance[0])
    short = wav[: len(wav) // 2]
    batch = torch.zeros(2, len(wav))
    batch[0], batch[1, : len(short)] = wav, short
    lengths = torch.tensor([1.0, len(short) / len(wav)])
    codes, frames = flow.encode_batch(batch, lengths)
    alone = [flow.encode(wav)["z"], flow.encode(short)["z"]]
    assert frames.tolist() == [len(item) for item in alone]
    for index, item in enumerate(alone):  # each item's frames are exactly its own encoding
        torch.testing.assert_close(codes["z"][index, : len(item)], item)
    embeddings = flow.factor_embedding_batch(batch, lengths)
    torch.testing.assert_close(embeddings[1], flow.factor_embedding(short), atol=1e-5, rtol=1e-5)
    moved, _ = flow.manipulate_batch(batch, lengths, "speaker", utterance[1])
    torch.testing.assert_close(moved[1, : frames[1]], flow.manipulate(short, "speaker", utterance[1]))
    with pytest.raises(InferenceInputError, match="wav_lens must be 2 relative lengths"):
        flow.encode_batch(batch, torch.tensor([1.0, 0.0]))
    with pytest.raises(InferenceInputError, match="expected \\(batch, samples\\)"):
        flow.encode_batch(wav)


def test_a_checkpoint_that_does_not_match_is_refused(trained, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(trained[0], broken)
    state = torch.load(broken / "model.ckpt")
    state.pop(next(iter(state)))
    torch.save(state, broken / "model.ckpt")
    with pytest.raises(RuntimeError, match="model.ckpt does not match"):
        SpeechFactorizer.from_hparams(source=broken)


def test_trained_model_inverts_every_real_frame_to_1e_4(flow, trained):
    entries = json.loads((trained[1] / "heldout.json").read_text()).values()
    feats = torch.cat([flow.features(entry["wav"]) for entry in entries])
    x = flow.engine.normalized(feats)  # the flow's own input space (float32)
    with torch.no_grad():
        error = (flow.model.decode(flow.model.encode(x)[0]) - x).abs().max().item()
    assert len(x) > 1000 and error <= 1e-4


def test_matching_replaces_frames_by_their_nearest_reference_frames(flow, trained, utterance, tmp_path):
    feats = flow.features(utterance[0])
    torch.testing.assert_close(flow.match(feats, "speaker", [feats], k=1), feats, atol=1e-5, rtol=0)  # itself
    entries = json.loads((trained[1] / "train.json").read_text()).values()
    other = [e["wav"] for e in entries if e["speaker"] != utterance[1]][:2]
    matched = flow.match(utterance[0], "speaker", other, k=4, gate=False)
    assert matched.shape == feats.shape
    pool = torch.cat([flow.features(wav) for wav in other])
    phone = flow.model.prior.slices["phone"]  # the kept factor's subspace decides the neighbours
    distances = torch.cdist(flow.encode(feats)["z"][:, phone], flow.encode(pool)["z"][:, phone])
    torch.testing.assert_close(matched[0], pool[distances[0].topk(4, largest=False).indices].mean(0), atol=1e-4, rtol=0)
    # gated: only reference frames the model gives the frame's own phone, decoded along each utterance with
    # the folder's phone decoder, or without decoding from the 3 frames around each frame
    engine, utterances = flow.engine, [torch.zeros(len(feats), dtype=torch.long)]
    utterances.append(torch.cat([torch.full((len(flow.features(wav)),), i) for i, wav in enumerate(other)]))
    for decode, decoder in ((True, flow.decoders["phone"]), (False, None)):
        own, theirs = (engine.inferred_classes(engine.encode(x), "phone", u, smooth=1, decoder=decoder)
                       for x, u in zip((feats, pool), utterances))
        gated = flow.match(utterance[0], "speaker", other, k=1, decode=decode)
        checked = 0
        for frame in range(len(feats)):
            same = torch.nonzero(theirs == own[frame]).flatten()
            if len(same):
                nearest = same[distances[frame, same].argmin()]
                torch.testing.assert_close(gated[frame], pool[nearest], atol=1e-4, rtol=0)
                checked += 1
        assert checked > len(feats) // 2
        assert not torch.allclose(gated, flow.match(utterance[0], "speaker", other, k=1, gate=False))
    # a batch of sequences: each is gated by its own frames, as if matched alone
    halves = torch.stack([feats[:40], feats[40:80]])
    torch.testing.assert_close(flow.match(halves, "speaker", other, k=2),
                               torch.stack([flow.match(half, "speaker", other, k=2) for half in halves]))
    assert torch.isfinite(flow.match(utterance[0], "phone", other, k=2)).all()  # gated by the inferred speaker
    wav = tmp_path / "input.wav"
    shutil.copy(utterance[0], wav)
    out = tmp_path / "knn.wav"
    assert convert_main(["--model", str(trained[0]), "--wav", str(wav), "--enrol", *other, "--manipulation", "knn",
                         "--out", str(out)]) == 0
    samples, _ = soundfile.read(str(wav))
    converted, rate = soundfile.read(str(out))
    assert rate == 16000 and converted.shape == samples.shape and np.isfinite(converted).all()
    ungated = tmp_path / "knn_ungated.wav"
    assert convert_main(["--model", str(trained[0]), "--wav", str(wav), "--enrol", *other, "--manipulation", "knn",
                         "--ungated", "--out", str(ungated)]) == 0
    assert not np.allclose(soundfile.read(str(ungated))[0], converted)
    with pytest.raises(SystemExit):  # knn needs audio of the target
        convert_main(["--model", str(trained[0]), "--wav", str(wav), "--speaker", utterance[1], "--manipulation", "knn"])


def test_the_evaluation_scores_the_very_match_users_call(flow, trained, utterance):
    from speechbrain_fdnf.data.frames import FrameBatch
    from speechbrain_fdnf.evaluation.movers import ModelMatching

    entries = json.loads((trained[1] / "train.json").read_text()).values()
    target = next(entry["speaker"] for entry in entries if entry["speaker"] != utterance[1])
    references = [flow.features(entry["wav"]) for entry in entries if entry["speaker"] == target][:3]
    feats = flow.features(utterance[0])
    shipped = flow.match(feats, "speaker", references, k=4, gate=False)
    target_index = flow.class_index("speaker", target)
    pool = torch.cat(references)
    train = FrameBatch(pool, {"speaker": torch.full((len(pool),), target_index)})
    batch = FrameBatch(feats, {"speaker": torch.zeros(len(feats), dtype=torch.long)})
    evaluated = ModelMatching(flow.engine, train, k=4)(batch, "speaker", "phone", torch.full((len(feats),), target_index))
    torch.testing.assert_close(evaluated, shipped, atol=1e-5, rtol=1e-5)
    assert (evaluated - feats).abs().mean() > 0.1  # the frames did move


def test_select_with_the_input_as_its_own_reference_gives_back_the_input(flow, utterance):
    from speechbrain_fdnf.convert import convert

    wav = flow.load_audio(utterance[0])
    # every frame's nearest reference frame is itself (or a frame just like it: digital silence repeats),
    # and runs of consecutive frames cost nothing: overlap-adding the chosen frames' STFT rebuilds it
    chosen = flow.select(wav, "speaker", [wav], candidates=4, continuity=1.0)
    feats = flow.features(wav)
    assert torch.equal(feats[chosen], feats)
    rebuilt = convert(flow, wav, "speaker", references=[wav], manipulation="select")
    assert rebuilt.shape == wav.shape and (rebuilt - wav).abs().max() < 1e-3


def other_voices(flow, trained, utterance, count):
    """``count`` training utterances of speakers other than ``utterance``'s, as audio: a target's references."""
    entries = json.loads((trained[1] / "train.json").read_text()).values()
    return [flow.load_audio(e["wav"]) for e in entries if e["speaker"] != utterance[1]][:count]


def test_select_picks_only_reference_frames_and_prefers_runs(flow, trained, utterance):
    other = other_voices(flow, trained, utterance, 2)
    frames = sum(len(flow.features(wav)) for wav in other)
    jumps = {}
    for continuity in (0.0, 3.0):
        chosen = flow.select(utterance[0], "speaker", other, continuity=continuity)
        assert chosen.min() >= 0 and chosen.max() < frames
        jumps[continuity] = int((chosen[1:] != chosen[:-1] + 1).sum())
    assert jumps[3.0] < jumps[0.0]  # a cost on jumps gives longer runs of real audio


def test_select_with_a_context_cost_prefers_reference_frames_heard_between_the_same_phones(flow, trained, utterance):
    from speechbrain_fdnf.matching import context_mismatch

    other = other_voices(flow, trained, utterance, 3)
    space = flow._matching_space(utterance[0], "speaker", other, 8, True, 1, True)  # the gate's phones, both sides
    mismatch = context_mismatch(space["classes"]["query_classes"], [len(space["codes"])],
                                space["classes"]["pool_classes"], space["lengths"])
    share = {}
    for context in (0.0, 5.0):
        chosen = flow.select(utterance[0], "speaker", other, context=context)
        share[context] = float(mismatch[torch.arange(len(chosen)), chosen].mean())
    assert share[5.0] < share[0.0]  # more of the chosen frames were heard between the frame's own neighbours


def test_units_with_the_input_as_its_own_reference_give_back_the_input(flow, utterance):
    from speechbrain_fdnf.convert import convert

    wav = flow.load_audio(utterance[0])
    # each phone's nearest rendition of its own class, between the same neighbours and as long, is itself
    chosen = flow.select_units(wav, "speaker", [wav])
    assert torch.equal(chosen, torch.arange(len(chosen)))
    from speechbrain_fdnf.manipulations import OVERLAPS

    for overlap in OVERLAPS:  # one run of consecutive frames: each way of joining keeps it
        rebuilt = convert(flow, wav, "speaker", references=[wav], manipulation="units", overlap=overlap)
        assert rebuilt.shape == wav.shape and (rebuilt - wav).abs().max() < 1e-3, overlap


def test_unit_selection_with_a_class_distance_prefers_a_rendition_between_neighbours_like_the_querys(flow, utterance):
    """With no rendition between the query's own neighbours, one between neighbours like them (a small
    ``class_distance``) is chosen over one between unlike neighbours; with 0/1 mismatches the two tie and the
    nearer summary wins. ``select_units(neighbour_distance="prior")`` measures that distance between the flow's
    prior means of the phones."""
    from speechbrain_fdnf.matching import segment_selection

    # query: 1 2 2 1; pool: 3 2 2 3 (neighbours like 1) then 4 2 2 4 (unlike 1), the latter's 2s a little nearer
    query_classes, pool_classes = torch.tensor([1, 2, 2, 1]), torch.tensor([3, 2, 2, 3, 4, 2, 2, 4])
    query_points = torch.tensor([[0.0], [5.0], [5.0], [0.0]])
    pool_points = torch.tensor([[0.0], [5.3], [5.3], [0.0], [0.0], [5.2], [5.2], [0.0]])
    distance = torch.ones(5, 5) - torch.eye(5)
    distance[1, 3] = distance[3, 1] = 0.1
    options = dict(join=0.0, duration=0.0, query_fallback=True)
    assert segment_selection(query_points, query_classes, pool_points, pool_classes, [4, 4], **options)[1:3].tolist() == [5, 6]
    assert segment_selection(query_points, query_classes, pool_points, pool_classes, [4, 4], class_distance=distance,
                             **options)[1:3].tolist() == [1, 2]
    wav = flow.load_audio(utterance[0])  # the input as its own reference: its own neighbours, graded or not
    assert torch.equal(flow.select_units(wav, "speaker", [wav], neighbour_distance="prior"), torch.arange(len(flow.features(wav))))
    with pytest.raises(ValueError, match="neighbour_distance"):
        flow.select_units(wav, "speaker", [wav], neighbour_distance="phonetic")


def test_unit_selection_falls_back_to_the_nearest_frames_where_the_references_lack_the_phone():
    from speechbrain_fdnf.matching import segment_selection

    pool_classes = torch.tensor([1, 1, 1, 2, 2, 2])
    pool_points = torch.tensor([[0.0], [0.5], [1.0], [10.0], [11.0], [12.0]])
    query_classes = torch.tensor([1, 1, 3, 3, 3])  # no reference frame is a 3
    query_points = torch.tensor([[0.0], [1.0], [11.0], [12.0], [10.0]])
    chosen = segment_selection(query_points, query_classes, pool_points, pool_classes, [6], join=0.0)
    assert (pool_classes[chosen[:2]] == 1).all()  # the 1s: a rendition of 1, whole
    assert chosen[2:].tolist() == [4, 5, 3]  # the 3s: frame by frame, the nearest of any class


@pytest.mark.parametrize("fallback", ["source", "source_f0", "cells_features"])
def test_units_keep_the_sources_own_frames_where_the_references_lack_the_phone(flow, trained, utterance, fallback):
    if fallback != "source":
        pytest.importorskip("pyworld")
    from speechbrain_fdnf.convert import FeatureInverter, convert, fallback_audio

    other = other_voices(flow, trained, utterance, 1)  # one: it lacks phones
    wav = flow.load_audio(utterance[0])
    space = flow._matching_space(wav, "speaker", other, 1, True, 1, True)
    lacking = ~torch.isin(space["classes"]["query_classes"].cpu(), space["classes"]["pool_classes"].cpu())
    assert lacking.any() and not lacking.all()
    nearest = flow.select_units(wav, "speaker", other)
    own = flow.select_units(wav, "speaker", other, source_fallback=True)
    pool_frames = sum(space["lengths"])
    assert torch.equal(own[lacking], pool_frames + torch.nonzero(lacking).flatten())  # the source's own frames
    assert torch.equal(own[~lacking], nearest[~lacking]) and (nearest < pool_frames).all()
    # heard: the output's STFT frames there are the source's, or its audio at the target's F0 (the overlap-add of
    # the frames around them aside; each jump as recorded, so that the frames compare as they are: the default
    # overlap carries phases on across the jumps, and a run then keeps its magnitudes, not its phases)
    converted = convert(flow, wav, "speaker", references=other, manipulation="units", fallback=fallback,
                        overlap="phase_vocoder_within")
    inverter = FeatureInverter(flow.hparams.compute_features)
    fallen_back = fallback_audio(flow, wav, "speaker", other, fallback, needed=lacking.numpy())  # as the converter
    assert fallen_back.shape == wav.shape and torch.equal(fallen_back, wav) == (fallback == "source")
    heard, source = (inverter.stft(item.float()[None])[0] for item in (converted, fallen_back))
    inside = lacking & torch.roll(lacking, 1) & torch.roll(lacking, -1) & torch.roll(lacking, 2) & torch.roll(lacking, -2)
    assert inside.any()
    torch.testing.assert_close(heard[inside], source[inside], atol=1e-3, rtol=0)


def test_units_keep_the_sources_own_frames_in_the_phones_named_although_the_references_have_them(flow, trained,
                                                                                                 utterance):
    """``source_phones`` (``units --consonants source``: the unvoiced consonants): the runs of those phones are the
    source's own frames, every other run a rendition from the references (or the source where they lack it)."""
    from speechbrain_fdnf.manipulations import UNVOICED_CONSONANTS, build

    other = other_voices(flow, trained, utterance, 2)
    wav = flow.load_audio(utterance[0])
    space = flow._matching_space(wav, "speaker", other, 1, True, 1, True)
    query, pool = space["classes"]["query_classes"].cpu(), space["classes"]["pool_classes"].cpu()
    names = flow.hparams.encoders["phone"].ind2lab
    shared = [names[int(index)] for index in torch.unique(query) if (pool == index).any() and names[int(index)] != "sil"]
    named = shared[:2]
    assert named
    kept = torch.isin(query, torch.tensor([flow.hparams.encoders["phone"].lab2ind[name] for name in named]))
    lacking = ~torch.isin(query, pool)
    chosen = flow.select_units(wav, "speaker", other, source_fallback=True, source_phones=named + ["no such phone"])
    pool_frames = sum(space["lengths"])
    assert torch.equal(chosen[kept | lacking], pool_frames + torch.nonzero(kept | lacking).flatten())
    assert (chosen[~(kept | lacking)] < pool_frames).all()
    # the option names the unvoiced consonants, and refuses a fallback that hears no source frames
    units = build("units", consonants="source")
    assert units.consonants == "source" and "s" in UNVOICED_CONSONANTS
    with pytest.raises(ValueError, match="fallback"):
        build("units", consonants="source", fallback="nearest").check("speaker", None, other)


def test_a_target_analysed_once_converts_as_its_audio_and_is_not_analysed_again(flow, trained, utterance, monkeypatch):
    from speechbrain_fdnf.convert import convert
    from speechbrain_fdnf.engine import FeatureFlow
    from speechbrain_fdnf.pitch import LogF0Statistics

    other = other_voices(flow, trained, utterance, 2)
    wav = flow.load_audio(utterance[0])
    pool_frames = sum(len(flow.features(item)) for item in other)
    encoded, measured = [], []
    encode_all, of_audio = FeatureFlow.encode_all, LogF0Statistics.of_audio.__func__
    monkeypatch.setattr(FeatureFlow, "encode_all", lambda self, feats, batch_size=None:
                        encoded.append(len(feats)) or encode_all(self, feats, batch_size))
    monkeypatch.setattr(LogF0Statistics, "of_audio", classmethod(lambda cls, *args, **kwargs:
                                                                 measured.append(1) or of_audio(cls, *args, **kwargs)))
    # one conversion reads its references' codes once: units, then cells for the phones they lack (its fallback)
    by_audio = convert(flow, wav, "speaker", references=other, manipulation="units", fallback="cells_features")
    assert encoded.count(pool_frames) == 1 and len(measured) == 1
    target = flow.target_audio(other)
    assert flow.target_audio(target) is target and len(target) == 2 and target.lengths[0] == len(flow.features(other[0]))
    encoded.clear(), measured.clear()
    for _ in range(2):  # many conversions to one voice: its codes and F0 register measured on the first only
        torch.testing.assert_close(convert(flow, wav, "speaker", references=target, manipulation="units",
                                           fallback="cells_features"), by_audio)
    assert encoded.count(pool_frames) == 1 and len(measured) == 1
    for manipulation in ("cells", "knn", "select"):  # every manipulation takes it as it takes the audio
        torch.testing.assert_close(convert(flow, wav, "speaker", references=target, manipulation=manipulation),
                                   convert(flow, wav, "speaker", references=other, manipulation=manipulation))
    assert encoded.count(pool_frames) == 1 + 3  # the list, analysed anew by each call; the target, never again
    # the enrolled mean: of every reference frame's speaker code, as from each utterance encoded alone
    each = torch.cat([flow.encode(item)["speaker"] for item in other])
    torch.testing.assert_close(flow.enrol(target), each.mean(dim=0), atol=1e-5, rtol=0)
    # another model analyses it itself (its codes are not this model's)
    again = SpeechFactorizer.from_hparams(source=trained[0])
    rebuilt = again.target_audio(target)
    assert rebuilt is not target and rebuilt.factorizer is again and rebuilt.items == target.items
    with pytest.raises(InferenceInputError, match="no reference audio"):
        flow.target_audio([])


def test_a_saved_target_converts_as_its_audio_without_analysing_it_again_unless_another_model_loads_it(
        trained, utterance, tmp_path, monkeypatch):
    from speechbrain_fdnf.convert import convert
    from speechbrain_fdnf.engine import FeatureFlow
    from speechbrain_fdnf.lobes.tagger import FrameTagger
    from speechbrain_fdnf.pitch import LogF0Statistics
    from speechbrain_fdnf.target_audio import CHECKED_FRAMES

    flow = SpeechFactorizer.from_hparams(source=trained[0])
    flow.tagger = FrameTagger(input_size=flow.hparams.compute_features.compute_fbanks.n_mels,
                              num_classes=len(flow.labels("phone")), hidden_size=8, num_layers=1)
    assert isinstance(flow.tagger, FrameTagger)  # set through the property (a module is not filed away by torch)
    other = other_voices(flow, trained, utterance, 2)
    wav = flow.load_audio(utterance[0])
    by_audio = convert(flow, wav, "speaker", references=other, manipulation="units", fallback="cells_features")
    target = flow.target_audio(other)
    path = tmp_path / "target.pt"
    target.save(path)
    encoded, measured, tagged = [], [], []
    encode_all, of_audio = FeatureFlow.encode_all, LogF0Statistics.of_audio.__func__
    monkeypatch.setattr(FeatureFlow, "encode_all", lambda self, feats, batch_size=None:
                        encoded.append(len(feats)) or encode_all(self, feats, batch_size))
    monkeypatch.setattr(LogF0Statistics, "of_audio", classmethod(lambda cls, *args, **kwargs:
                                                                 measured.append(1) or of_audio(cls, *args, **kwargs)))
    tag = FrameTagger.log_posteriors
    monkeypatch.setattr(FrameTagger, "log_posteriors", lambda self, feats: tagged.append(len(feats)) or tag(self, feats))
    loaded = flow.load_target_audio(path)
    assert loaded.items is not target.items and all(torch.equal(a, b) for a, b in zip(loaded.audio, target.audio))
    # read back, only its first frames are analysed again (the check that this model analyses them alike)
    assert encoded == [CHECKED_FRAMES] and tagged == [CHECKED_FRAMES] and not measured
    encoded.clear(), tagged.clear()
    torch.testing.assert_close(convert(flow, wav, "speaker", references=loaded, manipulation="units",
                                       fallback="cells_features"), by_audio, atol=0, rtol=0)
    pool_frames = sum(target.lengths)
    assert pool_frames not in encoded and not measured and pool_frames not in tagged  # the source's alone
    torch.testing.assert_close(loaded.register(), target.register())
    # another model (here the same with its flow moved) computes its own codes and phones from the saved audio
    moved = SpeechFactorizer.from_hparams(source=trained[0])
    moved.tagger = flow.tagger
    perturb(moved.model, scale=0.05)
    encoded.clear(), tagged.clear()
    again = moved.load_target_audio(path)
    assert "codes" not in again._computed and not any(isinstance(key, tuple) and key[0] == "tagged"
                                                      for key in again._computed)
    torch.testing.assert_close(convert(moved, wav, "speaker", references=again, manipulation="units",
                                       fallback="cells_features"),
                               convert(moved, wav, "speaker", references=other, manipulation="units",
                                       fallback="cells_features"), atol=0, rtol=0)


def test_a_saved_target_that_cannot_serve_is_refused_naming_the_file(flow, trained, utterance, tmp_path):
    other = other_voices(flow, trained, utterance, 2)
    path = tmp_path / "target.pt"
    with pytest.raises(InferenceInputError, match="no such file"):
        flow.load_target_audio(path)
    path.write_text("not a tensor file")
    with pytest.raises(InferenceInputError, match=f"{path}: not a saved target"):
        flow.load_target_audio(path)
    torch.save({"weights": torch.zeros(3)}, path)  # a torch file of something else
    with pytest.raises(InferenceInputError, match=f"{path}: not a saved target"):
        flow.load_target_audio(path)
    flow.target_audio(other).save(path)
    saved = torch.load(path, weights_only=True)
    for change, problem in (({"sample_rate": 8000}, "8000 Hz"), ({"version": 99}, "newer"),
                            ({"audio": [torch.full((16000,), float("nan"))]}, "NaN"), ({"audio": []}, "damaged")):
        torch.save({**saved, **change}, tmp_path / "changed.pt")
        with pytest.raises(InferenceInputError, match=problem) as error:
            flow.load_target_audio(tmp_path / "changed.pt")
        assert "changed.pt" in str(error.value)
    torch.save({key: value for key, value in saved.items() if key != "codes"}, tmp_path / "changed.pt")
    with pytest.raises(InferenceInputError, match="changed.pt: a damaged saved target .no codes."):
        flow.load_target_audio(tmp_path / "changed.pt")
    with pytest.raises(InferenceInputError, match="features"):  # a target given as features has no audio to save
        flow.target_audio([flow.features(item) for item in other]).save(tmp_path / "features.pt")
    assert not (tmp_path / "features.pt").exists()


def test_one_conversion_encodes_its_source_once_and_an_analysed_source_converts_as_its_audio(flow, trained, utterance,
                                                                                            monkeypatch):
    from speechbrain_fdnf.convert import convert
    from speechbrain_fdnf.engine import FeatureFlow

    other = other_voices(flow, trained, utterance, 1)  # one: it lacks phones, so the fallback converts the source too
    wav = flow.load_audio(utterance[0])
    source_frames, pool_frames = len(flow.features(wav)), len(flow.features(other[0]))
    assert source_frames != pool_frames and (flow.select_units(wav, "speaker", other, source_fallback=True)
                                             >= pool_frames).any()
    encoded = []
    encode = FeatureFlow.encode
    monkeypatch.setattr(FeatureFlow, "encode", lambda self, feats: encoded.append(feats.shape[-2]) or encode(self, feats))
    by_audio = convert(flow, wav, "speaker", references=other, manipulation="units", fallback="cells_features")
    assert encoded.count(source_frames) == 1  # units' match and its cells fallback read one encoding of the source
    source = flow.analysed(wav)
    assert flow.analysed(source) is source and source.audio[0].shape == wav.shape
    encoded.clear()
    for manipulation in ("units", "cells"):  # one source converted several ways: encoded on the first only
        options = {"fallback": "cells_features"} if manipulation == "units" else {}
        converted = convert(flow, source, "speaker", references=other, manipulation=manipulation, **options)
        torch.testing.assert_close(converted, by_audio if manipulation == "units" else
                                   convert(flow, wav, "speaker", references=other, manipulation="cells"), atol=0, rtol=0)
    assert encoded.count(source_frames) == 1 + 1  # the analysed source once; the waveform of the comparison anew
    with pytest.raises(InferenceInputError, match="takes audio"):
        convert(flow, flow.analysed(flow.features(wav)), "speaker", references=other, manipulation="cells")
    with pytest.raises(InferenceInputError, match="one utterance"):
        flow.analysed(flow.target_audio(other_voices(flow, trained, utterance, 2)))


def test_the_command_converts_several_inputs_to_one_voice_as_it_converts_each_alone(trained, utterance, tmp_path):
    entries = json.loads((trained[1] / "train.json").read_text()).values()
    enrol = [e["wav"] for e in entries if e["speaker"] != utterance[1]][:2]
    sources = [e["wav"] for e in entries if e["speaker"] == utterance[1]][:2]
    common = ["--model", str(trained[0]), "--enrol", *enrol, "--manipulation", "units"]
    assert convert_main([*common, "--wav", *sources, "--out", str(tmp_path / "batch")]) == 0
    for source in sources:
        alone = tmp_path / f"{Path(source).stem}.wav"
        assert convert_main([*common, "--wav", source, "--out", str(alone)]) == 0
        together = tmp_path / "batch" / f"{Path(source).stem}_speaker-enrolled-units.wav"
        np.testing.assert_allclose(soundfile.read(str(together))[0], soundfile.read(str(alone))[0], atol=1e-4)
    # two inputs of one name would overwrite one output: refused before anything is converted
    clash = tmp_path / "other" / Path(sources[0]).name
    clash.parent.mkdir()
    shutil.copy(sources[0], clash)
    assert convert_main([*common, "--wav", sources[0], str(clash), "--out", str(tmp_path / "clash")]) == 2
    assert not (tmp_path / "clash").exists()
    # a bad input stops the batch with its name; what came before it is written
    empty = tmp_path / "empty.wav"
    soundfile.write(str(empty), np.zeros(0), 16000)
    result = subprocess.run([sys.executable, "-m", "speechbrain_fdnf.convert", *common, "--wav", sources[0], str(empty),
                             "--out", str(tmp_path / "stopped")], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and str(empty) in result.stderr and "1 of 2 inputs converted" in result.stderr
    assert [path.name for path in (tmp_path / "stopped").iterdir()] == [f"{Path(sources[0]).stem}_speaker-enrolled-units.wav"]


def test_the_command_saves_a_target_analysed_once_and_converts_from_it_as_from_its_audio(trained, utterance, tmp_path,
                                                                                        capsys):
    entries = json.loads((trained[1] / "train.json").read_text()).values()
    enrol = [e["wav"] for e in entries if e["speaker"] != utterance[1]][:2]
    model, saved = ["--model", str(trained[0])], tmp_path / "voice.pt"
    assert convert_main([*model, "--enrol", *enrol, "--save_enrolment", str(saved)]) == 0  # no --wav: saved alone
    assert saved.is_file() and not list(tmp_path.glob("*.wav"))
    from_audio, from_file = tmp_path / "audio.wav", tmp_path / "file.wav"
    assert convert_main([*model, "--wav", str(utterance[0]), "--enrol", *enrol, "--out", str(from_audio)]) == 0
    assert convert_main([*model, "--wav", str(utterance[0]), "--enrolment", str(saved), "--out", str(from_file)]) == 0
    np.testing.assert_array_equal(soundfile.read(str(from_file))[0], soundfile.read(str(from_audio))[0])
    capsys.readouterr()
    assert convert_main([*model, "--wav", str(utterance[0]), "--enrolment", str(tmp_path / "none.pt")]) == 2
    assert f"{tmp_path / 'none.pt'}: no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # nothing to save: --save_enrolment saves --enrol's analysis
        convert_main([*model, "--wav", str(utterance[0]), "--speaker", utterance[1], "--save_enrolment", str(saved)])


def test_units_unsure_of_a_phone_keep_the_sources_frames_and_tag_each_utterance_once(trained, utterance, monkeypatch):
    from speechbrain_fdnf.convert import convert
    from speechbrain_fdnf.lobes.tagger import FrameTagger
    from speechbrain_fdnf.manipulations import UNSURE_BELOW, build

    flow = SpeechFactorizer.from_hparams(source=trained[0])
    flow.tagger = FrameTagger(input_size=flow.hparams.compute_features.compute_fbanks.n_mels,
                              num_classes=len(flow.labels("phone")), hidden_size=8, num_layers=1)
    other = other_voices(flow, trained, utterance, 2)
    pool_frames = sum(len(flow.features(item)) for item in other)
    tagged = []
    tag = FrameTagger.log_posteriors
    monkeypatch.setattr(FrameTagger, "log_posteriors", lambda self, feats: tagged.append(len(feats)) or tag(self, feats))
    sure = flow.select_units(utterance[0], "speaker", other, source_fallback=True)
    assert len(tagged) == 1 + len(other)  # the source and each reference, once each
    assert (sure < pool_frames).any()  # phones the references have take renditions
    # an untrained tagger is sure of nothing (its posteriors near 1 / 39): every run keeps the source's own frames
    tagged.clear()
    unsure = flow.select_units(utterance[0], "speaker", other, source_fallback=True, confident=UNSURE_BELOW)
    assert len(tagged) == 1 + len(other) and torch.equal(unsure, pool_frames + torch.arange(len(unsure)))
    # ... and the manipulation hears them through its fallback (the source's frames, here as they are)
    converted = convert(flow, utterance[0], "speaker", references=other,
                        manipulation=build("units", unsure="fallback", fallback="source"))
    wav = flow.load_audio(utterance[0])
    assert torch.corrcoef(torch.stack([converted, wav]))[0, 1] > 0.99
    with pytest.raises(ValueError, match="unsure 'fallback'"):
        build("units", unsure="fallback", fallback="nearest").check("speaker", None, other)


def test_units_take_each_phone_whole_from_one_rendition_of_the_same_phone(flow, trained, utterance):
    from speechbrain_fdnf.matching import segment_table, utterance_starts

    other = other_voices(flow, trained, utterance, 3)
    space = flow._matching_space(utterance[0], "speaker", other, 1, True, 1, True)
    query, pool = space["classes"]["query_classes"].cpu(), space["classes"]["pool_classes"].cpu()
    chosen = flow.select_units(utterance[0], "speaker", other)
    first, count, label, _ = segment_table(query, utterance_starts([len(query)]))
    pool_first, pool_count, _, _ = segment_table(pool, utterance_starts(space["lengths"]))
    rendition = torch.searchsorted(pool_first, chosen, right=True) - 1  # the pool segment of each chosen frame
    whole = 0
    for start, frames, phone in zip(first.tolist(), count.tolist(), label.tolist()):
        picked = chosen[start:start + frames]
        if (pool == phone).any():  # a phone the references have: one rendition of it, in its order
            assert (pool[picked] == phone).all() and len(set(rendition[start:start + frames].tolist())) == 1
            assert (picked[1:] >= picked[:-1]).all()
            whole += 1
    assert whole > len(first) // 2
    # with no cost on lengths, a rendition may be far longer or shorter; with it, lengths come closer
    ratio = {}
    for duration in (0.0, 5.0):
        picked = flow.select_units(utterance[0], "speaker", other, duration=duration)
        taken = pool_count[torch.searchsorted(pool_first, picked, right=True) - 1].float()
        ratio[duration] = float((taken.log() - count.repeat_interleave(count).float().log()).abs().mean())
    assert ratio[5.0] < ratio[0.0]


def test_units_following_the_sources_intonation_take_renditions_pitched_as_the_source_is(flow, trained, utterance):
    pytest.importorskip("pyworld")
    from speechbrain_fdnf.inference import InferenceInputError
    from speechbrain_fdnf.matching import segment_pitch, segment_table, utterance_starts
    from speechbrain_fdnf.pitch import standardised_log_f0

    other = other_voices(flow, trained, utterance, 3)
    wav = flow.load_audio(utterance[0])
    space = flow._matching_space(wav, "speaker", other, 1, True, 1, True)
    query, pool = space["classes"]["query_classes"].cpu(), space["classes"]["pool_classes"].cpu()
    rate = flow.hparams.sample_rate
    query_pitch, = standardised_log_f0([wav.numpy()], rate, [len(query)])
    pool_pitch = torch.cat(standardised_log_f0([item.numpy() for item in other], rate, space["lengths"]))
    first, count, label, _ = segment_table(query, utterance_starts([len(query)]))
    pool_first, pool_count, _, _ = segment_table(pool, utterance_starts(space["lengths"]))
    wanted, offered = segment_pitch(query_pitch, first, count), segment_pitch(pool_pitch, pool_first, pool_count)
    served = torch.isin(label, pool)  # runs of a phone the references have: one rendition each
    assert torch.isfinite(wanted[served]).sum() > 3
    apart = {}
    for intonation in ("ignored", "source"):
        chosen = flow.select_units(wav, "speaker", other, intonation=intonation)
        rendition = torch.searchsorted(pool_first, chosen[first[served]], right=True) - 1
        apart[intonation] = float(torch.nan_to_num((offered[rendition] - wanted[served]).abs()).mean())
    assert apart["source"] < apart["ignored"]  # the renditions' pitch nearer the source's, in standard deviations
    with pytest.raises(InferenceInputError, match="measures pitch"):
        flow.select_units(flow.features(wav), "speaker", other, intonation="source")


def test_units_fitted_in_the_middle_hear_each_renditions_edges_one_to_one(flow, trained, utterance):
    from speechbrain_fdnf.matching import EDGE_FRAMES, segment_selection, segment_table, utterance_starts

    # one rendition of 6 frames onto a phone of 10, and onto one of 5: its two first and two last frames stay
    for frames, expected_middle in ((10, [2, 2, 2, 3, 3, 3]), (5, [3])):
        chosen = segment_selection(torch.zeros(frames, 1), torch.ones(frames, dtype=torch.long), torch.zeros(6, 1),
                                   torch.ones(6, dtype=torch.long), [6], edges=EDGE_FRAMES)
        assert chosen.tolist() == [0, 1] + expected_middle + [4, 5]
    # through the converter's selection: every run of a phone the references have begins and ends on its
    # rendition's own first and last frames, one to one
    other = other_voices(flow, trained, utterance, 3)
    space = flow._matching_space(utterance[0], "speaker", other, 1, True, 1, True)
    query, pool = space["classes"]["query_classes"].cpu(), space["classes"]["pool_classes"].cpu()
    chosen = flow.select_units(utterance[0], "speaker", other, stretch="middle")
    first, count, label, _ = segment_table(query, utterance_starts([len(query)]))
    pool_first, pool_count, _, _ = segment_table(pool, utterance_starts(space["lengths"]))
    checked = 0
    for start, frames, phone in zip(first.tolist(), count.tolist(), label.tolist()):
        rendition = int(torch.searchsorted(pool_first, chosen[start], right=True)) - 1
        if (pool == phone).any() and frames >= 5 and pool_count[rendition] >= 5:
            edge_in, edge_out = pool_first[rendition], pool_first[rendition] + pool_count[rendition] - 2
            assert chosen[start:start + 2].tolist() == [edge_in, edge_in + 1]
            assert chosen[start + frames - 2:start + frames].tolist() == [edge_out, edge_out + 1]
            checked += 1
    assert checked > 2
    with pytest.raises(ValueError, match="stretch must be one of"):
        flow.select_units(utterance[0], "speaker", other, stretch="edges")


def test_select_as_features_hears_the_chosen_frames_through_the_gain_path(flow, trained, utterance):
    from speechbrain_fdnf.convert import convert
    from speechbrain_fdnf.manipulations import build

    other = other_voices(flow, trained, utterance, 2)
    wav = flow.load_audio(utterance[0])
    feats = flow.features(wav)
    chosen = flow.select(wav, "speaker", other)
    selected = flow.select(feats, "speaker", other, features=True)
    torch.testing.assert_close(selected, torch.cat([flow.features(item) for item in other])[chosen])
    manipulation = build("select", own_audio=False)
    assert manipulation.resynthesis == "features" and build("select").resynthesis == "frames"
    converted = convert(flow, wav, "speaker", references=other, manipulation=manipulation)
    assert converted.shape == wav.shape
    centre = flow.centre_bands
    heard = flow.features(converted)[:, centre]
    frames = min(len(heard), len(selected))  # the output's log-Mel frames follow the chosen frames, not the source's
    assert (heard[:frames] - selected[:frames, centre]).abs().mean() < 0.5 * (feats[:frames, centre] - selected[:frames, centre]).abs().mean()


def test_cells_with_the_input_as_its_own_reference_change_nothing(flow, trained, utterance):
    from speechbrain_fdnf.convert import convert

    wav = flow.load_audio(utterance[0])
    feats = flow.features(wav)
    torch.testing.assert_close(flow.transfer(feats, "speaker", [wav]), feats, atol=1e-3, rtol=0)
    entries = json.loads((trained[1] / "train.json").read_text()).values()
    other = [e["wav"] for e in entries if e["speaker"] != utterance[1]][:2]
    moved = flow.transfer(feats, "speaker", other)
    assert moved.shape == feats.shape and (moved - feats).abs().mean() > 0.1
    # keep_phone: the codes' phone subspace stays where it was, the speaker's moves as with the whole latent (the default)
    phone, speaker = (flow.engine.prior.slices[name] for name in ("phone", "speaker"))
    codes, kept, whole = (flow.engine.encode(item) for item in (feats, flow.transfer(feats, "speaker", other, keep_phone=True),
                                                                moved))
    torch.testing.assert_close(kept[:, phone], codes[:, phone], atol=1e-3, rtol=0)
    assert (whole[:, phone] - codes[:, phone]).abs().mean() > 0.01
    torch.testing.assert_close(kept[:, speaker], whole[:, speaker], atol=1e-3, rtol=0)
    converted = convert(flow, wav, "speaker", references=other)  # the default with audio of the target
    assert converted.shape == wav.shape and torch.isfinite(converted).all()
    with pytest.raises(ValueError, match="works from audio of the target"):
        convert(flow, wav, "speaker", manipulation="cells")


def test_cells_in_the_feature_space_move_each_frame_by_its_phones_difference_of_mean_frames(flow, trained, utterance):
    from speechbrain_fdnf.inference import shrunk_class_means

    wav = flow.load_audio(utterance[0])
    feats = flow.features(wav)
    torch.testing.assert_close(flow.transfer(feats, "speaker", [wav], space="features"), feats, atol=1e-4, rtol=0)
    other = other_voices(flow, trained, utterance, 2)
    moved = flow.transfer(feats, "speaker", other, space="features")
    # no flow: each frame moves by its phone posterior's mix of the per-phone differences of the raw frames
    references = torch.cat([flow.features(item) for item in other])
    posterior = flow.engine.prior.class_posterior(flow.engine.encode(feats), "phone")
    target_posterior = flow.engine.prior.class_posterior(flow.engine.encode_all(references), "phone")
    difference = shrunk_class_means(references, target_posterior, 5.0) - shrunk_class_means(feats, posterior, 5.0)
    torch.testing.assert_close(moved, feats + posterior @ difference, atol=1e-4, rtol=1e-4)
    assert (moved - feats).abs().mean() > 0.1
    with pytest.raises(ValueError, match="keep_phone"):
        flow.transfer(feats, "speaker", other, keep_phone=True, space="features")


def test_the_command_offers_every_manipulation(flow, trained, utterance, tmp_path, capsys):
    entries = json.loads((trained[1] / "train.json").read_text()).values()
    other = [e["wav"] for e in entries if e["speaker"] != utterance[1]][:2]
    outputs = {}
    from speechbrain_fdnf.convert import MANIPULATIONS

    assert set(MANIPULATIONS) >= {"auto", "shift", "cells", "knn", "select", "units"}
    for manipulation in MANIPULATIONS:  # auto and every registered manipulation, with its default options
        out = tmp_path / f"{manipulation}.wav"
        assert convert_main(["--model", str(trained[0]), "--wav", str(utterance[0]), "--enrol", *other,
                             "--manipulation", manipulation, "--out", str(out)]) == 0
        outputs[manipulation], rate = soundfile.read(str(out))
        assert rate == 16000 and np.isfinite(outputs[manipulation]).all()
    from speechbrain_fdnf.convert import DEFAULT_WITH_AUDIO

    assert np.allclose(outputs["auto"], outputs[DEFAULT_WITH_AUDIO])
    assert f"enrolled-{DEFAULT_WITH_AUDIO}" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # select needs audio of the target
        convert_main(["--model", str(trained[0]), "--wav", str(utterance[0]), "--speaker", utterance[1],
                      "--manipulation", "select"])


def test_references_given_as_one_features_tensor_are_one_utterance(flow, trained, utterance):
    entries = json.loads((trained[1] / "train.json").read_text()).values()
    other = next(e["wav"] for e in entries if e["speaker"] != utterance[1])
    reference = flow.features(other)  # (frames, 40): one utterance's features, not a list of frames
    feats = flow.features(utterance[0])
    matched = flow.match(feats, "speaker", reference)
    assert matched.shape == feats.shape and torch.equal(matched, flow.match(feats, "speaker", [reference]))
