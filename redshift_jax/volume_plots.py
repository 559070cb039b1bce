"""Figures and tables of the local-volume sweeps (``sweeps/volume_blog.py``, ``sweeps/volume_nrs.py``; DESIGN.md
section 14).

A volume suite has one part per activation (a network measure sees one activation per compiled sweep), each with
dims ``(depth, weight_scale, seed)`` and the variables ``volume`` (log-volume, nats), optionally ``volume_nmse``,
and the complexity measures ``fourier`` and ``lz`` of the same networks. ``plot_volume`` draws:

- ``volume_heatmaps.png``: depth x weight scale per activation, mean log-volume and mean per-parameter log-volume
  (log-volume / D, D the network's parameter count at that depth).
- ``volume_complexity.png``: per-parameter log-volume against Fourier and LZ complexity, every network, one row
  per activation, Spearman rho in the titles.
- ``volume.md``: the numbers behind them (depth trend, weight-scale shape, Spearman rho per activation, pooled
  and within depth).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping

import numpy as np

__all__ = ["parameter_count", "volume_summary", "summary_markdown", "plot_volume", "VOLUME_VARIABLES"]

VOLUME_VARIABLES = ("volume", "volume_nmse")
COMPLEXITY = ("fourier", "lz")


def parameter_count(model, depth: int | None = None) -> int:
    """The number of parameters ``D`` of ``model`` (at ``depth``, for a model with a depth field)."""
    import jax

    if depth is not None:
        model = model.replace(depth=int(depth))
    shapes = jax.eval_shape(model.init, jax.random.key(0))
    return int(sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(shapes)))


def _part_sweep(ds):
    from .sweep.spec import Sweep

    return Sweep.from_dict(json.loads(ds.attrs["sweep"]))


def _per_parameter(ds, variable):
    """``variable / D`` with D per depth (an xarray DataArray)."""
    import xarray as xr

    model = _part_sweep(ds).model
    if "depth" in ds[variable].dims:
        counts = xr.DataArray([parameter_count(model, d) for d in ds.depth.values], dims=("depth",),
                              coords={"depth": ds.depth.values})
    else:
        counts = parameter_count(model)
    return ds[variable] / counts


def _spearman(a, b):
    from .plots import spearman

    return spearman(np.asarray(a), np.asarray(b))


def volume_summary(parts: Mapping[str, object]) -> dict:
    """Rows per activation (part) and volume variable: mean log-volume and per-parameter log-volume per depth
    (over weight scales and seeds), per weight scale (over seeds, at every depth), the weight scale where the
    per-parameter volume is largest, convergence counts (none recorded: NaN-free check), and Spearman rho of the
    log-volume and per-parameter log-volume against Fourier and LZ (every network pooled; and the mean of the
    within-depth rhos)."""
    rows = []
    for name, ds in parts.items():
        for variable in VOLUME_VARIABLES:
            if variable not in ds:
                continue
            per = _per_parameter(ds, variable)
            values = np.asarray(ds[variable].values, np.float64)
            row = {"part": name, "variable": variable, "networks": int(values.size),
                   "nonfinite": int((~np.isfinite(values)).sum()),
                   "params": {int(d): parameter_count(_part_sweep(ds).model, d) for d in ds.depth.values}
                   if "depth" in ds.dims else {}}
            if "depth" in ds.dims:
                row["by_depth"] = {int(d): float(ds[variable].sel(depth=d).mean()) for d in ds.depth.values}
                row["per_param_by_depth"] = {int(d): float(per.sel(depth=d).mean()) for d in ds.depth.values}
            if "weight_scale" in ds.dims:
                mean = per.mean([d for d in per.dims if d not in ("depth", "weight_scale")])
                row["per_param_grid"] = np.asarray(mean.transpose("depth", "weight_scale").values).tolist() \
                    if "depth" in mean.dims else [np.asarray(mean.values).tolist()]
                row["weight_scales"] = [float(s) for s in ds.weight_scale.values]
                row["best_scale_by_depth"] = {
                    int(d): float(ds.weight_scale.values[int(np.nanargmax(mean.sel(depth=d).values))])
                    for d in ds.depth.values} if "depth" in mean.dims else {}
            for measure in COMPLEXITY:
                if measure not in ds:
                    continue
                row[f"rho_{measure}"] = _spearman(ds[variable].values, ds[measure].values)
                row[f"rho_{measure}_per_param"] = _spearman(per.values, ds[measure].values)
                if "depth" in ds.dims:
                    within = [_spearman(ds[variable].sel(depth=d).values, ds[measure].sel(depth=d).values)
                              for d in ds.depth.values]
                    row[f"rho_{measure}_within_depth"] = float(np.nanmean(within))
            rows.append(row)
    return {"rows": rows}


def summary_markdown(summary: dict) -> str:
    """``volume_summary`` as Markdown tables."""
    rows = summary["rows"]
    lines = []
    if rows and rows[0].get("by_depth"):
        depths = list(rows[0]["by_depth"])
        lines += ["## Mean log-volume by depth (nats; over weight scales and seeds)", "",
                  "| part | variable | " + " | ".join(f"depth {d}" for d in depths) + " |",
                  "|---|---|" + "---|" * len(depths)]
        for r in rows:
            lines.append(f"| {r['part']} | {r['variable']} | "
                         + " | ".join(f"{r['by_depth'].get(d, float('nan')):.4g}" for d in depths) + " |")
        lines += ["", "## Mean per-parameter log-volume by depth (nats per parameter)", "",
                  "| part | variable | " + " | ".join(f"depth {d} (D={rows[0]['params'][d]})" for d in depths) + " |",
                  "|---|---|" + "---|" * len(depths)]
        for r in rows:
            lines.append(f"| {r['part']} | {r['variable']} | "
                         + " | ".join(f"{r['per_param_by_depth'].get(d, float('nan')):.4f}" for d in depths) + " |")
    if rows and rows[0].get("weight_scales"):
        scales = rows[0]["weight_scales"]
        lines += ["", "## Per-parameter log-volume by weight scale (mean over depths and seeds)", "",
                  "| part | variable | " + " | ".join(f"{s:g}" for s in scales) + " | best scale per depth |",
                  "|---|---|" + "---|" * (len(scales) + 1)]
        for r in rows:
            grid = np.asarray(r["per_param_grid"])
            best = ", ".join(f"{d}: {s:g}" for d, s in r["best_scale_by_depth"].items())
            lines.append(f"| {r['part']} | {r['variable']} | " + " | ".join(f"{v:.4f}" for v in grid.mean(0))
                         + f" | {best} |")
    if rows and "rho_fourier" in rows[0]:
        lines += ["", "## Spearman rho of volume against complexity (same networks)", "",
                  "| part | variable | networks | non-finite | vs Fourier | vs Fourier (per param) | vs Fourier "
                  "(within depth) | vs LZ | vs LZ (per param) | vs LZ (within depth) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            cells = [r.get(k, float("nan")) for k in ("rho_fourier", "rho_fourier_per_param",
                                                      "rho_fourier_within_depth", "rho_lz", "rho_lz_per_param",
                                                      "rho_lz_within_depth")]
            lines.append(f"| {r['part']} | {r['variable']} | {r['networks']} | {r['nonfinite']} | "
                         + " | ".join(f"{c:+.3f}" for c in cells) + " |")
    return "\n".join(lines) + "\n"


def plot_volume(parts: Mapping[str, object], out_dir: str | Path) -> list[Path]:
    """The volume figures and ``volume.md`` in ``out_dir`` (see the module docstring)."""
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    names = [n for n, ds in parts.items() if "volume" in ds]

    from .plots import save_figure

    def save(fig, name):
        paths.append(save_figure(fig, out_dir / name))

    grid_parts = [n for n in names if {"depth", "weight_scale"} <= set(parts[n].volume.dims)]
    if grid_parts:
        fig, axes = plt.subplots(2, len(grid_parts), figsize=(3.3 * len(grid_parts) + 0.6, 6.4), squeeze=False,
                                 constrained_layout=True)
        for j, name in enumerate(grid_parts):
            ds = parts[name]
            for i, (da, label) in enumerate(((ds.volume, "log-volume (nats)"),
                                             (_per_parameter(ds, "volume"), "log-volume per parameter"))):
                mean = da.mean([d for d in da.dims if d not in ("depth", "weight_scale")])
                mean = mean.transpose("depth", "weight_scale")
                ax = axes[i, j]
                im = ax.imshow(mean.values, origin="lower", aspect="auto", cmap="viridis")
                ax.set_xticks(range(len(ds.weight_scale)), [f"{s:g}" for s in ds.weight_scale.values], fontsize=7)
                ax.set_yticks(range(len(ds.depth)), [str(int(d)) for d in ds.depth.values], fontsize=7)
                ax.set(xlabel="weight scale", ylabel="depth" if j == 0 else None, title=f"{name}: {label}")
                ax.title.set_fontsize(8)
                fig.colorbar(im, ax=ax, shrink=0.8).ax.tick_params(labelsize=7)
        save(fig, "volume_heatmaps.png")

    scatter_parts = [n for n in names if any(m in parts[n] for m in COMPLEXITY)]
    if scatter_parts:
        fig, axes = plt.subplots(len(scatter_parts), 2, figsize=(9, 2.9 * len(scatter_parts)), squeeze=False,
                                 constrained_layout=True)
        for i, name in enumerate(scatter_parts):
            ds = parts[name]
            per = _per_parameter(ds, "volume")
            for j, measure in enumerate(COMPLEXITY):
                ax = axes[i, j]
                if measure not in ds:
                    ax.axis("off")
                    continue
                x = np.asarray(ds[measure].values).ravel()
                y = np.asarray(per.transpose(*ds[measure].dims).values).ravel()
                c = ds.depth.broadcast_like(ds[measure]).values.ravel() if "depth" in ds[measure].dims else None
                sc = ax.scatter(x, y, s=4, c=c, cmap="viridis", alpha=0.6)
                rho = _spearman(ds.volume.values, ds[measure].values)
                rho_per = _spearman(per.values, ds[measure].transpose(*per.dims).values)
                ax.set(xlabel=measure, ylabel="log-volume per parameter",
                       title=f"{name}: Spearman {rho:+.2f} (log-vol), {rho_per:+.2f} (per param)")
                ax.title.set_fontsize(8)
                if c is not None and j == 1:
                    fig.colorbar(sc, ax=ax, label="depth")
        save(fig, "volume_complexity.png")

    md = out_dir / "volume.md"
    md.write_text(summary_markdown(volume_summary({n: parts[n] for n in names})))
    paths.append(md)
    return paths
