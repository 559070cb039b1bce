"""The random MLP of DESIGN.md section 4, a pure function of a PRNG key.

Models share one interface, in the style of neural-tangents' ``stax``::

    params = spec.init(key, weight_scale=1.0, bias_scale=1.0)
    y = spec.apply(params, x, prefactor=1.0)        # x: (N, in_dim) -> (N,)

Specs are frozen, hashable dataclasses: everything structural (activation, depth, width, flags, prior) is
static, everything numeric (scales, prefactor) is an argument that may be a traced array, so one jitted
function can be vmapped over seeds, scales and prefactors without recompiling.

Randomness: every parameter is drawn from a key derived with ``jax.random.fold_in`` from the network key and
the layer index (hidden layer ``l`` uses ``fold_in(key, l)``, the readout a fixed tag), never from splitting one
big key array. So hidden layer ``l`` and the readout of ``MLP(depth=3)`` are bit-for-bit those of
``MLP(depth=7)`` with the same key: a depth-``d`` network is the first ``d`` layers of a deeper trunk plus the
shared readout, which lets a sweep read every depth out of one pass (``MLP.apply_depths``).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError
from ..validate import check_int, check_scale
from .activations import ACTIVATIONS
from .base import FIELD, NumericAxis
from .priors import FAN_OUT_PRIORS, PRIORS, sample_bias, sample_weight

__all__ = ["MLP", "RESIDUAL_FORMS", "LAYERNORM_EPS"]

Array = jax.Array
LAYERNORM_EPS = 1e-5
RESIDUAL_FORMS = (False, True, "block")
# fold_in tags.  Hidden layer l uses fold_in(key, l); the readout uses a tag no layer index reaches.
_READOUT_TAG = 0x7FFFFFF0
_W_TAG, _B_TAG, _GATE_W_TAG, _GATE_B_TAG = 0, 1, 2, 3

@dataclasses.dataclass(frozen=True)
class MLP:
    """A random fully connected network, exactly as DESIGN.md section 4 defines it.

    Hidden layer ``l`` maps ``h -> phi(prefactor * pre)`` with ``pre = h @ W + b``; the first layer maps
    ``in_dim -> width``, the readout ``width -> 1`` with no activation. ``depth`` counts hidden layers.

    Attributes:
      activation: one of ``ACTIVATIONS``.
      depth: number of hidden layers (>= 1).
      width: hidden width (>= 1).
      in_dim: input dimension (>= 1).
      layernorm: normalize ``pre`` (and the gate's ``pre'``) across the width, no affine, before the
        prefactor and activation.
      residual: ``False``; ``True`` (the paper's ``x <- x + phi(x)``: every hidden layer outputs
        ``pre + phi(prefactor * pre)``, with ``pre`` after layer norm when that is on); or ``"block"``
        (ResNet form: hidden-to-hidden layers output ``h + phi(prefactor * pre)``, the first layer has no skip).
      gating: multiply by ``sigmoid(prefactor * pre')`` with ``pre' = h @ W' + b'`` sampled like ``W, b``.
      prior: weight prior, one of ``PRIORS`` (see docs/guide/networks.md).
      first_layer_width: ``None`` (default): the first layer is drawn for the model's ``width``. An integer
        ``w1``: the first layer's weights (and gate weights) are drawn with the scale the prior gives a layer of
        width ``w1`` (the layer still has ``width`` units). Priors whose scale depends on ``fan_out`` (``paper``,
        ``ball``, ``cauchy``: ``s = a sqrt(6 / (in_dim + width))``) are multiplied by
        ``sqrt((in_dim + width) / (in_dim + w1))``; the others do not depend on the width and are unchanged. This
        holds the first layer fixed while the width varies (DESIGN.md section 20): under ``paper`` the first
        layer's range shrinks 3.8x from width 16 to 256, which changes the function more than the width does.

    Example:
      >>> import jax, redshift_jax as rj
      >>> spec = rj.MLP(activation="tanh", depth=3)
      >>> params = spec.init(jax.random.key(0), weight_scale=2.0)
      >>> spec.apply(params, rj.grid(64, 2)).shape
      (4096,)
    """

    activation: str = "relu"
    depth: int = 1
    width: int = 64
    in_dim: int = 2
    layernorm: bool = False
    residual: bool | str = False
    gating: bool = False
    prior: str = "paper"
    first_layer_width: int | None = None

    # Which sweep axes this model understands; structural ones are dataclass fields.
    # What the sweep engine reads (redshift_jax/models/base.py).
    structural_axes = ("activation", "depth", "width", "prior", "layernorm", "residual", "gating")
    # Fields left out of a sweep's spec while at their default, so specs written before they existed keep their
    # resume fingerprints.
    spec_optional = ("first_layer_width",)
    numeric_axes = {"weight_scale": NumericAxis(1.0, minimum=0.0, stage="init"),
                    "bias_scale": NumericAxis(1.0, minimum=0.0, stage="init"),
                    "prefactor": NumericAxis(1.0, stage="apply")}
    inputs = "grid"
    output = FIELD
    shared_axis = "depth"
    switch_axis = "activation"

    def __post_init__(self):
        if not isinstance(self.activation, str) or self.activation not in ACTIVATIONS:
            raise ConfigError(
                f"MLP.activation={self.activation!r} is unknown; allowed: {', '.join(ACTIVATIONS)}"
            )
        check_int("MLP.depth", self.depth, minimum=1)
        check_int("MLP.width", self.width, minimum=1)
        check_int("MLP.in_dim", self.in_dim, minimum=1)
        for flag in ("layernorm", "gating"):
            if not isinstance(getattr(self, flag), (bool, np.bool_)):
                raise ConfigError(f"MLP.{flag}={getattr(self, flag)!r} is not allowed; {flag} must be True or False")
        residual = self.residual
        if isinstance(residual, np.bool_):
            residual = bool(residual)
        if not (isinstance(residual, bool) or residual == "block"):
            raise ConfigError(
                f"MLP.residual={self.residual!r} is not allowed; residual must be False, True or 'block'"
            )
        object.__setattr__(self, "residual", residual)
        for flag in ("layernorm", "gating"):
            object.__setattr__(self, flag, bool(getattr(self, flag)))
        if self.prior not in PRIORS:
            raise ConfigError(f"MLP.prior={self.prior!r} is unknown; allowed: {', '.join(PRIORS)}")
        if self.first_layer_width is not None:
            check_int("MLP.first_layer_width", self.first_layer_width, minimum=1)
            object.__setattr__(self, "first_layer_width", int(self.first_layer_width))

    def _first_layer_factor(self) -> float:
        """The factor that draws the first layer as for ``first_layer_width`` (1.0 when unset or width-free)."""
        if self.first_layer_width is None or self.prior not in FAN_OUT_PRIORS:
            return 1.0
        return math.sqrt((self.in_dim + self.width) / (self.in_dim + self.first_layer_width))

    # ---- parameters -------------------------------------------------------------------------------

    def _layer(self, key, fan_in, fan_out, weight_scale, bias_scale, dtype):
        layer = {
            "W": sample_weight(self.prior, jax.random.fold_in(key, _W_TAG), fan_in, fan_out, weight_scale, dtype),
            "b": sample_bias(self.prior, jax.random.fold_in(key, _B_TAG), fan_in, fan_out, bias_scale, dtype),
        }
        if self.gating:
            layer["W_gate"] = sample_weight(
                self.prior, jax.random.fold_in(key, _GATE_W_TAG), fan_in, fan_out, weight_scale, dtype)
            layer["b_gate"] = sample_bias(
                self.prior, jax.random.fold_in(key, _GATE_B_TAG), fan_in, fan_out, bias_scale, dtype)
        return layer

    def init(self, key, weight_scale=1.0, bias_scale=1.0, dtype=jnp.float32) -> dict:
        """Sample parameters. Pure in ``key``; scales may be traced arrays.

        Args:
          key: a JAX PRNG key (``jax.random.key`` or legacy ``PRNGKey``).
          weight_scale: the prior's weight scale (``a`` in DESIGN.md), >= 0.
          bias_scale: the prior's bias scale (``b``), >= 0.
          dtype: float dtype of the parameters.

        Returns:
          ``{"first": layer, "hidden": stacked layers (depth - 1 leading axis), "readout": layer}``, each
          layer a dict with ``W`` (fan_in, fan_out) and ``b`` (fan_out,) (plus ``W_gate``, ``b_gate``).
        """
        check_scale("weight_scale", weight_scale)
        check_scale("bias_scale", bias_scale)
        weight_scale = jnp.asarray(weight_scale, dtype)
        bias_scale = jnp.asarray(bias_scale, dtype)
        first = self._layer(jax.random.fold_in(key, 0), self.in_dim, self.width, weight_scale, bias_scale, dtype)
        factor = self._first_layer_factor()
        if factor != 1.0:
            first = {k: (v * jnp.asarray(factor, dtype) if k in ("W", "W_gate") else v) for k, v in first.items()}
        hidden_keys = jax.vmap(jax.random.fold_in, (None, 0))(key, jnp.arange(1, self.depth, dtype=jnp.uint32))
        hidden = jax.vmap(
            lambda k: self._layer(k, self.width, self.width, weight_scale, bias_scale, dtype)
        )(hidden_keys)
        readout_key = jax.random.fold_in(key, _READOUT_TAG)
        readout = {
            "W": sample_weight(self.prior, jax.random.fold_in(readout_key, _W_TAG), self.width, 1,
                                weight_scale, dtype),
            "b": sample_bias(self.prior, jax.random.fold_in(readout_key, _B_TAG), self.width, 1,
                              bias_scale, dtype),
        }
        return {"first": first, "hidden": hidden, "readout": readout}

    # ---- forward ------------------------------------------------------------------------------------

    def _hidden_layer(self, layer, h, prefactor, skip: bool, precision, phi):
        pre = _linear(h, layer["W"], layer["b"], precision)
        if self.layernorm:
            pre = _layernorm(pre)
        out = phi(prefactor * pre)
        if self.gating:
            gate_pre = _linear(h, layer["W_gate"], layer["b_gate"], precision)
            if self.layernorm:
                gate_pre = _layernorm(gate_pre)
            out = out * jax.nn.sigmoid(prefactor * gate_pre)
        if self.residual is True:
            out = pre + out
        elif self.residual == "block" and skip:
            out = h + out
        return out

    def _trunk(self, params, x, prefactor, precision, readout_every_layer: bool, activation_fn=None):
        phi = ACTIVATIONS[self.activation] if activation_fn is None else activation_fn
        x = jnp.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise ConfigError(f"x has shape {x.shape}; expected (N, in_dim={self.in_dim})")
        prefactor = jnp.asarray(prefactor, params["first"]["W"].dtype)
        readout = params["readout"]

        def read(h):
            return (jnp.dot(h, readout["W"], precision=precision) + readout["b"])[..., 0]

        h = self._hidden_layer(params["first"], x, prefactor, skip=False, precision=precision, phi=phi)

        def body(h, layer):
            h = self._hidden_layer(layer, h, prefactor, skip=True, precision=precision, phi=phi)
            return h, (read(h) if readout_every_layer else None)

        first_out = read(h) if readout_every_layer else None
        if self.depth == 1:
            # No hidden-to-hidden layers; a zero-length scan would fail under jax.disable_jit().
            return first_out[None] if readout_every_layer else read(h)
        h, per_layer = jax.lax.scan(body, h, params["hidden"])
        if readout_every_layer:
            return jnp.concatenate([first_out[None], per_layer], axis=0)
        return read(h)

    def apply(self, params, x, prefactor=1.0, precision="highest", activation_fn=None) -> Array:
        """Evaluate the network: ``x`` (N, in_dim) -> (N,).

        Args:
          params: from ``init``.
          x: inputs, shape (N, in_dim).
          prefactor: multiplies every pre-activation before the activation (may be traced).
          precision: matmul precision, "highest" by default so accelerators do not drop to bf16 passes.
          activation_fn: a callable used instead of ``self.activation`` (the sweep engine passes a
            ``lax.switch`` over several activations so one compiled function serves all of them).
        """
        return self._trunk(params, x, prefactor, precision, readout_every_layer=False, activation_fn=activation_fn)

    def apply_depths(self, params, x, prefactor=1.0, precision="highest", activation_fn=None) -> Array:
        """Outputs of every depth 1..depth from one pass of the trunk: shape (depth, N).

        Row ``d - 1`` is bit-for-bit ``MLP(depth=d, ...).apply`` with the same key: the depth-``d`` network
        is the first ``d`` hidden layers of this one plus the shared readout. Each depth is then distributed
        exactly like an independently drawn network, but networks of different depths with the same key share
        their lower layers (use independent keys per depth when that matters).
        """
        h = self._trunk(params, x, prefactor, precision, readout_every_layer=True, activation_fn=activation_fn)
        return h

    def flops(self, points: int) -> float:
        """Rough flops of the field at ``points`` grid points (the size guard's estimate): the layers' matmuls
        (gating doubles the hidden ones) and an allowance of about 3 flops per unit and layer for the
        activations."""
        gate = 2 if self.gating else 1
        width, depth = self.width, self.depth
        matmuls = 2.0 * points * (self.in_dim * width + (depth - 1) * width * width * gate + width)
        return matmuls + 200.0 * points * depth * width / 64

    def fan_shapes(self) -> list[tuple[int, int]]:
        """(fan_in, fan_out) of every layer, first to readout (gating doubles the hidden ones' cost)."""
        return [(self.in_dim, self.width)] + [(self.width, self.width)] * (self.depth - 1) + [(self.width, 1)]

    def apply_shared(self, params, x, prefactor=1.0, precision="highest", activation_fn=None) -> Array:
        """The protocol's name for ``apply_depths`` (the shared axis is depth)."""
        return self.apply_depths(params, x, prefactor, precision, activation_fn)

    def at_shared(self, params, depth: int):
        """The depth-``depth`` network read out of this trunk: ``(MLP(depth=depth, ...), its parameters)``."""
        sub = {"first": params["first"], "readout": params["readout"],
               "hidden": jax.tree.map(lambda a: a[:depth - 1], params["hidden"])}
        return self.replace(depth=int(depth)), sub

    def switched(self, activations):
        """One model for every activation in ``activations``, chosen by a traced index at apply time.

        Returns ``(model, branch)``: ``branch(index)`` gives ``{"activation_fn": f}``, ``f`` a ``lax.switch``
        over the activations. The index is one scalar per call, so XLA keeps a real conditional and runs only
        the chosen branch.
        """
        branches = [ACTIVATIONS[name] for name in activations]

        def branch(index):
            return {"activation_fn": lambda z: jax.lax.switch(index, branches, z)}

        return self.replace(activation=activations[0]), branch

    def replace(self, **changes) -> "MLP":
        return dataclasses.replace(self, **changes)


_SMALL_FAN_IN = 16


def _linear(h, weight, bias, precision):
    """``h @ weight + bias``.

    For a tiny fan-in (the first layer on 1-D/2-D inputs) the product is written as an explicit sum. Under
    vmap with an unbatched ``h``, XLA otherwise merges all networks' weights into one wide matmul whose
    kernel (and rounding) depends on how many networks share the call, and a network's function would then
    change in the last bits with the chunk size or device count.
    """
    fan_in = weight.shape[0]
    if fan_in <= _SMALL_FAN_IN:
        out = bias + h[:, 0:1] * weight[0]
        for k in range(1, fan_in):
            out = out + h[:, k:k + 1] * weight[k]
        return out
    return jnp.dot(h, weight, precision=precision) + bias


def _sum_last(v):
    """Sum over the last axis (keepdims) as a fixed pairwise tree of elementwise adds.

    XLA:CPU's reduce kernels choose their vectorization from the whole array's shape, so ``jnp.sum`` over a
    row can change in the last bit with the number of rows, i.e. with how many networks share a vmapped call
    (seen for widths < 32). Elementwise adds round the same way whatever the shape.
    """
    while v.shape[-1] > 1:
        half = v.shape[-1] // 2
        head = v[..., :half] + v[..., half:2 * half]
        v = jnp.concatenate([head, v[..., 2 * half:]], axis=-1) if v.shape[-1] % 2 else head
    return v


def _layernorm(pre):
    width = pre.shape[-1]
    mean = _sum_last(pre) / width
    var = _sum_last(jnp.square(pre - mean)) / width
    return (pre - mean) * jax.lax.rsqrt(var + LAYERNORM_EPS)
