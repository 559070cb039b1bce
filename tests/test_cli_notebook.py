"""The command line (sweep, plot, list, --set, --resume) and the notebook, end to end at smoke size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import redshift_jax as rj
from redshift_jax import cli

ROOT = Path(__file__).resolve().parents[1]


def test_parse_values():
    assert cli.parse_values("1,2,3") == [1, 2, 3]
    assert cli.parse_values("1:4") == [1, 2, 3, 4]
    assert cli.parse_values("relu, tanh") == ["relu", "tanh"]
    assert cli.parse_values("true,false") == [True, False]
    assert cli.parse_values("0.5,2") == [0.5, 2]
    np.testing.assert_allclose(cli.parse_values("geom:1:100:3"), [1, 10, 100])


def test_sweep_with_set_then_plot(tmp_path):
    out = tmp_path / "fig4.zarr"
    code = cli.main(["sweep", str(ROOT / "sweeps/fig4_heatmaps.py"), "--quick", "--out", str(out),
                     "--set", "activation=relu,sin", "--set", "depth=1:2", "--set", "seed=0,1", "--no-progress",
                     "--figures", str(tmp_path / "figs")])
    assert code == 0
    ds = xr.open_zarr(out).load()
    assert list(ds.activation.values) == ["relu", "sin"] and list(ds.depth.values) == [1, 2]
    assert ds.attrs["figure"] == "heatmaps"
    pngs = sorted(p.name for p in (tmp_path / "figs").glob("*.png"))
    assert "examples.png" in pngs and "heatmap_fourier.png" in pngs
    # plot again from the stored result alone
    assert cli.main(["plot", str(out), "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "heatmap_lz.png").stat().st_size > 10_000


def test_suite_table1_through_the_cli(tmp_path):
    """Table 1's suite through the CLI with ``--set`` on every part and its table figure, on two of its nine
    components (each part compiles its own programs); the whole QUICK suite, both priors, runs in ``make
    test-record`` (tests/test_record_quick.py checks its table)."""
    small = tmp_path / "table1_small.py"
    small.write_text("import runpy\n"
                     f"_table1 = runpy.run_path({str(ROOT / 'sweeps/table1.py')!r})\n"
                     "FIGURE, CLAIMS = _table1.get('FIGURE', 'table1'), _table1.get('CLAIMS', {})\n"
                     "QUICK = {k: v for k, v in list(_table1['QUICK'].items())[:2]}\n")
    out = tmp_path / "table1"
    assert cli.main(["sweep", str(small), "--quick", "--out", str(out), "--no-progress",
                     "--set", "seed=0:1", "--set", "prior=paper", "--figures", str(tmp_path / "t1")]) == 0
    text = (tmp_path / "t1" / "table1.md").read_text()
    assert "| Component | Paper (Table 1) | Ours" in text
    result, figure, claims = cli.load_result(out)
    assert figure == "table1" and len(result) == 2
    for part in result.values():
        assert list(part.seed.values) == [0, 1] and list(part.prior.values) == ["paper"]


def test_bad_set_and_unknown_file(capsys):
    assert cli.main(["sweep", str(ROOT / "sweeps/fig4_heatmaps.py"), "--quick", "--set", "activation=relu,swoosh",
                     "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "swoosh" in err and "allowed" in err
    assert cli.main(["sweep", "sweeps/nope.py"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_list_shows_every_sweep_file(capsys):
    assert cli.main(["list", str(ROOT / "sweeps")]) == 0
    out = capsys.readouterr().out
    for name in ("fig4_heatmaps", "fig5_components", "table1", "fig6_correlations", "nrs_code_heatmaps", "priors"):
        assert name in out


@pytest.mark.parametrize("name", ["fig4_heatmaps", "fig5_components", "table1", "fig6_correlations",
                                  "nrs_code_heatmaps", "priors"])
def test_every_sweep_file_defines_valid_sizes(name):
    for size in ("full", "laptop", "quick"):
        target, figure, _ = cli.load_sweep_file(ROOT / "sweeps" / f"{name}.py", size)
        parts = target.values() if isinstance(target, dict) else [target]
        assert all(isinstance(p, rj.Sweep) for p in parts)
        assert figure in ("heatmaps", "curves", "correlations", "table1")
    quick = cli.load_sweep_file(ROOT / "sweeps" / f"{name}.py", "quick")[0]
    parts = quick.values() if isinstance(quick, dict) else [quick]
    assert sum(p.num_networks for p in parts) <= 3000  # QUICK stays smoke-sized


def test_notebook_runs_at_smoke_size(tmp_path, run_notebook):
    run_notebook("explore.py")
    assert (tmp_path / "functions.png").exists() and (tmp_path / "heatmap_fourier.png").exists()


# the cuts of the QUICK grids have the shapes and steps of tests/test_train.py's runs (fig8: its SMALL grid's ReLU
# networks, trained in segments of 40 steps; fig9: its Colored-MNIST smoke run), so this test compiles as users do
# and loads their programs from the run's compilation cache
_CUTS = {"fig8_modsum": "activations=('relu',), steps=40",
         "fig9_cmnist": "activations=('relu',), prefactors=(1.0, 4.0), init_seeds=(0, 1, 2), n_train=300, n_test=50, "
                        "batch_size=32, steps=3"}


@pytest.mark.product_compile
@pytest.mark.parametrize("name,kind,accuracy", [("fig8_modsum", "train_modsum", "test_accuracy"),
                                                ("fig9_cmnist", "train_cmnist", "digit_accuracy")])
def test_training_sweep_files_run_through_the_cli(tmp_path, capsys, name, kind, accuracy):
    """A training sweep file through ``redshift-jax sweep`` (train, store, figures, ``--resume``), on a cut of its
    QUICK grid (one activation, a few steps: ``_CUTS``); the QUICK grids themselves run in ``make test-record``
    (tests/test_record_quick.py checks their datasets)."""
    small = tmp_path / f"{name}_small.py"
    small.write_text("import runpy\n"
                     f"_file = runpy.run_path({str(ROOT / f'sweeps/{name}.py')!r})\n"
                     f"QUICK = _file['QUICK'].replace({_CUTS[name]})\n")
    out = tmp_path / f"{name}.zarr"
    code = cli.main(["sweep", str(small), "--quick", "--out", str(out), "--no-progress",
                     "--figures", str(tmp_path / "figs")])
    assert code == 0, capsys.readouterr().err
    ds = rj.store.load_dataset(out)
    assert ds.attrs["kind"] == kind and ds.diverged.dtype == bool and not bool(ds.diverged.any())
    assert np.all((ds[accuracy].values >= 0) & (ds[accuracy].values <= 1))
    assert sorted(p.suffix for p in (tmp_path / "figs").iterdir()) and all(
        p.stat().st_size > 0 for p in (tmp_path / "figs").glob("*.png"))
    # the same command with --resume loads the finished result instead of training again
    code = cli.main(["sweep", str(small), "--quick", "--out", str(out), "--no-progress", "--resume"])
    assert code == 0
