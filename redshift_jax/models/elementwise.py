"""The activations' functions (DESIGN.md section 4): float32-exact, jit- and vmap-safe elementwise functions where
jax's own is slow or inexact on XLA:CPU. ``models/activations.py`` names them, with their other properties."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["SELU_ALPHA", "SELU_LAMBDA", "sin", "selu", "gelu"]

SELU_LAMBDA = 1.0507009873554805
SELU_ALPHA = 1.6732632423543772


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


def selu(x):
    # exp(x) - 1 rather than expm1: XLA:CPU's expm1 costs 1.5x exp per element, and for x <= 0 the absolute
    # error of exp(x) - 1 is still below one float32 ulp of 1 (the relative error near 0 does not matter here:
    # the output is compared with the other branch's scale).
    return SELU_LAMBDA * jnp.where(x > 0, x, SELU_ALPHA * (jnp.exp(jnp.minimum(x, 0.0)) - 1.0))


_INV_SQRT2 = 1.0 / math.sqrt(2.0)


def gelu(x):
    # The exact (erf) GELU, x * Phi(x). jax.nn.gelu(approximate=False) evaluates it through erfc, which costs
    # 1.5x erf per element on XLA:CPU; the erf form differs only by absolute float32 rounding (<= |x| * 6e-8)
    # in the far negative tail, where both are ~0.
    return 0.5 * x * (1.0 + jax.lax.erf(x * _INV_SQRT2))
