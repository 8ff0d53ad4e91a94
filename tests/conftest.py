"""Shared helpers for the test suite."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def perturb(module, scale=0.3):
    """Moves every parameter away from its (often identity) initial value."""
    with torch.no_grad():
        for param in module.parameters():
            param.add_(torch.randn_like(param) * scale)
    return module
