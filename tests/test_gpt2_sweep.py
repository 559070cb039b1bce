"""GPT-2 sweeps through the engine (DESIGN.md sections 11 and 13): common random numbers, crn=False, bitwise
independence from batching, resume, the Figure 10 summary and claims, the sweep file and the notebook."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import redshift_jax as rj
from redshift_jax import cli
from redshift_jax.errors import ConfigError
from redshift_jax.measures import register_measure
from redshift_jax.measures.tokens import lz_per_token, lzw_size
from redshift_jax.store import RunStore
from redshift_jax.studies.gpt2 import FLOOR_ABBB, check_claims, summary
from redshift_jax.sweep.engine import sample_network
from redshift_jax.sweep.tokens import cell_tag

ROOT = Path(__file__).resolve().parents[1]
# a network measure with no model check of its own, to see the token sweep's refusal
register_measure("n_blocks", "network", lambda model, params, inputs, numeric: np.float32(model.depth))
TINY = rj.GPT2(depth=3, d_model=32, n_heads=2, vocab=300, n_positions=32)
AXES = {"activation": ["gelu", "sin", "relu"], "ln_gain": [0.3, 3.0, 30.0], "depth": [1, 3], "seed": [0, 1, 2]}


def tiny_sweep(**changes):
    base = dict(model=TINY, axes=AXES, measures=["lz_per_token", "lzw_size"], n_new=16, keep_values=True)
    base.update(changes)
    return rj.Sweep(**base)


@pytest.fixture(scope="module")
def crn_result():
    return rj.run_sweep(tiny_sweep(), progress=False, num_devices=2)


CELLS = [dict(activation=a, ln_gain=g, depth=d, seed=s)
         for a, g, d, s in [("gelu", 0.3, 1, 0), ("sin", 30.0, 3, 2), ("relu", 3.0, 3, 1)]]


@pytest.mark.product_compile
def test_each_cell_is_the_model_decoded_alone(crn_result):
    ds = crn_result
    assert dict(ds.sizes) == {"activation": 3, "ln_gain": 3, "depth": 2, "seed": 3, "position": 17}
    assert ds["values"].dtype == np.int32 and bool(ds["finite"].all())
    for cell in CELLS:
        tokens, extra = sample_network(tiny_sweep(), cell)
        got = ds["values"].sel(**cell).values
        assert np.array_equal(got, tokens), cell
        assert ds["lz_per_token"].sel(**cell).item() == pytest.approx(float(lz_per_token(tokens)))
        assert ds["lzw_size"].sel(**cell).item() == float(lzw_size(tokens))
    # common random numbers: a seed's prompt is the first token of every one of its cells
    first = ds["values"].isel(position=0)
    assert bool((first == first.isel(activation=0, ln_gain=0, depth=0)).all())
    assert len(np.unique(first.isel(activation=0, ln_gain=0, depth=0).values)) == 3
    # the cells are not all one sequence
    assert len({tuple(v) for v in ds["values"].sel(seed=0).values.reshape(-1, 17).tolist()}) >= 6


@pytest.mark.product_compile
def test_tokens_do_not_depend_on_chunking_devices_or_other_cells(crn_result):
    # one device, one seed per call, other activations and gains around the shared cells, axes reordered
    axes = {"seed": [2, 0], "depth": [3, 1], "ln_gain": [30.0, 0.3, 1.0], "activation": ["sin", "gelu"]}
    other = tiny_sweep(axes=axes, chunk_size=1)
    ds = rj.run_sweep(other, progress=False, num_devices=1)
    shared = [cell for cell in CELLS
              if cell["activation"] in ("sin", "gelu") and cell["ln_gain"] in (30.0, 0.3) and cell["seed"] in (0, 2)]
    assert len(shared) == 2  # the cells both sweeps hold: the comparison below is never empty
    for cell in shared:
        assert np.array_equal(ds["values"].sel(**cell).values, crn_result["values"].sel(**cell).values), cell


@pytest.mark.product_compile
def test_crn_false_draws_fresh_weights_per_cell():
    sweep = tiny_sweep(crn=False, axes={"activation": ["gelu", "sin"], "ln_gain": [0.3, 30.0], "depth": [1, 3],
                                        "seed": [0, 1]})
    ds = rj.run_sweep(sweep, progress=False, num_devices=2)
    for cell in [dict(activation="gelu", ln_gain=0.3, depth=1, seed=0), dict(activation="sin", ln_gain=30.0,
                                                                            depth=3, seed=1)]:
        tokens, _ = sample_network(sweep, cell)
        assert np.array_equal(ds["values"].sel(**cell).values, tokens), cell
    # fresh prompts: the first tokens of one seed's cells are not all equal
    assert len(np.unique(ds["values"].isel(position=0).sel(seed=0).values)) > 2
    # a cell's tag is its coordinates, whatever else the sweep holds (numbers as floats)
    assert cell_tag({"activation": "sin", "ln_gain": 3, "depth": 1}) == cell_tag(
        {"depth": 1.0, "ln_gain": 3.0, "activation": "sin", "seed": 9})
    assert cell_tag({"activation": "sin", "ln_gain": 3.0}) != cell_tag({"activation": "gelu", "ln_gain": 3.0})


@pytest.mark.product_compile
def test_interrupted_sweep_resumes_to_the_same_result(tmp_path, monkeypatch, crn_result):
    out = tmp_path / "gpt2.zarr"
    sweep = tiny_sweep(chunk_size=2)
    real, count = RunStore.write_region, {"n": 0}

    def write(self, *args, **kwargs):
        if count["n"] >= 1:
            raise KeyboardInterrupt
        count["n"] += 1
        return real(self, *args, **kwargs)

    monkeypatch.setattr(RunStore, "write_region", write)
    with pytest.raises(KeyboardInterrupt):
        rj.run_sweep(sweep, out=out, progress=False, num_devices=2)
    monkeypatch.undo()
    assert not out.exists()
    ds = rj.run_sweep(sweep, out=out, resume=True, progress=False, num_devices=2)
    for name in ("values", "lz_per_token", "finite"):
        assert np.array_equal(ds[name].values, crn_result[name].values), name
    back = xr.open_zarr(out)
    assert np.array_equal(back["values"].values, crn_result["values"].values)


@pytest.mark.parametrize("changes, words", [
    (dict(model=rj.MLP(), measures=["lz"], crn=False), "crn=False is not allowed for MLP"),
    (dict(n_new=40), "n_new=40 is not allowed"),
    (dict(measures=["lz"]), "reads values"),
    (dict(measures=["lz_per_token", "n_blocks"]), r"\['n_blocks'\] read the network"),
    (dict(n_new=0), "Sweep.n_new=0"),
    (dict(crn="yes"), "Sweep.crn='yes'"),
])
def test_config_errors_name_the_value(changes, words):
    with pytest.raises(ConfigError, match=words):
        tiny_sweep(**changes) if "model" not in changes else rj.Sweep(axes={"seed": [0]}, **changes)


def test_spec_round_trip_and_field_specs_unchanged():
    sweep = tiny_sweep(crn=False)
    data = sweep.to_dict()
    assert data["model"]["type"] == "GPT2" and data["n_new"] == 16 and data["crn"] is False
    assert rj.Sweep.from_dict(data) == sweep
    # fields of token sweeps do not enter field sweeps' specs (their fingerprints and resumes are unchanged)
    assert "n_new" not in rj.Sweep(axes={"seed": [0]}).to_dict()


def _fake(values: np.ndarray, acts, gains, depths):
    seeds = np.arange(values.shape[-1])
    da = xr.DataArray(values, dims=("activation", "ln_gain", "depth", "seed"),
                      coords={"activation": list(acts), "ln_gain": list(gains), "depth": list(depths), "seed": seeds})
    return xr.Dataset({"lz_per_token": da, "finite": da.notnull()})


def test_summary_and_claims_against_hand_numbers():
    acts, gains, depths = ("gelu", "relu", "selu", "gaussian"), (0.1, 1.0, 10.0), (1, 12)
    rng = np.random.default_rng(0)
    x = np.empty((4, 3, 2, 50))
    base = rng.uniform(0.15, 0.25, 50)
    for g in range(3):
        for d in range(2):
            x[0, g, d] = base + 0.05 * g
            x[1, g, d] = base + 0.05 * g - (0.05 if d == 1 and g >= 1 else 0.0)
            x[2, g, d] = base + 0.05 * g + (0.6 if d == 1 else 0.01)
            x[3, g, d] = FLOOR_ABBB if g < 2 else 0.9
    ds = _fake(x, acts, gains, depths)
    rows = summary(ds)
    row = next(r for r in rows if r["activation"] == "selu" and r["depth"] == 12 and r["ln_gain"] == 1.0)
    assert row["mean"] == pytest.approx(np.mean(x[2, 1, 1])) and row["n"] == 50
    assert row["se"] == pytest.approx(np.std(x[2, 1, 1], ddof=1) / np.sqrt(50))
    assert row["diff"] == pytest.approx(0.6) and row["diff_se"] == pytest.approx(0.0, abs=1e-12)
    holds = {c["claim"].split(" (")[0].split(",")[0]: c["holds"] for c in check_claims(ds)}
    assert holds["selu raises it"] and holds["ReLU lowers it slightly"] and holds["GELU"]
    assert holds["complexity never falls as the gain grows"]
    assert holds["Gaussian at the floor"] and holds["the spread across activations grows with depth"]
    # and they can fail: ReLU above GELU, a fall with the gain, Gaussian off the floor
    y = x.copy()
    y[1] += 0.1
    y[2, 2] -= 0.5
    y[3, 0] += 0.2
    holds = {c["claim"].split(" (")[0].split(",")[0]: c["holds"] for c in check_claims(_fake(y, acts, gains, depths))}
    assert not holds["ReLU lowers it slightly"] and not holds["complexity never falls as the gain grows"]
    assert not holds["Gaussian at the floor"]
    # a non-finite sequence is left out of the means
    x[0, 0, 0, 0] = np.nan
    row = next(r for r in summary(_fake(x, acts, gains, depths)) if r["activation"] == "gelu" and r["depth"] == 1
               and r["ln_gain"] == 0.1)
    assert row["n"] == 49 and np.isfinite(row["mean"])


def test_sweep_file_sizes():
    full = cli.load_sweep_file(ROOT / "sweeps" / "fig10_gpt2.py", "full")[0]
    assert full.num_networks == 216_000 and full.model.d_model == 768 and full.model.vocab == 50257
    assert full.axes["activation"] == ("gelu", "relu", "selu", "tanh", "sin", "gaussian")
    assert full.axes["ln_gain"] == pytest.approx(tuple(np.geomspace(0.1, 10, 9)))
    laptop = cli.load_sweep_file(ROOT / "sweeps" / "fig10_gpt2.py", "laptop")[0]
    assert (laptop.model.d_model, laptop.model.n_heads, laptop.model.vocab) == (256, 4, 50257)
    assert laptop.num_networks == 6 * 7 * 4 * 64 and laptop.crn and laptop.n_new == 100


def test_notebook_runs_at_smoke_size(tmp_path, run_notebook):
    proc = run_notebook("gpt2.py")
    for name in ("fig10_lz.png", "fig10_paired.png", "fig10.md"):
        assert (tmp_path / name).exists(), name
    assert "LZ/token" in proc.stdout


# compiles as users do: the sweep's program is then crn_result's (ln_gain is traced; the other axes and the device
# count are the same), which the run's compilation cache already holds
@pytest.mark.product_compile
def test_token_measures_are_nan_where_the_decoding_was_not_finite():
    """Issue 27: at ln_gain 1e30 the logits overflow, `finite` is False and the decoded tokens are argmax of
    NaN/inf; the token measures still scored those tokens as if they were a sequence. They are NaN there now,
    like every float measure of a non-finite input."""
    ds = rj.run_sweep(tiny_sweep(axes=dict(AXES, ln_gain=[1.0, 3.0, 1e30])), progress=False, num_devices=2)
    bad = ~ds.finite.values
    assert bad.any() and ds.finite.sel(ln_gain=[1.0, 3.0]).values.all()
    for name in ds.data_vars:
        if name not in ("finite", "values"):
            assert np.isnan(ds[name].values[bad]).all() and np.isfinite(ds[name].values[~bad]).all(), name
