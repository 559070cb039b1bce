"""The paper's Figures 3-6 and Table 1 from sweep results (DESIGN.md section 18): heatmaps with example functions,
mean +- std curves, correlation scatters, galleries, and Table 1 with its bootstrap statistics. Matplotlib;
importing this module leaves the session's backend alone (a notebook keeps its inline plots), and without a display
matplotlib itself falls back to Agg. Every figure is saved and closed."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

import matplotlib.pyplot as plt
import numpy as np

from ..errors import ConfigError
from ..sweep.engine import sample_network  # the sweep's own sampling, so the examples are its networks
from ._common import MEASURE_LABELS, each_part, save_figure, show_image, spearman, sweep_dict

__all__ = ["plot_heatmaps", "plot_curves", "plot_correlations", "table1_rows", "table1_markdown", "spearman",
           "example_images", "save_figure", "MEASURE_LABELS"]


def _sweep_of(ds):
    return ds.rj.sweep


def _measure_names(ds) -> list[str]:
    """The measures of a result, in the order the sweep listed them (stores list variables alphabetically)."""
    return ds.rj.measures


def _mean_over_seeds(da):
    return da.mean("seed") if "seed" in da.dims else da


def example_images(ds, selections: list[dict], seed: int = 0) -> list[np.ndarray]:
    """Re-create example functions of a finished sweep (networks are pure functions of their key)."""
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
        # other axes (width, bias scale, ...): the heatmap at their first value, named in the title
        extra = {d: mean[d].values[0] for d in mean.dims if d not in ("activation", "depth", "weight_scale")}
        mean = mean.isel({d: 0 for d in extra})
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
        at = "".join(f", {d}={v}" for d, v in extra.items())
        fig.suptitle(f"{MEASURE_LABELS.get(measure, measure)}, mean over {ds.sizes.get('seed', 1)} seeds{at}")
        path = out_dir / f"heatmap_{measure}.png"
        paths.append(save_figure(fig, path))
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
                show_image(axes[r][c], img, f"depth {cols[c][0]}\nscale {cols[c][1]:.3g}" if r == 0 else None,
                           (act or "") if c == 0 else None)
        fig.suptitle("Example functions (seed 0)", fontsize=9)
        path = out_dir / "examples.png"
        paths.append(save_figure(fig, path))
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
    if not panels:  # only reference parts (e.g. the Unbiased model alone): one panel with their lines
        panels = ["*"]
    measures = list(dict.fromkeys(m for _, _, m in curves))
    lines = list(dict.fromkeys(line for _, line, _ in curves))
    colors = {line: plt.cm.tab10(i % 10) for i, line in enumerate(lines)}
    fig, axes = plt.subplots(len(measures), len(panels), figsize=(2.8 * len(panels) + 0.5, 2.4 * len(measures)),
                             squeeze=False, constrained_layout=True)
    for r, m in enumerate(measures):
        for c, panel in enumerate(panels):
            ax = axes[r][c]
            for line in lines:
                for key in dict.fromkeys(((panel, line, m), ("*", line, m))):
                    if key in curves:
                        x, mean, std = curves[key]
                        style = "--" if key[0] == "*" else "-"
                        ax.plot(x, mean, style, color=colors[line], label=line, lw=1.4)
                        ax.fill_between(x, mean - std, mean + std, color=colors[line], alpha=0.15, lw=0)
            ax.set_xscale("log")
            if r == 0:
                ax.set_title(panel if panel != "*" else ", ".join(parts))
            if c == 0:
                ax.set_ylabel(MEASURE_LABELS.get(m, m))
            if r == len(measures) - 1:
                ax.set_xlabel("weight scale")
    handles, labels = axes[0][0].get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    fig.legend(unique.values(), unique.keys(), loc="outside lower center", ncol=min(6, len(unique)), fontsize=8)
    path = out_dir / "curves.png"
    save_figure(fig, path)
    return [path]


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
    save_figure(fig, path)
    md = ["| | " + " | ".join(measures) + " |", "|---" * (n + 1) + "|"]
    for i, m in enumerate(measures):
        md.append(f"| {m} | " + " | ".join(f"{rho[i, j]:.2f}" for j in range(n)) + " |")
    table = out_dir / "spearman.md"
    table.write_text("Spearman rank correlation between measures across architectures "
                     "(one point per architecture, mean over seeds)\n\n" + "\n".join(md) + "\n")
    return [path, table]


# ---- Table 1 ---------------------------------------------------------------------------------------------
# A Table-1 result is a dict of parts, one per component. A part's first sweep axis is the component: its last
# value is the high setting and every earlier value a low setting. Its other dimensions except ``seed`` are the
# panel: each (low value, panel cell) is one base, and the first value of every axis is the reference base (an
# older single-base result is a panel of one base). See sweeps/table1.py.

VERDICTS = ("lower", "no impact", "higher")


def _bootstrap_effect(low: np.ndarray, high: np.ndarray, n_boot: int = 2000, seed: int = 0):
    """Paired effect mean(high - low) over seeds with a 95% percentile bootstrap interval."""
    diff = np.asarray(high, float) - np.asarray(low, float)
    diff = diff[np.isfinite(diff)]
    if diff.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    boots = diff[rng.integers(0, diff.size, size=(n_boot, diff.size))].mean(axis=1)
    return float(diff.mean()), float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def _verdict(effect: float, ci_low: float, ci_high: float, base: float, relative_threshold: float) -> str:
    """The verdict: "higher"/"lower" when the interval excludes 0 and |effect| >= relative_threshold * |base|."""
    excludes_zero = np.isfinite(ci_low) and (ci_low > 0 or ci_high < 0)
    significant = excludes_zero and abs(effect) >= relative_threshold * abs(base)
    return ("higher" if effect > 0 else "lower") if significant else "no impact"


def _component_axis(ds) -> str:
    """A part's component axis: the first axis of its sweep (else its first dimension other than seed)."""
    if "sweep" in ds.attrs:
        axes = list(sweep_dict(ds)["axes"])
        if axes and axes[0] != "seed":
            return axes[0]
    return [d for d in ds.dims if d != "seed"][0]


