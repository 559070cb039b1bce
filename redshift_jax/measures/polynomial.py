"""Polynomial-order complexity: Chebyshev and Legendre least-squares expansions (DESIGN.md section 5).

A 2-D image ``img`` (rows = 2nd input coordinate) of shape ``(n0, n1)`` is fitted by the tensor-product
expansion ``img ~ A0 c A1^T`` where ``A = V(linspace(-1, 1, n), D)`` is the basis Vandermonde matrix
(``numpy.polynomial.chebyshev.chebvander`` / ``legendre.legvander``) of degree ``D``. The least-squares
coefficients separate: ``c = pinv(A0) img pinv(A1)^T`` — two small matmuls per function with
pseudo-inverses precomputed in float64 numpy at trace time (cached per ``(kind, n, D)``) and cast to float32.

The value is the coefficient-weighted mean order, normalized to [0, 1]::

    value = sum_{(i,j) != (0,0)} |c_ij| (i + j)  /  (2 D * sum_{(i,j) != (0,0)} |c_ij|)

``weights="energy"`` (DESIGN.md section 20) puts ``c_ij^2`` in place of ``|c_ij|``: the mean order of the
function's energy, which is far less sensitive to an edge's orientation than the L1 form (see :func:`chebyshev`).

(``D0 + D1`` in place of ``2 D`` when the two axes have different default degrees, i.e. non-square images.)
1-D inputs: ``c = pinv(A) v`` and ``value = sum_{i>0} |c_i| i / (D sum_{i>0} |c_i|)``.

Numerics: the image is scaled by an exact power of two, its mean subtracted, then its row and column means
(functions of one coordinate, which the basis reproduces exactly: their coefficients are two 1-D transforms
added to column 0 and row 0), so the float32 round-off of the big matmuls scales with the non-separable
part of the function only. With the default degree ``min(32, n - 1)`` and ``n >= 64`` the fit is well
conditioned (condition number about 130 for Chebyshev and 190 for Legendre at 64 points) and the value
agrees with float64 numpy fits of the same float32 input to ~1e-5 absolute (typically ~1e-6). An exactly
linear function scores ``1 / (2D)`` to ~1e-4 relative; the ~1,000 vanishing coefficients each carry float32
round-off into ``sum |c|``, which bounds how exact a low-order function can score. When the degree
approaches ``n - 1`` (e.g. 32 points, degree 31) equispaced least squares is severely ill-conditioned
(condition ~1e7) and float32 coefficients carry large errors: use ``resolution >= 2 * degree``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from numpy.polynomial import chebyshev as _cheb
from numpy.polynomial import legendre as _leg

from ..errors import ConfigError
from .fourier import _as_image, _finish, _prepare

__all__ = ["chebyshev", "legendre", "validate_degree", "validate_weights", "default_degree", "MAX_DEFAULT_DEGREE",
           "POLYNOMIAL_WEIGHTS"]

MAX_DEFAULT_DEGREE = 32
_VANDER = {"chebyshev": _cheb.chebvander, "legendre": _leg.legvander}


def default_degree(n: int) -> int:
    """The default degree for ``n`` grid points per axis: ``min(32, n - 1)``."""
    return min(MAX_DEFAULT_DEGREE, int(n) - 1)


def validate_degree(degree, n: int) -> int:
    """Check a polynomial degree against the number of grid points ``n`` per axis and return it.

    Args:
      degree: ``None`` (the default ``min(32, n - 1)``) or an integer in ``1 .. n - 1``.
      n: grid points along the axis (the sweep resolution).

    Returns:
      The degree to use (an int; 0 only for ``degree=None`` with ``n == 1``).

    Raises:
      ConfigError: naming the degree, the resolution and the allowed range, when ``degree`` is not an
        integer in ``1 .. n - 1`` (a degree above ``n - 1`` has more coefficients than points).
    """
    if degree is None:
        return max(0, default_degree(n))
    if isinstance(degree, bool) or not isinstance(degree, (int, np.integer)) or not 1 <= degree <= n - 1:
        allowed = f"an integer 1 .. {n - 1}" if n >= 2 else "none (a single point has no polynomial order)"
        raise ConfigError(f"polynomial degree={degree!r} is not allowed for resolution {n}; allowed: {allowed}, "
                          f"or None for min({MAX_DEFAULT_DEGREE}, resolution - 1)")
    return int(degree)


@functools.lru_cache(maxsize=None)
def _pinv(kind: str, n: int, degree: int) -> np.ndarray:
    """pinv of the ``kind`` Vandermonde at ``linspace(-1, 1, n)`` up to ``degree``: (degree + 1, n) float32."""
    x = np.linspace(-1.0, 1.0, n)
    a = _VANDER[kind](x, degree)
    p = np.linalg.pinv(a).astype(np.float32)
    p.setflags(write=False)
    return p


POLYNOMIAL_WEIGHTS = ("l1", "energy")


def validate_weights(weights) -> str:
    """Check a polynomial measure's coefficient weighting: ``"l1"`` (|c|, the paper's) or ``"energy"`` (c^2)."""
    if weights not in POLYNOMIAL_WEIGHTS:
        raise ConfigError(f"polynomial weights={weights!r} is unknown; allowed: {', '.join(POLYNOMIAL_WEIGHTS)}")
    return weights


def _order(kind: str, img, degree, weights: str = "l1"):
    validate_weights(weights)
    img = _as_image(kind, img)
    if img.size == 0:
        return jnp.float32(0.0)
    shape = tuple(int(s) for s in img.shape)
    degrees = tuple(validate_degree(degree, n) for n in shape)
    x, finite, constant = _prepare(img)
    total = sum(degrees)
    if total == 0:  # single points: only the constant term exists
        return _finish(jnp.float32(0.0), finite, jnp.bool_(True))
    x = x - jnp.mean(x)  # first the offset (exactly representable: only c_00 changes), then rows / columns
    hi = jax.lax.Precision.HIGHEST
    mats = [jnp.asarray(_pinv(kind, n, d)) for n, d in zip(shape, degrees)]
    if img.ndim == 2:
        # Double centering: x = r + u_i + v_j with u, v the row and column means. The basis reproduces
        # functions of one coordinate exactly, so c = P0 r P1^T + (P0 u) e0^T + e0 (P1 v)^T. The float32
        # round-off of the big matmul then scales with the small non-separable part r instead of x: for an
        # additive function (e.g. linear) the result is ~50x closer to the float64 fit.
        u = jnp.mean(x, axis=1)
        x = x - u[:, None]
        v = jnp.mean(x, axis=0)
        x = x - v[None, :]
        c = jnp.matmul(jnp.matmul(mats[0], x, precision=hi), mats[1].T, precision=hi)
        e0 = [np.eye(d + 1, 1, dtype=np.float32)[:, 0] for d in degrees]
        c = (c + jnp.outer(jnp.matmul(mats[0], u, precision=hi), e0[1])
             + jnp.outer(e0[0], jnp.matmul(mats[1], v, precision=hi)))
        order = np.add.outer(np.arange(degrees[0] + 1), np.arange(degrees[1] + 1)).astype(np.float32)
    else:
        c = jnp.matmul(mats[0], x, precision=hi)
        order = np.arange(degrees[0] + 1, dtype=np.float32)
    mask = (order > 0).astype(np.float32)  # every (i, j) != (0, 0)
    a = jnp.abs(c) if weights == "l1" else jnp.square(c)
    num = jnp.sum(a * order)
    den = jnp.sum(a * mask)
    value = jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0) / total, 0.0)
    return _finish(value, finite, constant)


@functools.partial(jax.jit, static_argnames=("degree", "weights"))
def chebyshev(img, degree=None, weights="l1"):
    """Chebyshev polynomial-order complexity of one function's values on a regular grid on [-1, 1]^d.

    Args:
      img: a 2-D image ``(n0, n1)`` or a 1-D curve ``(n,)`` of the function's values on
        ``linspace(-1, 1, n)`` per axis.
      degree: the expansion degree ``D`` per axis, an integer in ``1 .. n - 1``; ``None`` (default) uses
        ``min(32, n - 1)`` (the paper's setting on its 64 x 64 grid: 32).
      weights: ``"l1"`` (default, the paper's): coefficients weighted by ``|c_ij|``. ``"energy"``: by
        ``c_ij^2`` (DESIGN.md section 20), ``value = sum c^2 (i + j) / (2 D sum c^2)``. The L1 weighting is not
        rotation invariant: the slowly decaying coefficient tail of one oblique edge carries most of ``sum |c|``,
        so one oblique kink scores 0.268 (0.100 along an axis) and one oblique jump about as high as white noise
        (0.41); weighting by energy lets the few large low-order coefficients dominate (kink 0.044 oblique, 0.035
        along an axis; white noise 0.337).

    Returns:
      A float32 scalar in [0, 1]: the ``|c|``-weighted mean total order ``(i + j)`` of the least-squares
      Chebyshev coefficients ``c = pinv(A0) img pinv(A1)^T`` (the constant term excluded), divided by its
      maximum ``2 D``. Low = the function is dominated by low-order terms (a linear function scores exactly
      ``1 / (2 D)``); high = by high-order terms. Constant input gives 0.0, non-finite input NaN. This is
      the paper's Chebyshev measure.
    """
    return _order("chebyshev", img, degree, weights)


@functools.partial(jax.jit, static_argnames=("degree", "weights"))
def legendre(img, degree=None, weights="l1"):
    """Legendre polynomial-order complexity of one function's values on a regular grid on [-1, 1]^d.

    Args:
      img: a 2-D image ``(n0, n1)`` or a 1-D curve ``(n,)`` of the function's values on
        ``linspace(-1, 1, n)`` per axis.
      degree: the expansion degree ``D`` per axis, an integer in ``1 .. n - 1``; ``None`` (default) uses
        ``min(32, n - 1)``.
      weights: ``"l1"`` (default, the paper's) or ``"energy"`` (``c^2`` weights), as in :func:`chebyshev`.

    Returns:
      A float32 scalar in [0, 1]: as :func:`chebyshev` with the Legendre basis (``legvander``). A linear
      function scores exactly ``1 / (2 D)``; constant input gives 0.0, non-finite input NaN. This is the
      paper's Legendre measure.
    """
    return _order("legendre", img, degree, weights)
