"""The paper's evaluation protocol (DESIGN.md §4), for any of the five models.

* :class:`FeatureProbe`: MLP classifiers of phone and speaker trained on input
  features (never on latents), cached per corpus;
* :func:`posterior_table`: the MLP posteriors of the target factor and of the
  other factor before and after manipulation;
* :func:`leakage_probes`: linear classifiers of each factor on each latent
  subspace;
* :func:`tsne_grid`: the 2 x models t-SNE figure.

Authors
 * speechbrain-fdnf developers
"""

import hashlib
import logging
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import TSNE
from torch import nn
from tqdm import tqdm

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
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"probe": probe.state_dict(), "accuracy": accuracy}, path)
    logger.info("Probe %s: test accuracy %.3f (cached in %s)", name, accuracy, path)
    return probe, accuracy


def draw_targets(current, candidates, generator):
    """For each frame, a target class drawn uniformly from ``candidates`` minus its current class."""
    candidates = torch.as_tensor(candidates)
    draw = torch.randint(len(candidates) - 1, (len(current),), generator=generator)
    position = torch.searchsorted(candidates, current)
    is_member = (position < len(candidates)) & (candidates[position.clamp_max(len(candidates) - 1)] == current)
    # skip the current class by shifting draws at or past its position
    draw = draw + (is_member & (draw >= position)).long()
    return candidates[draw.clamp_max(len(candidates) - 1)]


@torch.no_grad()
def posterior_table(manipulator, probes, frames, target, other, candidates, num_frames=2000, seed=0):
    """Mean MLP posteriors before and after changing factor ``target``.

    A fixed, seeded sample of ``num_frames`` frames is drawn from ``frames``
    (held-out utterances); each frame's target class is drawn uniformly
    among ``candidates`` (classes with training frames) other than its own.

    Returns
    -------
    dict
        ``p_target_x``, ``p_target_x_prime``, ``delta_target`` (for the new
        class of ``target``), ``p_other_x``, ``p_other_x_prime``,
        ``delta_other`` (for the true class of ``other``), and ``frames``.
    """
    generator = torch.Generator().manual_seed(seed)
    index = torch.randperm(len(frames), generator=generator)[:num_frames]
    batch = frames.__getitems__(index)
    current, kept = batch.labels[target], batch.labels[other]
    new = draw_targets(current, sorted(candidates), generator)
    moved = manipulator.manipulate(batch.feats, target, current, new)
    rows = torch.arange(len(index))
    before_t = probes[target].posteriors(batch.feats)[rows, new]
    after_t = probes[target].posteriors(moved)[rows, new]
    before_o = probes[other].posteriors(batch.feats)[rows, kept]
    after_o = probes[other].posteriors(moved)[rows, kept]
    result = {
        "p_target_x": before_t.mean().item(),
        "p_target_x_prime": after_t.mean().item(),
        "p_other_x": before_o.mean().item(),
        "p_other_x_prime": after_o.mean().item(),
        "frames": len(index),
    }
    result["delta_target"] = result["p_target_x_prime"] - result["p_target_x"]
    result["delta_other"] = result["p_other_x_prime"] - result["p_other_x"]
    return result


@torch.no_grad()
def leakage_probes(manipulator, subspaces, train, test, labels=("phone", "speaker"), max_train=20000, seed=0):
    """Accuracy of linear classifiers of each label on each latent subspace.

    Arguments
    ---------
    manipulator : FactorManipulator
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
    z_train, z_test = manipulator.encode(train.feats[pick]).numpy(), manipulator.encode(test.feats).numpy()
    result = {}
    for name, where in subspaces.items():
        result[name] = {}
        for label in labels:
            clf = LogisticRegression(max_iter=300)
            clf.fit(z_train[:, where], train.labels[label][pick].numpy())
            result[name][label] = float(clf.score(z_test[:, where], test.labels[label].numpy()))
    return result


def tsne_sample(frames, encoders, num_classes=6, per_class=80, seed=0):
    """Indices of a fixed sample: ``per_class`` frames of each of the ``num_classes``
    most frequent phones and speakers of ``frames``. Returns ``{label: (indices, classes)}``."""
    generator = torch.Generator().manual_seed(seed)
    sample = {}
    for label in ("phone", "speaker"):
        values = frames.labels[label]
        counts = torch.bincount(values, minlength=len(encoders[label]))
        classes = torch.argsort(counts, descending=True)[:num_classes]
        indices = []
        for c in classes.tolist():
            members = torch.nonzero(values == c).flatten()
            indices.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
        sample[label] = (torch.cat(indices), classes)
    return sample


def tsne_grid(latents, sample_labels, class_names, path, seed=0):
    """Draws the 2 x N grid: row 1 coloured by phone, row 2 by speaker, one column per model.

    Arguments
    ---------
    latents : dict
        Model name -> ``{"phone": codes, "speaker": codes}`` (numpy arrays of the
        sampled frames, already restricted to the matching subspace for f-DNF).
    sample_labels : dict
        ``{"phone": labels, "speaker": labels}`` of the sampled frames.
    class_names : dict
        ``{"phone": {index: name}, "speaker": {index: name}}`` for the legends.
    path : str or Path
        PNG to write.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(latents)
    fig, axes = plt.subplots(2, len(models), figsize=(3.2 * len(models), 6.6), squeeze=False)
    for row, label in enumerate(("phone", "speaker")):
        labels = np.asarray(sample_labels[label])
        for col, model in enumerate(tqdm(models, desc=f"t-SNE by {label}", leave=False)):
            codes = latents[model][label]
            points = TSNE(n_components=2, perplexity=30, init="pca", random_state=seed).fit_transform(codes)
            ax = axes[row][col]
            for c in np.unique(labels):
                mask = labels == c
                ax.scatter(points[mask, 0], points[mask, 1], s=4, label=class_names[label][int(c)])
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(model)
            if col == 0:
                ax.set_ylabel(f"coloured by {label}")
        axes[row][-1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, markerscale=3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