def _item(value):
    return value.item() if isinstance(value, np.generic) else value


def _fixed_setting(ds, axis: str):
    """The value of ``axis`` that a part does not vary: its model's field (e.g. ``prior``), else None."""
    if "sweep" not in ds.attrs:
        return None
    return sweep_dict(ds).get("model", {}).get(axis)


def _component_pairs(name: str, ds, measure: str, where: Mapping | None = None) -> dict:
    """One part as paired arrays: ``low``, ``high`` of shape (bases, seeds), one row per base.

    Bases are ordered low value first, then the panel dimensions in the part's order (C order), so base 0 is
    the reference base. ``bases[i]`` holds the panel coordinates of base ``i``, ``settings[i]`` its
    (low, high) setting of the component. ``where`` keeps only the bases whose panel coordinates match it
    (e.g. ``{"prior": "normal"}``); for an axis the part does not vary, its model's value of that field decides
    (a part without any matching base has no bases).
    """
    label = sweep_dict(ds).get("name", name) if "sweep" in ds.attrs else name
    label = label or name
    axis = _component_axis(ds)
    da = ds[measure]
    panel = [d for d in da.dims if d not in (axis, "seed")]
    da = da.transpose(axis, *panel, *(["seed"] if "seed" in da.dims else []))
    values = np.ascontiguousarray(da.values)  # the stored dtype: per-base means are those of the stored values
    if "seed" not in da.dims:
        values = values[..., None]
    if values.shape[0] < 2:
        raise ValueError(f"Table 1 part {name!r}: its component axis {axis!r} has {values.shape[0]} value(s); "
                         "it needs a low and a high setting")
    n_seeds = values.shape[-1]
    lows = values[:-1].reshape(-1, n_seeds)
    highs = np.broadcast_to(values[-1:], values[:-1].shape).reshape(-1, n_seeds)
    axis_values = [_item(v) for v in da[axis].values]
    cells = [()]
    for d in panel:
        cells = [c + ((d, _item(v)),) for c in cells for v in da[d].values]
    bases = [dict(c) for _ in axis_values[:-1] for c in cells]
    settings = [(v, axis_values[-1]) for v in axis_values[:-1] for _ in cells]
    if where:
        keep = []
        for i, cell in enumerate(bases):
            coords = {**cell, axis: settings[i][0]}
            keep.append(all((coords[k] if k in coords else _fixed_setting(ds, k)) == v for k, v in where.items()))
        keep = np.asarray(keep, bool)
        lows, highs = lows[keep], highs[keep]
        bases = [b for b, k in zip(bases, keep) if k]
        settings = [t for t, k in zip(settings, keep) if k]
    return {"component": label, "axis": axis, "panel": panel, "bases": bases, "settings": settings,
            "low": lows, "high": highs, "seeds": n_seeds}


