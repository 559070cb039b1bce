"""Figures from sweep results: heatmaps with example functions, mean +- std curves, correlation scatters,
and the Table 1 Markdown. Matplotlib; importing this module leaves the session's backend alone (a notebook keeps
its inline plots), and without a display matplotlib itself falls back to Agg. Every figure is saved and closed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["plot_heatmaps", "plot_curves", "plot_correlations", "table1_rows", "table1_markdown", "spearman",
           "example_images", "plot_result"]

MEASURE_LABELS = {
    "fourier": "Fourier (nrs)", "fourier_noise": "Fourier (noise = 1)", "chebyshev": "Chebyshev order",
    "legendre": "Legendre order", "lz": "LZ78 (normalized)", "lz76": "LZ76 (normalized)", "lzw": "LZW (normalized)",
}


def _sweep_of(ds):
    from .sweep.spec import Sweep

    return Sweep.from_dict(json.loads(ds.attrs["sweep"]))


def _measure_names(ds) -> list[str]:
    """The measures of a result, in the order the sweep listed them (stores list variables alphabetically)."""
    listed = json.loads(ds.attrs["sweep"])["measures"] if "sweep" in ds.attrs else []
    listed = [m if isinstance(m, str) else m[1].get("label", m[0]) for m in listed]  # [name, {args}] entries
    present = [m for m in ds.data_vars if m not in ("finite", "values")]
    return [m for m in listed if m in present] + [m for m in present if m not in listed]


def _mean_over_seeds(da):
    return da.mean("seed") if "seed" in da.dims else da


def example_images(ds, selections: list[dict], seed: int = 0) -> list[np.ndarray]:
    """Re-create example functions of a finished sweep (networks are pure functions of their key)."""
    from .sweep.engine import sample_network  # the sweep's own sampling, so the examples are its networks

    sweep = _sweep_of(ds)
    return [sample_network(sweep, {"seed": seed, **sel})[0] for sel in selections]


def plot_heatmaps(ds, out_dir: str | Path, examples: bool = True) -> list[Path]:
    """One heatmap per activation (depth x weight scale, mean over seeds) per measure, plus example functions."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    activations = [str(a) for a in ds.activation.values] if "activation" in ds.dims else [None]
    measures = _measure_names(ds)
    for measure in measures:
        mean = _mean_over_seeds(ds[measure])
        vmin, vmax = float(np.nanmin(mean.values)), float(np.nanmax(mean.values))
        fig, axes = plt.subplots(1, len(activations), figsize=(2.6 * len(activations) + 1.2, 3.0), squeeze=False,
                                 constrained_layout=True)
        im = None
        for ax, act in zip(axes[0], activations):
            panel = mean.sel(activation=act) if act is not None else mean
            panel = panel.transpose("depth", "weight_scale")
            scales = panel.weight_scale.values
            im = ax.imshow(panel.values, origin="lower", aspect="auto", vmin=vmin, vmax=vmax, cmap="viridis")
            ax.set_title(act or "")
            ticks = np.linspace(0, len(scales) - 1, min(4, len(scales))).round().astype(int)
            ax.set_xticks(ticks, [f"{scales[t]:.3g}" for t in ticks])
            ax.set_yticks(range(len(panel.depth)), [str(d) for d in panel.depth.values])
            ax.set_xlabel("weight scale")
            if ax is axes[0][0]:
                ax.set_ylabel("depth")
        fig.colorbar(im, ax=axes[0].tolist(), shrink=0.9, label=MEASURE_LABELS.get(measure, measure))
        fig.suptitle(f"{MEASURE_LABELS.get(measure, measure)}, mean over {ds.sizes.get('seed', 1)} seeds")
        path = out_dir / f"heatmap_{measure}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    if examples and "depth" in ds.dims and "weight_scale" in ds.dims:
        depths = [int(ds.depth.values[0]), int(ds.depth.values[-1])]
        scales = [float(ds.weight_scale.values[0]), float(ds.weight_scale.values[len(ds.weight_scale) // 2]),
                  float(ds.weight_scale.values[-1])]
        cols = [(d, s) for d in depths for s in scales]
        fig, axes = plt.subplots(len(activations), len(cols), figsize=(1.5 * len(cols), 1.5 * len(activations)),
                                 squeeze=False, constrained_layout=True)
        for r, act in enumerate(activations):
            sels = [{"depth": d, "weight_scale": s, **({"activation": act} if act else {})} for d, s in cols]
            for c, img in enumerate(example_images(ds, sels)):
                ax = axes[r][c]
                ax.imshow(img, cmap="RdBu_r", origin="lower")
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    ax.set_title(f"depth {cols[c][0]}\nscale {cols[c][1]:.3g}", fontsize=7)
                if c == 0:
                    ax.set_ylabel(act or "", fontsize=8)
        fig.suptitle("Example functions (seed 0)", fontsize=9)
        path = out_dir / "examples.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def _curves(parts: Mapping[str, object]):
    """(panel, line, measure) -> (x, mean, std) from suite parts; see plot_curves for the naming rule."""
    curves = {}
    for name, ds in parts.items():
        measures = _measure_names(ds)
        if "activation" in ds.dims:
            panels = [(str(a), ds.sel(activation=a)) for a in ds.activation.values]
            line = name
        elif "-" in name:
            panel_name, line = name.split("-", 1)
            panels = [(panel_name, ds)]
        else:
            panels = [("*", ds)]
            line = name
        for panel, sub in panels:
            for m in measures:
                da = sub[m]
                extra = [d for d in da.dims if d not in ("weight_scale", "seed")]
                if extra:
                    da = da.isel({d: 0 for d in extra})
                x = da.weight_scale.values
                curves[(panel, line, m)] = (x, da.mean("seed").values, da.std("seed").values)
    return curves


def plot_curves(parts: Mapping[str, object], out_dir: str | Path) -> list[Path]:
    """Mean +- std over seeds against weight scale: one panel per activation, one line per part.

    Parts named ``"<activation>-<line>"`` go to that activation's panel; parts with an ``activation`` axis
    give one line (the part's name) in every activation's panel; other parts (e.g. the Unbiased model)
    are a reference line drawn in every panel.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    curves = _curves(parts)
    panels = sorted({p for p, _, _ in curves if p != "*"}, key=lambda p: list(dict.fromkeys(
        p2 for p2, _, _ in curves)).index(p))
    measures = list(dict.fromkeys(m for _, _, m in curves))
    lines = list(dict.fromkeys(line for _, line, _ in curves))
    colors = {line: plt.cm.tab10(i % 10) for i, line in enumerate(lines)}
    fig, axes = plt.subplots(len(measures), len(panels), figsize=(2.8 * len(panels) + 0.5, 2.4 * len(measures)),
                             squeeze=False, constrained_layout=True)
    for r, m in enumerate(measures):
        for c, panel in enumerate(panels):
            ax = axes[r][c]
            for line in lines:
                for key in ((panel, line, m), ("*", line, m)):
                    if key in curves:
                        x, mean, std = curves[key]
                        style = "--" if key[0] == "*" else "-"
                        ax.plot(x, mean, style, color=colors[line], label=line, lw=1.4)
                        ax.fill_between(x, mean - std, mean + std, color=colors[line], alpha=0.15, lw=0)
            ax.set_xscale("log")
            if r == 0:
                ax.set_title(panel)
            if c == 0:
                ax.set_ylabel(MEASURE_LABELS.get(m, m))
            if r == len(measures) - 1:
                ax.set_xlabel("weight scale")
    handles, labels = axes[0][0].get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    fig.legend(unique.values(), unique.keys(), loc="outside lower center", ncol=min(6, len(unique)), fontsize=8)
    path = out_dir / "curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties), NaN pairs dropped."""
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if a.size < 3:
        return float("nan")

    def rank(v):
        order = np.argsort(v, kind="mergesort")
        ranks = np.empty(v.size)
        ranks[order] = np.arange(v.size)
        _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
        sums = np.bincount(inverse, weights=ranks)
        return (sums / counts)[inverse]

    ra, rb = rank(a), rank(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denom = np.sqrt((ra ** 2).sum() * (rb ** 2).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")


def plot_correlations(ds, out_dir: str | Path) -> list[Path]:
    """Scatter of every pair of measures (one point per architecture, mean over seeds), Spearman rho."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    measures = _measure_names(ds)
    means = {m: _mean_over_seeds(ds[m]).values.ravel() for m in measures}
    color = None
    if "activation" in ds.dims:
        act = _mean_over_seeds(ds[measures[0]]).activation
        codes = np.broadcast_to(
            np.arange(ds.sizes["activation"]).reshape([-1 if d == "activation" else 1
                                                       for d in _mean_over_seeds(ds[measures[0]]).dims]),
            _mean_over_seeds(ds[measures[0]]).shape).ravel()
        color = codes
        act_names = [str(a) for a in act.values]
    n = len(measures)
    fig, axes = plt.subplots(n, n, figsize=(1.9 * n, 1.9 * n), squeeze=False, constrained_layout=True)
    rho = np.full((n, n), np.nan)
    for i, mi in enumerate(measures):
        for j, mj in enumerate(measures):
            ax = axes[i][j]
            rho[i, j] = spearman(means[mi], means[mj])
            if i == j:
                ax.hist(means[mi][np.isfinite(means[mi])], bins=30, color="0.5")
            else:
                ax.scatter(means[mj], means[mi], s=4, c=color, cmap="tab10", vmin=0, vmax=9)
                ax.set_title(f"rho = {rho[i, j]:.2f}", fontsize=7)
            ax.tick_params(labelsize=6)
            if i == n - 1:
                ax.set_xlabel(MEASURE_LABELS.get(mj, mj), fontsize=7)
            if j == 0:
                ax.set_ylabel(MEASURE_LABELS.get(mi, mi), fontsize=7)
    if color is not None:
        handles = [plt.Line2D([], [], marker="o", ls="", color=plt.cm.tab10(k), label=a)
                   for k, a in enumerate(act_names)]
        fig.legend(handles=handles, loc="outside right upper", fontsize=7)
    path = out_dir / "correlations.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    md = ["| | " + " | ".join(measures) + " |", "|---" * (n + 1) + "|"]
    for i, m in enumerate(measures):
        md.append(f"| {m} | " + " | ".join(f"{rho[i, j]:.2f}" for j in range(n)) + " |")
    table = out_dir / "spearman.md"
    table.write_text("Spearman rank correlation between measures across architectures "
                     "(one point per architecture, mean over seeds)\n\n" + "\n".join(md) + "\n")
    return [path, table]


def _bootstrap_effect(low: np.ndarray, high: np.ndarray, n_boot: int = 2000, seed: int = 0):
    """Paired effect mean(high - low) over seeds with a 95% percentile bootstrap interval."""
    diff = np.asarray(high, float) - np.asarray(low, float)
    diff = diff[np.isfinite(diff)]
    if diff.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    boots = diff[rng.integers(0, diff.size, size=(n_boot, diff.size))].mean(axis=1)
    return float(diff.mean()), float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def table1_rows(parts: Mapping[str, object], claims: Mapping[str, str], measure: str = "fourier",
                relative_threshold: float = 0.1) -> list[dict]:
    """Classify each component from the data.

    For each part (one component varied between a low and a high setting, same seeds for both) the effect is
    the paired mean of (high - low) over seeds with a 95% bootstrap interval. The component is "higher" or
    "lower" when the interval excludes 0 AND the effect is at least ``relative_threshold`` of the low
    setting's mean; otherwise "no impact".
    """
    rows = []
    for name, ds in parts.items():
        label = json.loads(ds.attrs["sweep"]).get("name", name)
        axis = [d for d in ds.dims if d not in ("seed", "weight_scale")] or ["weight_scale"]
        axis = axis[0]
        da = ds[measure]
        for d in da.dims:
            if d not in (axis, "seed"):
                da = da.isel({d: 0})
        low, high = da.isel({axis: 0}).values, da.isel({axis: 1}).values
        effect, lo, hi = _bootstrap_effect(low, high)
        base = float(np.nanmean(low))
        significant = np.isfinite(lo) and (lo > 0 or hi < 0) and abs(effect) >= relative_threshold * abs(base)
        ours = ("higher" if effect > 0 else "lower") if significant else "no impact"
        claim = claims.get(label, "")
        rows.append({"component": label, "axis": axis, "low": float(np.nanmean(low)), "high": float(np.nanmean(high)),
                     "effect": effect, "ci_low": lo, "ci_high": hi, "ours": ours, "paper": claim,
                     "agrees": ours == claim, "seeds": int(ds.sizes.get("seed", 1))})
    return rows


def table1_markdown(rows: list[dict], measure: str = "fourier") -> str:
    lines = [f"| Component | Paper (Table 1) | Ours | {MEASURE_LABELS.get(measure, measure)}: low -> high | "
             "Effect [95% CI] | Agrees |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['component']} | {r['paper']} | **{r['ours']}** | {r['low']:.4f} -> {r['high']:.4f} | "
                     f"{r['effect']:+.4f} [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}] | "
                     f"{'yes' if r['agrees'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def plot_table1(parts: Mapping[str, object], out_dir: str | Path, claims: Mapping[str, str]) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    measures = _measure_names(next(iter(parts.values())))
    text = ["# Table 1, reproduced from the data\n",
            "Each component is varied alone around the base network; effect = paired mean over seeds of "
            "(high - low), 95% bootstrap interval. 'no impact' = interval covers 0 or |effect| < 10% of the "
            "low setting.\n"]
    for m in measures:
        text.append(f"\n## {MEASURE_LABELS.get(m, m)}\n\n" + table1_markdown(table1_rows(parts, claims, m), m))
    path = out_dir / "table1.md"
    path.write_text("".join(text))
    paths.append(path)
    rows = table1_rows(parts, claims, measures[0])
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.0), constrained_layout=True)
    y = np.arange(len(rows))[::-1]
    eff = np.array([r["effect"] for r in rows])
    err = np.array([[r["effect"] - r["ci_low"], r["ci_high"] - r["effect"]] for r in rows]).T
    colors = ["tab:red" if r["ours"] == "higher" else "tab:blue" if r["ours"] == "lower" else "0.5" for r in rows]
    ax.barh(y, eff, xerr=err, color=colors)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(y, [f"{r['component']} (paper: {r['paper']})" for r in rows], fontsize=8)
    ax.set_xlabel(f"change in {MEASURE_LABELS.get(measures[0], measures[0])} (high - low)")
    path = out_dir / "table1.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(path)
    return paths


def plot_result(result, figure: str, out_dir: str | Path, claims: Mapping[str, str] | None = None) -> list[Path]:
    """Draw ``figure`` ("heatmaps", "curves", "correlations", "table1") for a Dataset or a dict of parts."""
    parts = result if isinstance(result, dict) else {"main": result}  # (a Dataset is a Mapping too)
    if figure == "heatmaps":
        paths = []
        for name, ds in parts.items():
            sub = Path(out_dir) if len(parts) == 1 else Path(out_dir) / name
            paths += plot_heatmaps(ds, sub)
        return paths
    if figure == "curves":
        return plot_curves(parts, out_dir)
    if figure == "correlations":
        paths = []
        for name, ds in parts.items():
            sub = Path(out_dir) if len(parts) == 1 else Path(out_dir) / name
            paths += plot_correlations(ds, sub)
        return paths
    if figure == "table1":
        return plot_table1(parts, out_dir, claims or {})
    raise ValueError(f"figure={figure!r} is unknown; allowed: heatmaps, curves, correlations, table1")
