"""Training reliability (DESIGN.md section 12): a diverged network is marked, not reported as chance; the peak
fit fails with a named error on bad input and survives all-NaN accuracies.

CI-sized: 12-network grids, a few steps. A ReLU network with prefactor 1e30 overflows at init (its loss is
non-finite from the first step); ``learning_rate=1e30`` makes every ReLU network's parameters overflow within a
few adam steps.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from redshift_jax.errors import ConfigError
from redshift_jax.train import ColoredMNIST, ModularSum, modsum, plots, quadratic_peak, run, runner

HUGE = 1e30

# 12 networks (2 moduli x 3 prefactors x 2 seeds); the prefactor-1e30 networks diverge, the others do not. The
# shapes and steps are those of tests/test_train.py's SMALL grid trained in segments of 40 steps (and of
# test_reliability.py's training-resume experiment): the same compiled programs, which the run's compilation cache
# holds once for all of them (the traced prefactor values do not change the programs).
MIXED = ModularSum(activations=("relu",), moduli=(10, 4), prefactors=(0.25, 1.0, HUGE), seeds=(0, 1), steps=40)
CALM = (0.25, 1.0)  # MIXED's prefactors whose networks do not diverge


@pytest.fixture(scope="module")
def mixed_run():
    return run(MIXED, progress=False)


@pytest.mark.product_compile
def test_modsum_marks_diverged_networks_instead_of_chance(mixed_run):
    ds = mixed_run
    assert "diverged" in ds, "a diverged training must be marked in the Dataset"
    assert ds.diverged.dims == ds.test_accuracy.dims == ("activation", "modulus", "prefactor", "seed")
    assert ds.diverged.dtype == bool
    np.testing.assert_array_equal(ds.diverged.sel(prefactor=HUGE).values, True)
    np.testing.assert_array_equal(ds.diverged.sel(prefactor=list(CALM)).values, False)
    # diverged: no accuracy (NaN), not the chance level its broken function scores
    for k in ("train_accuracy", "test_accuracy", "fourier_final", "lz_final"):
        assert np.isnan(ds[k].sel(prefactor=HUGE).values).all(), k
        ok = ds[k].sel(prefactor=list(CALM)).values
        assert np.isfinite(ok).all() and ds[k].dtype == np.float32, k
    calm_acc = ds.test_accuracy.sel(prefactor=list(CALM))
    assert ((calm_acc >= 0) & (calm_acc <= 1)).all()
    assert np.isfinite(ds.fourier_init.sel(prefactor=list(CALM)).values).all()
    # nan-aware means leave the diverged networks out
    assert float(ds.test_accuracy.mean()) == pytest.approx(float(calm_acc.mean()))


@pytest.mark.product_compile
def test_diverged_neighbours_do_not_change_other_networks(mixed_run):
    """The prefactor-0.25 and 1.0 networks get bitwise the numbers they get in a grid where nothing diverges
    (same shapes and places in the grid: the same compiled programs)."""
    calm = run(MIXED.replace(prefactors=CALM + (4.0,)), progress=False)
    assert not calm.diverged.any()
    for k in ("train_accuracy", "test_accuracy", "fourier_init", "fourier_final", "lz_init", "lz_final"):
        np.testing.assert_array_equal(calm[k].sel(prefactor=list(CALM)).values,
                                      mixed_run[k].sel(prefactor=list(CALM)).values, err_msg=k)


# compiles as users do: only its training segment is its own; its setup and evaluation are mixed_run's programs,
# which the run's compilation cache then holds
@pytest.mark.product_compile
def test_huge_learning_rate_diverges_and_gets_its_own_program(mixed_run):
    """learning_rate is a compile-time constant of the optimizer: a new value must not reuse the cached
    program of another (same shapes), or the run would silently train with the old step size."""
    calm = MIXED.replace(prefactors=CALM + (4.0,))
    wild = calm.replace(learning_rate=HUGE)
    assert wild.program("relu").cache_key != calm.program("relu").cache_key
    ds = run(wild, progress=False)
    assert ds.diverged.all()
    assert np.isnan(ds.train_accuracy.values).all() and np.isnan(ds.test_accuracy.values).all()
    assert np.isfinite(ds.fourier_init.values).all()  # the untrained networks were fine


def test_finish_marks_a_loss_that_went_non_finite_during_training():
    """The scan carries whether every step's loss was finite: a transient non-finite loss marks the network
    even when the final parameters are finite."""
    prog = MIXED.program("relu")
    net = jax.tree.map(lambda a: a[2], prog.net_inputs(MIXED.flat_grid()))  # modulus 10, prefactor 1.0, seed 0
    flag = jax.eval_shape(prog.setup, net, prog.shared)[0][2]  # the state is (params, opt_state, finite)
    assert flag.shape == () and flag.dtype == jnp.bool_
    # setup's state without its (slow to compile) measures at init
    params = prog.model.init(jax.random.fold_in(net["key"], modsum.INIT_TAG))
    state, ctx = (params, prog.optimizer.init(params), jnp.array(True)), prog.data(net, prog.shared)
    step = jax.jit(prog.step)
    assert bool(step(state, net, ctx, prog.shared, 0)[2])
    bad_ctx = {**ctx, "y_train": ctx["y_train"].at[0].set(jnp.nan)}  # a non-finite loss for one step
    assert not bool(step(state, net, bad_ctx, prog.shared, 0)[2])
    finish = jax.jit(prog.finish)
    healthy = finish(state, net, ctx, prog.shared)
    assert not bool(healthy["diverged"]) and np.isfinite(float(healthy["test_accuracy"]))
    flagged = finish((state[0], state[1], jnp.array(False)), net, ctx, prog.shared)
    assert bool(flagged["diverged"])
    assert np.isnan(float(flagged["test_accuracy"])) and np.isnan(float(flagged["train_accuracy"]))
    # a non-finite optimizer state (an overflowed second moment freezes a parameter) also counts
    inf_opt = jax.tree.map(lambda a: jnp.full_like(a, jnp.inf) if a.dtype == jnp.float32 else a, state[1])
    assert bool(finish((state[0], inf_opt, state[2]), net, ctx, prog.shared)["diverged"])


@pytest.mark.product_compile
def test_cmnist_marks_diverged_networks():
    # the sizes of tests/test_train.py's Colored-MNIST smoke run (and of the CLI's cut of fig9_cmnist): the same
    # compiled programs, which the run's compilation cache holds once for all of them
    exp = ColoredMNIST(activations=("relu",), prefactors=(1.0, HUGE), seeds=(0,), init_seeds=(0, 1, 2),
                       n_train=300, n_test=50, batch_size=32, steps=3)
    ds = run(exp, progress=False)
    assert ds.diverged.dims == ds.digit_accuracy.dims == ("activation", "prefactor", "seed")
    assert ds.diverged.dtype == bool
    np.testing.assert_array_equal(ds.diverged.values.ravel(), [False, True])
    for k in ("train_accuracy", "digit_accuracy", "color_accuracy"):
        v = ds[k].values.ravel()
        assert 0 <= v[0] <= 1 and np.isnan(v[1]), k
    assert ds.lz_init.dims == ("activation", "prefactor", "init_seed")


@pytest.mark.product_compile
@pytest.mark.filterwarnings("ignore:The data type")  # zarr v3 on string coordinates
@pytest.mark.filterwarnings("ignore:Consolidated metadata")
def test_piece_keeps_diverged_boolean_through_zarr(tmp_path):
    """The runner's pieces and results are zarr stores: ``diverged`` stays boolean, the numbers float32."""
    outputs = {"train_accuracy": np.tile(np.array([0.5, np.nan, 1.0, 0.25], np.float64), 3),  # MIXED's 12 networks
               "test_accuracy": np.tile(np.array([0.5, np.nan, 1.0, 0.25], np.float32), 3),
               "diverged": np.tile(np.array([False, True, False, False]), 3)}
    piece = runner._piece(MIXED, "relu", outputs, {})
    assert piece.diverged.dtype == bool and piece.train_accuracy.dtype == np.float32
    piece.to_zarr(tmp_path / "p.zarr", consolidated=True)
    back = xr.open_zarr(tmp_path / "p.zarr", consolidated=True).load()
    assert back.diverged.dtype == bool
    xr.testing.assert_identical(back, piece)


