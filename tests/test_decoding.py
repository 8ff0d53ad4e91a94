"""Viterbi decoding of a frame-level factor: exact paths, transitions, the scale fit, and the engine's use."""

import itertools

import pytest
import torch
from speechbrain.processing.features import InputNormalization

from speechbrain_fdnf.data.frames import FrameSet
from speechbrain_fdnf.decoding import ClassSequenceDecoder
from speechbrain_fdnf.engine import FeatureFlow
from speechbrain_fdnf.lobes import DiscriminativeFlow, FactorialGaussianPrior, RealNVP


def brute_force_path(emissions, log_transitions):
    """The best path of one utterance by scoring every path."""
    classes, steps = emissions.shape[1], emissions.shape[0]
    best, best_path = -float("inf"), None
    for path in itertools.product(range(classes), repeat=steps):
        score = emissions[0, path[0]] + sum(log_transitions[a, b] + emissions[t + 1, b]
                                            for t, (a, b) in enumerate(zip(path, path[1:])))
        if score > best:
            best, best_path = score, list(path)
    return best_path


def sticky_sequences(num_utterances=40, length=60, classes=5, stay=0.9, noise=1.5, seed=0):
    """Labels of a sticky Markov chain per utterance and noisy log posteriors of them."""
    gen = torch.Generator().manual_seed(seed)
    labels = []
    for _ in range(num_utterances):
        state = int(torch.randint(classes, (1,), generator=gen))
        for _ in range(length):
            if torch.rand(1, generator=gen) > stay:
                state = int(torch.randint(classes, (1,), generator=gen))
            labels.append(state)
    labels = torch.tensor(labels)
    logits = torch.nn.functional.one_hot(labels, classes).float() * 2 + noise * torch.randn(len(labels), classes, generator=gen)
    return labels, torch.arange(num_utterances).repeat_interleave(length), logits.log_softmax(-1)


def test_decoding_finds_the_best_path_of_every_utterance_as_exhaustive_search_does():
    gen = torch.Generator().manual_seed(1)
    classes, lengths = 3, [1, 5, 2, 4, 5, 3]
    utterance = torch.repeat_interleave(torch.tensor([9, 2, 7, 4, 8, 1]), torch.tensor(lengths))  # any ids
    decoder = ClassSequenceDecoder(torch.randn(classes, classes, generator=gen).log_softmax(-1), scale=0.7)
    log_posteriors = torch.randn(len(utterance), classes, generator=gen).log_softmax(-1)
    expected = []
    for start, length in zip(torch.tensor([0, *lengths]).cumsum(0).tolist(), lengths):
        expected += brute_force_path(0.7 * log_posteriors[start : start + length], decoder.log_transitions)
    for per_step in (1, 4, 256):  # utterances padded together or one by one: the same paths
        assert decoder.decode(log_posteriors, utterance, utterances_per_step=per_step).tolist() == expected


def test_transitions_are_counted_within_utterances_only():
    labels = torch.tensor([0, 0, 1, 2, 2, 0])
    utterance = torch.tensor([5, 5, 5, 6, 6, 6])  # 1 -> 2 crosses utterances: not a transition
    decoder = ClassSequenceDecoder.from_labels(labels, utterance, num_classes=3, smoothing=0.5)
    counts = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 1.0]]) + 0.5
    torch.testing.assert_close(decoder.log_transitions.exp(), counts / counts.sum(1, keepdim=True))


def test_decoding_a_sticky_chain_beats_frame_by_frame_and_the_fitted_scale_is_the_best_tried():
    labels, utterance, log_posteriors = sticky_sequences()
    decoder = ClassSequenceDecoder.from_labels(labels, utterance, num_classes=5)
    scales = (0.05, 0.3, 1.0, 3.0)
    agreement = decoder.fit_scale(log_posteriors, utterance, labels, scales)
    tried = {s: (decoder.decode(log_posteriors, utterance, s) == labels).float().mean().item() for s in scales}
    chosen = min(scales, key=lambda s: abs(s - decoder.scale.item()))
    assert agreement == max(tried.values()) == tried[chosen] and decoder.scale.item() == pytest.approx(chosen)
    frame_by_frame = (log_posteriors.argmax(-1) == labels).float().mean().item()
    # fitted on one set, it decodes fresh sequences of the same chain better than frame by frame
    fresh_labels, fresh_utterance, fresh = sticky_sequences(seed=1)
    decoded = (decoder.decode(fresh, fresh_utterance) == fresh_labels).float().mean().item()
    assert decoded > (fresh.argmax(-1) == fresh_labels).float().mean().item() + 0.1 and agreement > frame_by_frame + 0.1


