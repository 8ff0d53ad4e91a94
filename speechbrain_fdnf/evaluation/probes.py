"""Classifiers that read a factor: MLP probes on input features, linear probes on latent subspaces.

* :class:`FeatureProbe`: the MLP that the posterior tables score frames with,
  trained on input features (never on latents) and cached per corpus;
* :func:`leakage_probes`: linear classifiers of each label on each latent
  subspace (what each part of the latent knows).

Authors
 * speechbrain-fdnf developers
"""

import hashlib
import logging
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn
from tqdm import tqdm

from speechbrain_fdnf.files import atomic_write
from speechbrain_fdnf.lobes.mlp import mlp

logger = logging.getLogger(__name__)


class FeatureProbe(nn.Module):
    """An MLP classifier on raw feature frames (its own global normalisation inside).

    Arguments
    ---------
    input_dim : int
        Feature dimension.
    num_classes : int
        Number of classes.
    hidden_size : int
        Width of the two hidden layers.

    Example
    -------
    >>> probe = FeatureProbe(4, 3, hidden_size=8)
    >>> torch.allclose(probe.posteriors(torch.randn(2, 4)).sum(-1), torch.ones(2))
    True
    """

    def __init__(self, input_dim, num_classes, hidden_size=512):
        super().__init__()
        self.register_buffer("mean", torch.zeros(input_dim))
        self.register_buffer("std", torch.ones(input_dim))
        self.net = mlp(input_dim, num_classes, hidden_size, 2, nn.ReLU, zero_last=False)

    def forward(self, feats):
        """Class logits."""
        return self.net((feats - self.mean) / self.std)

    def posteriors(self, feats):
        """Class posteriors ``p(c | x)``."""
        return torch.softmax(self(feats), dim=-1)

    def fit(self, feats, labels, epochs=8, batch_size=1024, lr=1e-3, seed=0):
        """A short Adam loop over shuffled frames (cross-entropy)."""
        self.mean.copy_(feats.mean(0))
        self.std.copy_(feats.std(0).clamp_min(1e-5))
        optimizer = torch.optim.Adam(self.parameters(), lr=lr)
        generator = torch.Generator().manual_seed(seed)
        self.train()
        for _ in tqdm(range(epochs), desc="probe", leave=False):
            order = torch.randperm(len(feats), generator=generator)
            for start in range(0, len(feats), batch_size):
                index = order[start : start + batch_size]
                loss = nn.functional.cross_entropy(self(feats[index]), labels[index])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        return self.eval()

    @torch.no_grad()
    def accuracy(self, feats, labels):
        """Frame accuracy."""
        return (self(feats).argmax(-1) == labels).float().mean().item()


def load_or_train_probe(cache_dir, name, train, test, num_classes, epochs=8, hidden_size=512, seed=0):
    """A :class:`FeatureProbe` for label ``name``, trained once per data and cached.

    Arguments
    ---------
    cache_dir : str or Path
        Where ``probe_<name>_<digest>.pt`` is kept.
    name : str
        Label name (``phone``, ``speaker``, ...).
    train, test : FrameBatch
        Training frames and the frames its accuracy is reported on.
    num_classes : int
        Number of classes.

    Returns
    -------
    (FeatureProbe, float)
        The probe and its test accuracy.
    """
    digest = hashlib.sha1(
        np.ascontiguousarray(train.feats[::97].numpy()).tobytes()
        + repr((len(train), num_classes, epochs, hidden_size, seed)).encode()
    ).hexdigest()[:12]
    path = Path(cache_dir) / f"probe_{name}_{digest}.pt"
    torch.manual_seed(seed)
    probe = FeatureProbe(train.feats.shape[1], num_classes, hidden_size)
    if path.exists():
        state = torch.load(path, weights_only=True)
        probe.load_state_dict(state["probe"])
        return probe.eval(), state["accuracy"]
    probe.fit(train.feats, train.labels[name], epochs=epochs, seed=seed)
    accuracy = probe.accuracy(test.feats, test.labels[name])
    with atomic_write(path) as tmp:  # a killed evaluation never leaves half a probe in the cache
        torch.save({"probe": probe.state_dict(), "accuracy": accuracy}, tmp)
    logger.info("Probe %s: test accuracy %.3f (cached in %s)", name, accuracy, path)
    return probe, accuracy


@torch.no_grad()
def leakage_probes(engine, subspaces, train, test, labels=("phone", "speaker"), max_train=20000, seed=0):
    """Accuracy of linear classifiers of each label on each latent subspace.

    Arguments
    ---------
    engine : speechbrain_fdnf.engine.FeatureFlow
        Gives the latent codes.
    subspaces : dict
        Subspace name -> slice of the latent (``{"z": slice(None)}`` for a whole latent).
    train, test : FrameBatch
        Frames to fit and to score the classifiers.

    Returns
    -------
    dict
        ``{subspace: {label: accuracy}}``.
    """
    generator = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(train), generator=generator)[:max_train]
    z_train, z_test = engine.encode_all(train.feats[pick]).cpu().numpy(), engine.encode_all(test.feats).cpu().numpy()
    result = {}
    for name, where in subspaces.items():
        result[name] = {}
        for label in labels:
            clf = LogisticRegression(max_iter=300)
            clf.fit(z_train[:, where], train.labels[label][pick].numpy())
            result[name][label] = float(clf.score(z_test[:, where], test.labels[label].numpy()))
    return result