# ------------------------------------------------------------------------------------------------------
# Plots: diverged networks left out of means, counted in titles
# ------------------------------------------------------------------------------------------------------


@pytest.fixture
def captured_figures(monkeypatch):
    figures = {}
    real_save = plots._save

    def save(fig, out_dir, stem):
        figures[stem] = fig
        return real_save(fig, out_dir, stem)

    monkeypatch.setattr(plots, "_save", save)
    return figures


def _texts(fig):
    return [fig._suptitle.get_text() if fig._suptitle else ""] + [ax.get_title() for ax in fig.axes]


def test_modsum_plots_count_diverged_networks(mixed_run, tmp_path, captured_figures):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # all-NaN slices: no numpy warnings
        paths = plots.plot(mixed_run, tmp_path)
    assert len(paths) == 3 and all(p.exists() and p.stat().st_size > 1000 for p in paths)
    assert "4 of 12 networks diverged" in " ".join(_texts(captured_figures["fig7_modsum"]))
    fig8 = " ".join(_texts(captured_figures["fig8_modsum"]))
    assert "relu (4 of 12 networks diverged)" in fig8 and "4 of 12 networks diverged" in fig8
    assert "4 diverged networks not shown" in " ".join(_texts(captured_figures["complexity_modsum"]))


def test_cmnist_plot_all_diverged_activation(tmp_path, captured_figures):
    rng = np.random.default_rng(0)
    acc = rng.uniform(0, 1, (2, 3, 2))
    acc[1] = np.nan  # every sine network diverged
    diverged = np.zeros((2, 3, 2), bool)
    diverged[1] = True
    ds = xr.Dataset(
        {k: (("activation", "prefactor", "seed"), acc) for k in ("train_accuracy", "digit_accuracy",
                                                                  "color_accuracy")}
        | {"diverged": (("activation", "prefactor", "seed"), diverged),
           "lz_init": (("activation", "prefactor", "init_seed"), rng.uniform(100, 200, (2, 3, 4)))},
        coords={"activation": ["relu", "sin"], "prefactor": [0.25, 1.0, 4.0], "seed": [0, 1],
                "init_seed": [0, 1, 2, 3]},
        attrs={"kind": "train_cmnist", "name": "synthetic"})
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        paths = plots.plot(ds, tmp_path)
    assert paths and all(p.exists() for p in paths)
    texts = _texts(captured_figures["fig9_synthetic"])
    assert "relu" in texts and "sin (6 of 6 networks diverged)" in texts
    assert "6 of 12 networks diverged" in texts[0]


