"""``ds.rj``, the accessor of a result (issue 25 item 5, DESIGN.md section 18), and the statistics every study
shares (``redshift_jax.studies``)."""

import jax
import numpy as np
import pytest
import scipy.stats

import redshift_jax as rj
from redshift_jax.errors import ConfigError
from redshift_jax.studies import mean_se, spearman


@pytest.fixture(scope="module")
def result():
    sweep = rj.Sweep(model=rj.MLP(depth=1, width=4, activation="tanh"),
                     axes={"activation": ["relu", "tanh"], "depth": [1, 2], "weight_scale": [1.0, 4.0],
                           "seed": [0, 1, 2]}, resolution=8, measures=("lz", "fourier"), keep_values=True)
    return sweep, rj.run_sweep(sweep, progress=False, chunk_size=4)


def test_sweep_and_measures(result):
    sweep, ds = result
    assert ds.rj.sweep == sweep
    assert ds.rj.measures == ["lz", "fourier"]   # the sweep's order, not the store's alphabetical one


def test_mean_se_against_numpy(result):
    _, ds = result
    mean, se = ds.rj.mean_se("seed")
    assert set(mean.data_vars) == {"lz", "fourier"} and "seed" not in mean.dims
    x = ds["fourier"].transpose(..., "seed").values.astype(np.float64)
    np.testing.assert_allclose(mean["fourier"].transpose(*ds["fourier"].dims[:-1]).values, x.mean(-1), rtol=1e-12)
    np.testing.assert_allclose(se["fourier"].transpose(*ds["fourier"].dims[:-1]).values,
                               x.std(-1, ddof=1) / np.sqrt(3), rtol=1e-10)
    with pytest.raises(ConfigError, match="no dimension 'sed'"):
        ds.rj.mean_se("sed")


def test_mean_se_ignores_non_finite_values():
    m, s, n = mean_se(np.array([[1.0, 2.0, np.nan, 3.0], [np.inf, 5.0, np.nan, np.nan], [np.nan] * 4]))
    np.testing.assert_allclose(m[:2], [2.0, 5.0])
    np.testing.assert_allclose(s[0], 1.0 / np.sqrt(3))
    assert np.isnan(s[1]) and np.isnan(m[2]) and list(n) == [3, 1, 0]


def test_spearman_against_scipy():
    rng = np.random.default_rng(0)
    a = rng.normal(size=40)
    b = a + rng.normal(size=40)
    b[::7] = b[1]   # ties
    assert spearman(a, b) == pytest.approx(scipy.stats.spearmanr(a, b).statistic, abs=1e-12)
    a[3] = np.nan
    keep = np.isfinite(a) & (np.arange(40) % 2 == 0)
    assert spearman(a, b, mask=np.arange(40) % 2 == 0) == pytest.approx(
        scipy.stats.spearmanr(a[keep], b[keep]).statistic, abs=1e-12)
    assert np.isnan(spearman([1, 2], [3, 4])) and np.isnan(spearman([1, 1, 1], [1, 2, 3]))


@pytest.mark.product_compile
def test_network_is_the_stored_one(result):
    sweep, ds = result
    cell = dict(activation="tanh", depth=2, weight_scale=4.0, seed=2)
    net = ds.rj.network(**cell)
    assert np.array_equal(net.field, ds["values"].sel(**cell).values)   # bit for bit
    assert net.values["lz"] == ds["lz"].sel(**cell).values
    assert net.model.depth == 2 and net.model.activation == "tanh"
    key = jax.random.fold_in(jax.random.key(sweep.base_seed), 2)
    want = jax.jit(lambda k: net.model.init(k, weight_scale=4.0))(key)
    for got, ref in zip(jax.tree.leaves(net.params), jax.tree.leaves(want)):
        assert np.array_equal(np.asarray(got), np.asarray(ref))
    field = np.asarray(net.model.apply(net.params, rj.grid(8, 2))).reshape(8, 8)
    np.testing.assert_allclose(field, net.field, atol=1e-5)
    with pytest.raises(ConfigError, match="'width' is not an axis"):
        ds.rj.network(width=3)
    with pytest.raises(ConfigError, match="weight_scale=2.0 is not in the sweep"):
        ds.rj.network(weight_scale=2.0)
