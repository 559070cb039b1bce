"""The training claims' numbers: the targets' complexity, Spearman over architecture means with a bootstrap
interval over seeds, the best-accuracy table, the 3-D recipe and Figure 7."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from redshift_jax import measures
from redshift_jax.errors import ConfigError
from redshift_jax.train import ModularSum, analysis, modsum, run


def test_target_complexity_hand_checks():
    # 1-D lattice, M = 2: the target alternates 1, 0, 1, 0, ...; all its rfft energy (after removing the mean)
    # sits at the highest frequency k = n/2 = R, so the nrs Fourier measure is exactly 1.
    t = modsum.target_complexity(ModularSum(n=16, dim=1, moduli=(2, 16)), measures=("fourier", "lz"))
    assert t.dims == ("measure", "modulus")
    np.testing.assert_allclose(float(t.sel(measure="fourier", modulus=2)), 1.0, rtol=1e-5)
    # M = 16 on 0..15: 1 for x < 8, else 0: one step, far lower than the alternation
    assert float(t.sel(measure="fourier", modulus=16)) < 0.5
    # every value equals the registered measure applied to the label image by hand
    pts, _ = modsum.modsum_inputs(16, 2)
    t2 = modsum.target_complexity()
    assert list(t2.measure.values) == list(modsum.TARGET_MEASURES) and list(t2.modulus.values) == [10, 7, 4]
    for m in (10, 7, 4):
        img = np.array([1.0 if (a + b) % m < m / 2 else 0.0 for a, b in pts], np.float32).reshape(16, 16)
        for name in modsum.TARGET_MEASURES:
            np.testing.assert_allclose(float(t2.sel(measure=name, modulus=m)), float(measures.MEASURES[name](img)),
                                       rtol=1e-6, atol=1e-7)


def test_target_complexity_dim3_reads_the_slice_and_rejects_bad_names():
    # on the slice x2 = 0 the 3-D target is the 2-D target
    t3 = modsum.target_complexity(ModularSum(n=6, dim=3, moduli=(4, 5)), measures=("fourier_dct", "lz"))
    t2 = modsum.target_complexity(ModularSum(n=6, dim=2, moduli=(4, 5)), measures=("fourier_dct", "lz"))
    np.testing.assert_allclose(t3.values, t2.values, rtol=1e-6)
    with pytest.raises(ConfigError, match="fourier_fft.*allowed"):
        modsum.target_complexity(measures=("fourier_fft",))
    with pytest.raises(ConfigError, match="ModularSum"):
        modsum.target_complexity("modsum")


def _cells(x_means, y_means, n_seeds=3, noise=0.0, seed=0):
    """DataArrays (activation, prefactor, seed) whose seed means are the given cell values."""
    rng = np.random.default_rng(seed)
    x = np.asarray(x_means, float).reshape(2, -1)
    y = np.asarray(y_means, float).reshape(2, -1)
    eps = noise * rng.standard_normal((n_seeds,) + x.shape)
    eps -= eps.mean(0)  # seed means stay exactly the cell values
    coords = {"activation": ["relu", "sin"], "prefactor": np.arange(x.shape[1], dtype=float) + 1,
              "seed": np.arange(n_seeds)}
    dims = ("activation", "prefactor", "seed")
    return (xr.DataArray(np.moveaxis(x[None] + eps, 0, -1), dims=dims, coords=coords),
            xr.DataArray(np.moveaxis(y[None] + 0 * eps, 0, -1), dims=dims, coords=coords))


@pytest.mark.product_compile
def test_spearman_of_means_known_answers():
    # ranks 1 2 3 4 against 1 3 2 4: rho = 1 - 6 * 2 / (4 * 15) = 0.8; identical seeds: the interval is a point
    x, y = _cells([1, 2, 3, 4], [10, 30, 20, 40])
    r = analysis.spearman_of_means(x, y, n_boot=50)
    assert r.rho == pytest.approx(0.8) and r.low == pytest.approx(0.8) and r.high == pytest.approx(0.8)
    assert (r.n_cells, r.n_seeds) == (4, 3) and r.rho_networks == pytest.approx(0.8)
    # a reversed order: -1; dims in another order give the same answer
    x, y = _cells([1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1])
    assert analysis.spearman_of_means(x, y.transpose("seed", "prefactor", "activation"), n_boot=0).rho == -1.0
    # seed noise on x that does not change the ranks of the means: rho 1, interval reaches below 1 when
    # resampled means can swap, never above 1
    x, y = _cells([1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6], n_seeds=8, noise=2.0)
    r = analysis.spearman_of_means(x, y, n_boot=200)
    assert r.rho == pytest.approx(1.0) and r.low < 1.0 and r.high <= 1.0
    assert r.rho_networks < r.rho  # individual networks are noisier than their means


def test_spearman_of_means_errors():
    x, y = _cells([1, 2, 3, 4], [1, 2, 3, 4])
    with pytest.raises(ConfigError, match="seed"):
        analysis.spearman_of_means(x.mean("seed"), y)
    with pytest.raises(ConfigError, match="same dims"):
        analysis.spearman_of_means(x, y.isel(prefactor=[0]))
    with pytest.raises(ConfigError, match="n_boot"):
        analysis.spearman_of_means(x, y, n_boot=-1)
    with pytest.raises(ConfigError, match="DataArray"):
        analysis.spearman_of_means(np.zeros(3), y)


def _synthetic_modsum(acc_fn):
    """A small modular-sum-shaped Dataset: init complexity rises with the prefactor, final = init + noise."""
    rng = np.random.default_rng(1)
    acts, mods, prefs, seeds = ["relu", "sin"], [10, 4], [0.5, 1.0, 2.0, 4.0], list(range(5))
    shape = (2, 2, 4, 5)
    c_init = (np.array([0.1, 0.2])[:, None, None, None] * np.log2(np.array(prefs) * 4)[None, None, :, None]
              + np.zeros(shape) + 0.01 * rng.standard_normal(shape))
    dims = ("activation", "modulus", "prefactor", "seed")
    coords = {"activation": acts, "modulus": mods, "prefactor": prefs, "seed": seeds}
    c_final = c_init + 0.001 * rng.standard_normal(shape)
    ds = xr.Dataset({"fourier_init": (dims, c_init), "fourier_final": (dims, c_final),
                     "test_accuracy": (dims, acc_fn(c_init)), "diverged": (dims, np.zeros(shape, bool))},
                    coords=coords)
    ds.attrs.update(kind="train_modsum", name="synthetic", spec=ModularSum(moduli=(10, 4)).to_json())
    return ds


def test_init_final_and_target_match_correlation_on_synthetic_results():
    ds = _synthetic_modsum(lambda c: 1.0 - np.abs(c - 0.45))  # best where the init complexity is 0.45
    corr = analysis.init_final_correlation(ds, "fourier", n_boot=100)
    assert set(corr) == {10, 4, "pooled"} and corr[10].n_cells == 8 and corr["pooled"].n_cells == 16
    assert corr[10].rho > 0.95 and corr[10].low > 0.8
    targets = xr.DataArray([[0.45, 0.45]], dims=("measure", "modulus"),
                           coords={"measure": ["fourier"], "modulus": [10, 4]})
    match = analysis.target_match_correlation(ds, "fourier", targets, n_boot=100)
    assert match[4].rho > 0.95  # accuracy is a decreasing function of |c - 0.45|
    # a target far below every architecture: closeness = -c, accuracy peaks inside, so rho is not 1
    far = targets.copy(data=[[-5.0, -5.0]])
    assert analysis.target_match_correlation(ds, "fourier", far, n_boot=0)[4].rho < 0.9
    with pytest.raises(ConfigError, match="fourier_dct.*allowed: fourier"):
        analysis.init_final_correlation(ds, "fourier_dct")
    # targets from the Dataset's spec: the real modular-sum targets on the 16 x 16 lattice
    auto = analysis.target_match_correlation(ds, "fourier", n_boot=0)
    assert set(auto) == {10, 4} and np.isfinite(auto[10].rho)


def test_solved_table_picks_best_prefactor_with_se():
    ds = _synthetic_modsum(lambda c: np.zeros_like(c))
    acc = np.full(ds.test_accuracy.shape, 0.6)
    acc[0, 0, 2] = [0.9, 0.95, 1.0, 0.95, 0.9]  # relu, M = 10, prefactor 2
    acc[1, 1, :, 0] = np.nan  # a diverged seed is left out
    ds["test_accuracy"] = (ds.test_accuracy.dims, acc)
    rows = {(r["activation"], r["modulus"]): r for r in analysis.solved_table(ds, threshold=0.9)}
    r = rows[("relu", 10)]
    assert r["prefactor"] == 2.0 and r["mean"] == pytest.approx(0.94) and r["solved"]
    assert r["se"] == pytest.approx(np.std([0.9, 0.95, 1.0, 0.95, 0.9], ddof=1) / np.sqrt(5))
    assert not rows[("sin", 4)]["solved"] and rows[("sin", 4)]["n"] == 4
    with pytest.raises(ConfigError, match="threshold"):
        analysis.solved_table(ds, threshold=1.5)


def test_fig7_plot_on_synthetic_dataset(tmp_path):
    from redshift_jax.train import plots

    ds = _synthetic_modsum(lambda c: 1.0 - np.abs(c - 0.45))
    path = plots.plot_fig7(ds, tmp_path, "synthetic", n_boot=20)
    assert path.name == "fig7_synthetic.png" and path.stat().st_size > 1000
    assert plots.plot_fig7(ds.drop_vars(["fourier_init", "fourier_final"]), tmp_path, "none") is None


def test_dim3_recipe_trains_and_measures_the_slice():
    spec = ModularSum(activations=("relu",), moduli=(2,), prefactors=(1.0,), seeds=(0,), n=3, dim=3, steps=3,
                      width=8)
    assert (spec.n_points, spec.n_train) == (27, 19)
    ds = run(spec, out=None, progress=False)
    assert ds.test_accuracy.size == 1 and np.isfinite(ds.test_accuracy.values).all()
    for m in modsum.NETWORK_MEASURES:
        assert np.isfinite(ds[f"{m}_init"].values).all()


def test_report_tables_on_synthetic_results():
    ds = _synthetic_modsum(lambda c: 1.0 - np.abs(c - 0.45))
    text = analysis.report(ds, n_boot=20)
    corr = analysis.init_final_correlation(ds, "fourier", n_boot=20)
    assert f"| fourier | {corr[10].rho:+.2f} [" in text.split("C14")[1]
    assert "| relu |" in text and "| fourier_dct |" in text.split("C13")[0]  # the targets' table has every measure
    assert "Diverged networks: 0 of 80." in text
