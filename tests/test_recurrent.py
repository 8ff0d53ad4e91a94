"""The LSTM over a padded batch gives what SpeechBrain's packed LSTM gives, forward and backward."""

import pytest
import torch
from speechbrain.nnet.RNN import LSTM

from speechbrain_fdnf.lobes.recurrent import lstm_over_padding, reversed_within


@pytest.mark.parametrize("bidirectional, num_layers, bias", [(True, 2, True), (False, 1, True), (True, 1, False)])
def test_the_padded_batch_gives_the_packed_outputs_and_gradients(bidirectional, num_layers, bias):
    torch.manual_seed(0)
    packed = LSTM(5, input_size=4, num_layers=num_layers, bidirectional=bidirectional, bias=bias).eval()
    frames = torch.tensor([9, 4, 7, 1])
    x = torch.randn(4, 9, 4)
    weights = torch.randn(4, 9, 5 * (2 if bidirectional else 1))
    keep = torch.arange(9)[None, :] < frames[:, None]
    outputs, grads = [], []
    for run in (lambda inputs: packed(inputs, lengths=frames / 9)[0],
                lambda inputs: lstm_over_padding(packed.rnn, inputs, frames)):
        packed.zero_grad()
        inputs = x.clone().requires_grad_()
        out = run(inputs)
        (out * weights * keep[..., None]).sum().backward()
        outputs.append(out * keep[..., None])
        grads.append([inputs.grad] + [parameter.grad for parameter in packed.rnn.parameters()])
    torch.testing.assert_close(outputs[1], outputs[0])
    for ours, theirs in zip(grads[1], grads[0]):
        torch.testing.assert_close(ours, theirs)
    # the padding is zero and moving it moves nothing
    padded = lstm_over_padding(packed.rnn, x, frames)
    assert padded[~keep].abs().max() == 0
    moved = torch.where(keep[..., None], x, x + 100.0)
    torch.testing.assert_close(lstm_over_padding(packed.rnn, moved, frames), padded)


def test_dropout_acts_between_layers_in_training_only():
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 4, num_layers=2, dropout=0.5, bidirectional=True, batch_first=True)
    x, frames = torch.randn(2, 6, 3), torch.tensor([6, 5])
    lstm.eval()
    evaluated = lstm_over_padding(lstm, x, frames)
    torch.testing.assert_close(evaluated[:1], lstm(x[:1])[0])
    lstm.train()
    assert not torch.allclose(lstm_over_padding(lstm, x, frames), evaluated)


def test_reversal_within_each_length_is_its_own_inverse_and_refuses_projections():
    x = torch.randn(3, 5, 2)
    frames = torch.tensor([5, 2, 0])
    torch.testing.assert_close(reversed_within(reversed_within(x, frames), frames), x)
    assert torch.equal(reversed_within(x, frames)[2], x[2])  # an empty utterance: all padding, where it was
    with pytest.raises(ValueError, match="batch-first"):
        lstm_over_padding(torch.nn.LSTM(3, 4, proj_size=2, batch_first=True), x[..., :1].expand(3, 5, 3), frames)
