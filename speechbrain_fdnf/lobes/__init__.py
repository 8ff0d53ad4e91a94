"""Building blocks: invertible transforms, flows, factor priors and the models."""

from speechbrain_fdnf.lobes.flows import RealNVP, SequentialFlow
from speechbrain_fdnf.lobes.models import VAE, DiscriminativeFlow, with_class_counts
from speechbrain_fdnf.lobes.priors import FactorialGaussianPrior
from speechbrain_fdnf.lobes.transforms import (
    ActNorm,
    AffineCoupling,
    InvertibleLinear,
    InvertibleTransform,
    Permutation,
)

__all__ = [
    "ActNorm",
    "AffineCoupling",
    "DiscriminativeFlow",
    "FactorialGaussianPrior",
    "InvertibleLinear",
    "InvertibleTransform",
    "Permutation",
    "RealNVP",
    "SequentialFlow",
    "VAE",
    "with_class_counts",
]
