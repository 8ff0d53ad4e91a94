"""The small fully-connected networks used as coupling conditioners and VAE encoder/decoder.

Authors
 * speechbrain-fdnf developers
"""

import inspect

from torch import nn


def mlp(in_dim, out_dim, hidden_size, num_hidden_layers, activation=nn.ReLU, zero_last=True):
    """Builds ``Linear -> activation`` x ``num_hidden_layers`` followed by a last ``Linear``.

    With ``zero_last`` the last layer starts at zero, so a coupling layer starts
    as the identity and a Gaussian head starts at mean 0 / log-variance 0.

    Arguments
    ---------
    in_dim : int
        Input size.
    out_dim : int
        Output size.
    hidden_size : int
        Width of every hidden layer.
    num_hidden_layers : int
        Number of hidden layers (0 gives a single linear layer).
    activation : type
        ``nn.Module`` class placed after each hidden layer.
    zero_last : bool
        Initialise the last layer's weight and bias to zero.

    Returns
    -------
    torch.nn.Sequential

    Example
    -------
    >>> import torch
    >>> net = mlp(3, 4, hidden_size=8, num_hidden_layers=2)
    >>> net(torch.randn(5, 3)).abs().sum().item()
    0.0
    """
    layers, width = [], in_dim
    for _ in range(num_hidden_layers):
        layers += [nn.Linear(width, hidden_size), _in_place(activation)]
        width = hidden_size
    last = nn.Linear(width, out_dim)
    if zero_last:
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
    layers.append(last)
    return nn.Sequential(*layers)


def _in_place(activation):
    """The activation, in place when it can be: the Linear output it overwrites is not needed
    for the backward pass, and not allocating it is a measurable share of a coupling's time."""
    if "inplace" in inspect.signature(activation).parameters:
        return activation(inplace=True)
    return activation()