def _find_base(pairs: dict, base: Mapping | None) -> int:
    """Index of the base matching ``base``: panel coordinates, and for the component's own axis its low setting
    (e.g. ``{"activation": "sin"}`` in the activation part). Keys a part does not vary are ignored."""
    if not base:
        return 0
    for i, (cell, (low, _)) in enumerate(zip(pairs["bases"], pairs["settings"])):
        coords = {**cell, pairs["axis"]: low} if len(set(pairs["settings"])) > 1 else cell
        if all(coords[k] == v for k, v in base.items() if k in coords):
            return i
    raise KeyError(f"Table 1 part {pairs['component']!r} has no base {dict(base)!r}")


def table1_rows(parts: Mapping[str, object], claims: Mapping[str, str], measure: str = "fourier",
                relative_threshold: float = 0.1, base: Mapping | None = None,
                where: Mapping | None = None) -> list[dict]:
    """Classify each component at one base (default: the reference base, the first value of every panel axis).

    For each part (one component varied between a low and a high setting, same seeds for both) the effect is
    the paired mean of (high - low) over seeds with a 95% bootstrap interval. The component is "higher" or
    "lower" when the interval excludes 0 AND the effect is at least ``relative_threshold`` of the low
    setting's mean; otherwise "no impact". ``base`` picks another base of a panel by its coordinates, e.g.
    ``{"activation": "sin", "depth": 2, "weight_scale": 5.0}`` (keys a part does not vary are ignored; a
    part without that base raises ``KeyError``). ``where`` restricts the parts to the bases matching it first
    (``{"prior": "normal"}``: the first such base is the reference); parts with no matching base are left out.
    """
    rows = []
    for name, ds in parts.items():
        pairs = _component_pairs(name, ds, measure, where)
        if not pairs["bases"]:
            continue
        i = _find_base(pairs, base)
        low, high = pairs["low"][i], pairs["high"][i]
        effect, lo, hi = _bootstrap_effect(low, high)
        ours = _verdict(effect, lo, hi, float(np.nanmean(low)), relative_threshold)
        claim = claims.get(pairs["component"], "")
        rows.append({"component": pairs["component"], "axis": pairs["axis"], "low": float(np.nanmean(low)),
                     "high": float(np.nanmean(high)), "effect": effect, "ci_low": lo, "ci_high": hi, "ours": ours,
                     "paper": claim, "agrees": ours == claim, "seeds": pairs["seeds"], "base": pairs["bases"][i],
                     "setting": pairs["settings"][i]})
    return rows


