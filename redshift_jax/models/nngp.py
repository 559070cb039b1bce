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

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError
from ..validate import check_int
from .activations import ACTIVATIONS, get_activation
from .base import FIELD, NumericAxis
from .duals import SELU_QUADRATURE, TANH_ERF_A, TANH_ERF_B, TANH_ERF_SUP_ERROR

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
    phi = get_activation(activation).require("dual", "the NNGP kernel")
    q1, q2, c = (np.asarray(v, np.float64) for v in (q1, q2, c))
    return phi(q1, q2, c)


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
        get_activation(self.activation, "NNGP.activation").require("dual", "NNGP")
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
        phi = ACTIVATIONS[self.activation].require("dual", "NNGP")
        ks = [b2_first + a2_first * norms]
        for b2, gain in later:
            q = p2 * ks[-1]
            ks.append(b2 + gain * phi(q, q, q))
        return ks

    def _cross(self, diag1, diag2, dot, weight_scale, bias_scale, prefactor):
        """The kernel from the two points' diagonals (``_diagonal``, broadcastable) and inner products ``dot``."""
        b2_first, a2_first, later = self._gains(weight_scale, bias_scale)
        p2 = float(prefactor) ** 2
        phi = ACTIVATIONS[self.activation].require("dual", "NNGP")
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

    def setup_flops(self, n_points: int) -> float:
        """Rough flops of ``setup`` at ``n_points`` grid points: the Cholesky factor of the (P, P) kernel."""
        return n_points ** 3 / 3.0

    def flops(self, n_points: int) -> float:
        """Rough flops of one GP sample at ``n_points`` grid points: the factor times a normal vector."""
        return 2.0 * n_points ** 2

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
