"""Figures and tables of the local-volume sweeps (``sweeps/volume_blog.py``, ``sweeps/volume_nrs.py``; DESIGN.md
section 14).

A volume sweep has dims ``(activation, depth, weight_scale, seed)`` (results stored before 2026-12-07 are suites of
one part per activation, each without the activation dim; both are drawn the same, one activation at a time), and
the variables ``volume`` (log-volume, nats), optionally ``volume_nmse``,
and the complexity measures ``fourier`` and ``lz`` of the same networks. ``plot_volume`` draws:

- ``volume_heatmaps.png``: depth x weight scale per activation, mean log-volume and mean per-parameter log-volume
  (log-volume / D, D the network's parameter count at that depth).
- ``volume_complexity.png``: per-parameter log-volume against Fourier and LZ complexity, every network, one row
  per activation, Spearman rho in the titles.
- ``volume_epsilon.png`` (when the sweep has an epsilon axis, ``("volume", {"epsilons": [...]})``): mean
  per-parameter log-volume against epsilon, one line per depth, per activation; a hollow marker where fewer than
  half of the networks are resolved.
- ``volume.md``: the numbers behind them (depth trend, weight-scale shape, Spearman rho per activation, pooled,
  within depth, and over the resolved networks only; the share of resolved networks; volume against epsilon).

Resolution (DESIGN.md section 21): a network whose estimate is the prior's, not its own (``volume_resolved`` False:
most rays saturated and the estimate within 0.01 nats per parameter of its rays' full-ray value), says nothing
about the network. The heatmaps **hatch** (``//``) every depth x weight-scale cell where fewer than half of the
seeds are resolved, and print the resolved share in the cell; the scatter plots draw unresolved networks as grey
crosses, and the rhos in their titles are over resolved networks only.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping

import numpy as np

from ._common import save_figure, spearman

__all__ = ["activation_parts", "parameter_count", "volume_summary", "summary_markdown", "plot_volume",
           "VOLUME_VARIABLES"]

VOLUME_VARIABLES = ("volume", "volume_nmse")
EPSILON_PREFIX = "_eps"
COMPLEXITY = ("fourier", "lz")


def parameter_count(model, depth: int | None = None) -> int:
    """The number of parameters ``D`` of ``model`` (at ``depth``, for a model with a depth field)."""
    import jax

    if depth is not None:
        model = model.replace(depth=int(depth))
    shapes = jax.eval_shape(model.init, jax.random.key(0))
    return int(sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(shapes)))


def activation_parts(result) -> dict:
    """``{name: Dataset}`` with one entry per activation: a Dataset with an ``activation`` dim is split along it (a
    part of a suite too, named ``part/activation``); a part without one (a suite stored before 2026-12-07, one
    part per activation) is kept as it is."""
    import xarray as xr

    parts = {"": result} if isinstance(result, xr.Dataset) else dict(result)
    out = {}
    for name, ds in parts.items():
        if "activation" not in ds.dims:
            out[name] = ds
            continue
        alone = len(parts) == 1
        for activation in ds.activation.values:
            out[str(activation) if alone else f"{name}/{activation}"] = ds.sel(activation=activation)
    return out


def _part_sweep(ds):
    return ds.rj.sweep


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


def _resolved(ds, variable):
    """Boolean DataArray: the networks whose estimate is resolved (all True for results without the
    diagnostic, e.g. those of the uniform-direction estimator before issue 23)."""
    name = f"{variable}_resolved"
    if name in ds:
        return ds[name].astype(bool) & np.isfinite(ds[variable])
    return np.isfinite(ds[variable])


def _epsilon_variables(ds, variable):
    """``[(epsilon, name)]`` of the epsilon axis of ``variable``, sorted by epsilon."""
    out = []
    for name in ds.data_vars:
        prefix = f"{variable}{EPSILON_PREFIX}"
        if name.startswith(prefix) and not name.endswith(("_resolved", "_saturated")):
            try:
                out.append((float(name[len(prefix):]), name))
            except ValueError:
                continue
    return sorted(out)


def volume_summary(parts) -> dict:
    """Rows per activation (``activation_parts``: a Dataset or a suite's parts) and volume variable: mean
    log-volume and per-parameter log-volume per depth (over weight scales and seeds), per weight scale (over seeds,
    at every depth), the weight scale where the per-parameter volume is largest, convergence counts (none
    recorded: NaN-free check), and Spearman rho of the log-volume and per-parameter log-volume against Fourier and
    LZ (every network pooled; and the mean of the within-depth rhos)."""
    rows = []
    for name, ds in activation_parts(parts).items():
        for variable in VOLUME_VARIABLES:
            if variable not in ds:
                continue
            per = _per_parameter(ds, variable)
            values = np.asarray(ds[variable].values, np.float64)
            resolved = _resolved(ds, variable)
            row = {"part": name, "variable": variable, "networks": int(values.size),
                   "nonfinite": int((~np.isfinite(values)).sum()),
                   "resolved": int(np.asarray(resolved.values).sum()),
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
                share = resolved.mean([d for d in resolved.dims if d not in ("depth", "weight_scale")])
                row["resolved_grid"] = np.asarray(share.transpose("depth", "weight_scale").values).tolist() \
                    if "depth" in share.dims else [np.asarray(share.values).tolist()]
                kept = per.where(resolved)
                mean_resolved = kept.mean([d for d in per.dims if d not in ("depth", "weight_scale")])
                row["per_param_grid_resolved"] = np.asarray(
                    mean_resolved.transpose("depth", "weight_scale").values).tolist() \
                    if "depth" in mean_resolved.dims else [np.asarray(mean_resolved.values).tolist()]
                row["best_scale_by_depth"] = {
                    int(d): float(ds.weight_scale.values[int(np.nanargmax(mean.sel(depth=d).values))])
                    for d in ds.depth.values} if "depth" in mean.dims else {}
            for measure in COMPLEXITY:
                if measure not in ds:
                    continue
                row[f"rho_{measure}"] = spearman(ds[variable].values, ds[measure].values)
                row[f"rho_{measure}_per_param"] = spearman(per.values, ds[measure].values)
                row[f"rho_{measure}_resolved"] = spearman(per.values, ds[measure].transpose(*per.dims).values,
                                                           resolved.transpose(*per.dims).values)
                if "depth" in ds.dims:
                    within = [spearman(ds[variable].sel(depth=d).values, ds[measure].sel(depth=d).values)
                              for d in ds.depth.values]
                    row[f"rho_{measure}_within_depth"] = float(np.nanmean(within))
            curve = []
            for eps, eps_name in _epsilon_variables(ds, variable):
                eps_per = _per_parameter(ds, eps_name)
                ok = _resolved(ds, eps_name)
                entry = {"epsilon": eps, "per_param": float(eps_per.mean()),
                         "resolved_share": float(np.asarray(ok.values).mean())}
                if "depth" in ds.dims:
                    entry["per_param_by_depth"] = {int(d): float(eps_per.sel(depth=d).mean()) for d in ds.depth.values}
                    entry["resolved_by_depth"] = {int(d): float(np.asarray(ok.sel(depth=d).values).mean())
                                                  for d in ds.depth.values}
                for measure in COMPLEXITY:
                    if measure in ds:
                        entry[f"rho_{measure}_resolved"] = spearman(
                            eps_per.values, ds[measure].transpose(*eps_per.dims).values,
                            ok.transpose(*eps_per.dims).values)
                curve.append(entry)
            if curve:
                row["epsilon_curve"] = curve
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
    if rows and rows[0].get("resolved_grid"):
        scales = rows[0]["weight_scales"]
        lines += ["", "## Share of resolved networks by weight scale (mean over depths; DESIGN.md section 21)", "",
                  "| part | variable | resolved / networks | " + " | ".join(f"{s:g}" for s in scales) + " |",
                  "|---|---|---|" + "---|" * len(scales)]
        for r in rows:
            grid = np.asarray(r["resolved_grid"])
            lines.append(f"| {r['part']} | {r['variable']} | {r['resolved']} / {r['networks']} | "
                         + " | ".join(f"{v:.2f}" for v in grid.mean(0)) + " |")
        lines += ["", "## Per-parameter log-volume by weight scale, resolved networks only (mean over depths)", "",
                  "| part | variable | " + " | ".join(f"{s:g}" for s in scales) + " |",
                  "|---|---|" + "---|" * len(scales)]
        for r in rows:
            grid = np.asarray(r["per_param_grid_resolved"], np.float64)
            counts = np.isfinite(grid).sum(0)
            means = np.where(counts > 0, np.nansum(grid, axis=0) / np.maximum(counts, 1), np.nan)
            lines.append(f"| {r['part']} | {r['variable']} | " + " | ".join(f"{v:.4f}" for v in means) + " |")
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
        lines += ["", "## Spearman rho of per-parameter log-volume against complexity, resolved networks only", "",
                  "| part | variable | resolved networks | vs Fourier | vs LZ |", "|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['part']} | {r['variable']} | {r['resolved']} | "
                         f"{r.get('rho_fourier_resolved', float('nan')):+.3f} | "
                         f"{r.get('rho_lz_resolved', float('nan')):+.3f} |")
    curves = [r for r in rows if r.get("epsilon_curve")]
    if curves:
        eps = [e["epsilon"] for e in curves[0]["epsilon_curve"]]
        lines += ["", "## Per-parameter log-volume against epsilon (mean over depths, scales, seeds; resolved share "
                  "in brackets; rho vs LZ over resolved networks)", "",
                  "| part | variable | " + " | ".join(f"eps {e:g}" for e in eps) + " |",
                  "|---|---|" + "---|" * len(eps)]
        for r in curves:
            lines.append(f"| {r['part']} | {r['variable']} | " + " | ".join(
                f"{e['per_param']:.4f} [{e['resolved_share']:.2f}] rho {e.get('rho_lz_resolved', float('nan')):+.2f}"
                for e in r["epsilon_curve"]) + " |")
    return "\n".join(lines) + "\n"


def plot_volume(parts, out_dir: str | Path) -> list[Path]:
    """The volume figures and ``volume.md`` in ``out_dir`` (see the module docstring) of a volume sweep's Dataset
    or a suite's parts, one activation at a time (``activation_parts``)."""
    import matplotlib.pyplot as plt
    from matplotlib import patheffects

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    parts = activation_parts(parts)
    names = [n for n, ds in parts.items() if "volume" in ds]

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
                share = _resolved(ds, "volume")
                share = share.mean([d for d in share.dims if d not in ("depth", "weight_scale")])
                share = np.asarray(share.transpose("depth", "weight_scale").values, np.float64)
                for (yi, xi), frac in np.ndenumerate(share):
                    if frac < 0.5:   # mostly the prior's number, not the network's: hatched
                        ax.add_patch(plt.Rectangle((xi - 0.5, yi - 0.5), 1, 1, fill=False, hatch="//",
                                                   edgecolor="white", linewidth=0))
                    ax.text(xi, yi, f"{frac:.0%}", ha="center", va="center", fontsize=5, color="white",
                            path_effects=[patheffects.withStroke(linewidth=1.2, foreground="black")])
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
                ok = np.asarray(_resolved(ds, "volume").transpose(*ds[measure].dims).values).ravel()
                sc = ax.scatter(x[ok], y[ok], s=4, c=None if c is None else c[ok], cmap="viridis", alpha=0.6)
                ax.scatter(x[~ok], y[~ok], s=6, marker="x", color="0.6", alpha=0.5, linewidths=0.5)
                rho_per = spearman(per.values, ds[measure].transpose(*per.dims).values,
                                    _resolved(ds, "volume").transpose(*per.dims).values)
                ax.set(xlabel=measure, ylabel="log-volume per parameter",
                       title=f"{name}: Spearman {rho_per:+.2f} over {int(ok.sum())} resolved (x: unresolved)")
                ax.title.set_fontsize(8)
                if c is not None and j == 1:
                    fig.colorbar(sc, ax=ax, label="depth")
        save(fig, "volume_complexity.png")

    eps_parts = [n for n in names if _epsilon_variables(parts[n], "volume") and "depth" in parts[n].volume.dims]
    if eps_parts:
        fig, axes = plt.subplots(1, len(eps_parts), figsize=(3.0 * len(eps_parts) + 0.6, 3.0), squeeze=False,
                                 constrained_layout=True, sharey=True)
        for j, name in enumerate(eps_parts):
            ds, ax = parts[name], axes[0, j]
            pairs = _epsilon_variables(ds, "volume")
            eps = [e for e, _ in pairs]
            colors = plt.cm.viridis(np.linspace(0, 0.9, len(ds.depth)))
            for color, d in zip(colors, ds.depth.values):
                ys = [float(_per_parameter(ds, v).sel(depth=d).mean()) for _, v in pairs]
                ok = [float(np.asarray(_resolved(ds, v).sel(depth=d).values).mean()) >= 0.5 for _, v in pairs]
                ax.plot(eps, ys, color=color, lw=1, label=f"depth {int(d)}")
                for e, y, good in zip(eps, ys, ok):
                    ax.plot([e], [y], "o", ms=3.5, color=color, mfc=color if good else "none")
            ax.set_xscale("log")
            ax.set(xlabel="epsilon", ylabel="log-volume per parameter" if j == 0 else None, title=name)
            ax.title.set_fontsize(8)
        axes[0, -1].legend(fontsize=6)
        save(fig, "volume_epsilon.png")

    md = out_dir / "volume.md"
    md.write_text(summary_markdown(volume_summary({n: parts[n] for n in names})))
    paths.append(md)
    return paths


def figure_volume(parts: Mapping[str, object], out_dir: str | Path, claims: Mapping[str, str]) -> list[Path]:
    """``"volume"`` (sweeps/volume_blog.py, sweeps/volume_nrs.py): ``plot_volume`` (a single sweep arrives as the
    one part ``"main"``)."""
    if len(parts) == 1 and "activation" in next(iter(parts.values())).dims:
        parts = next(iter(parts.values()))
    return plot_volume(parts, out_dir)
