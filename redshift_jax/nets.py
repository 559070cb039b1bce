"""Random-weight networks as pure functions of a PRNG key.

Two architecture specs share one interface, in the style of neural-tangents' ``stax``::

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
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from .errors import ConfigError

__all__ = [
    "ACTIVATIONS",
    "PRIORS",
    "ConfigError",
    "MLP",
    "Unbiased",
    "activation_fn",
    "sin",
]

Array = jax.Array
Params = Mapping[str, Any]

SELU_LAMBDA = 1.0507009873554805
SELU_ALPHA = 1.6732632423543772
LAYERNORM_EPS = 1e-5
# fold_in tags.  Hidden layer l uses fold_in(key, l); the readout uses a tag no layer index reaches.
_READOUT_TAG = 0x7FFFFFF0
_W_TAG, _B_TAG, _GATE_W_TAG, _GATE_B_TAG = 0, 1, 2, 3


def _split_bits(value: float, bits: int) -> float:
    """``value`` rounded to ``bits`` significant bits (so its product with a ``bits``-bit integer is exact)."""
    step = 2.0 ** (math.floor(math.log2(abs(value))) - bits + 1)
    return round(value / step) * step


# pi = _PI_A + _PI_B + _PI_C to ~1e-16; _PI_A and _PI_B have 12 significant bits (Cody-Waite splitting).
_PI_A = _split_bits(math.pi, 12)
_PI_B = _split_bits(math.pi - _PI_A, 12)
_PI_C = float(np.float32(math.pi - _PI_A - _PI_B))
_HALF_PI = float(np.float32(math.pi / 2))
# Taylor coefficients of sin r / r - 1 in r^2 up to r^12: truncation error below 7e-10 for |r| <= pi / 2.
_SIN_TAYLOR = tuple((-1) ** k / math.factorial(2 * k + 1) for k in range(1, 7))


def _reduce_pi(x, j):
    """``x - j * pi`` for integer-valued float32 ``j`` with |j| < 2**24, every product exact.

    ``j`` is split into a multiple of 4096 and a remainder, each with at most 12 significant bits, so their
    products with the 12-bit ``_PI_A`` and ``_PI_B`` are exact whether or not the backend fuses multiply-adds;
    only the tiny ``j * _PI_C`` term rounds.
    """
    j_hi = jnp.round(j * (1.0 / 4096)) * 4096.0
    j_lo = j - j_hi
    r = x - j_hi * _PI_A
    r = r - j_lo * _PI_A
    r = r - j_hi * _PI_B
    r = r - j_lo * _PI_B
    return r - j * _PI_C


def sin(x):
    """``sin(x)`` for float32 as cheap vectorized arithmetic (other dtypes: ``jnp.sin``).

    XLA:CPU lowers ``jnp.sin`` to a scalar libm call per element, which made the sine networks a third of a
    whole Figure 4 sweep; this version is about 5x cheaper per element on CPU. Method: ``j = round(x / pi)``,
    an exact Cody-Waite reduction ``r = x - j pi`` (one correction step keeps |r| <= pi/2), then
    ``(-1)^j`` times a degree-13 Taylor polynomial in ``r``.

    Accuracy against float64 ``sin`` of the same float32 input (tests/test_nets.py): absolute error below
    3e-7 for |x| < 5e7. Beyond that a float32's spacing exceeds pi, so its phase is not represented at all;
    there the result stays in [-1, 1] but is not sin(x). inf and nan give nan. Differentiable (the rounding
    steps have zero derivative, so the gradient is the polynomial's, within 1e-9 of cos x).
    """
    x = jnp.asarray(x)
    if x.dtype != jnp.float32:
        return jnp.sin(x)
    j = jnp.round(x * (1.0 / math.pi))
    r = _reduce_pi(x, j)
    # round(x / pi) can be off by one or two for large |x|; one more small (exact) step brings r into range.
    j2 = jnp.round(r * (1.0 / math.pi))
    r = ((r - j2 * _PI_A) - j2 * _PI_B) - j2 * _PI_C
    j = j + j2
    r = jnp.clip(r, -_HALF_PI, _HALF_PI)  # only ever active for |x| >= 5e7: keeps the result bounded
    r2 = r * r
    poly = _SIN_TAYLOR[-1]
    for c in _SIN_TAYLOR[-2::-1]:
        poly = poly * r2 + c
    s = r + r * (r2 * poly)
    half = j * 0.5
    return jnp.where(half != jnp.floor(half), -s, s)


def _selu(x):
    # exp(x) - 1 rather than expm1: XLA:CPU's expm1 costs 1.5x exp per element, and for x <= 0 the absolute
    # error of exp(x) - 1 is still below one float32 ulp of 1 (the relative error near 0 does not matter here:
    # the output is compared with the other branch's scale).
    return SELU_LAMBDA * jnp.where(x > 0, x, SELU_ALPHA * (jnp.exp(jnp.minimum(x, 0.0)) - 1.0))


_INV_SQRT2 = 1.0 / math.sqrt(2.0)


def _gelu(x):
    # The exact (erf) GELU, x * Phi(x). jax.nn.gelu(approximate=False) evaluates it through erfc, which costs
    # 1.5x erf per element on XLA:CPU; the erf form differs only by absolute float32 rounding (<= |x| * 6e-8)
    # in the far negative tail, where both are ~0.
    return 0.5 * x * (1.0 + jax.lax.erf(x * _INV_SQRT2))


ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "relu": jax.nn.relu,
    "gelu": _gelu,
    "swish": lambda x: x * jax.nn.sigmoid(x),
    "selu": _selu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "gaussian": lambda x: jnp.exp(-jnp.square(x)),
    "sin": sin,
    "identity": lambda x: x,
}

PRIORS = ("paper", "uniform", "normal", "ball", "cauchy", "torch")
RESIDUAL_FORMS = (False, True, "block")


def activation_fn(name: str) -> Callable[[Array], Array]:
    """The activation called ``name``; raises ConfigError naming the allowed ones."""
    if name not in ACTIVATIONS:
        raise ConfigError(f"activation={name!r} is unknown; allowed: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def _is_concrete(value) -> bool:
    return not isinstance(value, jax.core.Tracer)


FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_scale(name: str, value) -> None:
    """Reject negative, NaN or float32-overflowing scales when they are concrete (traced values cannot be inspected)."""
    if not _is_concrete(value):
        return
    arr = np.asarray(value, dtype=np.float64)
    bad_mask = np.isnan(arr) | (arr < 0) | ~(np.abs(arr) <= FLOAT32_MAX)
    if bad_mask.any():
        bad = float(arr[bad_mask].ravel()[0])  # plain repr, not np.float64(...)
        raise ConfigError(f"{name}={bad!r} is not allowed; {name} must be a finite number >= 0 and "
                          f"<= {FLOAT32_MAX:.7g} (networks run in float32; larger values overflow to inf)")


def _check_positive_int(owner: str, name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{owner}.{name}={value!r} is not allowed; {name} must be an integer >= 1")


# --------------------------------------------------------------------------------------------------------
# Weight priors.  Each returns (W, b) for a layer of shape (fan_in, fan_out) from two keys.
# --------------------------------------------------------------------------------------------------------


def _paper_half_width(weight_scale, fan_in: int, fan_out: int):
    return weight_scale * math.sqrt(6.0 / (fan_in + fan_out))


def _sample_weight(prior: str, key, fan_in: int, fan_out: int, weight_scale, dtype):
    shape = (fan_in, fan_out)
    if prior == "paper":
        s = _paper_half_width(weight_scale, fan_in, fan_out)
        return s * jax.random.uniform(key, shape, dtype, -1.0, 1.0)
    if prior == "uniform":
        return weight_scale * jax.random.uniform(key, shape, dtype, -1.0, 1.0)
    if prior == "normal":
        return (weight_scale / math.sqrt(fan_in)) * jax.random.normal(key, shape, dtype)
    if prior == "torch":
        return (weight_scale / math.sqrt(fan_in)) * jax.random.uniform(key, shape, dtype, -1.0, 1.0)
    if prior == "ball":
        # Uniform in the n-ball of radius R has per-entry variance R^2 / (n + 2); match paper's s^2 / 3.
        n = fan_in * fan_out
        s = _paper_half_width(weight_scale, fan_in, fan_out)
        radius = s * math.sqrt((n + 2) / 3.0)
        dir_key, r_key = jax.random.split(key)
        direction = jax.random.normal(dir_key, (n,), dtype)
        direction = direction / jnp.linalg.norm(direction)
        r = radius * jax.random.uniform(r_key, (), dtype) ** (1.0 / n)
        return (r * direction).reshape(shape)
    if prior == "cauchy":
        s = _paper_half_width(weight_scale, fan_in, fan_out)
        return (s / math.sqrt(3.0)) * jax.random.cauchy(key, shape, dtype)
    raise ConfigError(f"prior={prior!r} is unknown; allowed: {', '.join(PRIORS)}")


def _sample_bias(prior: str, key, fan_in: int, fan_out: int, bias_scale, dtype):
    shape = (fan_out,)
    if prior == "normal":
        return bias_scale * jax.random.normal(key, shape, dtype)
    if prior == "torch":
        return (bias_scale / math.sqrt(fan_in)) * jax.random.uniform(key, shape, dtype, -1.0, 1.0)
    # paper, uniform, ball, cauchy: U(-b, b)
    return bias_scale * jax.random.uniform(key, shape, dtype, -1.0, 1.0)


# --------------------------------------------------------------------------------------------------------
# MLP
# --------------------------------------------------------------------------------------------------------


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
      prior: weight prior, one of ``PRIORS`` (see README).

    Example:
      >>> spec = MLP(activation="tanh", depth=3)
      >>> params = spec.init(jax.random.key(0), weight_scale=2.0)
      >>> spec.apply(params, grid(64, 2)).shape
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

    # Which sweep axes this model understands; structural ones are dataclass fields.
    structural_axes = ("activation", "depth", "width", "prior", "layernorm", "residual", "gating")
    numeric_axes = ("weight_scale", "bias_scale", "prefactor", "seed")

    def __post_init__(self):
        if not isinstance(self.activation, str) or self.activation not in ACTIVATIONS:
            raise ConfigError(
                f"MLP.activation={self.activation!r} is unknown; allowed: {', '.join(ACTIVATIONS)}"
            )
        _check_positive_int("MLP", "depth", self.depth)
        _check_positive_int("MLP", "width", self.width)
        _check_positive_int("MLP", "in_dim", self.in_dim)
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

    # ---- parameters -------------------------------------------------------------------------------

    def _layer(self, key, fan_in, fan_out, weight_scale, bias_scale, dtype):
        layer = {
            "W": _sample_weight(self.prior, jax.random.fold_in(key, _W_TAG), fan_in, fan_out, weight_scale, dtype),
            "b": _sample_bias(self.prior, jax.random.fold_in(key, _B_TAG), fan_in, fan_out, bias_scale, dtype),
        }
        if self.gating:
            layer["W_gate"] = _sample_weight(
                self.prior, jax.random.fold_in(key, _GATE_W_TAG), fan_in, fan_out, weight_scale, dtype)
            layer["b_gate"] = _sample_bias(
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
        hidden_keys = jax.vmap(jax.random.fold_in, (None, 0))(key, jnp.arange(1, self.depth, dtype=jnp.uint32))
        hidden = jax.vmap(
            lambda k: self._layer(k, self.width, self.width, weight_scale, bias_scale, dtype)
        )(hidden_keys)
        readout_key = jax.random.fold_in(key, _READOUT_TAG)
        readout = {
            "W": _sample_weight(self.prior, jax.random.fold_in(readout_key, _W_TAG), self.width, 1,
                                weight_scale, dtype),
            "b": _sample_bias(self.prior, jax.random.fold_in(readout_key, _B_TAG), self.width, 1,
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

    def fan_shapes(self) -> list[tuple[int, int]]:
        """(fan_in, fan_out) of every layer, first to readout (gating doubles the hidden ones' cost)."""
        return [(self.in_dim, self.width)] + [(self.width, self.width)] * (self.depth - 1) + [(self.width, 1)]

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


# --------------------------------------------------------------------------------------------------------
# Unbiased reference model
# --------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Unbiased:
    """A random function with a flat spectrum: the reference with no simplicity bias.

    ``f(x) = sum_k a_k sin(pi k.x + p_k)`` over integer frequency vectors ``k in {0..K}^in_dim``, where
    ``K = (resolution - 1) // 2`` is the Nyquist limit of a ``resolution``-point grid on [-1, 1]
    (``sin(pi K x)`` sampled with step 2 / (resolution - 1) stays below half a cycle per sample).
    Amplitudes ``a_k ~ U(-weight_scale, weight_scale)``, phases ``p_k ~ U(-pi, pi)``. The input weights are
    fixed, so ``bias_scale`` and ``prefactor`` have no effect (a sweep rejects them as axes).
    """

    in_dim: int = 2
    resolution: int = 64

    structural_axes = ()
    numeric_axes = ("weight_scale", "seed")

    def __post_init__(self):
        _check_positive_int("Unbiased", "in_dim", self.in_dim)
        _check_positive_int("Unbiased", "resolution", self.resolution)
        if self.num_frequencies > 2 ** 22:
            raise ConfigError(
                f"Unbiased(in_dim={self.in_dim}, resolution={self.resolution}) has {self.num_frequencies} "
                "frequencies; allowed: at most 2**22 (lower in_dim or resolution)"
            )

    @property
    def max_frequency(self) -> int:
        return (self.resolution - 1) // 2

    @property
    def num_frequencies(self) -> int:
        return (self.max_frequency + 1) ** self.in_dim

    def frequencies(self) -> np.ndarray:
        """Integer frequency vectors, shape (num_frequencies, in_dim)."""
        axes = [np.arange(self.max_frequency + 1)] * self.in_dim
        return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, self.in_dim)

    def init(self, key, weight_scale=1.0, bias_scale=1.0, dtype=jnp.float32) -> dict:
        check_scale("weight_scale", weight_scale)
        check_scale("bias_scale", bias_scale)
        n = self.num_frequencies
        amplitude = jnp.asarray(weight_scale, dtype) * jax.random.uniform(
            jax.random.fold_in(key, _W_TAG), (n,), dtype, -1.0, 1.0)
        phase = jax.random.uniform(jax.random.fold_in(key, _B_TAG), (n,), dtype, -jnp.pi, jnp.pi)
        return {"amplitude": amplitude, "phase": phase}

    def apply(self, params, x, prefactor=1.0, precision="highest", activation_fn=None) -> Array:
        del prefactor, activation_fn  # fixed input weights, no activation: documented as having no effect
        x = jnp.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise ConfigError(f"x has shape {x.shape}; expected (N, in_dim={self.in_dim})")
        freqs = jnp.asarray(self.frequencies(), x.dtype) * jnp.pi
        return jnp.dot(sin(jnp.dot(x, freqs.T, precision=precision) + params["phase"]),
                       params["amplitude"], precision=precision)

    def apply_depths(self, params, x, prefactor=1.0, precision="highest", activation_fn=None) -> Array:
        return self.apply(params, x, prefactor, precision)[None]

    def replace(self, **changes) -> "Unbiased":
        return dataclasses.replace(self, **changes)