def _pooled_effect(low: np.ndarray, high: np.ndarray, n_boot: int = 2000, seed: int = 0) -> dict:
    """The paired effect pooled over bases, with a 95% bootstrap interval.

    ``low``, ``high``: (bases, seeds), the same seeds in every base. Per base: effect = mean over seeds of
    (high - low) and low = mean of the low setting (pairs with a non-finite value left out). Pooled: ``effect``
    = mean over bases of the effects, ``low``/``high`` = mean over bases of the means, ``relative`` = effect /
    |low| (the share of the low setting that the single-base rule compares with its threshold), and
    ``relative_mean`` = mean over bases of each base's effect / |low| (weighs a base near zero heavily).
    The bootstrap resamples seeds with one draw shared by every base: a seed is the same network key in every
    base (the same weights up to scale, a shared depth trunk), so bases are not independent samples and a joint
    draw keeps their correlation. The interval is over seeds, for this panel of bases.
    """
    low, high = np.asarray(low, float), np.asarray(high, float)
    valid = np.isfinite(low) & np.isfinite(high)
    weight = valid.astype(float)
    diff, base, treated = (np.where(valid, x, 0.0) for x in (high - low, low, high))

    def pooled(counts):  # counts (draws, seeds) -> per draw: mean over bases of (effect, low, high, effect/|low|)
        with np.errstate(invalid="ignore", divide="ignore"):
            n = counts @ weight.T  # (draws, bases)
            effect, mean_low, mean_high = ((counts @ x.T) / n for x in (diff, base, treated))
            per_base = np.where(mean_low != 0, effect / np.abs(mean_low), np.nan)
        return tuple(_nanmean(x) for x in (effect, mean_low, mean_high, per_base))

    effect, mean_low, mean_high, relative_mean = (float(x[0]) for x in pooled(np.ones((1, low.shape[1]))))
    rng = np.random.default_rng(seed)
    counts = np.zeros((n_boot, low.shape[1]))
    np.add.at(counts, (np.arange(n_boot)[:, None], rng.integers(0, low.shape[1], size=counts.shape)), 1.0)
    effect_boot, low_boot, _, _ = pooled(counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        relative_boot = effect_boot / np.abs(low_boot)

    def interval(x):
        x = x[np.isfinite(x)]
        return (float(np.percentile(x, 2.5)), float(np.percentile(x, 97.5))) if x.size else (np.nan, np.nan)

    (lo, hi), (rel_lo, rel_hi) = interval(effect_boot), interval(relative_boot)
    relative = effect / abs(mean_low) if mean_low else float("nan")
    return {"effect": effect, "ci_low": lo, "ci_high": hi, "low": mean_low, "high": mean_high,
            "relative": relative, "relative_ci_low": rel_lo, "relative_ci_high": rel_hi,
            "relative_mean": relative_mean}


def _nanmean(a: np.ndarray) -> np.ndarray:
    """Mean over the last axis of the finite entries (NaN where there is none), without warnings."""
    finite = np.isfinite(a)
    n = finite.sum(axis=-1)
    total = np.where(finite, a, 0.0).sum(axis=-1)
    return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def table1_panel_rows(parts: Mapping[str, object], claims: Mapping[str, str], measure: str = "fourier",
                      relative_threshold: float = 0.1, n_boot: int = 2000, seed: int = 0,
                      where: Mapping | None = None) -> list[dict]:
    """Classify each component over the panel of bases.

    Per component (``_pooled_effect``): ``effect`` = mean over bases of the paired effect, with a 95% bootstrap
    interval resampling seeds; ``low``/``high`` = mean over bases of each setting's mean; ``relative`` = effect /
    |low|. ``ours`` applies the single-base rule to the pooled numbers: "higher"/"lower" when the interval
    excludes 0 and |effect| >= ``relative_threshold`` * |low|, else "no impact" (a panel of one base gives
    that base's verdict). Every base is also classified alone (``table1_rows``' rule); ``shares`` counts the
    bases per verdict (a base without a finite effect is left out), ``reference`` is the verdict at the
    reference base (base 0), and ``base_rows`` lists every base's row. ``where`` pools only the bases matching
    it (``{"prior": "normal"}``); parts with no matching base are left out.
    """
    rows = []
    for name, ds in parts.items():
        pairs = _component_pairs(name, ds, measure, where)
        if not pairs["bases"]:
            continue
        base_rows = []
        for cell, setting, low, high in zip(pairs["bases"], pairs["settings"], pairs["low"], pairs["high"]):
            effect, lo, hi = _bootstrap_effect(low, high)
            mean_low = float(np.nanmean(low)) if np.isfinite(low).any() else float("nan")
            base_rows.append({"base": cell, "setting": setting, "low": mean_low,
                              "high": float(np.nanmean(high)) if np.isfinite(high).any() else float("nan"),
                              "effect": effect, "ci_low": lo, "ci_high": hi,
                              "relative": effect / abs(mean_low) if mean_low else float("nan"),
                              "ours": _verdict(effect, lo, hi, mean_low, relative_threshold) if np.isfinite(effect)
                              else "no data"})
        pooled = _pooled_effect(pairs["low"], pairs["high"], n_boot=n_boot, seed=seed)
        ours = _verdict(pooled["effect"], pooled["ci_low"], pooled["ci_high"], pooled["low"], relative_threshold)
        shares = {v: sum(r["ours"] == v for r in base_rows) for v in VERDICTS}
        claim = claims.get(pairs["component"], "")
        rows.append({"component": pairs["component"], "axis": pairs["axis"], "paper": claim, "ours": ours,
                     "agrees": ours == claim, **pooled, "shares": shares, "bases": sum(shares.values()),
                     "seeds": pairs["seeds"], "reference": base_rows[0]["ours"], "base_rows": base_rows})
    return rows


def table1_markdown(rows: list[dict], measure: str = "fourier") -> str:
    """Rows of ``table1_rows`` (one base) or of ``table1_panel_rows`` (pooled over the panel) as Markdown."""
    if rows and "shares" in rows[0]:
        return _panel_markdown(rows)
    lines = [f"| Component | Paper (Table 1) | Ours | {MEASURE_LABELS.get(measure, measure)}: low -> high | "
             "Effect [95% CI] | Agrees |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['component']} | {r['paper']} | **{r['ours']}** | {r['low']:.4f} -> {r['high']:.4f} | "
                     f"{r['effect']:+.4f} [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}] | "
                     f"{'yes' if r['agrees'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def _panel_markdown(rows: list[dict]) -> str:
    lines = ["| Component | Paper (Table 1) | Ours (pooled) | Pooled effect [95% CI] | % of low | "
             "Bases lower / none / higher | Reference base | Agrees |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s = r["shares"]
        lines.append(f"| {r['component']} | {r['paper']} | **{r['ours']}** | {r['effect']:+.4f} "
                     f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}] | {100 * r['relative']:+.0f}% | {s['lower']} / "
                     f"{s['no impact']} / {s['higher']} of {r['bases']} | {r['reference']} | "
                     f"{'yes' if r['agrees'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def _format_base(cell: Mapping) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in cell.items())


def _panel_of(parts: Mapping[str, object]) -> dict:
    """Every panel axis with its values in order (the union over parts; axes in the order of the part with the
    most panel axes)."""
    panels = [[d for d in ds.dims if d not in (_component_axis(ds), "seed")] for ds in parts.values()]
    order = sorted(range(len(panels)), key=lambda i: -len(panels[i]))
    panel: dict[str, list] = {}
    for i in order:
        ds = list(parts.values())[i]
        for d in panels[i]:
            seen = panel.setdefault(d, [])
            seen += [v for v in (_item(x) for x in ds[d].values) if v not in seen]
    return panel


# A panel axis reported group by group instead of pooled: its settings change what "weight scale" means, so
# pooling them would mix two parameterizations (DESIGN.md section 20: the normal prior beside the paper's).
TABLE1_SPLIT_AXES = ("prior",)


def _table1_groups(parts: Mapping[str, object], panel: Mapping[str, list]) -> list[dict | None]:
    """The groups a Table 1 is reported in: one per value of a split axis the panel varies, else one (None)."""
    groups: list[dict | None] = [None]
    for axis in TABLE1_SPLIT_AXES:
        if len(panel.get(axis, ())) > 1:
            groups = [{**(g or {}), axis: v} for g in groups for v in panel[axis]]
    return groups


def _group_label(group: Mapping | None) -> str:
    return ", ".join(f"{k} {v}" for k, v in group.items()) if group else ""


def table1_verdict_matrix(parts: Mapping[str, object], claims: Mapping[str, str], measures: Iterable[str],
                          groups: Iterable[Mapping | None] = (None,)) -> str:
    """Markdown: one row per component, one column per (group, measure): the pooled verdict and the pooled effect
    as % of the low setting, with the paper's claim beside. Where the measures disagree the row says which
    measure supports which reading."""
    measures, groups = list(measures), list(groups)
    cells: dict[str, dict] = {}
    order: list[str] = []
    for g in groups:
        for m in measures:
            for r in table1_panel_rows(parts, claims, m, where=g):
                if r["component"] not in cells:
                    cells[r["component"]] = {"paper": r["paper"]}
                    order.append(r["component"])
                cells[r["component"]][(_group_label(g), m)] = r
    columns = [(_group_label(g), m) for g in groups for m in measures]
    head = [f"{MEASURE_LABELS.get(m, m)}" + (f" ({g})" if g else "") for g, m in columns]
    lines = ["| Component | Paper | " + " | ".join(head) + " |", "|---|---|" + "---|" * len(columns)]
    for comp in order:
        row = cells[comp]
        out = []
        for col in columns:
            r = row.get(col)
            if r is None:
                out.append("-")
                continue
            mark = "**" if r["ours"] == r["paper"] else ""
            out.append(f"{mark}{r['ours']}{mark} ({100 * r['relative']:+.0f}%)")
        lines.append(f"| {comp} | {row['paper']} | " + " | ".join(out) + " |")
    return ("Pooled verdict per measure (effect as % of the low setting); **bold** = agrees with the paper.\n\n"
            + "\n".join(lines) + "\n")


def plot_table1(parts: Mapping[str, object], out_dir: str | Path, claims: Mapping[str, str]) -> list[Path]:
    """``table1.md`` (verdicts at a glance, the panel pooled, then the reference base alone; per prior when the
    panel varies it), ``table1_bases.csv`` (every base's effect) and ``table1.png`` (pooled effects with every
    base's, first measure, one column per prior)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    measures = _measure_names(next(iter(parts.values())))
    panel = _panel_of(parts)
    groups = _table1_groups(parts, panel)
    reference = {k: v[0] for k, v in panel.items()}
    panel_rows = {(_group_label(g), m): table1_panel_rows(parts, claims, m, where=g) for g in groups
                  for m in measures}
    is_panel = len(groups) > 1 or any(r["bases"] > 1 for rows in panel_rows.values() for r in rows)
    text = ["# Table 1, reproduced from the data\n"]
    if is_panel:
        text.append(
            "\nEach component is varied alone, with the same seeds for both settings, around every base of the panel "
            + " x ".join(f"{k} {{{', '.join(f'{x:g}' if isinstance(x, float) else str(x) for x in v)}}}"
                         for k, v in panel.items())
            + ". Per base: effect = paired mean over seeds of (high - low). Pooled effect = mean over bases of "
            "the effects, 95% bootstrap interval resampling seeds (one draw shared by all bases, whose networks "
            "share keys); % of low = pooled effect / mean over bases of the low setting. Pooled verdict "
            "'higher'/'lower' when the interval excludes 0 and |pooled effect| >= 10% of that low mean (the "
            "single-base rule on the pooled numbers). Bases lower / none / higher: every base classified alone by "
            "the single-base rule. Activation = ReLU instead of the base's activation (ReLU bases skipped); "
            "depth and weight magnitude set their own axis, so their bases are the cells of the other panel axes. "
            "Reference base: the single base of the table below.\n")
        if len(groups) > 1:
            text.append("\nThe priors are reported apart, never pooled: under `paper` the first layer's range "
                        "sqrt(6 / (in_dim + width)) shrinks as the width grows, under `normal` (W ~ N(0, a^2 / "
                        "fan_in)) it does not. A part whose model fixes the prior (no prior axis) is reported "
                        "under that prior only.\n")
        text.append("\n## Verdicts at a glance\n\n" + table1_verdict_matrix(parts, claims, measures, groups))
        for g in groups:
            for m in measures:
                title = f"Panel: {MEASURE_LABELS.get(m, m)}" + (f", {_group_label(g)}" if g else "")
                text.append(f"\n## {title}\n\n" + table1_markdown(panel_rows[(_group_label(g), m)], m))
    head = "###" if is_panel else "##"
    for g in groups:
        if is_panel:
            base = {**reference, **(g or {})}
            text.append(f"\n## Reference base alone ({_format_base(base)})\n")
        text.append(("\n" if is_panel else "") + "Each component is varied alone around the base network; effect = "
                    "paired mean over seeds of (high - low), 95% bootstrap interval. 'no impact' = interval covers 0 "
                    "or |effect| < 10% of the low setting.\n")
        for m in measures:
            text.append(f"\n{head} {MEASURE_LABELS.get(m, m)}\n\n"
                        + table1_markdown(table1_rows(parts, claims, m, where=g), m))
    path = out_dir / "table1.md"
    path.write_text("".join(text))
    paths = [path]

    csv = ["measure,component,low_setting,high_setting,base,low,high,effect,ci_low,ci_high,relative,ours"]
    for m in measures:
        for r in table1_panel_rows(parts, claims, m):
            for b in r["base_rows"]:
                csv.append(",".join([m, f'"{r["component"]}"', str(b["setting"][0]), str(b["setting"][1]),
                                     f'"{_format_base(b["base"])}"'] +
                                    [f"{b[k]:.6g}" for k in ("low", "high", "effect", "ci_low", "ci_high", "relative")]
                                    + [b["ours"]]))
    path = out_dir / "table1_bases.csv"
    path.write_text("\n".join(csv) + "\n")
    paths.append(path)

    n_rows = max(len(panel_rows[(_group_label(g), measures[0])]) for g in groups)
    fig, axes = plt.subplots(1, len(groups), figsize=(9 + 4 * (len(groups) - 1), 0.5 * n_rows + 1.2),
                             constrained_layout=True, squeeze=False, sharex=False)
    for ax, g in zip(axes[0], groups):
        rows = panel_rows[(_group_label(g), measures[0])]
        y = np.arange(len(rows))[::-1]
        eff = np.array([r["effect"] for r in rows])
        err = np.array([[r["effect"] - r["ci_low"], r["ci_high"] - r["effect"]] for r in rows]).T
        colors = ["tab:red" if r["ours"] == "higher" else "tab:blue" if r["ours"] == "lower" else "0.5" for r in rows]
        ax.barh(y, eff, xerr=np.abs(err), color=colors, alpha=0.6)
        for yi, r in zip(y, rows):
            per_base = np.array([b["effect"] for b in r["base_rows"]])
            ax.plot(per_base, np.full(per_base.shape, yi), "k.", ms=3)
            ax.plot(r["base_rows"][0]["effect"], yi, "kx", ms=7)
        ax.axvline(0, color="k", lw=0.8)
        labels = [f"{r['component']} (paper: {r['paper']})" for r in rows]
        ax.set_yticks(y, labels if ax is axes[0][0] else [r["component"][:18] for r in rows], fontsize=8)
        ax.set_xlabel(f"change in {MEASURE_LABELS.get(measures[0], measures[0])} (high - low)\n"
                      "bar: pooled (95% CI), dots: bases, x: reference base")
        if g:
            ax.set_title(_group_label(g), fontsize=9)
    path = out_dir / "table1.png"
    paths.append(save_figure(fig, path))
    return paths


def plot_component_maps(parts: Mapping[str, object], out_dir: str | Path, claims: Mapping[str, str]) -> list[Path]:
    """Where a component raises or lowers complexity: Table 1's outputs (``plot_table1``) and, per part and
    measure, one heatmap per activation of the per-cell effect (depth x weight scale) as % of the low setting,
    each cell marked + / - where the single-base rule calls it higher / lower (``components_<part>.png``)."""
    out_dir = Path(out_dir)
    paths = plot_table1(parts, out_dir, claims)
    for name, ds in parts.items():
        for measure in _measure_names(ds):
            pairs = table1_panel_rows({name: ds}, claims, measure)[0]
            cells = {}
            for b in pairs["base_rows"]:
                base = b["base"]
                cells[(base.get("activation"), base.get("depth"), base.get("weight_scale"))] = b
            activations = sorted({k[0] for k in cells}, key=[k[0] for k in cells].index)
            depths = sorted({k[1] for k in cells})
            scales = sorted({k[2] for k in cells})
            fig, axes = plt.subplots(1, len(activations), figsize=(2.6 * len(activations) + 1.2, 2.9),
                                     squeeze=False, constrained_layout=True)
            limit = max(10.0, max(abs(100 * b["relative"]) for b in cells.values() if np.isfinite(b["relative"])))
            limit = min(limit, 200.0)
            for ax, act in zip(axes[0], activations):
                grid = np.full((len(depths), len(scales)), np.nan)
                for i, d in enumerate(depths):
                    for j, w in enumerate(scales):
                        b = cells.get((act, d, w))
                        if b is None:
                            continue
                        grid[i, j] = 100 * b["relative"]
                        mark = {"higher": "+", "lower": "-"}.get(b["ours"], "")
                        ax.text(j, i, mark, ha="center", va="center", fontsize=10, color="k")
                im = ax.imshow(grid, origin="lower", cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
                ax.set_xticks(range(len(scales)), [f"{w:g}" for w in scales], fontsize=7)
                ax.set_yticks(range(len(depths)), [str(d) for d in depths], fontsize=7)
                ax.set_title(str(act), fontsize=9)
                ax.set_xlabel("weight scale", fontsize=8)
            axes[0][0].set_ylabel("depth", fontsize=8)
            fig.colorbar(im, ax=axes[0].tolist(), shrink=0.9, label="effect, % of low")
            fig.suptitle(f"{pairs['component']}: {MEASURE_LABELS.get(measure, measure)} (+/-: higher/lower, "
                         f"paper: {pairs['paper'] or '?'})", fontsize=9)
            paths.append(save_figure(fig, out_dir / f"components_{name}_{measure}.png"))
    return paths


def plot_gallery(ds, out_dir: str | Path) -> list[Path]:
    """Example functions (Figure 3): one image per (row axis value, column axis value) of a result kept with
    ``keep_values=True``, seed 0, with every measure's score in the title. Rows: the first non-numeric axis
    (e.g. activation), columns: ``weight_scale`` (else the next axis)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if "values" not in ds:
        raise ConfigError("a gallery needs the functions' values; run the sweep with keep_values=True")
    values = ds["values"].isel(seed=0) if "seed" in ds["values"].dims else ds["values"]
    dims = [d for d in values.dims if d not in ("y", "x")]
    if not dims:
        raise ConfigError("a gallery needs at least one axis besides y and x")
    cols = "weight_scale" if "weight_scale" in dims else dims[-1]
    rest = [d for d in dims if d != cols]
    values = values.transpose(*rest, cols, "y", "x")
    row_labels = [()]
    for d in rest:
        row_labels = [r + ((d, _item(v)),) for r in row_labels for v in values[d].values]
    measures = _measure_names(ds)
    n_rows, n_cols = len(row_labels), values.sizes[cols]
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.9 * n_cols, 2.1 * n_rows), squeeze=False,
                             constrained_layout=True)
    for r, label in enumerate(row_labels):
        sel = dict(label)
        for c, col_value in enumerate(values[cols].values):
            ax = axes[r][c]
            img = values.sel(sel).isel({cols: c}).values
            ax.imshow(img, origin="lower", cmap="viridis", extent=(-1, 1, -1, 1))
            scores = {m: ds[m].sel(sel).isel({cols: c}) for m in measures}
            scores = {m: float(v.isel(seed=0) if "seed" in v.dims else v) for m, v in scores.items()}
            ax.set_title("\n".join(f"{m} {v:.2f}" for m, v in scores.items()), fontsize=6)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(", ".join(str(v) for _, v in label), fontsize=8)
            if r == n_rows - 1:
                ax.set_xlabel(f"{cols} {_item(col_value)}", fontsize=8)
    path = out_dir / "gallery.png"
    return [save_figure(fig, path)]


