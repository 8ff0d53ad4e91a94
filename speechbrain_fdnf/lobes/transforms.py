"""The invertible transforms under their pre-0.5 module path (each now lives in a module of its own).

Kept so that code written against ``speechbrain_fdnf.lobes.transforms`` keeps working; new code
imports from :mod:`speechbrain_fdnf.lobes` or the concept's module.

Authors
 * speechbrain-fdnf developers
"""

from speechbrain_fdnf.lobes.base import InvertibleTransform
from speechbrain_fdnf.lobes.couplings import AffineCoupling, RationalQuadraticCoupling, SplitCoupling
from speechbrain_fdnf.lobes.fused import normalized_linear
from speechbrain_fdnf.lobes.linear import InvertibleLinear
from speechbrain_fdnf.lobes.normalization import ActNorm
from speechbrain_fdnf.lobes.permutations import Permutation
from speechbrain_fdnf.lobes.precision import has_native_bfloat16
from speechbrain_fdnf.lobes.splines import MAX_LOG_DERIVATIVE, rational_quadratic_spline

__all__ = ["MAX_LOG_DERIVATIVE", "ActNorm", "AffineCoupling", "InvertibleLinear", "InvertibleTransform", "Permutation",
           "RationalQuadraticCoupling", "SplitCoupling", "has_native_bfloat16", "normalized_linear",
           "rational_quadratic_spline"]
