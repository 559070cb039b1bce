"""Table 1 over a panel of bases: pooling, bootstrap and classification on synthetic results with known answers,
the layout of sweeps/table1.py, and one small run through the engine (the reference base is the old table)."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import redshift_jax as rj
from redshift_jax import studies
from redshift_jax.studies import nrs as plots
from redshift_jax.sweep import run_sweep

ROOT = Path(__file__).resolve().parents[1]
TABLE1 = runpy.run_path(str(ROOT / "sweeps" / "table1.py"))


def make_part(label, axis, settings, panel, low, high, measure="fourier"):
    """A synthetic Table-1 part: ``low``/``high`` arrays of shape (*panel shape, seeds), or for an axis with
    several low settings ``low`` of shape (len(settings) - 1, *panel shape, seeds)."""
    low, high = np.asarray(low, np.float32), np.asarray(high, np.float32)
    if low.ndim == high.ndim:
        low = low[None]
    data = np.concatenate([low, high[None]], axis=0)
    seeds = data.shape[-1]
    dims = (axis, *panel, "seed")
    coords = {axis: list(settings), **{k: list(v) for k, v in panel.items()}, "seed": np.arange(seeds)}
    axes = {axis: list(settings), **{k: list(v) for k, v in panel.items()}, "seed": list(range(seeds))}
    ds = xr.Dataset({measure: (dims, data)}, coords=coords)
    ds.attrs["sweep"] = json.dumps({"axes": axes, "name": label, "measures": [measure]})
    return ds


def constant_part(label, effects, lows, seeds=16, noise=0.05, seed=0):
    """Bases along one panel axis ``b``; low = lows[b] + noise per seed, high = low + effects[b] exactly."""
    rng = np.random.default_rng(seed)
    low = np.asarray(lows, float)[:, None] + noise * rng.standard_normal((len(lows), seeds))
    high = low + np.asarray(effects, float)[:, None]
    return make_part(label, "flag", [False, True], {"b": list(range(len(lows)))}, low, high)


# ---- pooling, bootstrap, classification --------------------------------------------------------------

def test_pooled_effect_and_shares_known_answer():
    effects, lows = [0.5, 0.5, 0.0, -0.2], [1.0, 2.0, 1.0, 1.0]
    part = constant_part("x", effects, lows)
    (row,) = plots.table1_panel_rows({"c0": part}, {"x": "higher"})
    assert row["effect"] == pytest.approx(np.mean(effects), abs=1e-6)
    # every seed has the same paired difference, so every bootstrap draw gives the same pooled effect
    assert row["ci_low"] == pytest.approx(row["effect"], abs=1e-6)
    assert row["ci_high"] == pytest.approx(row["effect"], abs=1e-6)
    assert row["low"] == pytest.approx(np.mean(np.asarray(part["fourier"][0])), rel=1e-5)
    assert row["relative"] == pytest.approx(row["effect"] / row["low"], rel=1e-6)
    assert row["shares"] == {"lower": 1, "no impact": 1, "higher": 2} and row["bases"] == 4
    assert row["ours"] == "higher" and row["agrees"] and row["paper"] == "higher"
    assert [b["ours"] for b in row["base_rows"]] == ["higher", "higher", "no impact", "lower"]
    assert row["reference"] == "higher"  # base 0


def test_threshold_makes_small_significant_effects_no_impact():
    # +5% of the low value at every base, with a zero-width interval: significant but under the 10% threshold
    part = constant_part("x", [0.05, 0.05], [1.0, 1.0])
    (row,) = plots.table1_panel_rows({"c0": part}, {"x": "no impact"})
    assert row["ci_low"] > 0 and row["ours"] == "no impact" and row["agrees"]
    assert row["shares"] == {"lower": 0, "no impact": 2, "higher": 0}
    (row,) = plots.table1_panel_rows({"c0": part}, {}, relative_threshold=0.01)
    assert row["ours"] == "higher" and row["shares"]["higher"] == 2


def test_pooled_verdict_is_no_impact_when_bases_cancel():
    part = constant_part("x", [0.4, -0.4, 0.4, -0.4], [1.0] * 4)
    (row,) = plots.table1_panel_rows({"c0": part}, {"x": "higher"})
    assert row["effect"] == pytest.approx(0.0, abs=1e-6)
    assert row["ours"] == "no impact" and not row["agrees"]
    assert row["shares"] == {"lower": 2, "no impact": 0, "higher": 2}


def test_bootstrap_interval_covers_the_mean_and_keeps_seed_correlation_across_bases():
    rng = np.random.default_rng(1)
    seeds, n_bases, sd = 400, 9, 1.0
    shared = sd * rng.standard_normal(seeds)  # the same seed noise in every base (a seed is one network key)
    independent = sd * rng.standard_normal((n_bases, seeds))
    low = np.full((n_bases, seeds), 10.0)
    width = {}
    for name, noise in (("shared", np.broadcast_to(shared, (n_bases, seeds))), ("independent", independent)):
        pooled = plots._pooled_effect(low, low + 0.3 + noise)
        mean = float(np.mean(noise)) + 0.3
        assert pooled["effect"] == pytest.approx(mean, abs=1e-9)
        assert pooled["ci_low"] < mean < pooled["ci_high"]
        width[name] = pooled["ci_high"] - pooled["ci_low"]
    expected = 2 * 1.96 * sd / np.sqrt(seeds)  # normal-theory width of one base's mean
    # a shared draw per seed keeps the bases' correlation: perfectly correlated bases are worth one base ...
    assert width["shared"] == pytest.approx(expected, rel=0.15)
    # ... and independent bases average out (width / sqrt(bases))
    assert width["independent"] == pytest.approx(expected / np.sqrt(n_bases), rel=0.2)


def test_bootstrap_is_deterministic_and_a_single_base_matches_the_single_base_rule():
    rng = np.random.default_rng(2)
    low = 1 + 0.1 * rng.standard_normal((1, 32))
    high = low + 0.08 + 0.05 * rng.standard_normal((1, 32))
    a, b = plots._pooled_effect(low, high), plots._pooled_effect(low, high)
    assert a == b
    effect, lo, hi = plots._bootstrap_effect(low[0], high[0])
    # same seed draws as the single-base bootstrap: the same interval up to rounding
    assert (a["effect"], a["ci_low"], a["ci_high"]) == pytest.approx((effect, lo, hi), abs=1e-12)


def test_non_finite_values_are_left_out():
    low = np.ones((3, 8))
    high = low + np.array([[0.5], [0.2], [0.3]])
    high[0, :2] = np.nan  # two seeds of base 0 diverged
    low[2, :] = np.inf  # base 2 has no finite pair at all
    part = make_part("x", "flag", [False, True], {"b": [0, 1, 2]}, low, high)
    (row,) = plots.table1_panel_rows({"c0": part}, {})
    assert row["effect"] == pytest.approx(0.35, abs=1e-6)  # mean over the bases with data: (0.5 + 0.2) / 2
    assert [b["ours"] for b in row["base_rows"]] == ["higher", "higher", "no data"]
    assert row["bases"] == 2 and row["shares"]["higher"] == 2


@pytest.mark.product_compile
def test_activation_style_component_bases_and_reference():
    # axis [tanh, sin, relu]: two low settings (one base each per panel cell), relu the shared high setting
    rng = np.random.default_rng(3)
    seeds, panel = 6, {"depth": [3, 2], "weight_scale": [10.0, 2.0]}
    values = rng.uniform(0.1, 1.0, size=(3, 2, 2, seeds))
    part = make_part("act", "activation", ["tanh", "sin", "relu"], panel, values[:2], values[2])
    pairs = plots._component_pairs("c0", part, "fourier")
    assert len(pairs["bases"]) == 8 and pairs["settings"][0] == ("tanh", "relu") and pairs["settings"][-1] == (
        "sin", "relu")
    assert pairs["bases"][0] == {"depth": 3, "weight_scale": 10.0}
    np.testing.assert_array_equal(pairs["low"][5], values[1, 0, 1].astype(np.float32))  # sin, depth 3, scale 2
    np.testing.assert_array_equal(pairs["high"][5], values[2, 0, 1].astype(np.float32))
    claims = {"act": "lower"}
    (ref,) = plots.table1_rows({"c0": part}, claims)
    effect, lo, hi = plots._bootstrap_effect(values[0, 0, 0].astype(np.float32), values[2, 0, 0].astype(np.float32))
    assert (ref["effect"], ref["ci_low"], ref["ci_high"]) == (effect, lo, hi)
    (sin,) = plots.table1_rows({"c0": part}, claims, base={"activation": "sin", "depth": 2, "weight_scale": 2.0,
                                                          "width": 64})
    assert sin["setting"] == ("sin", "relu") and sin["base"] == {"depth": 2, "weight_scale": 2.0}
    assert sin["effect"] == plots._bootstrap_effect(values[1, 1, 1].astype(np.float32),
                                                    values[2, 1, 1].astype(np.float32))[0]
    with pytest.raises(KeyError):
        plots.table1_rows({"c0": part}, claims, base={"activation": "relu"})
    (row,) = plots.table1_panel_rows({"c0": part}, claims)
    assert row["bases"] == 8 and row["reference"] == ref["ours"]


def test_old_single_base_results_read_as_before():
    # the layout of results written before the panel: axes {component, seed, weight_scale: [10]}
    rng = np.random.default_rng(4)
    data = rng.uniform(0.2, 0.4, size=(2, 8, 1)).astype(np.float32)
    ds = xr.Dataset({"fourier": (("width", "seed", "weight_scale"), data)},
                    coords={"width": [16, 256], "seed": np.arange(8), "weight_scale": [10.0]})
    ds.attrs["sweep"] = json.dumps({"axes": {"width": [16, 256], "seed": list(range(8)), "weight_scale": [10.0]},
                                    "name": "width (16 -> 256)", "measures": ["fourier"]})
    (row,) = plots.table1_rows({"c1": ds}, {"width (16 -> 256)": "no impact"})
    effect, lo, hi = plots._bootstrap_effect(data[0, :, 0], data[1, :, 0])
    assert (row["low"], row["effect"], row["ci_low"], row["ci_high"]) == (float(np.nanmean(data[0, :, 0])), effect,
                                                                         lo, hi)
    (pooled,) = plots.table1_panel_rows({"c1": ds}, {"width (16 -> 256)": "no impact"})
    assert pooled["bases"] == 1 and pooled["ours"] == row["ours"]


def test_markdown_and_files(tmp_path):
    parts = {"c0": constant_part("x", [0.5, 0.5, 0.0, -0.2], [1.0, 2.0, 1.0, 1.0]),
             "c1": constant_part("y", [0.0, 0.0, 0.0, 0.0], [1.0] * 4)}
    claims = {"x": "higher", "y": "lower"}
    text = plots.table1_markdown(plots.table1_panel_rows(parts, claims))
    lines = text.strip().splitlines()
    assert lines[0].startswith("| Component | Paper (Table 1) | Ours (pooled) | Pooled effect [95% CI]")
    assert "| x | higher | **higher** | +0.2000 [+0.2000, +0.2000] |" in lines[2]
    assert "1 / 1 / 2 of 4 | higher | yes |" in lines[2]
    assert "| y | lower | **no impact** |" in lines[3] and "0 / 4 / 0 of 4" in lines[3] and lines[3].endswith("NO |")
    old = plots.table1_markdown(plots.table1_rows(parts, claims))
    assert old.startswith("| Component | Paper (Table 1) | Ours | Fourier (nrs): low -> high |")
    paths = studies.plot_result(parts, "table1", tmp_path, claims)
    assert sorted(p.name for p in paths) == ["table1.md", "table1.png", "table1_bases.csv"]
    md = (tmp_path / "table1.md").read_text()
    assert "## Panel: Fourier (nrs)" in md and "## Reference base alone (b=0)" in md
    csv = (tmp_path / "table1_bases.csv").read_text().strip().splitlines()
    assert len(csv) == 1 + 8 and csv[1].startswith('fourier,"x",False,True,"b=0"')


# ---- the sweep file ---------------------------------------------------------------------------------

@pytest.mark.parametrize("size", ["QUICK", "LAPTOP", "SWEEP"])
def test_sweep_file_layout(size):
    parts = TABLE1[size]
    assert len(parts) == len(TABLE1["COMPONENTS"]) == 9
    reference = {"activation": "tanh", "depth": 3, "weight_scale": 10.0, "prior": "paper"}
    variants = 0
    for sweep, (label, (axis, low, high, _, fields)) in zip(parts.values(), TABLE1["COMPONENTS"].items()):
        axes = list(sweep.axes)
        assert sweep.name == label and axes[0] == axis and axes[-1] == "seed"
        assert sweep.axes[axis][-1] == high
        if low is not None:
            assert sweep.axes[axis] == (low, high)
        else:  # ReLU instead of the base activation: every non-ReLU activation of the panel is a base
            panel = TABLE1[f"PANEL_{size}"][axis]
            assert sweep.axes[axis][:-1] == tuple(v for v in panel if v != high) and high in panel
        for name, value in reference.items():  # the first value of every axis is the reference base
            if name != axis and name not in fields:
                assert sweep.axes[name][0] == value
        assert sweep.model == rj.MLP(activation="tanh", depth=3, width=64, **fields)
        assert ("prior" in sweep.axes) == ("prior" not in fields)
        # activation shares one compile (switch), depth one pass; the component's own flag and the prior compile
        # twice each
        variants += len(list(sweep.replace(axes={k: v for k, v in sweep.axes.items()
                                                 if k not in ("activation",)}).structural_variants()))
    assert variants == 2 * 12 + 2
    # the width part with the first layer held fixed: paper prior, first layer drawn as at width 16
    fixed = list(parts.values())[-1]
    assert fixed.model.first_layer_width == 16 and fixed.model.prior == "paper" and fixed.axes["width"] == (16, 256)


# ---- end to end: the reference base of a panel part is the old single-base table, bit for bit ----------

@pytest.mark.product_compile
def test_panel_part_reference_base_is_the_single_base_sweep_bitwise():
    seeds = list(range(4))
    part = TABLE1["QUICK"]["c0"].with_axis("seed", seeds).replace(measures=("fourier",))  # activation part
    old = rj.Sweep(model=rj.MLP(activation="tanh", depth=3, width=64), resolution=64, measures=("fourier",),
                   axes={"activation": ["tanh", "relu"], "seed": seeds, "weight_scale": [10.0]},
                   name=part.name)
    panel = run_sweep(part, progress=False)
    single = run_sweep(old, progress=False)
    ref = panel["fourier"].sel(depth=3, weight_scale=10.0, prior="paper").sel(activation=["tanh", "relu"])
    np.testing.assert_array_equal(ref.transpose("activation", "seed").values,
                                  single["fourier"].isel(weight_scale=0).transpose("activation", "seed").values)
    claims = TABLE1["CLAIMS"]
    assert plots.table1_rows({"c0": panel}, claims) == [
        {**r, "base": {"depth": 3, "weight_scale": 10.0, "prior": "paper"}}
        for r in plots.table1_rows({"c0": single}, claims)]
    (row,) = plots.table1_panel_rows({"c0": panel}, claims)
    assert row["bases"] == 16 and np.isfinite(row["effect"]) and row["paper"] == "lower"  # (tanh, sin) x 2 x 2 x 2
    for prior in ("paper", "normal"):  # reported prior by prior: half the bases each
        (row,) = plots.table1_panel_rows({"c0": panel}, claims, where={"prior": prior})
        assert row["bases"] == 8 and all(b["base"]["prior"] == prior for b in row["base_rows"])



def test_priors_are_reported_apart(tmp_path):
    """A prior axis is split, never pooled; a part that fixes the prior in its model joins that prior's rows."""
    rng = np.random.default_rng(0)
    low = rng.normal(1.0, 0.01, size=(2, 16))  # (prior, seeds)
    high = low + np.array([[0.5], [0.0]])  # raises under paper, nothing under normal
    part = make_part("w", "width", [16, 256], {"prior": ["paper", "normal"]}, low, high)
    fixed = make_part("w fixed", "width", [16, 256], {}, low[0], low[0] + 0.001)
    spec = json.loads(fixed.attrs["sweep"])
    fixed.attrs["sweep"] = json.dumps({**spec, "model": {"type": "MLP", "prior": "paper", "first_layer_width": 16}})
    parts = {"c0": part, "c1": fixed}
    claims = {"w": "no impact", "w fixed": "no impact"}
    paper = plots.table1_panel_rows(parts, claims, where={"prior": "paper"})
    normal = plots.table1_panel_rows(parts, claims, where={"prior": "normal"})
    assert [r["ours"] for r in paper] == ["higher", "no impact"]
    assert [r["component"] for r in normal] == ["w"] and normal[0]["ours"] == "no impact"
    (pooled, _) = plots.table1_panel_rows(parts, claims)
    assert pooled["bases"] == 2
    paths = plots.plot_table1(parts, tmp_path, claims)
    text = paths[0].read_text()
    assert "## Verdicts at a glance" in text and "(prior paper)" in text and "(prior normal)" in text
    assert "## Reference base alone (prior=normal)" in text
    matrix = plots.table1_verdict_matrix(parts, claims, ["fourier"], [{"prior": "paper"}, {"prior": "normal"}])
    assert "| w | no impact | higher (+50%) | **no impact** (+0%) |" in matrix
    assert "| w fixed | no impact | **no impact** (+0%) | - |" in matrix


