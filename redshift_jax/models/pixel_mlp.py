"""An MLP on flattened pixels, a ``flax.linen`` module run as a ``FlaxModel`` on a plane (DESIGN.md section 19).

The image-model baseline of ``sweeps/architectures.py``: the project's MLP (its activations and priors) reading a
whole image as one vector, so it is compared with ``rj.CNN`` and ``rj.ViT`` on the same plane.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from ..errors import ConfigError
from ..validate import check_int
from .activations import ACTIVATIONS
from .cnn import _bias_init, _weight_init
from .flax_model import FlaxModel, register_module
from .planes import Plane
from .priors import PRIORS

__all__ = ["PixelMLP", "PixelMLPModule"]


@register_module(outputs=lambda module, input_shape: module.n_classes)   # any input shape: it is flattened
class PixelMLPModule(nn.Module):
    """``depth`` dense hidden layers of ``width`` units on the flattened image, then a dense head to ``n_classes``.

    Each layer ``phi(h W + b)``, weights and biases from the MLP's ``prior`` at scale 1 (``FlaxModel.init``
    multiplies them by ``weight_scale`` / ``bias_scale``).
    """

    depth: int = 4
    width: int = 64
    activation: str = "relu"
    prior: str = "paper"
    n_classes: int = 10

    def __post_init__(self):
        check_int("PixelMLP.depth", self.depth, minimum=1)
        check_int("PixelMLP.width", self.width, minimum=1)
        check_int("PixelMLP.n_classes", self.n_classes, minimum=1)
        if not isinstance(self.activation, str) or self.activation not in ACTIVATIONS:
            raise ConfigError(f"PixelMLP.activation={self.activation!r} is unknown; allowed: "
                              f"{', '.join(ACTIVATIONS)}")
        if self.prior not in PRIORS:
            raise ConfigError(f"PixelMLP.prior={self.prior!r} is unknown; allowed: {', '.join(PRIORS)}")
        super().__post_init__()

    @nn.compact
    def __call__(self, x):
        phi = ACTIVATIONS[self.activation]
        h = jnp.reshape(x, (x.shape[0], -1))
        for layer in range(self.depth):
            fan_in = h.shape[-1]
            h = phi(nn.Dense(self.width, name=f"dense_{layer}",
                             kernel_init=_weight_init(self.prior, fan_in, self.width),
                             bias_init=_bias_init(self.prior, fan_in, self.width))(h))
        return nn.Dense(self.n_classes, name="head", kernel_init=_weight_init(self.prior, self.width, self.n_classes),
                        bias_init=_bias_init(self.prior, self.width, self.n_classes))(h)


def PixelMLP(depth: int = 4, width: int = 64, activation: str = "relu", prior: str = "paper", n_classes: int = 10,
             *, plane=None, output: str = "logit", klass: int = 0) -> FlaxModel:
    """An MLP on flattened pixels as a sweep model: ``FlaxModel(PixelMLPModule(...), plane=plane)``.

    Args:
      depth: hidden layers (``PixelMLPModule`` fields up to ``n_classes`` are structural axes).
      width: units per hidden layer.
      activation: the MLP's activation names.
      prior: the MLP's weight priors.
      n_classes: logits of the head.
      plane: the ``rj.Plane`` it is evaluated on (default ``Plane()``: MNIST, random directions).
      output: ``"logit"`` or ``"margin"`` (``FlaxModel``).
      klass: the class whose logit is the field with ``output="logit"``.
    """
    module = PixelMLPModule(depth=depth, width=width, activation=activation, prior=prior, n_classes=n_classes)
    return FlaxModel(module, plane=Plane() if plane is None else plane, output=output, klass=klass)
