"""speechbrain-fdnf: factorial discriminative normalization flows for SpeechBrain.

Factorizes speech feature frames into independent information factors (phone,
speaker, ...) with an invertible flow whose latent is split into one
class-conditional Gaussian subspace per factor, and changes one factor while
leaving the others intact.
"""

__version__ = "0.5.0"
