"""Dual activations (the NNGP's closed forms, float64 numpy): ``V_phi(q1, q2, c) = E[phi(u) phi(v)]`` for
``(u, v) ~ N(0, [[q1, c], [c, q2]])``, one per activation of ``models/activations.py`` that has one (each
``Activation`` carries its ``dual``; ``models/nngp.py`` reads it)."""

from __future__ import annotations

import math

import numpy as np

from .elementwise import SELU_ALPHA, SELU_LAMBDA

__all__ = ["TANH_ERF_A", "TANH_ERF_B", "TANH_ERF_SUP_ERROR", "SELU_QUADRATURE", "relu_dual", "gelu_dual",
           "swish_dual", "selu_dual", "tanh_dual", "sigmoid_dual", "gaussian_dual", "sin_dual", "identity_dual"]

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


def identity_dual(q1, q2, c):
    return c * np.ones_like(q1 * q2)


def relu_dual(q1, q2, c):
    # Arc-cosine kernel of degree 1: sqrt(q1 q2) / (2 pi) (sin t + (pi - t) cos t), cos t = c / sqrt(q1 q2),
    # written as (sqrt(det) + (pi - t) c) / (2 pi) with t = atan2(sqrt(det), c) (no arccos near +-1).
    root_det = np.sqrt(_det(q1, q2, c))
    t = np.arctan2(root_det, c)
    return (root_det + (math.pi - t) * c) / _TWO_PI


def sin_dual(q1, q2, c):
    # exp(-(q1 + q2) / 2) sinh(c) = sign(c) exp(-(q1 + q2 - 2|c|) / 2) (1 - exp(-2|c|)) / 2: both exponents <= 0
    # (q1 + q2 >= 2 sqrt(q1 q2) >= 2|c|), and expm1 keeps small |c| accurate.
    a = np.abs(c)
    gap = np.maximum(q1 + q2 - 2.0 * a, 0.0)
    return np.sign(c) * np.exp(-0.5 * gap) * (-0.5 * np.expm1(-2.0 * a))


def gaussian_dual(q1, q2, c):
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


def gelu_dual(q1, q2, c):
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


def tanh_dual(q1, q2, c):
    return _erf_sum_dual(q1, q2, c, 1.0)


def sigmoid_dual(q1, q2, c):
    # sigmoid(x) = 1/2 + tanh(x/2) / 2; the cross terms vanish (tanh is odd, u and v are centered).
    return 0.25 + 0.25 * _erf_sum_dual(q1, q2, c, 0.5)


def swish_dual(q1, q2, c):
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


def selu_dual(q1, q2, c):
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
