"""The paper's qualitative claims (DESIGN.md section 9) on small sweeps (32 x 32 grid, 6 seeds).

Complexity is the Fourier measure normalized so white noise scores 1 ("fourier_noise"); the margins below
are several times the seed-to-seed standard error observed at this size.
"""

from __future__ import annotations

import numpy as np
import pytest

import redshift_jax as rj

SCALES = [1.0, 3.0, 10.0, 30.0]
SEEDS = list(range(6))
COMMON = dict(resolution=32, measures=("fourier_noise", "lz"))


@pytest.fixture(scope="module")
def zoo():
    return rj.run_sweep(rj.Sweep(model=rj.MLP(width=32),
                                 axes={"activation": ["relu", "tanh", "sin"], "depth": [1, 2, 3, 4],
                                       "weight_scale": SCALES, "seed": SEEDS}, **COMMON), progress=False)


@pytest.fixture(scope="module")
def components():
    out = {}
    for name in ("gating", "residual", "layernorm"):
        out[name] = rj.run_sweep(rj.Sweep(model=rj.MLP(width=32, depth=3, **{name: True}),
                                          axes={"activation": ["relu", "tanh"], "weight_scale": SCALES,
                                                "seed": SEEDS}, **COMMON), progress=False)
    return out


def curve(ds, **sel):
    return ds.fourier_noise.sel(**sel).mean("seed").values


def spread(values):
    return float(np.max(values) - np.min(values))


def test_relu_is_flat_across_depth_and_scale_and_seeds(zoo):
    relu = zoo.fourier_noise.sel(activation="relu").mean("seed")
    assert spread(relu.values) < 0.08
    assert float(zoo.fourier_noise.sel(activation="relu").std("seed").max()) < 0.05


@pytest.mark.parametrize("activation,rise", [("tanh", 0.2), ("sin", 0.4)])
def test_tanh_and_sin_rise_with_scale_and_depth(zoo, activation, rise):
    deep = curve(zoo, activation=activation, depth=4)
    assert deep[-1] - deep[0] > rise
    at_scale = zoo.fourier_noise.sel(activation=activation, weight_scale=10.0).mean("seed").values  # over depth
    assert at_scale[-1] - at_scale[0] > 0.1


def test_sin_reaches_white_noise_at_large_scale(zoo):
    assert abs(float(curve(zoo, activation="sin", depth=4, weight_scale=30.0)) - 1.0) < 0.1


def test_residual_keeps_complexity_at_the_lowest_level(zoo, components):
    for activation in ("relu", "tanh"):
        residual = curve(components["residual"], activation=activation)
        assert spread(residual) < 0.05
        assert residual.max() <= curve(zoo, activation="relu", depth=1).max() + 0.03
    assert curve(zoo, activation="tanh", depth=3)[-1] - curve(components["residual"], activation="tanh")[-1] > 0.15


def test_layernorm_removes_the_dependence_on_scale(zoo, components):
    plain = curve(zoo, activation="tanh", depth=3)
    normed = curve(components["layernorm"], activation="tanh")
    assert spread(normed) < 0.5 * spread(plain)
    assert spread(normed) < 0.06


def test_gating_raises_complexity_with_scale_even_for_relu(zoo, components):
    plain = curve(zoo, activation="relu", depth=3)
    gated = curve(components["gating"], activation="relu")
    assert gated[-1] - plain[-1] > 0.08
    assert gated[-1] - gated[0] > 0.1


def test_width_has_little_effect(zoo):
    wide = rj.run_sweep(rj.Sweep(model=rj.MLP(width=128, depth=3),
                                 axes={"activation": ["relu", "tanh"], "weight_scale": SCALES[:3], "seed": SEEDS},
                                 **COMMON), progress=False)
    for activation in ("relu", "tanh"):
        narrow = curve(zoo, activation=activation, depth=3)[:3]
        assert np.max(np.abs(curve(wide, activation=activation) - narrow)) < 0.1


def test_unbiased_model_sits_at_white_noise_level():
    ds = rj.run_sweep(rj.Sweep(model=rj.Unbiased(resolution=32), axes={"weight_scale": [1.0, 10.0, 50.0],
                                                                        "seed": SEEDS}, **COMMON), progress=False)
    values = ds.fourier_noise.mean("seed").values
    assert np.all(np.abs(values - 1.0) < 0.1), values