def test_decoder_refuses_posteriors_of_another_class_count_and_non_square_transitions():
    decoder = ClassSequenceDecoder(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="4 classes in the posteriors, 3 in the decoder"):
        decoder.decode(torch.zeros(2, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="square"):
        ClassSequenceDecoder(torch.zeros(3, 4))


def test_engine_fits_a_phone_decoder_to_its_own_posteriors_and_infers_classes_with_it():
    prior = FactorialGaussianPrior([{"name": "phone", "dim": 2, "num_classes": 5},
                                    {"name": "speaker", "dim": 1, "num_classes": 2}], residual_dim=1)
    model = DiscriminativeFlow(RealNVP(4, num_blocks=1, hidden_size=4), prior).eval()
    normalize = InputNormalization(norm_type="global")  # the identity
    normalize.glob_mean, normalize.glob_std = torch.zeros(4), torch.ones(4)
    engine = FeatureFlow(model, normalize)
    labels, utterance, _ = sticky_sequences(num_utterances=10, length=30)
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        codes = torch.cat([prior.means("phone")[labels] + 0.8 * torch.randn(len(labels), 2, generator=gen),
                           torch.randn(len(labels), 2, generator=gen)], dim=1)
        feats = model.decode(codes)
    frames = FrameSet({"feats": feats, "utterance": utterance,
                       "labels": {"phone": labels, "speaker": utterance % 2}})
    decoders = engine.fit_sequence_decoders(frames)
    assert set(decoders) == {"phone"}  # the speaker is not frame-level: pooled over the utterance instead
    decoded = engine.inferred_classes(engine.encode_all(feats), "phone", utterance, decoder=decoders["phone"])
    expected = decoders["phone"].decode(prior.class_posterior(engine.encode_all(feats), "phone").log(), utterance)
    assert torch.equal(decoded, expected)
    window = engine.inferred_classes(engine.encode_all(feats), "phone", utterance, smooth=0)
    assert (decoded == labels).float().mean() > (window == labels).float().mean()
    # a prior without a frame-level factor has nothing to decode
    speaker_only = FactorialGaussianPrior([{"name": "speaker", "dim": 1, "num_classes": 2}], residual_dim=3)
    assert FeatureFlow(DiscriminativeFlow(RealNVP(4, num_blocks=1, hidden_size=4), speaker_only),
                       normalize).fit_sequence_decoders(frames) == {}


@pytest.mark.parametrize("penalty", [0.0, 0.7, 3.0])
def test_the_runs_decoder_finds_the_general_decoders_path_under_a_flat_chain(penalty):
    """decode_runs's shortcut (a change's best predecessor is the best class before) gives the same path as the
    general Viterbi with staying free and every change costing the penalty, utterance by utterance."""
    from speechbrain_fdnf.decoding import ClassSequenceDecoder, decode_runs

    torch.manual_seed(int(penalty * 10))
    log_posteriors = (2 * torch.randn(60, 5)).log_softmax(dim=-1)
    utterance = torch.repeat_interleave(torch.arange(4), torch.tensor([1, 20, 9, 30]))
    transitions = torch.full((5, 5), -penalty).fill_diagonal_(0.0)
    general = ClassSequenceDecoder(transitions, scale=1.0).decode(log_posteriors, utterance)
    runs = decode_runs(log_posteriors, utterance, penalty)
    assert torch.equal(runs, general)
    if penalty == 0.0:
        assert torch.equal(runs, log_posteriors.argmax(dim=-1))
    else:  # fewer changes of class than each frame's most likely
        changes = lambda path: int((path[1:] != path[:-1]).sum())
        assert changes(runs) < changes(log_posteriors.argmax(dim=-1))
