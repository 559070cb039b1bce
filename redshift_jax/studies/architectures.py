"""Any architecture (issue 26, ``sweeps/architectures.py``): Figure 4's heatmaps for MLP, CNN and ViT side by side.

``figure_architectures(parts, out_dir, claims)`` draws, for each measure, one figure with a row per architecture
(the result's parts) and a column per activation, each panel depth x weight scale (mean over seeds) on one colour
scale; example fields from the stored values (``keep_values``) at the deepest depth; and ``architectures.md`` /
``architectures.csv``: per architecture and activation, the mean (and standard error over seeds) at the four
corners of the grid and at the architecture's literature default (``default_scale``).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Mapping

import numpy as np

from ._common import MEASURE_LABELS, mean_se, save_figure, show_image

__all__ = ["figure_architectures", "summary_rows", "default_scale"]

_HE_FAMILY = ("relu", "gelu", "swish", "selu")


def default_scale(part: str, activation: str) -> float:
    """The weight scale of an architecture's own literature default in ``sweeps/architectures.py``: He (sqrt 2)
    for the ReLU family and LeCun (1) otherwise in the MLP and CNN (``normal`` prior); 1 (GPT-2's / ViT's 0.02) for
    the ViT (a part is read by its name: "mlp...", "cnn..." or anything else)."""
    if part.startswith(("mlp", "cnn")) and activation in _HE_FAMILY:
        return math.sqrt(2.0)
    return 1.0


def _cube(ds, measure: str):
    """(activation, depth, weight_scale, seed) values of ``measure``, other axes at their first value."""
    da = ds[measure]
    extra = [d for d in da.dims if d not in ("activation", "depth", "weight_scale", "seed")]
    da = da.isel({d: 0 for d in extra})
    return da.transpose("activation", "depth", "weight_scale", "seed")


def _nearest(values, target: float) -> int:
    return int(np.argmin(np.abs(np.log(np.asarray(values, np.float64)) - math.log(target))))


def summary_rows(parts: Mapping[str, object], measure: str) -> list[dict]:
    """Per part and activation: mean and standard error over seeds at the grid's corners (shallowest / deepest x
    smallest / largest weight scale), and at the default scale (nearest on the grid) per depth and averaged."""
    rows = []
    for part, ds in parts.items():
        cube = _cube(ds, measure)
        depths = [int(d) for d in cube.depth.values]
        scales = [float(s) for s in cube.weight_scale.values]
        for a, act in enumerate(str(x) for x in cube.activation.values):
            vals = np.asarray(cube.values[a], np.float64)          # (depth, scale, seed)
            mean, se, _ = mean_se(vals, axis=-1)
            k = _nearest(scales, default_scale(part, act))
            row = {"architecture": part, "activation": act, "measure": measure,
                   "d_min_w_min": mean[0, 0], "d_max_w_min": mean[-1, 0], "d_min_w_max": mean[0, -1],
                   "d_max_w_max": mean[-1, -1], "d_max_w_max_se": se[-1, -1], "default_scale": scales[k],
                   "default_mean": float(np.nanmean(mean[:, k]))}
            for d, depth in enumerate(depths):
                row[f"default_depth{depth}"] = mean[d, k]
            rows.append(row)
    return rows


def _markdown(rows: list[dict], parts: Mapping[str, object], measure: str) -> str:
    any_ds = next(iter(parts.values()))
    depths = [int(d) for d in any_ds.depth.values]
    scales = [float(s) for s in any_ds.weight_scale.values]
    seeds = any_ds.sizes.get("seed", 1)
    lines = [f"### {MEASURE_LABELS.get(measure, measure)}: mean over {seeds} seeds, resolution "
             f"{any_ds.sizes.get('x', '?')}",
             "",
             f"| architecture | activation | d{depths[0]} w{scales[0]:.3g} | d{depths[-1]} w{scales[0]:.3g} | "
             f"d{depths[0]} w{scales[-1]:.3g} | d{depths[-1]} w{scales[-1]:.3g} (se) | default w | "
             + " | ".join(f"default d{d}" for d in depths) + " | default, mean over depths |",
             "|" + "---|" * (8 + len(depths))]
    for r in rows:
        lines.append(f"| {r['architecture']} | {r['activation']} | {r['d_min_w_min']:.4f} | {r['d_max_w_min']:.4f} | "
                     f"{r['d_min_w_max']:.4f} | {r['d_max_w_max']:.4f} ({r['d_max_w_max_se']:.4f}) | "
                     f"{r['default_scale']:.3g} | "
                     + " | ".join(f"{r[f'default_depth{d}']:.4f}" for d in depths)
                     + f" | {r['default_mean']:.4f} |")
    return "\n".join(lines) + "\n"


def _heatmap_figure(parts: Mapping[str, object], measure: str, path: Path) -> Path:
    import matplotlib.pyplot as plt

    cubes = {part: _cube(ds, measure).mean("seed") for part, ds in parts.items()}
    acts = [str(a) for a in next(iter(cubes.values())).activation.values]
    vmin = min(float(np.nanmin(c.values)) for c in cubes.values())
    vmax = max(float(np.nanmax(c.values)) for c in cubes.values())
    fig, axes = plt.subplots(len(cubes), len(acts), figsize=(2.4 * len(acts) + 1.2, 2.3 * len(cubes)), squeeze=False,
                             constrained_layout=True)
    im = None
    for r, (part, cube) in enumerate(cubes.items()):
        scales = cube.weight_scale.values
        for c, act in enumerate(acts):
            ax = axes[r][c]
            im = ax.imshow(cube.sel(activation=act).values, origin="lower", aspect="auto", vmin=vmin, vmax=vmax,
                           cmap="viridis")
            ticks = np.linspace(0, len(scales) - 1, min(4, len(scales))).round().astype(int)
            ax.set_xticks(ticks, [f"{scales[t]:.3g}" for t in ticks])
            ax.set_yticks(range(len(cube.depth)), [str(d) for d in cube.depth.values])
            if r == 0:
                ax.set_title(act)
            if r == len(cubes) - 1:
                ax.set_xlabel("weight scale")
            if c == 0:
                ax.set_ylabel(f"{part}\ndepth")
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.9, label=MEASURE_LABELS.get(measure, measure))
    seeds = next(iter(parts.values())).sizes.get("seed", 1)
    fig.suptitle(f"{MEASURE_LABELS.get(measure, measure)} on an MNIST plane, mean over {seeds} seeds")
    return save_figure(fig, path)


def _examples_figure(parts: Mapping[str, object], path: Path) -> Path | None:
    import matplotlib.pyplot as plt

    if not all("values" in ds for ds in parts.values()):
        return None
    cols = []
    first = next(iter(parts.values()))
    scales = [float(first.weight_scale.values[i]) for i in sorted({0, len(first.weight_scale) // 2,
                                                                   len(first.weight_scale) - 1})]
    acts = [str(a) for a in first.activation.values]
    cols = [(a, s) for a in acts for s in scales]
    fig, axes = plt.subplots(len(parts), len(cols), figsize=(1.2 * len(cols), 1.3 * len(parts)), squeeze=False,
                             constrained_layout=True)
    for r, (part, ds) in enumerate(parts.items()):
        vals = ds["values"]
        vals = vals.isel({d: 0 for d in vals.dims if d not in ("activation", "depth", "weight_scale", "seed", "y",
                                                               "x")})
        for c, (act, scale) in enumerate(cols):
            img = vals.sel(activation=act, weight_scale=scale).isel(depth=-1, seed=0).values
            show_image(axes[r][c], img, f"{act}\nw {scale:.3g}" if r == 0 else None, part if c == 0 else None)
    fig.suptitle(f"Logit 0 on the plane at depth {int(first.depth.values[-1])}, seed 0", fontsize=9)
    return save_figure(fig, path)


def figure_architectures(parts: Mapping[str, object], out_dir: str | Path, claims: Mapping[str, str]) -> list[Path]:
    """``"architectures"``: heatmaps per measure (rows: architectures, columns: activations), example fields, and
    the summary table (``architectures.md``, ``architectures.csv``)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    first = next(iter(parts.values()))
    measures = list(first.rj.measures)
    paths = [_heatmap_figure(parts, m, out_dir / f"architectures_{m}.png") for m in measures]
    example = _examples_figure(parts, out_dir / "examples.png")
    if example is not None:
        paths.append(example)
    rows = [r for m in measures for r in summary_rows(parts, m)]
    md = out_dir / "architectures.md"
    md.write_text("".join(_markdown([r for r in rows if r["measure"] == m], parts, m) + "\n" for m in measures))
    csv_path = out_dir / "architectures.csv"
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return paths + [md, csv_path]
