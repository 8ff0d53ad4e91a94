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
    RationalQuadraticCoupling,
    SplitCoupling,
    has_native_bfloat16,
    rational_quadratic_spline,
)

__all__ = [
    "ActNorm",
    "AffineCoupling",
    "DiscriminativeFlow",
    "FactorialGaussianPrior",
    "InvertibleLinear",
    "InvertibleTransform",
    "Permutation",
    "RationalQuadraticCoupling",
    "RealNVP",
    "SplitCoupling",
    "SequentialFlow",
    "VAE",
    "has_native_bfloat16",
    "rational_quadratic_spline",
    "with_class_counts",
]
