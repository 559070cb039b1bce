"""Models: random networks (and references) as pure functions of a PRNG key, declared for the sweep engine.

Each model is a frozen, hashable dataclass with ``init(key, **numeric)`` and ``apply(params, inputs, ...)``
and the declarations of ``redshift_jax/models/base.py``; the engine reads those, never a model's class.
"""

from .activations import ACTIVATIONS
from .base import FIELD, TOKENS, NumericAxis
from .mlp import MLP
from .priors import PRIORS
from .unbiased import Unbiased

__all__ = ["ACTIVATIONS", "FIELD", "MLP", "NumericAxis", "PRIORS", "TOKENS", "Unbiased"]
