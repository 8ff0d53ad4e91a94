"""The paper's t-SNE figure: latent codes coloured by phone (row 1) and by speaker (row 2), one column per model.

Authors
 * speechbrain-fdnf developers
"""

import numpy as np
import torch
from sklearn.manifold import TSNE
from tqdm import tqdm

from speechbrain_fdnf.factors import PAPER_FACTORS


def tsne_sample(frames, encoders, num_classes=6, per_class=80, seed=0):
    """Indices of a fixed sample: ``per_class`` frames of each of the ``num_classes``
    most frequent phones and speakers of ``frames``. Returns ``{label: (indices, classes)}``."""
    generator = torch.Generator().manual_seed(seed)
    sample = {}
    for label in PAPER_FACTORS:
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
    for row, label in enumerate(PAPER_FACTORS):
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