def plot_summary(ds, out_dir: str | Path) -> list[Path]:
    """One plot per measure for a result of any axes: its mean over seeds against the remaining axes.

    No axis left: the value as text; one: a line (numeric axis) or bars (named values); two or more: a heatmap of
    the first two, at the first value of the others (named in the title).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for measure in _measure_names(ds):
        da = _mean_over_seeds(ds[measure])
        fixed = {d: da[d].values[0] for d in da.dims[2:]}
        da = da.isel({d: 0 for d in da.dims[2:]})
        label = MEASURE_LABELS.get(measure, measure)
        fig, ax = plt.subplots(figsize=(4.2, 3.2), constrained_layout=True)
        if da.ndim == 0:
            ax.text(0.5, 0.5, f"{float(da.values):.4g}", ha="center", va="center", fontsize=16)
            ax.set_axis_off()
        elif da.ndim == 1:
            dim = da.dims[0]
            coord = da[dim].values
            if np.issubdtype(coord.dtype, np.number) and coord.dtype != bool:
                ax.plot(coord, da.values, marker="o")
            else:
                ax.bar(range(len(coord)), da.values)
                ax.set_xticks(range(len(coord)), [str(c) for c in coord])
            ax.set_xlabel(dim.replace("_", " "))
            ax.set_ylabel(label)
        else:
            rows, cols = da.dims[:2]
            im = ax.imshow(da.values, origin="lower", aspect="auto", cmap="viridis")
            ax.set_yticks(range(da.sizes[rows]), [f"{v:.3g}" if isinstance(v, float) else str(v)
                                                  for v in da[rows].values.tolist()])
            ax.set_xticks(range(da.sizes[cols]), [f"{v:.3g}" if isinstance(v, float) else str(v)
                                                  for v in da[cols].values.tolist()], rotation=45)
            ax.set_ylabel(rows.replace("_", " "))
            ax.set_xlabel(cols.replace("_", " "))
            fig.colorbar(im, ax=ax, label=label)
        at = ", ".join(f"{d}={v}" for d, v in fixed.items())
        ax.set_title(f"{label}, mean over {ds.sizes.get('seed', 1)} seeds" + (f"\n({at})" if at else ""),
                     fontsize=9)
        paths.append(save_figure(fig, out_dir / f"summary_{measure}.png"))
    return paths


# ------------------------------------------------------------------------------------------------------------
# the figures of ``redshift_jax.studies.FIGURES``: fig(parts, out_dir, claims) -> written paths

def figure_heatmaps(parts: Mapping[str, object], out_dir: str | Path, claims: Mapping[str, str]) -> list[Path]:
    """``"heatmaps"`` and ``"auto"`` (a sweep file without FIGURE): depth x weight-scale heatmaps need those two
    axes; any other result (an API sweep over seeds alone, activations, widths, ...) gets the summary plots."""
    def plot(ds, sub):
        return plot_heatmaps(ds, sub) if "depth" in ds.dims and "weight_scale" in ds.dims else plot_summary(ds, sub)

    return each_part(plot, parts, out_dir)


def figure_curves(parts: Mapping[str, object], out_dir: str | Path, claims: Mapping[str, str]) -> list[Path]:
    """``"curves"``: ``plot_curves`` of all parts."""
    return plot_curves(parts, out_dir)


def figure_correlations(parts: Mapping[str, object], out_dir: str | Path, claims: Mapping[str, str]) -> list[Path]:
    """``"correlations"``: ``plot_correlations`` per part."""
    return each_part(plot_correlations, parts, out_dir)


def figure_gallery(parts: Mapping[str, object], out_dir: str | Path, claims: Mapping[str, str]) -> list[Path]:
    """``"gallery"``: ``plot_gallery`` per part."""
    return each_part(plot_gallery, parts, out_dir)
