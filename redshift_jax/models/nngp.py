"""The infinite-width limit of the random MLP: a Gaussian process with the NNGP kernel (DESIGN.md section 16).

As the hidden width of ``rj.MLP`` grows, the function it computes becomes a Gaussian process whose covariance,
the NNGP kernel, follows from a layer-by-layer recursion. ``NNGP`` is that process as a sweep model: seed ``s``
is one GP sample on the sweep's grid, ``f = L z`` with ``L`` the Cholesky factor of the grid kernel (computed once
per structural variant and numeric point by ``NNGP.setup``, in float64) and ``z`` standard normal from the
seed's key. Scored with the same measures as finite networks, it gives every architecture an infinite-width
reference. ::

    spec = rj.NNGP(activation="tanh", depth=3)
    k = spec.kernel(x1, x2, weight_scale=2.0)               # (N1, N2) float64
    state = spec.setup(points, weight_scale=2.0)            # {"L": float32 (P, P)}
    f = spec.apply(spec.init(key), points, state=state)     # one GP sample on the points

**The recursion matches ``rj.MLP`` exactly as the code computes it** (``models/mlp.py``, ``models/priors.py``):
hidden layer ``l`` outputs ``phi(prefactor * pre)`` with ``pre = h W + b``; the readout is ``h W + b`` (no
activation, no prefactor); ``depth`` counts hidden layers. With ``a`` = weight_scale, ``b`` = bias_scale,
``p`` = prefactor, ``V_phi(q1, q2, c) = E[phi(u) phi(v)]`` for ``(u, v) ~ N(0, [[q1, c], [c, q2]])``:

- ``prior="normal"`` (``W ~ N(0, a^2 / fan_in)``, ``b ~ N(0, b^2)``), the exact limit:
  ``K_1 = b^2 + (a^2 / in_dim) x.x'``; then ``depth`` times (``depth - 1`` hidden layers and the readout)
  ``K_{l+1} = b^2 + a^2 V_phi(p^2 K_l(x, x), p^2 K_l(x', x'), p^2 K_l(x, x'))``. Independent of the width.
- ``prior="paper"`` (``W ~ U(-s, s)``, ``s = a sqrt(6 / (fan_in + fan_out))``, i.e. variance
  ``2 a^2 / (fan_in + fan_out)``; ``b ~ U(-b, b)``, variance ``b^2 / 3``). Its first-layer variance
  ``2 a^2 / (in_dim + n)`` vanishes as the width ``n`` grows, so the strict limit is a constant kernel. What is
  offered instead is the *width-matched* limit (``width=n`` is required): the recursion with the layer variances
  of the width-``n`` network, every pre-activation treated as Gaussian (its first two moments kept):
  ``K_1 = b^2 / 3 + 2 a^2 / (in_dim + n) x.x'``, hidden layers ``b^2 / 3 + a^2 V`` (fan-in = fan-out = n), readout
  ``b^2 / 3 + 2 a^2 n / (n + 1) V`` (fan-in n, fan-out 1). It is the mean kernel ``E[f(x) f(x')]`` of the width-n
  paper network up to the non-Gaussian shape of its (uniform-law) pre-activations; DESIGN.md section 16 puts
  the difference within 5%.

The dual activations ``V_phi`` (``dual``) are closed forms wherever one exists: relu (arc-cosine kernel,
Cho & Saul 2009), sin, gaussian ``exp(-x^2)``, gelu (the exact ``x Phi(x)``: derived here by Stein's lemma, the
form of Tsuchida et al. 2020), identity; tanh, sigmoid ``= 1/2 + tanh(x/2)/2`` and swish ``= x/2 + (x/2)
tanh(x/2)`` through a fitted expansion ``tanh(x) ~ sum_k A_k erf(B_k x)`` (``TANH_ERF_A``, ``TANH_ERF_B``,
sup error ``TANH_ERF_SUP_ERROR``), whose terms have Williams' (1997) erf kernel and its ``x erf(x)``
counterpart in closed form. Only selu has no closed form here: it is one Gauss-Legendre quadrature over ``u``
(split at the kink) of ``selu(u) E[selu(v) | u]``, the inner expectation in closed form (``SELU_QUADRATURE``).
Every form is written without overflow or cancellation at large variances and near-perfect correlation
(``det = q1 q2 - c^2`` is never formed from a difference of the big terms twice).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError
from ..validate import check_int
from .activations import ACTIVATIONS, SELU_ALPHA, SELU_LAMBDA
from .base import FIELD, NumericAxis

__all__ = ["NNGP", "NNGP_PRIORS", "dual", "TANH_ERF_A", "TANH_ERF_B", "TANH_ERF_SUP_ERROR", "SELU_QUADRATURE",
           "MAX_POINTS", "MIN_RELATIVE_VARIATION", "relative_variation"]

NNGP_PRIORS = ("normal", "paper")
# A grid kernel of P points is a (P, P) float64 matrix (and its factor): 16384 points (128 x 128) = 2 GiB.
MAX_POINTS = 16384
# Jitter added to the kernel's diagonal before the Cholesky factorization, relative to the mean diagonal:
# tried in this order; a kernel that is still not positive definite is factored by eigendecomposition instead.
JITTERS = (0.0, 1e-15, 1e-14, 1e-13, 1e-12)
# The smallest variation a GP sample may have around its own mean, as a fraction of its variance
# (trace(C K C) / trace(K), C the centering matrix), for it to be measured. Below it the field is a constant up
# to what sampling adds: the jitter (up to 1e-12 of the variance), float64 rounding of K (~1e-14) and, largest,
# float32 rounding of L z (a relative amplitude of ~4e-6 over 4,096 points, a variance of ~2e-11). At 1e-8 the
# field's own variation (amplitude 1e-4) is still 25x that noise; below, the measures would score the noise
# (weight scale 0 or 1e-3 with bias 1 scored like white noise, fourier 0.54). Such a sample is NaN instead
# (finite=False), with a warning: "too close to constant to measure in float32", not a number that looks real.
MIN_RELATIVE_VARIATION = 1e-8

# tanh(x) ~ sum_k A_k erf(B_k x), fitted for this project: A by least squares under sum A_k = 1 (so the error
# vanishes at infinity) with a small ridge on A (which keeps every A_k positive, sum |A_k| = 1: no cancelling
# terms), B_k by Levenberg-Marquardt on a dense grid of [0, 40], then a few rounds of Lawson's minimax
# reweighting. Measured on 4,000,001 points of [0, 40] (tanh is odd): sup |error| 1.75e-10, sup |x error| 1.8e-9
# (the bound that matters for swish); tests/test_nngp.py re-measures it.
TANH_ERF_A = (0.0002787724503031936, 0.007563385322074345, 0.049452036368862105,
              0.1441361257397412, 0.24532927324638854, 0.271621641942693,
              0.1918494606038007, 0.07615659657386072, 0.013078181708960917,
              0.0005345260433153864)
TANH_ERF_B = (0.3082605486911517, 0.38778390370721155, 0.4814200070881873,
              0.5961961954908436, 0.73802601023697, 0.9122524377507932,
              1.1247211108751392, 1.3839901318733276, 1.7055510808371535,
              2.128816113673008)
TANH_ERF_SUP_ERROR = 1.75e-10

# selu: Gauss-Legendre nodes per half-line and the half-line's extent in standard deviations.
SELU_QUADRATURE = {"nodes": 64, "extent": 9.0}

_TWO_PI = 2.0 * math.pi


# ---- dual activations: V_phi(q1, q2, c) = E[phi(u) phi(v)], (u, v) ~ N(0, [[q1, c], [c, q2]]) ------------------

def _det(q1, q2, c):
    """``q1 q2 - c^2``, clipped at 0 (rounding can make it slightly negative at perfect correlation)."""
    return np.maximum(q1 * q2 - c * c, 0.0)


def _identity_dual(q1, q2, c):
    return c * np.ones_like(q1 * q2)


def _relu_dual(q1, q2, c):
    # Arc-cosine kernel of degree 1: sqrt(q1 q2) / (2 pi) (sin t + (pi - t) cos t), cos t = c / sqrt(q1 q2),
    # written as (sqrt(det) + (pi - t) c) / (2 pi) with t = atan2(sqrt(det), c) (no arccos near +-1).
    root_det = np.sqrt(_det(q1, q2, c))
    t = np.arctan2(root_det, c)
    return (root_det + (math.pi - t) * c) / _TWO_PI


def _sin_dual(q1, q2, c):
    # exp(-(q1 + q2) / 2) sinh(c) = sign(c) exp(-(q1 + q2 - 2|c|) / 2) (1 - exp(-2|c|)) / 2: both exponents <= 0
    # (q1 + q2 >= 2 sqrt(q1 q2) >= 2|c|), and expm1 keeps small |c| accurate.
    a = np.abs(c)
    gap = np.maximum(q1 + q2 - 2.0 * a, 0.0)
    return np.sign(c) * np.exp(-0.5 * gap) * (-0.5 * np.expm1(-2.0 * a))


def _gaussian_dual(q1, q2, c):
    # ((1 + 2 q1)(1 + 2 q2) - 4 c^2)^(-1/2) with the product expanded: 1 + 2 q1 + 2 q2 + 4 det.
    return 1.0 / np.sqrt(1.0 + 2.0 * q1 + 2.0 * q2 + 4.0 * _det(q1, q2, c))


def _erf_dual(q1, q2, c, beta, gamma):
    """E[erf(beta u) erf(gamma v)] (Williams 1997): (2/pi) arcsin(2 beta gamma c / sqrt((1 + 2 beta^2 q1)
    (1 + 2 gamma^2 q2))), as an atan2 whose second argument is the expanded, cancellation-free
    sqrt((1 + 2 beta^2 q1)(1 + 2 gamma^2 q2) - 4 beta^2 gamma^2 c^2)."""
    bg = beta * gamma
    rest = 1.0 + 2.0 * beta * beta * q1 + 2.0 * gamma * gamma * q2 + 4.0 * bg * bg * _det(q1, q2, c)
    return (2.0 / math.pi) * np.arctan2(2.0 * bg * c, np.sqrt(rest))


def _x_phi_part(q1, q2, c):
    """``E[u Phi(u) v Phi(v)] - c / 4`` (Phi the standard normal cdf).

    Stein's lemma twice on ``E[u v 1{u > g1} 1{v > g2}]`` (g1, g2 independent standard normals) gives
    ``c P(s > 0, t > 0) + (q1 q2 + c^2 (1 - q1 q2) / ((1 + q1)(1 + q2))) / (2 pi sqrt((1 + q1)(1 + q2) - c^2))``
    for ``s = u - g1, t = v - g2``; ``P = 1/4 + arcsin(rho) / (2 pi)``, ``rho = c / sqrt((1 + q1)(1 + q2))``.
    """
    rest = 1.0 + q1 + q2 + _det(q1, q2, c)          # (1 + q1)(1 + q2) - c^2
    root = np.sqrt(rest)
    angle = np.arctan2(c, root)                      # arcsin(rho)
    numerator = q1 * q2 + c * c * (1.0 - q1 * q2) / ((1.0 + q1) * (1.0 + q2))
    return c * angle / _TWO_PI + numerator / (_TWO_PI * root)


def _gelu_dual(q1, q2, c):
    # gelu(x) = x Phi(x): the closed form of Tsuchida et al. (2020), derived in _x_phi_part.
    return 0.25 * c + _x_phi_part(q1, q2, c)


def _x_erf_dual(q1, q2, c, beta, gamma):
    """E[u erf(beta u) v erf(gamma v)] = (2 / (beta gamma)) * _x_phi_part(2 beta^2 q1, 2 gamma^2 q2, 2 beta gamma
    c), from erf(beta u) = 2 Phi(sqrt(2) beta u) - 1 (the c/4 and c terms cancel exactly, so they are left out)."""
    return (2.0 / (beta * gamma)) * _x_phi_part(2.0 * beta * beta * q1, 2.0 * gamma * gamma * q2,
                                                 2.0 * beta * gamma * c)


def _erf_sum_dual(q1, q2, c, scale):
    """E[T(u) T(v)] for T(x) = sum_k A_k erf(B_k scale x) ~ tanh(scale x)."""
    out = 0.0
    for a_j, b_j in zip(TANH_ERF_A, TANH_ERF_B):
        for a_k, b_k in zip(TANH_ERF_A, TANH_ERF_B):
            out = out + (a_j * a_k) * _erf_dual(q1, q2, c, b_j * scale, b_k * scale)
    return out


def _tanh_dual(q1, q2, c):
    return _erf_sum_dual(q1, q2, c, 1.0)


def _sigmoid_dual(q1, q2, c):
    # sigmoid(x) = 1/2 + tanh(x/2) / 2; the cross terms vanish (tanh is odd, u and v are centered).
    return 0.25 + 0.25 * _erf_sum_dual(q1, q2, c, 0.5)


def _swish_dual(q1, q2, c):
    # swish(x) = x sigmoid(x) = x/2 + (x/2) tanh(x/2); the cross terms E[u v tanh(v/2)] vanish (odd in (u, v)).
    out = 0.25 * c
    for a_j, b_j in zip(TANH_ERF_A, TANH_ERF_B):
        for a_k, b_k in zip(TANH_ERF_A, TANH_ERF_B):
            out = out + (0.25 * a_j * a_k) * _x_erf_dual(q1, q2, c, 0.5 * b_j, 0.5 * b_k)
    return out


def _selu_np(x):
    return SELU_LAMBDA * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0.0)))


def _selu_given(mean, sd):
    """E[selu(v)] for v ~ N(mean, sd^2), in closed form (the exponential part in log space: no overflow)."""
    from scipy import special  # selu's kernel only; scipy.special costs 0.1 s of import redshift_jax otherwise

    safe = np.where(sd > 0, sd, 1.0)
    z = mean / safe
    positive = mean * special.ndtr(z) + safe * np.exp(-0.5 * z * z) / math.sqrt(_TWO_PI)
    tilted = np.exp(mean + 0.5 * safe * safe + special.log_ndtr(-(mean + safe * safe) / safe))
    negative = SELU_ALPHA * (tilted - special.ndtr(-z))
    return np.where(sd > 0, SELU_LAMBDA * (positive + negative), _selu_np(mean))


_SELU_T, _SELU_W = np.polynomial.legendre.leggauss(SELU_QUADRATURE["nodes"])


def _selu_dual(q1, q2, c):
    # E[selu(u) g(u)], g(u) = E[selu(v) | u] in closed form (v | u ~ N(c u / q1, det / q1)): a smooth function of
    # u, so the only kink is selu's own at u = 0, where the integral is split; each half-line [0, extent sd] gets
    # Gauss-Legendre nodes. Accuracy against adaptive 2-D integration: tests/test_nngp.py.
    q1, q2, c = np.broadcast_arrays(*(np.asarray(v, np.float64) for v in (q1, q2, c)))
    shape = q1.shape
    q1, q2, c = (v.reshape(-1, 1) for v in (q1, q2, c))
    extent = SELU_QUADRATURE["extent"]
    t = 0.5 * extent * (_SELU_T + 1.0)               # nodes on [0, extent]
    w = 0.5 * extent * _SELU_W * np.exp(-0.5 * t * t) / math.sqrt(_TWO_PI)
    sd1 = np.sqrt(q1)
    safe_q1 = np.where(q1 > 0, q1, 1.0)
    slope = np.where(q1 > 0, c / safe_q1, 0.0)
    cond_sd = np.sqrt(np.where(q1 > 0, _det(q1, q2, c) / safe_q1, q2))
    total = np.zeros(len(q1))
    for start in range(0, len(q1), 8192):  # (rows x nodes) temporaries stay small
        rows = slice(start, start + 8192)
        for sign in (1.0, -1.0):
            u = sign * sd1[rows] * t
            total[rows] += (_selu_np(u) * _selu_given(slope[rows] * u, cond_sd[rows])) @ w
    return total.reshape(shape)


_DUALS = {
    "relu": _relu_dual, "gelu": _gelu_dual, "swish": _swish_dual, "selu": _selu_dual, "tanh": _tanh_dual,
    "sigmoid": _sigmoid_dual, "gaussian": _gaussian_dual, "sin": _sin_dual, "identity": _identity_dual,
}
assert set(_DUALS) == set(ACTIVATIONS), "every MLP activation needs its dual (models/activations.py)"


def dual(activation: str, q1, q2, c) -> np.ndarray:
    """The dual activation ``V_phi(q1, q2, c) = E[phi(u) phi(v)]``, ``(u, v) ~ N(0, [[q1, c], [c, q2]])``, float64.

    Args:
      activation: one of ``ACTIVATIONS``.
      q1, q2: variances (>= 0), broadcastable arrays.
      c: covariance, ``|c| <= sqrt(q1 q2)``.

    Example:
      >>> float(dual("relu", 1.0, 1.0, 1.0))   # E[relu(u)^2] = 1/2
      0.5
    """
    if activation not in _DUALS:
        raise ConfigError(f"activation={activation!r} is unknown; allowed: {', '.join(_DUALS)}")
    q1, q2, c = (np.asarray(v, np.float64) for v in (q1, q2, c))
    return _DUALS[activation](q1, q2, c)


# ---- the model ----------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class NNGP:
    """The NNGP limit of ``rj.MLP(activation, depth, in_dim=in_dim, prior=prior)``, as a sweep model.

    Attributes:
      activation: one of ``ACTIVATIONS``.
      depth: hidden layers of the MLP it is the limit of (>= 1).
      in_dim: input dimension.
      prior: ``"normal"`` (the exact limit) or ``"paper"`` (the width-matched limit, needs ``width``).
      width: ``None`` for the normal prior (its limit does not depend on the width); for the paper prior the
        first layer's width ``n`` (see the module docstring).

    Numeric axes (all passed to ``apply``, where they are already baked into ``state``): ``weight_scale`` a,
    ``bias_scale`` b, ``prefactor`` p, as in ``rj.MLP``.

    Example:
      >>> import jax, redshift_jax as rj
      >>> spec = rj.models.NNGP(activation="relu", depth=2)
      >>> x = rj.grid(8, 2).astype("float64")
      >>> state = spec.setup(x, weight_scale=2.0)
      >>> spec.apply(spec.init(jax.random.key(0)), x, state=state).shape
      (64,)
    """

    activation: str = "relu"
    depth: int = 1
    in_dim: int = 2
    prior: str = "normal"
    width: int | None = None

    structural_axes = ("activation", "depth", "prior", "width")
    numeric_axes = {"weight_scale": NumericAxis(1.0, minimum=0.0, stage="apply"),
                    "bias_scale": NumericAxis(1.0, minimum=0.0, stage="apply"),
                    "prefactor": NumericAxis(1.0, stage="apply")}
    inputs = "grid"
    output = FIELD

    def __post_init__(self):
        if not isinstance(self.activation, str) or self.activation not in ACTIVATIONS:
            raise ConfigError(
                f"NNGP.activation={self.activation!r} is unknown; allowed: {', '.join(ACTIVATIONS)}")
        check_int("NNGP.depth", self.depth, minimum=1)
        check_int("NNGP.in_dim", self.in_dim, minimum=1)
        if self.prior not in NNGP_PRIORS:
            raise ConfigError(f"NNGP.prior={self.prior!r} is not allowed; allowed: {', '.join(NNGP_PRIORS)} "
                              "(the other MLP priors have no infinite-width limit implemented here)")
        if self.prior == "paper":
            if self.width is None:
                raise ConfigError("NNGP.width=None is not allowed with prior='paper': its strict limit is a "
                                  "constant kernel; allowed: an int >= 1, the width n of the width-matched limit")
            check_int("NNGP.width", self.width, minimum=1)
            object.__setattr__(self, "width", int(self.width))
        elif self.width is not None:
            raise ConfigError(f"NNGP.width={self.width!r} is not allowed with prior='normal', whose limit does not "
                              "depend on the width; allowed: None")
        object.__setattr__(self, "depth", int(self.depth))
        object.__setattr__(self, "in_dim", int(self.in_dim))

    # ---- the kernel -----------------------------------------------------------------------------------

    def _gains(self, weight_scale, bias_scale):
        """(first-layer bias variance, first-layer weight variance x fan-in, per later layer (bias variance,
        gain)) of the recursion, as the MLP's prior samples them."""
        a2, b2 = float(weight_scale) ** 2, float(bias_scale) ** 2
        if self.prior == "normal":
            return b2, a2 / self.in_dim, [(b2, a2)] * self.depth
        n = self.width
        later = [(b2 / 3.0, a2)] * (self.depth - 1) + [(b2 / 3.0, 2.0 * a2 * n / (n + 1.0))]
        return b2 / 3.0, 2.0 * a2 / (self.in_dim + n), later

    def _diagonal(self, norms, weight_scale, bias_scale, prefactor):
        """``K_l(x, x)`` for every layer l = 1 .. depth + 1 from squared norms: a list of arrays."""
        b2_first, a2_first, later = self._gains(weight_scale, bias_scale)
        p2 = float(prefactor) ** 2
        phi = _DUALS[self.activation]
        ks = [b2_first + a2_first * norms]
        for b2, gain in later:
            q = p2 * ks[-1]
            ks.append(b2 + gain * phi(q, q, q))
        return ks

    def _cross(self, diag1, diag2, dot, weight_scale, bias_scale, prefactor):
        """The kernel from the two points' diagonals (``_diagonal``, broadcastable) and inner products ``dot``."""
        b2_first, a2_first, later = self._gains(weight_scale, bias_scale)
        p2 = float(prefactor) ** 2
        phi = _DUALS[self.activation]
        k12 = b2_first + a2_first * dot
        for (b2, gain), k1, k2 in zip(later, diag1, diag2):
            k12 = b2 + gain * phi(p2 * k1, p2 * k2, p2 * k12)
        return k12

    def kernel(self, x1, x2, weight_scale=1.0, bias_scale=1.0, prefactor=1.0) -> np.ndarray:
        """The NNGP kernel ``K(x1_i, x2_j)`` in float64: the covariance of the infinitely wide MLP's outputs.

        Args:
          x1: points, shape (N1, in_dim).
          x2: points, shape (N2, in_dim).
          weight_scale: as in ``rj.MLP`` (a Python float).
          bias_scale: as in ``rj.MLP`` (a Python float).
          prefactor: as in ``rj.MLP`` (a Python float).

        Returns:
          float64 array (N1, N2).

        Example:
          >>> import numpy as np, redshift_jax as rj
          >>> x = np.array([[1.0, 0.0], [0.0, 1.0]])
          >>> rj.models.NNGP("relu", depth=1).kernel(x, x, bias_scale=0.0).round(4).tolist()
          [[0.25, 0.0796], [0.0796, 0.25]]
        """
        x1, x2 = self._points(x1, "x1"), self._points(x2, "x2")
        numeric = (weight_scale, bias_scale, prefactor)
        diag1 = [k[:, None] for k in self._diagonal(_dots(x1, x1, diagonal=True), *numeric)]
        diag2 = [k[None, :] for k in self._diagonal(_dots(x2, x2, diagonal=True), *numeric)]
        return self._cross(diag1, diag2, _dots(x1, x2), *numeric)

    def gram(self, points, weight_scale=1.0, bias_scale=1.0, prefactor=1.0) -> np.ndarray:
        """``kernel(points, points)``, computed once per distinct ``(|x|^2, |x'|^2, x.x')`` (the kernel depends
        on nothing else): on a grid symmetric about 0 that is about 1/16 of the pairs."""
        points = self._points(points, "points")
        numeric = (weight_scale, bias_scale, prefactor)
        norm_values, norm_index = np.unique(_dots(points, points, diagonal=True), return_inverse=True)
        rows, cols = np.triu_indices(len(points))
        lo = np.minimum(norm_index[rows], norm_index[cols])
        hi = np.maximum(norm_index[rows], norm_index[cols])
        dot_values, dot_index = np.unique(_dots(points, points)[rows, cols], return_inverse=True)
        key = (lo.astype(np.int64) * len(norm_values) + hi) * len(dot_values) + dot_index
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        diag = self._diagonal(norm_values, *numeric)
        values = self._cross([k[lo[first]] for k in diag], [k[hi[first]] for k in diag],
                             dot_values[dot_index[first]], *numeric)[inverse]
        out = np.empty((len(points), len(points)))
        out[rows, cols] = values
        out[cols, rows] = values
        return out

    def _points(self, x, name):
        x = np.asarray(x, np.float64)
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise ConfigError(f"NNGP {name} has shape {x.shape}; expected (N, in_dim={self.in_dim})")
        return x

    # ---- the sweep protocol ---------------------------------------------------------------------------

    def setup(self, points, weight_scale=1.0, bias_scale=1.0, prefactor=1.0) -> dict:
        """The grid kernel's factor, once per structural variant and numeric point (host, float64).

        Returns:
          ``{"L": float32 (P, P)}`` with ``L L^T = K`` (the kernel plus at most 1e-12 of its mean diagonal):
          the Cholesky factor, or, for a kernel that is numerically singular even then (e.g. identity, whose
          kernel has rank in_dim + 1), ``U sqrt(max(lambda, 0))`` from its eigendecomposition. All NaN, with a
          warning, when the field is a constant up to rounding (``MIN_RELATIVE_VARIATION``: weight scale 0, or
          1e-3 with bias 1): its samples are then NaN and ``finite`` False, never noise scored as complexity.
        """
        if len(points) > MAX_POINTS:
            raise ConfigError(f"NNGP grid of {len(points)} points is not allowed; allowed: at most {MAX_POINTS} "
                              "(the grid kernel is a dense (P, P) float64 matrix)")
        k = self.gram(points, weight_scale, bias_scale, prefactor)
        variation = relative_variation(k)
        if not variation >= MIN_RELATIVE_VARIATION:
            import warnings

            warnings.warn(f"NNGP({self.activation!r}, depth={self.depth}) at weight_scale={weight_scale:g}, "
                          f"bias_scale={bias_scale:g}, prefactor={prefactor:g}: the GP sample is constant up to "
                          f"rounding (its variation around its mean is {variation:.2g} of its variance; measurable "
                          f"from {MIN_RELATIVE_VARIATION:g}), so its values and measures are NaN (finite=False)",
                          UserWarning, stacklevel=2)
            return {"L": np.full(k.shape, np.nan, np.float32)}
        return {"L": factor(k).astype(np.float32)}

    def setup_bytes(self, n_points: int) -> int:
        """Host memory ``setup`` needs for ``n_points`` grid points: 6 dense (P, P) float64 matrices (the kernel,
        the jittered copy, the factor, the pair tables of ``gram``; measured with tracemalloc: 5.7 of them)."""
        return 6 * 8 * int(n_points) ** 2

    def init(self, key) -> dict:
        """A GP sample's parameters: its key (``z`` is drawn in ``apply``, where the number of points is known)."""
        return {"key": key}

    def apply(self, params, x, state=None, precision="highest", weight_scale=1.0, bias_scale=1.0,
              prefactor=1.0) -> jax.Array:
        """The GP sample ``L z`` on ``x`` (the points ``state`` was set up on), ``z ~ N(0, I)`` from the key.

        Args:
          params: from ``init``.
          x: the points, (P, in_dim).
          state: from ``setup(x, ...)``; ``None`` computes it here (outside ``jit`` only).
          precision: matmul precision.
          weight_scale: used only when ``state`` is None (a sweep passes it too; it is already in ``state``).
          bias_scale: likewise.
          prefactor: likewise.
        """
        if state is None:
            try:
                points = np.asarray(x, np.float64)
            except jax.errors.TracerArrayConversionError:
                raise ConfigError("NNGP.apply under jit needs state=NNGP.setup(points, ...); allowed: a state "
                                  "from setup, or concrete points") from None
            state = self.setup(points, float(weight_scale), float(bias_scale), float(prefactor))
        factor_l = jnp.asarray(state["L"])
        if factor_l.shape[0] != x.shape[0]:
            raise ConfigError(f"NNGP state is for {factor_l.shape[0]} points, x has {x.shape[0]}; allowed: the "
                              "points the state was set up on")
        z = jax.random.normal(params["key"], (factor_l.shape[0],), factor_l.dtype)
        return jnp.dot(factor_l, z, precision=precision)

    def check_sweep(self, sweep) -> None:
        points = sweep.resolution ** self.in_dim
        if points > MAX_POINTS:
            raise ConfigError(f"Sweep.resolution={sweep.resolution} gives {points} grid points for NNGP; allowed: "
                              f"at most {MAX_POINTS} points")

    def replace(self, **changes) -> "NNGP":
        return dataclasses.replace(self, **changes)


