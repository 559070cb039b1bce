"""Chebyshev / Legendre polynomial-order measures against numpy.polynomial least-squares fits."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy.polynomial import chebyshev as npcheb
from numpy.polynomial import legendre as npleg

from redshift_jax.errors import ConfigError
from redshift_jax.measures import MEASURES, chebyshev, legendre, validate_degree

VANDER = {"chebyshev": npcheb.chebvander, "legendre": npleg.legvander}
FIT = {"chebyshev": npcheb.chebfit, "legendre": npleg.legfit}
FN = {"chebyshev": chebyshev, "legendre": legendre}


# ------------------------------------------------------------------------------------------------------
# numpy references: least squares by np.linalg.lstsq (2-D, separable) and chebfit / legfit (1-D).

def ref_coeffs_2d(kind, img, d0, d1):
    img = np.asarray(img, np.float64)
    a0 = VANDER[kind](np.linspace(-1, 1, img.shape[0]), d0)
    a1 = VANDER[kind](np.linspace(-1, 1, img.shape[1]), d1)
    left = np.linalg.lstsq(a0, img, rcond=None)[0]             # (d0 + 1, n1)
    return np.linalg.lstsq(a1, left.T, rcond=None)[0].T       # (d0 + 1, d1 + 1)


def ref_order(kind, img, degree=None):
    img = np.asarray(img, np.float64)
    if img.ndim == 1:
        d = degree if degree is not None else min(32, img.shape[0] - 1)
        c = np.abs(FIT[kind](np.linspace(-1, 1, img.shape[0]), img, d))
        w = np.arange(d + 1)
        return float(np.sum(c[1:] * w[1:]) / (d * np.sum(c[1:])))
    d0, d1 = [degree if degree is not None else min(32, n - 1) for n in img.shape]
    c = np.abs(ref_coeffs_2d(kind, img, d0, d1))
    w = np.add.outer(np.arange(d0 + 1), np.arange(d1 + 1))
    mask = w > 0
    return float(np.sum(c * w) / ((d0 + d1) * np.sum(c * mask)))


def _test_images(rng, shape):
    y, x = np.meshgrid(np.linspace(-1, 1, shape[0]), np.linspace(-1, 1, shape[1]), indexing="ij")
    return np.stack([rng.normal(size=shape), np.tanh(4 * x * y - x), np.sin(9 * x) * np.cos(5 * y) + 2,
                     x ** 3 - 2 * y ** 5 + 0.3 * x * y,
                     1e3 * (np.exp(-(x ** 2 + y ** 2) * 8) + 1e-3 * rng.normal(size=shape))
                     ]).astype(np.float32)


# ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["chebyshev", "legendre"])
@pytest.mark.parametrize("shape,degree", [((64, 64), None), ((64, 64), 10), ((100, 80), None), ((48, 64), 20)])
def test_matches_numpy_least_squares(kind, shape, degree):
    rng = np.random.default_rng(shape[0] + shape[1])
    imgs = _test_images(rng, shape)
    got = np.asarray(jax.jit(jax.vmap(lambda im: FN[kind](im, degree)))(imgs))
    want = [ref_order(kind, im, degree) for im in imgs]
    # float32 accumulation: ~1e-6 on generic images, up to ~2e-5 on an exact low-order polynomial (whose ~1000
    # vanishing coefficients all carry round-off into sum |c|).
    np.testing.assert_allclose(got, want, rtol=0, atol=5e-5)


@pytest.mark.parametrize("kind", ["chebyshev", "legendre"])
def test_one_dimensional_matches_fit(kind):
    rng = np.random.default_rng(1)
    t = np.linspace(-1, 1, 64)
    curves = np.stack([rng.normal(size=64), np.tanh(5 * t), t ** 4 - t, np.sin(20 * t)]).astype(np.float32)
    got = np.asarray(jax.vmap(FN[kind])(curves))
    np.testing.assert_allclose(got, [ref_order(kind, c) for c in curves], rtol=2e-5, atol=2e-6)
    got10 = np.asarray(jax.vmap(lambda c: FN[kind](c, 10))(curves))
    np.testing.assert_allclose(got10, [ref_order(kind, c, 10) for c in curves], rtol=2e-5, atol=2e-6)


@pytest.mark.product_compile
@pytest.mark.parametrize("kind", ["chebyshev", "legendre"])
@pytest.mark.parametrize("n,degree,rtol", [(65, None, 2e-4), (65, 7, 2e-6), (129, None, 2e-4)])
def test_linear_function_is_exactly_one_over_2d(kind, n, degree, rtol):
    """a x + b y + c has c_10 = b, c_01 = a and nothing else: value = (|a| + |b|) / (2 D (|a| + |b|)) = 1 / (2D).

    On n = 2^k + 1 points the grid is dyadic, so these images are exactly linear in float32 and the only
    error is float32 arithmetic (~1,000 vanishing coefficients each carry round-off into sum |c|): 1e-6
    relative at degree 7, 1e-4 at degree 32. (Degrees near n - 1 are ill-conditioned on equispaced points.)
    """
    y, x = np.meshgrid(np.linspace(-1, 1, n), np.linspace(-1, 1, n), indexing="ij")
    d = degree if degree is not None else min(32, n - 1)
    coefs = ((1.0, 0.0, 0.0), (0.25, -2.0, 5.0), (0.0, 0.5, 0.0), (-7.0, 7.0, 0.0), (3.0, 1.0, -100.0))
    imgs = np.stack([a * x + b * y + c for a, b, c in coefs])
    assert np.array_equal(imgs.astype(np.float32), imgs)  # exactly linear in float32
    got = np.asarray(jax.vmap(lambda im: FN[kind](im, degree))(imgs.astype(np.float32)))
    np.testing.assert_allclose(got, 1.0 / (2 * d), rtol=rtol)
    if n == 65:
        line = (np.linspace(-1, 1, n) * 3 - 1).astype(np.float32)
        np.testing.assert_allclose(float(FN[kind](line, degree)), 1.0 / d, rtol=rtol)


@pytest.mark.parametrize("kind", ["chebyshev", "legendre"])
def test_linear_function_on_the_64_grid(kind):
    """On the default 64 x 64 grid the float32 image of x + y is linear up to input rounding: 1/64 to 3e-3."""
    y, x = np.meshgrid(np.linspace(-1, 1, 64), np.linspace(-1, 1, 64), indexing="ij")
    for img in (x, y, x + y, 2 * x - y):
        img = img.astype(np.float32)
        np.testing.assert_allclose(float(FN[kind](img)), 1.0 / 64, rtol=3e-3)
        np.testing.assert_allclose(float(FN[kind](img)), ref_order(kind, img), rtol=3e-3)


@pytest.mark.parametrize("kind", ["chebyshev", "legendre"])
def test_single_basis_function(kind):
    """One tensor basis function T_i(y) T_j(x) (or P_i P_j) scores (i + j) / (2 D): to 5e-4 relative (the
    image is rounded to float32, and ~1,000 vanishing coefficients carry float32 round-off)."""
    n = 64
    t = np.linspace(-1, 1, n)
    v = VANDER[kind](t, 32)
    for i, j in ((0, 1), (3, 4), (32, 32), (0, 32), (5, 0)):
        img = np.outer(v[:, i], v[:, j]).astype(np.float32)
        np.testing.assert_allclose(float(FN[kind](img)), (i + j) / 64, rtol=5e-4)


@pytest.mark.product_compile
def test_constant_non_finite_and_range():
    rng = np.random.default_rng(2)
    imgs = np.concatenate([np.stack([np.full((16, 16), 2.5), np.zeros((16, 16)), np.full((16, 16), np.nan),
                                     np.where(np.eye(16) > 0, np.inf, 0.0)]),
                           rng.normal(size=(8, 16, 16))]).astype(np.float32)
    for kind in ("chebyshev", "legendre"):
        got = np.asarray(jax.vmap(FN[kind])(imgs))
        np.testing.assert_array_equal(got[:2], 0.0)
        assert np.isnan(got[2:4]).all()
        assert ((got[4:] > 0) & (got[4:] < 1)).all()
        assert float(FN[kind](np.ones((1, 1), np.float32))) == 0.0
        assert float(FN[kind](np.ones((1,), np.float32))) == 0.0


def test_scale_and_offset_invariance():
    rng = np.random.default_rng(3)
    img = rng.normal(size=(64, 64)).astype(np.float32)
    base = float(chebyshev(img))
    for scale in (1e-30, 1e-4, 3.0, 1e30):
        np.testing.assert_allclose(float(chebyshev(img * np.float32(scale))), base, rtol=1e-5)
    np.testing.assert_allclose(float(chebyshev(img + np.float32(100.0))), base, rtol=1e-4)


def test_validate_degree():
    assert validate_degree(None, 64) == 32
    assert validate_degree(None, 10) == 9
    assert validate_degree(5, 64) == 5
    assert validate_degree(63, 64) == 63
    for bad in (64, 0, -1, 2.5, True, "3"):
        with pytest.raises(ConfigError, match="degree"):
            validate_degree(bad, 64)
    with pytest.raises(ConfigError, match=r"degree=64 is not allowed for resolution 64; allowed: an integer 1 \.\. 63"):
        chebyshev(np.zeros((64, 64), np.float32), degree=64)
    with pytest.raises(ConfigError, match="degree"):
        legendre(np.zeros((64, 16), np.float32), degree=20)  # fine for 64 rows, too high for 16 columns


def test_vmap_equals_one_by_one_and_registry():
    rng = np.random.default_rng(4)
    imgs = _test_images(rng, (64, 64))
    for name in ("chebyshev", "legendre"):
        fn = MEASURES[name]
        batched = np.asarray(jax.jit(jax.vmap(fn))(imgs))
        one = jax.jit(fn)
        single = np.array([float(one(im)) for im in imgs])
        # Batched and single matmuls sum in different orders: equal to float32 round-off.
        np.testing.assert_allclose(batched, single, rtol=2e-5, atol=1e-7)
        np.testing.assert_allclose(batched, [ref_order(name, im) for im in imgs], rtol=0, atol=5e-5)
        assert jnp.asarray(fn(imgs[0])).dtype == jnp.float32


def test_jit_twice_does_not_recompile(compile_counter):
    rng = np.random.default_rng(5)

    def legendre_under_test(img):
        return legendre(img)

    f = jax.jit(jax.vmap(legendre_under_test))
    a = f(rng.normal(size=(3, 24, 24)).astype(np.float32))
    b = f(rng.normal(size=(3, 24, 24)).astype(np.float32))
    jax.block_until_ready((a, b))
    assert compile_counter.count("legendre_under_test") == 1
