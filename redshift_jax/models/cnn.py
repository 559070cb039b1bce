"""The built-in random CNN of DESIGN.md section 19, a ``flax.linen`` module run as a ``FlaxModel`` on a plane.

``rj.CNN(depth=2, width=8, activation="tanh", plane=rj.Plane("digits"))`` is a sweep model (a ``FlaxModel``
around ``CNNModule``): its structural axes are the module's fields (``depth``, ``width``, ``activation``,
``prior``, ``residual``, ``layernorm``, ``n_classes``) and ``output``, ``klass``; its numeric axes
``weight_scale`` and ``bias_scale``.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError
from ..validate import check_int
from .activations import ACTIVATIONS
from .flax_model import FlaxModel, register_module
from .planes import Plane
from .priors import PRIORS, sample_bias, sample_weight

__all__ = ["CNN", "CNNModule"]


def _weight_init(prior: str, fan_in: int, fan_out: int):
    def init(key, shape, dtype=jnp.float32):
        return sample_weight(prior, key, fan_in, fan_out, 1.0, dtype).reshape(shape)
    return init


def _bias_init(prior: str, fan_in: int, fan_out: int):
    def init(key, shape, dtype=jnp.float32):
        return sample_bias(prior, key, fan_in, fan_out, 1.0, dtype).reshape(shape)
    return init


def _outputs(module, input_shape: tuple) -> int:
    """The logits on one image of ``input_shape`` (H, W, C), after the check ``CNNModule.__call__`` makes on it
    (``register_module``: FlaxModel reads this instead of tracing the module)."""
    if len(input_shape) != 3:
        raise ConfigError(f"CNN takes images of shape (n, H, W, C), not {(1,) + tuple(input_shape)}; allowed: a plane "
                          "over images (MNIST, digits, or an (n, H, W, C) array)")
    return module.n_classes


@register_module(outputs=_outputs)
class CNNModule(nn.Module):
    """``depth`` 3x3 conv layers of ``width`` channels, then global average pool and a linear head.

    Each layer: ``pre = conv(h) + b`` (stride 1, SAME padding), layer norm over channels (no affine) when
    ``layernorm``, ``out = phi(pre)``; with ``residual`` every layer after the first adds its input (ResNet form,
    the MLP's ``residual="block"``). A 2x2 average pool (stride 2) follows every second layer while the image is
    at least 2 x 2 (so deep CNNs on 8 x 8 digits stop pooling at 1 x 1). Then the mean over positions and a
    dense head to ``n_classes`` logits.

    Weights are drawn from the MLP's ``prior`` at weight scale 1 with a conv layer read as the linear map
    ``9 * channels_in -> width`` (fan_in = 9 * channels in, fan_out = width; the head: width -> n_classes);
    ``FlaxModel.init`` multiplies kernels by ``weight_scale`` and biases by ``bias_scale`` afterwards, which for
    every prior is the prior at that scale (up to float32 rounding). Parameter keys are flax's (one per
    parameter), not the MLP's ``fold_in`` scheme.
    """

    depth: int = 4
    width: int = 32
    activation: str = "relu"
    prior: str = "paper"
    residual: bool = False
    layernorm: bool = False
    n_classes: int = 10

    def __post_init__(self):
        check_int("CNN.depth", self.depth, minimum=1)
        check_int("CNN.width", self.width, minimum=1)
        check_int("CNN.n_classes", self.n_classes, minimum=1)
        if not isinstance(self.activation, str) or self.activation not in ACTIVATIONS:
            raise ConfigError(f"CNN.activation={self.activation!r} is unknown; allowed: {', '.join(ACTIVATIONS)}")
        if self.prior not in PRIORS:
            raise ConfigError(f"CNN.prior={self.prior!r} is unknown; allowed: {', '.join(PRIORS)}")
        for flag in ("residual", "layernorm"):
            if not isinstance(getattr(self, flag), (bool, np.bool_)):
                raise ConfigError(f"CNN.{flag}={getattr(self, flag)!r} is not allowed; {flag} must be True or False")
        super().__post_init__()

    @nn.compact
    def __call__(self, x):
        _outputs(self, x.shape[1:])
        phi = ACTIVATIONS[self.activation]
        h = x
        for layer in range(self.depth):
            c_in = h.shape[-1]
            fan_in = 9 * c_in
            pre = nn.Conv(self.width, (3, 3), strides=1, padding="SAME", name=f"conv_{layer}",
                          kernel_init=_weight_init(self.prior, fan_in, self.width),
                          bias_init=_bias_init(self.prior, fan_in, self.width))(h)
            if self.layernorm:
                pre = nn.LayerNorm(use_bias=False, use_scale=False, epsilon=1e-5, name=f"norm_{layer}")(pre)
            out = phi(pre)
            if self.residual and layer > 0:
                out = h + out
            h = out
            if layer % 2 == 1 and min(h.shape[-3], h.shape[-2]) >= 2:
                h = nn.avg_pool(h, (2, 2), strides=(2, 2), padding="VALID")
        h = jnp.mean(h, axis=(-3, -2))
        return nn.Dense(self.n_classes, name="head", kernel_init=_weight_init(self.prior, self.width, self.n_classes),
                        bias_init=_bias_init(self.prior, self.width, self.n_classes))(h)


def CNN(depth: int = 4, width: int = 32, activation: str = "relu", prior: str = "paper", residual: bool = False,
        layernorm: bool = False, n_classes: int = 10, *, plane=None, output: str = "logit",
        klass: int = 0) -> FlaxModel:
    """The random CNN of DESIGN.md section 19 as a sweep model: ``FlaxModel(CNNModule(...), plane=plane)``.

    Args:
      depth: conv layers (a ``CNNModule`` field, like the rest up to ``n_classes``: structural axes).
      width: channels per conv layer.
      activation: the MLP's activation names.
      prior: the MLP's weight priors (a conv layer drawn as the linear map ``9 C_in -> width``).
      residual: skip connections from the second layer on.
      layernorm: layer norm over channels (no affine parameters).
      n_classes: logits of the linear head.
      plane: the ``rj.Plane`` it is evaluated on (default ``Plane()``: MNIST, random directions).
      output: the field read out of the logits (``FlaxModel``): ``"logit"`` or ``"margin"``.
      klass: the class whose logit is the field with ``output="logit"``.

    Example:
      >>> import redshift_jax as rj
      >>> model = rj.CNN(depth=2, width=8, activation="tanh", plane=rj.Plane("digits"))
      >>> sweep = rj.Sweep(model=model, axes={"weight_scale": [0.5, 2.0], "seed": [0, 1]}, resolution=16,
      ...                  measures=("fourier", "lz"))
    """
    module = CNNModule(depth=depth, width=width, activation=activation, prior=prior, residual=residual,
                       layernorm=layernorm, n_classes=n_classes)
    return FlaxModel(module, plane=Plane() if plane is None else plane, output=output, klass=klass)