def _dots(x1, x2, diagonal=False):
    """Inner products ``x1_i . x2_j`` (or, with ``diagonal``, ``x1_i . x2_i``) as a fixed sum over coordinates,
    not a BLAS matmul: symmetric pairs of points then get bitwise-equal values (``NNGP.gram`` finds the repeated
    ones), and a point's squared norm equals its inner product with itself."""
    a, b = (x1, x2) if diagonal else (x1[:, None, :], x2[None, :, :])
    out = a[..., 0] * b[..., 0]
    for d in range(1, x1.shape[1]):
        out = out + a[..., d] * b[..., d]
    return out


def relative_variation(k: np.ndarray) -> float:
    """The variance of a GP sample around its own mean over its total variance: trace(C K C) / trace(K), with C
    the centering matrix (0 for a constant kernel, whose samples are constant fields)."""
    total = float(np.trace(k))
    if not total > 0:
        return 0.0
    centered = np.trace(k) - k.sum() / len(k)  # trace(C K C) = trace(K) - 1^T K 1 / P
    return max(float(centered) / total, 0.0)


def factor(k: np.ndarray) -> np.ndarray:
    """A float64 ``L`` with ``L L^T = k + jitter I`` (Cholesky, the smallest jitter of ``JITTERS`` x the mean
    diagonal that works), or from the eigendecomposition when none does (then exactly ``k``'s PSD part)."""
    scale = float(np.mean(np.diag(k)))
    eye = np.eye(len(k))
    for jitter in JITTERS:
        try:
            return np.linalg.cholesky(k + (jitter * scale) * eye if jitter else k)
        except np.linalg.LinAlgError:
            continue
    values, vectors = np.linalg.eigh(k)
    return vectors * np.sqrt(np.maximum(values, 0.0))
