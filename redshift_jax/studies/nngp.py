"""The width_limit figures (``sweeps/width_limit.py``): finite-width complexity against the NNGP value.

``plot_width_limit(parts, out_dir)`` reads a suite whose parts are MLP sweeps with a ``width`` axis and NNGP
sweeps of the same activations (told apart by the model type in each result's spec), and writes

- ``nngp_width_limit.png``: per measure (rows) and activation (columns), mean +- SE against width per weight
  scale, the GP mean as a horizontal line with its +- SE band (a width-matched GP, with its own width axis, as a
  dashed curve);
- ``nngp_examples.png``: one function per width and the GP sample with the same seed index, per activation;
- ``nngp.md``: the table behind the figure, with the first width from which every wider network is within
  1 SE (and 2 SE) of the GP value, SE the standard error of the difference.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np

from ..sweep.engine import sample_network
from ..sweep.spec import Sweep
from ._common import mean_se, save_figure, sweep_dict

__all__ = ["plot_width_limit", "width_limit_summary"]


def _spec(ds) -> dict:
    return sweep_dict(ds)


def _mean_se(da) -> tuple[np.ndarray, np.ndarray]:
    mean, se, _ = mean_se(da.values)
    return mean, se


def _pairs(parts: Mapping[str, object]) -> list[dict]:
    """``[{activation, prior, mlp, gp}]`` matched by activation and prior."""
    mlps, gps = {}, {}
    for ds in parts.values():
        model = _spec(ds)["model"]
        key = (model["activation"], model.get("prior", "paper"))
        (gps if model["type"] == "NNGP" else mlps)[key] = ds
    return [{"activation": a, "prior": p, "mlp": mlps[a, p], "gp": gps.get((a, p))} for a, p in mlps]


def _measures(ds) -> list[str]:
    listed = _spec(ds)["measures"]
    names = [m if isinstance(m, str) else m[1].get("label", m[0]) for m in listed]
    return [m for m in names if m in ds.data_vars]


def width_limit_summary(parts: Mapping[str, object]) -> list[dict]:
    """One row per (activation, prior, weight scale, measure): the GP mean +- SE, per width the MLP mean +- SE
    and its difference from the GP in SEs, and the first widths from which all wider ones are within 1 and 2 SE."""
    rows = []
    for pair in _pairs(parts):
        mlp, gp = pair["mlp"], pair["gp"]
        if gp is None:
            continue
        widths = [int(w) for w in mlp.width.values]
        for measure in _measures(mlp):
            for scale in mlp.weight_scale.values:
                m_mean, m_se = _mean_se(mlp[measure].sel(weight_scale=scale).transpose("width", "seed"))
                g = gp[measure].sel(weight_scale=scale)
                if "width" in g.dims:  # width-matched GP: one value per width
                    g_mean, g_se = _mean_se(g.sel(width=widths).transpose("width", "seed"))
                else:
                    mean, se = _mean_se(g)
                    g_mean, g_se = np.full(len(widths), float(mean)), np.full(len(widths), float(se))
                z = (m_mean - g_mean) / np.sqrt(m_se ** 2 + g_se ** 2)

                def first_within(limit):
                    for i in range(len(widths)):
                        if np.all(np.abs(z[i:]) <= limit):
                            return widths[i]
                    return None

                rows.append({"activation": pair["activation"], "prior": pair["prior"], "weight_scale": float(scale),
                             "measure": measure, "widths": widths, "mlp_mean": m_mean.tolist(),
                             "mlp_se": m_se.tolist(), "gp_mean": g_mean.tolist(), "gp_se": g_se.tolist(),
                             "z": z.tolist(), "within_1se_from": first_within(1.0),
                             "within_2se_from": first_within(2.0)})
    return rows


def _markdown(rows: list[dict]) -> str:
    lines = ["# Finite width against the NNGP limit", "",
             "Mean +- SE over seeds; z = (MLP - GP) / SE of the difference; 'within 1 SE from' = the first width "
             "from which every wider network's mean is within 1 SE of the GP's ('-': none).", ""]
    for prior in sorted({r["prior"] for r in rows}):
        sub = [r for r in rows if r["prior"] == prior]
        widths = sub[0]["widths"]
        lines += [f"## prior = {prior}", "",
                  "| activation | a | measure | GP | " + " | ".join(f"n={w}" for w in widths)
                  + " | within 1 SE from | within 2 SE from |",
                  "|---|---|---|---|" + "---|" * len(widths) + "---|---|"]
        for r in sub:
            gp = (f"{r['gp_mean'][0]:.4f} +- {r['gp_se'][0]:.4f}" if len(set(r["gp_mean"])) == 1
                  else "width-matched")
            cells = [f"{m:.4f} ({z:+.1f})" for m, z in zip(r["mlp_mean"], r["z"])]
            lines.append(f"| {r['activation']} | {r['weight_scale']:g} | {r['measure']} | {gp} | "
                         + " | ".join(cells) + f" | {r['within_1se_from'] or '-'} | {r['within_2se_from'] or '-'} |")
        lines.append("")
    return "\n".join(lines)


def plot_width_limit(parts: Mapping[str, object], out_dir: str | Path, examples: bool = True) -> list[Path]:
    """The width_limit figures and ``nngp.md`` in ``out_dir`` (see the module docstring)."""
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = width_limit_summary(parts)
    paths = []

    def save(fig, name):
        paths.append(save_figure(fig, out_dir / name))

    columns = sorted({(r["activation"], r["prior"]) for r in rows}, key=lambda ap: (ap[1] != "normal", ap))
    measures = list(dict.fromkeys(r["measure"] for r in rows))
    if rows:
        fig, axes = plt.subplots(len(measures), len(columns), figsize=(3.6 * len(columns) + 0.6,
                                                                       3.0 * len(measures) + 0.4),
                                 squeeze=False, constrained_layout=True)
        for j, (activation, prior) in enumerate(columns):
            for i, measure in enumerate(measures):
                ax = axes[i, j]
                sub = [r for r in rows if r["activation"] == activation and r["prior"] == prior
                       and r["measure"] == measure]
                for k, r in enumerate(sub):
                    color = f"C{k}"
                    w = np.asarray(r["widths"], float)
                    ax.errorbar(w, r["mlp_mean"], r["mlp_se"], fmt="o-", color=color, ms=3, lw=1, capsize=2,
                                label=f"a = {r['weight_scale']:g}")
                    g, s = np.asarray(r["gp_mean"]), np.asarray(r["gp_se"])
                    if len(set(r["gp_mean"])) == 1:
                        span = [w[0] / 1.3, w[-1] * 1.3]
                        ax.plot(span, [g[0]] * 2, "-", color=color, lw=1.5, alpha=0.9)
                        ax.fill_between(span, g[0] - s[0], g[0] + s[0], color=color, alpha=0.15, lw=0)
                    else:
                        ax.errorbar(w, g, s, fmt="--", color=color, lw=1, alpha=0.8)
                ax.set_xscale("log", base=2)
                ax.set(xlabel="width" if i == len(measures) - 1 else None, ylabel=measure if j == 0 else None)
                if i == 0:
                    ax.set_title(f"{activation}" + ("" if prior == "normal" else f" ({prior} prior)"), fontsize=10)
                if i == 0 and j == 0:
                    ax.legend(fontsize=7, title="MLP (dots); NNGP (line)", title_fontsize=7)
        fig.suptitle("Complexity against width: finite MLPs (mean +- SE) and the NNGP limit (line, +- SE band)",
                     fontsize=10)
        save(fig, "nngp_width_limit.png")

    if examples and rows:
        _examples(parts, out_dir, save)
    (out_dir / "nngp.md").write_text(_markdown(rows))
    paths.append(out_dir / "nngp.md")
    (out_dir / "nngp_summary.json").write_text(json.dumps(rows, indent=1))
    paths.append(out_dir / "nngp_summary.json")
    return paths


def _examples(parts, out_dir, save) -> None:
    """Sampled functions re-created from the sweeps (networks and GP samples are pure functions of their key)."""
    import matplotlib.pyplot as plt

    pairs = [p for p in _pairs(parts) if p["gp"] is not None and p["prior"] == "normal"]
    if not pairs:
        return
    widths = [int(w) for w in pairs[0]["mlp"].width.values]
    shown = sorted({widths[0], widths[len(widths) // 2], widths[-1]})
    scale = float(max(pairs[0]["mlp"].weight_scale.values))
    fig, axes = plt.subplots(len(pairs), len(shown) + 1, figsize=(2.2 * (len(shown) + 1), 2.2 * len(pairs) + 0.4),
                             squeeze=False, constrained_layout=True)
    for i, pair in enumerate(pairs):
        mlp_sweep, gp_sweep = (Sweep.from_dict(_spec(pair[k])) for k in ("mlp", "gp"))
        images = [sample_network(mlp_sweep, {"width": w, "weight_scale": scale, "seed": 0})[0] for w in shown]
        images.append(sample_network(gp_sweep, {"weight_scale": scale, "seed": 0})[0])
        for j, (ax, image) in enumerate(zip(axes[i], images)):
            ax.imshow(image, cmap="viridis", origin="lower")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title((f"width {shown[j]}" if j < len(shown) else "NNGP") + f", {pair['activation']}",
                         fontsize=8)
    fig.suptitle(f"Sample functions, weight scale {scale:g} (the GP sample is an independent draw)", fontsize=9)
    save(fig, "nngp_examples.png")


def figure_width_limit(parts: Mapping[str, object], out_dir: str | Path, claims: Mapping[str, str]) -> list[Path]:
    """``"width_limit"`` (sweeps/width_limit.py): ``plot_width_limit``."""
    return plot_width_limit(parts, out_dir)
