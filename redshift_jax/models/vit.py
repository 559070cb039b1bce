"""The built-in random Vision Transformer of DESIGN.md section 19, a ``flax.linen`` module run as a ``FlaxModel``.

``rj.ViT(depth=2, activation="gelu", plane=rj.Plane("digits"))`` is a sweep model (a ``FlaxModel`` around
``ViTModule``): structural axes are the module's fields (``depth``, ``d_model``, ``heads``, ``activation``,
``patch``, ``n_classes``, ``residual``, ``layernorm``) and ``output``, ``klass``; numeric axes ``weight_scale``,
``bias_scale`` and ``ln_gain`` (the gain of every block's two LayerNorms, as in GPT-2; traced, applied at ``apply``
time).

The initialization is GPT-2's (``models/gpt2.py``): every kernel normal with std 0.02, the two residual
projections of a block (attention output, MLP output) 0.02 / sqrt(24), biases zero, LayerNorm gain 1 and bias 0,
position embeddings normal 0.02, the class token zero (as in the ViT paper). ``weight_scale`` multiplies the
kernels (patch embedding, attention, MLP, head), not the position embeddings or the class token.

``residual=False`` drops the blocks' two skip connections (a block is then ``mlp(ln_2(attn(ln_1(x))))``) and
``layernorm=False`` every LayerNorm (the blocks' and the final one; ``ln_gain`` then changes nothing): the
switches the NRS paper studies for MLPs, here for asking whether they lower a ViT's complexity too. Both keep the
initialization above (GPT-2's, including the smaller residual projections).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from ..errors import ConfigError
from ..validate import check_bool, check_int
from .activations import ACTIVATIONS
from .base import NumericAxis
from .flax_model import FlaxModel, register_module
from .gpt2 import INIT_STD, PROJ_STD, _LayerNorm
from .planes import Plane

__all__ = ["ViT", "ViTModule"]

_normal = nn.initializers.normal


class _SelfAttention(nn.Module):
    """Multi-head self-attention over all tokens (no mask): ``x`` (n, T, d) -> (n, T, d)."""

    heads: int

    @nn.compact
    def __call__(self, x):
        n, t, d = x.shape
        hd = d // self.heads
        qkv = nn.Dense(3 * d, name="qkv", kernel_init=_normal(INIT_STD))(x)
        q, k, v = (a.reshape(n, t, self.heads, hd) for a in jnp.split(qkv, 3, axis=-1))
        scores = jnp.einsum("nthd,nshd->nhts", q, k) / jnp.sqrt(jnp.float32(hd))
        out = jnp.einsum("nhts,nshd->nthd", jax.nn.softmax(scores, axis=-1), v).reshape(n, t, d)
        return nn.Dense(d, name="proj", kernel_init=_normal(PROJ_STD))(out)


class _Block(nn.Module):
    """Pre-LN: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``, the LayerNorm gains times ``ln_gain``; without
    ``residual`` the sums lose their ``x +``, without ``layernorm`` the ``ln_1``, ``ln_2`` are the identity."""

    heads: int
    activation: str
    residual: bool = True
    layernorm: bool = True

    @nn.compact
    def __call__(self, x, ln_gain):
        def norm(name, h):
            return _LayerNorm(name=name)(h, ln_gain) if self.layernorm else h

        def add(skip, h):
            return skip + h if self.residual else h

        d = x.shape[-1]
        x = add(x, _SelfAttention(self.heads, name="attn")(norm("ln_1", x)))
        h = nn.Dense(4 * d, name="fc", kernel_init=_normal(INIT_STD))(norm("ln_2", x))
        return add(x, nn.Dense(d, name="proj", kernel_init=_normal(PROJ_STD))(ACTIVATIONS[self.activation](h)))


def _outputs(module, input_shape: tuple) -> int:
    """The logits on one image of ``input_shape`` (H, W, C), after the checks ``ViTModule.__call__`` makes on it
    (``register_module``: FlaxModel reads this instead of tracing the module)."""
    if len(input_shape) != 3:
        raise ConfigError(f"ViT takes images of shape (n, H, W, C), not {(1,) + tuple(input_shape)}; allowed: a plane "
                          "over images (MNIST, digits, or an (n, H, W, C) array)")
    height, width, _ = input_shape
    if height % module.patch or width % module.patch:
        raise ConfigError(f"ViT.patch={module.patch} does not divide the image size {height} x {width}; allowed: a "
                          "divisor of both")
    return module.n_classes


@register_module(outputs=_outputs)
class ViTModule(nn.Module):
    """Patch embedding, class token and position embeddings, ``depth`` pre-LN blocks, final LayerNorm, head.

    Images (n, H, W, C) are cut into ``patch`` x ``patch`` patches (H and W multiples of ``patch``), each embedded
    linearly to ``d_model``; a class token is prepended and learned position embeddings added; each block is
    multi-head attention (``heads``) and an MLP of width ``4 d_model`` with ``activation``; the class token's final
    LayerNorm output goes through a dense head to ``n_classes`` logits. ``ln_gain`` (a call argument, so traced)
    multiplies the gain of both LayerNorms of every block; the final one keeps gain 1 (as ``rj.GPT2``).
    ``residual=False`` removes the blocks' skip connections, ``layernorm=False`` every LayerNorm.
    """

    depth: int = 4
    d_model: int = 64
    heads: int = 4
    activation: str = "gelu"
    patch: int = 4
    n_classes: int = 10
    residual: bool = True
    layernorm: bool = True

    # FlaxModel reads this: numeric axes passed to __call__ (models/flax_model.py)
    numeric_inputs = {"ln_gain": NumericAxis(1.0, minimum=0.0, stage="apply")}

    def __post_init__(self):
        check_int("ViT.depth", self.depth, minimum=1)
        check_int("ViT.d_model", self.d_model, minimum=1)
        check_int("ViT.heads", self.heads, minimum=1)
        check_int("ViT.patch", self.patch, minimum=1)
        check_int("ViT.n_classes", self.n_classes, minimum=1)
        if self.d_model % self.heads:
            raise ConfigError(f"ViT.d_model={self.d_model!r} is not allowed with heads={self.heads}; allowed: a "
                              "multiple of heads")
        if not isinstance(self.activation, str) or self.activation not in ACTIVATIONS:
            raise ConfigError(f"ViT.activation={self.activation!r} is unknown; allowed: {', '.join(ACTIVATIONS)}")
        check_bool("ViT.residual", self.residual)
        check_bool("ViT.layernorm", self.layernorm)
        super().__post_init__()

    @nn.compact
    def __call__(self, x, ln_gain=1.0):
        _outputs(self, x.shape[1:])
        n = x.shape[0]
        ln_gain = jnp.asarray(ln_gain, jnp.float32)
        h = nn.Conv(self.d_model, (self.patch, self.patch), strides=self.patch, padding="VALID", name="patch_embed",
                    kernel_init=_normal(INIT_STD))(x)
        h = h.reshape(n, -1, self.d_model)
        cls = self.param("cls", nn.initializers.zeros, (1, 1, self.d_model), jnp.float32)
        h = jnp.concatenate([jnp.broadcast_to(cls, (n, 1, self.d_model)), h], axis=1)
        h = h + self.param("pos_embedding", _normal(INIT_STD), (1, h.shape[1], self.d_model), jnp.float32)
        for layer in range(self.depth):
            h = _Block(self.heads, self.activation, bool(self.residual), bool(self.layernorm),
                       name=f"block_{layer}")(h, ln_gain)
        h = _LayerNorm(name="ln_f")(h[:, 0]) if self.layernorm else h[:, 0]
        return nn.Dense(self.n_classes, name="head", kernel_init=_normal(INIT_STD))(h)


def ViT(depth: int = 4, d_model: int = 64, heads: int = 4, activation: str = "gelu", patch: int | None = None,
        n_classes: int = 10, residual: bool = True, layernorm: bool = True, *, plane=None, output: str = "logit",
        klass: int = 0) -> FlaxModel:
    """The random ViT of DESIGN.md section 19 as a sweep model: ``FlaxModel(ViTModule(...), plane=plane)``.

    Args:
      depth: pre-LN blocks (a ``ViTModule`` field, like the rest up to ``n_classes``: structural axes).
      d_model: the embedding width, a multiple of ``heads``.
      heads: attention heads.
      activation: the MLP's activation names (``"gelu"``, as in the ViT paper, by default).
      patch: patch side; ``None``: 4 for images of side >= 16 (MNIST), else 2 (digits).
      n_classes: logits of the head.
      residual: the blocks' skip connections (``False``: a block is ``mlp(ln_2(attn(ln_1(x))))``).
      layernorm: every LayerNorm, the blocks' and the final one (``False``: ``ln_gain`` changes nothing).
      plane: the ``rj.Plane`` it is evaluated on (default ``Plane()``: MNIST, random directions).
      output: the field read out of the logits (``FlaxModel``): ``"logit"`` or ``"margin"``.
      klass: the class whose logit is the field with ``output="logit"``.

    Example:
      >>> import redshift_jax as rj
      >>> model = rj.ViT(depth=2, d_model=16, heads=2, activation="tanh", plane=rj.Plane("digits"))
      >>> sweep = rj.Sweep(model=model, axes={"ln_gain": [1.0, 4.0], "seed": [0, 1]}, resolution=16,
      ...                  measures=("fourier", "lz"))
    """
    plane = Plane() if plane is None else Plane.coerce(plane, "ViT.plane")
    if patch is None:
        patch = 4 if min(plane.input_shape[:2]) >= 16 else 2
    module = ViTModule(depth=depth, d_model=d_model, heads=heads, activation=activation, patch=patch,
                       n_classes=n_classes, residual=residual, layernorm=layernorm)
    return FlaxModel(module, plane=plane, output=output, klass=klass)
