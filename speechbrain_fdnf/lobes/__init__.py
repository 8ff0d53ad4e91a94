"""Building blocks: invertible transforms, flows, factor priors and the models.

One concept per module: ``base`` (the transform contract), ``couplings`` (affine and spline couplings
and their registry), ``splines``, ``normalization`` (ActNorm), ``linear`` (the LU map), ``fused``
(ActNorm + LU as one cached map), ``permutations``, ``precision`` (bfloat16 hardware), ``flows``,
``priors``, ``models``, ``mlp``.
"""

from speechbrain_fdnf.lobes.base import InvertibleTransform
from speechbrain_fdnf.lobes.couplings import COUPLINGS, AffineCoupling, RationalQuadraticCoupling, SplitCoupling
from speechbrain_fdnf.lobes.flows import MIXINGS, RealNVP, SequentialFlow
from speechbrain_fdnf.lobes.linear import InvertibleLinear
from speechbrain_fdnf.lobes.models import VAE, DiscriminativeFlow, with_class_counts
from speechbrain_fdnf.lobes.normalization import ActNorm
from speechbrain_fdnf.lobes.permutations import Permutation
from speechbrain_fdnf.lobes.precision import has_native_bfloat16
from speechbrain_fdnf.lobes.priors import FactorialGaussianPrior
from speechbrain_fdnf.lobes.splines import rational_quadratic_spline

__all__ = [
    "COUPLINGS",
    "MIXINGS",
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