# ------------------------------------------------------------------------------------------------------
# quadratic_peak: named errors; all-NaN input
# ------------------------------------------------------------------------------------------------------

PREF = 2.0 ** np.arange(-3, 6)


def _curve(n_seeds=4):
    t = np.log2(PREF)
    acc = 0.9 - 0.02 * (t - 1.5) ** 2 + np.random.default_rng(0).normal(0, 0.005, (n_seeds, len(t)))
    return xr.DataArray(acc, dims=("seed", "prefactor"), coords={"seed": range(n_seeds), "prefactor": PREF})


@pytest.mark.parametrize("bad, got", [
    (np.linspace(0.5, 0.9, 9), "ndarray of shape (9,)"),
    ([0.5, 0.7, 0.6], "list"),
    (xr.Dataset({"test_accuracy": ("prefactor", np.ones(3))}, coords={"prefactor": [1.0, 2.0, 4.0]}), "Dataset"),
])
def test_quadratic_peak_needs_a_dataarray(bad, got):
    with pytest.raises(ConfigError, match="xarray.DataArray with a 'prefactor' dimension") as err:
        quadratic_peak(bad)
    assert got in str(err.value)


def test_quadratic_peak_rejects_bad_coordinates_and_arguments():
    da = _curve()
    with pytest.raises(ConfigError, match="finite and > 0"):
        quadratic_peak(da.assign_coords(prefactor=np.r_[np.nan, PREF[1:]]))
    with pytest.raises(ConfigError, match="finite and > 0"):
        quadratic_peak(da.assign_coords(prefactor=np.r_[0.0, PREF[1:]]))
    with pytest.raises(ConfigError, match="values"):
        quadratic_peak(da.copy(data=np.full(da.shape, "x", object)))
    with pytest.raises(ConfigError, match="n_boot"):
        quadratic_peak(da, n_boot=2.5)
    with pytest.raises(ConfigError, match="dims"):
        quadratic_peak(xr.DataArray(np.ones(3), dims=("scale",)))


@pytest.mark.parametrize("dims", [("seed", "prefactor"), ("prefactor",)])
def test_quadratic_peak_all_nan_is_a_nan_result(dims):
    """Every network diverged: no fit, a NaN result, no exception or numpy warning."""
    shape = (5, len(PREF)) if dims[0] == "seed" else (len(PREF),)
    da = xr.DataArray(np.full(shape, np.nan), dims=dims, coords={"prefactor": PREF})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = quadratic_peak(da, n_boot=50)
    assert all(np.isnan(getattr(res, k)) for k in ("peak", "low", "high", "a", "b", "c"))
    assert res.in_range is False
    if dims[0] == "seed":
        assert res.concave_fraction == 0.0


def test_quadratic_peak_leaves_diverged_seeds_out():
    da = _curve(5)
    with_nan = da.copy()
    with_nan[2] = np.nan  # seed 2 diverged at every prefactor
    with_nan[4, :3] = np.nan  # seed 4 diverged at the smallest prefactors
    ref_values = np.r_[da.values[[0, 1, 3]].ravel(), da.values[4, 3:]]
    ref_t = np.r_[np.tile(np.log2(PREF), 3), np.log2(PREF)[3:]]
    a, b, c = np.polyfit(ref_t, ref_values, 2)
    res = quadratic_peak(with_nan, n_boot=100)
    assert (res.a, res.b, res.c) == pytest.approx((a, b, c), rel=1e-9)
    assert res.peak == pytest.approx(2 ** (-b / (2 * a)), rel=1e-9)
    assert np.isfinite(res.low) and np.isfinite(res.high) and res.in_range
