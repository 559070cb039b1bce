"""Fourier measure against a numpy port of the NRS co-author's definition (DESIGN.md section 5)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from redshift_jax.errors import ConfigError
from redshift_jax.measures import MEASURES, fourier

# ------------------------------------------------------------------------------------------------------
# numpy port of the published definition (float64, np.bincount over np.round bins).

def ref_fourier_nrs(img) -> float:
    img = np.asarray(img, np.float64)
    if img.ndim == 1:
        c = np.abs(np.fft.rfft(img))
        c[0] = 0.0
        r = np.arange(c.shape[0])
        c1 = np.bincount(r, weights=c)
        c1[0] = 0.0
        c1 = c1 / c1.sum()
        return float(np.sum(np.arange(c1.shape[0]) * c1) / (c.shape[0] - 1))
    c = np.abs(np.fft.rfft2(img))
    c[0, 0] = 0.0
    c = c[: img.shape[0] // 2 + 1]
    rows, cols = c.shape
    i, j = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    bins = np.round(np.sqrt(i ** 2 + j ** 2)).astype(np.int64)
    c1 = np.bincount(bins.ravel(), weights=c.ravel())
    c1[0] = 0.0
    c1 = c1 / c1.sum()
    radius = np.round(np.sqrt((rows - 1) ** 2 + (cols - 1) ** 2))
    return float(np.sum(np.arange(c1.shape[0]) * c1) / radius)


def ref_flat(shape) -> float:
    """The nrs value of a flat amplitude spectrum (all ones, C[0, 0] = 0) on an image of this shape."""
    if len(shape) == 1:
        cols = shape[0] // 2 + 1
        return float(np.sum(np.arange(cols)) / ((cols - 1) * (cols - 1)))
    rows, cols = shape[0] // 2 + 1, shape[1] // 2 + 1
    i, j = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    bins = np.round(np.sqrt(i ** 2 + j ** 2))
    radius = np.round(np.sqrt((rows - 1) ** 2 + (cols - 1) ** 2))
    return float(bins.sum() / (rows * cols - 1) / radius)


def _images(rng, shape, count=4):
    n0 = shape[0]
    out = [rng.normal(size=shape), np.cumsum(np.cumsum(rng.normal(size=shape), 0), -1),
           1000.0 + 1e-3 * rng.normal(size=shape), rng.standard_cauchy(size=shape) * 1e30]
    t = np.linspace(-1, 1, n0)
    if len(shape) == 2:
        xx, yy = np.meshgrid(np.linspace(-1, 1, shape[1]), t)
        out.append(np.tanh(3 * xx - 2 * yy) + 0.01 * rng.normal(size=shape))
    else:
        out.append(np.tanh(3 * t) + 0.01 * rng.normal(size=shape))
    return np.stack(out[:max(count, 5)]).astype(np.float32)


# ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(64, 64), (63, 63), (64, 63), (31, 48), (17, 2), (2, 9), (300, 300)])
def test_matches_numpy_port(shape):
    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    imgs = _images(rng, shape)
    both = jax.jit(jax.vmap(lambda im: jnp.stack([fourier(im, "nrs"), fourier(im, "noise")])))
    got, noise = np.asarray(both(imgs)).T
    want = [ref_fourier_nrs(im) for im in imgs]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    np.testing.assert_allclose(noise, np.asarray(want) / ref_flat(shape), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("n", [64, 65, 7, 2])
def test_one_dimensional(n):
    rng = np.random.default_rng(n)
    curves = _images(rng, (n,))
    got = np.asarray(jax.vmap(lambda c: fourier(c))(curves))
    np.testing.assert_allclose(got, [ref_fourier_nrs(c) for c in curves], rtol=0, atol=1e-5)


def test_radius_of_64x64_is_45():
    # rows x cols of the kept spectrum is 33 x 33, so R = round(sqrt(32^2 + 32^2)) = round(45.25) = 45.
    img = np.zeros((64, 64), np.float32)
    img[0, 0] = 1.0  # a delta: flat spectrum
    assert ref_flat((64, 64)) * 45 == pytest.approx(np.sum(np.round(np.sqrt(np.add.outer(
        np.arange(33) ** 2, np.arange(33) ** 2)))) / (33 * 33 - 1))
    np.testing.assert_allclose(float(fourier(img)), ref_flat((64, 64)), rtol=1e-6)
    np.testing.assert_allclose(float(fourier(img, "noise")), 1.0, rtol=1e-6)


@pytest.mark.parametrize("shape,a,b", [((64, 64), 0, 5), ((64, 64), 3, 4), ((64, 64), 7, 0), ((48, 80), 5, 12),
                                       ((64, 64), 32, 32)])
def test_single_sinusoid_closed_form(shape, a, b):
    """cos(2 pi (a i / n0 + b j / n1)) puts all its amplitude in kept bin (a, b): value = round(|(a,b)|) / R."""
    n0, n1 = shape
    i, j = np.meshgrid(np.arange(n0), np.arange(n1), indexing="ij")
    img = np.cos(2 * np.pi * (a * i / n0 + b * j / n1) + 0.3).astype(np.float32)
    rows, cols = n0 // 2 + 1, n1 // 2 + 1
    radius = round(np.sqrt((rows - 1) ** 2 + (cols - 1) ** 2))
    want = np.round(np.sqrt(a ** 2 + b ** 2)) / radius  # (32, 32) on 64 x 64: the Nyquist corner, 45 / 45
    np.testing.assert_allclose(float(fourier(img)), want, rtol=1e-5)
    np.testing.assert_allclose(float(fourier(img)), ref_fourier_nrs(img), atol=1e-6)
    if (shape, a, b) == ((64, 64), 0, 5):
        assert want == pytest.approx(5 / 45)


def test_white_noise_scores_about_one():
    """Mean over 512 white-noise images of the "noise" method: 1 within 0.01 (observed ~0.9995)."""
    x = jax.random.normal(jax.random.key(0), (512, 64, 64))
    vals = np.asarray(jax.jit(jax.vmap(lambda im: fourier(im, "noise")))(x))
    assert abs(vals.mean() - 1.0) < 0.01
    assert vals.std() < 0.02
    vals_odd = np.asarray(jax.jit(jax.vmap(lambda im: fourier(im, "noise")))(x[:128, :63, :50]))
    assert abs(vals_odd.mean() - 1.0) < 0.01


@pytest.mark.product_compile
def test_constant_and_non_finite():
    imgs = np.stack([np.full((16, 16), 3.25), np.zeros((16, 16)), np.full((16, 16), -1e30),
                     np.full((16, 16), np.nan), np.where(np.eye(16) > 0, np.inf, 1.0),
                     np.where(np.eye(16) > 0, -np.inf, 1.0)]).astype(np.float32)
    for method in ("nrs", "noise"):
        got = np.asarray(jax.vmap(lambda im: fourier(im, method))(imgs))
        np.testing.assert_array_equal(got[:3], 0.0)
        assert np.isnan(got[3:]).all()
    assert float(fourier(np.ones((1, 1), np.float32))) == 0.0
    assert float(fourier(np.ones((1,), np.float32))) == 0.0
    assert float(fourier(np.zeros((0,), np.float32))) == 0.0


def test_scale_and_offset_invariance_and_range():
    rng = np.random.default_rng(3)
    img = rng.normal(size=(32, 32)).astype(np.float32)
    base = float(fourier(img))
    for scale in (1e-30, 1e-3, 7.0, 1e30):
        np.testing.assert_allclose(float(fourier(img * np.float32(scale))), base, rtol=1e-5)
    np.testing.assert_allclose(float(fourier(img + np.float32(1e4))), base, atol=1e-4)
    corner = np.cos(np.pi * np.add.outer(np.arange(32), np.arange(32))).astype(np.float32)
    assert float(fourier(corner)) == pytest.approx(1.0)  # all amplitude at the Nyquist corner


def test_vmap_equals_one_by_one_and_registry():
    rng = np.random.default_rng(4)
    imgs = _images(rng, (64, 64), 5)
    for name in ("fourier", "fourier_noise"):
        fn = MEASURES[name]
        batched = np.asarray(jax.jit(jax.vmap(fn))(imgs))
        one = jax.jit(fn)
        single = np.array([float(one(im)) for im in imgs])
        np.testing.assert_allclose(batched, single, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(float(MEASURES["fourier"](imgs[0])), ref_fourier_nrs(imgs[0]), atol=1e-5)
    assert jnp.asarray(MEASURES["fourier"](imgs[0])).dtype == jnp.float32


def test_jit_twice_does_not_recompile(compile_counter):
    rng = np.random.default_rng(5)

    def fourier_under_test(img):
        return fourier(img)

    f = jax.jit(jax.vmap(fourier_under_test))
    a = f(rng.normal(size=(3, 20, 20)).astype(np.float32))
    b = f(rng.normal(size=(3, 20, 20)).astype(np.float32))
    jax.block_until_ready((a, b))
    assert compile_counter.count("fourier_under_test") == 1


def test_bad_arguments():
    with pytest.raises(ConfigError, match="method='nope'"):
        fourier(np.zeros((4, 4)), "nope")
    with pytest.raises(ConfigError, match="ndim=3"):
        fourier(np.zeros((2, 4, 4)))


def test_registry_names_and_validation():
    """The sweep names map to one-image callables; bad names and resolutions fail with ConfigError."""
    from redshift_jax.measures import validate_measure_names

    assert set(MEASURES) == {"fourier", "fourier_noise", "fourier_dct", "fourier_mirror", "chebyshev", "legendre",
                             "chebyshev_energy", "legendre_energy", "lz", "lz76", "lzw"}
    assert validate_measure_names(("fourier", "lz"), 64) == ("fourier", "lz")
    assert validate_measure_names("chebyshev", 2) == ("chebyshev",)
    with pytest.raises(ConfigError, match=r"measure 'fourrier' is unknown; allowed: fourier, fourier_noise"):
        validate_measure_names(("fourrier",), 64)
    with pytest.raises(ConfigError, match="listed twice"):
        validate_measure_names(("lz", "lz"), 64)
    with pytest.raises(ConfigError, match="resolution=1"):
        validate_measure_names(("lz",), 1)
    assert issubclass(ConfigError, ValueError)
