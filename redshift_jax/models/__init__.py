"""Models: random networks (and references) as pure functions of a PRNG key, declared for the sweep engine.

Each model is a frozen, hashable dataclass with ``init(key, **numeric)`` and ``apply(params, inputs, ...)``
and the declarations of ``redshift_jax/models/base.py``; the engine reads those, never a model's class.
"""

from . import planes
from .activations import ACTIVATIONS, Activation
from .base import FIELD, TOKENS, NumericAxis
from .flax_model import FlaxModel
from .mlp import MLP
from .nngp import NNGP
from .planes import Plane
from .priors import PRIORS, Prior
from .unbiased import Unbiased

__all__ = ["ACTIVATIONS", "Activation", "CNN", "CNNModule", "FIELD", "FlaxModel", "GPT2", "MLP", "NNGP", "NumericAxis",
           "PRIORS", "PixelMLP", "PixelMLPModule", "Plane", "Prior", "TOKENS", "Unbiased", "ViT", "ViTModule", "gpt2",
           "planes"]

_FLAX_MODULES = {"CNN": ".cnn", "CNNModule": ".cnn", "ViT": ".vit", "ViTModule": ".vit", "PixelMLP": ".pixel_mlp",
                 "PixelMLPModule": ".pixel_mlp"}


def __getattr__(name):
    # GPT-2 and the image models import flax (about a second): loaded when first used.
    if name in ("GPT2", "gpt2", "GPT2_ACTIVATIONS"):
        import importlib

        module = importlib.import_module(".gpt2", __name__)
        return module if name == "gpt2" else getattr(module, name)
    if name in _FLAX_MODULES:   # flax too
        import importlib

        return getattr(importlib.import_module(_FLAX_MODULES[name], __name__), name)
    raise AttributeError(f"module 'redshift_jax.models' has no attribute {name!r}")