def test_component_maps_mark_where_a_component_acts(tmp_path):
    """sweeps/components_depth.py's figure: per activation a depth x weight-scale map of the effect, + / - where
    the single-base rule says higher / lower; the table1 outputs beside it."""
    rng = np.random.default_rng(1)
    panel = {"activation": ["relu", "tanh"], "depth": [1, 6], "weight_scale": [1.0, 20.0]}
    low = rng.normal(1.0, 0.01, size=(2, 2, 2, 8))
    effect = np.zeros((2, 2, 2, 1))
    effect[0, 1, 1] = 0.5  # relu, depth 6, scale 20: higher
    effect[1, 0, 0] = -0.5  # tanh, depth 1, scale 1: lower
    part = make_part("gating (multiplicative)", "gating", [False, True], panel, low, low + effect)
    paths = studies.plot_result({"c0": part}, "components", tmp_path, {"gating (multiplicative)": "higher"})
    names = {p.name for p in paths}
    assert {"table1.md", "table1_bases.csv", "table1.png", "components_c0_fourier.png"} <= names
    (row,) = plots.table1_panel_rows({"c0": part}, {})
    verdicts = {(b["base"]["activation"], b["base"]["depth"], b["base"]["weight_scale"]): b["ours"]
                for b in row["base_rows"]}
    assert verdicts[("relu", 6, 20.0)] == "higher" and verdicts[("tanh", 1, 1.0)] == "lower"
    assert sum(v == "no impact" for v in verdicts.values()) == 6
