"""Figures of the training experiments (matplotlib, Agg; no pyplot global state).

``plot(ds, out_dir)`` dispatches on ``ds.attrs["kind"]``:

- ``train_modsum``: Figure 8 (test accuracy against prefactor, one panel per activation, a line per modulus,
  mean +- std over seeds, the fitted peak of ``quadratic_peak`` marked with its bootstrap interval) and the
  complexity after training against the complexity at init (Fourier ``nrs`` and LZ, one point per network).
- ``train_modsum`` with complexities at init: Figure 7 (one point per architecture, activation x prefactor, mean
  over seeds: test accuracy against the complexity at init, a panel per measure and modulus, the target's
  complexity on the same lattice as a vertical line, and Spearman's rho of accuracy against closeness to the
  target with its bootstrap interval over seeds, ``analysis.target_match_correlation``).
- ``train_cmnist``: Figure 9 (digit and colour test accuracy and LZ at init against prefactor, one panel per
  activation).

Diverged networks (``ds.diverged``; their accuracies and final complexities are NaN) are left out of the means,
stds, peak fits and scatter plots; a panel's title counts them and a cross at the bottom of an accuracy panel
marks each prefactor where some seed diverged. Datasets without ``diverged`` (older results) plot as before.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .modsum import quadratic_peak

__all__ = ["plot", "plot_fig7", "plot_fig8", "plot_complexity", "plot_fig9", "FIG7_MEASURES"]

# Figure 7's rows, in this order where the Dataset has them (older results have only fourier and lz)
FIG7_MEASURES = ("fourier_dct", "fourier", "chebyshev_energy", "lz")
_MEASURE_LABELS = {"fourier": "Fourier (nrs)", "fourier_dct": "Fourier (dct, seam-free)", "chebyshev": "Chebyshev (L1)",
                   "chebyshev_energy": "Chebyshev (energy)", "lz": "LZ78 (normalized)"}

_MODULUS_COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
_ACT_COLORS = {"relu": "tab:blue", "gelu": "tab:cyan", "swish": "tab:olive", "selu": "tab:gray",
               "tanh": "tab:orange", "sigmoid": "tab:pink", "gaussian": "tab:green", "sin": "tab:red",
               "identity": "black"}


def _figure(n_panels: int, ncols: int = 3, size=(4.2, 3.4)):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ncols = min(ncols, n_panels)
    nrows = math.ceil(n_panels / ncols)
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def _log2_axis(ax, prefactors):
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(prefactors))
    ax.set_xticklabels([_pow2_label(p) for p in prefactors], fontsize=8)
    ax.set_xlabel("prefactor")


def _pow2_label(p: float) -> str:
    k = math.log2(p)
    return f"$2^{{{int(round(k))}}}$" if abs(k - round(k)) < 1e-9 else f"{p:g}"


def _save(fig, out_dir: Path, stem: str) -> Path:
    path = out_dir / f"{stem}.png"
    fig.savefig(path, dpi=110)
    return path


def _mean_std(da, dim):
    """Mean and std over ``dim`` leaving NaN (diverged networks) out; NaN where every value is NaN."""
    if dim in da.dims:
        return da.mean(dim, skipna=True).values, da.std(dim, skipna=True).values
    return da.values, np.zeros_like(da.values)


def _diverged(ds, **sel):
    """``ds.diverged`` at ``sel``; None for results without the variable (older results)."""
    if "diverged" not in ds:
        return None
    return ds.diverged.sel(sel)


def _n_diverged(ds, **sel) -> int:
    div = _diverged(ds, **sel)
    return 0 if div is None else int(div.sum())


def _title(ds, act) -> str:
    n = _n_diverged(ds, activation=act)
    if not n:
        return str(act)
    total = _diverged(ds, activation=act).size
    return f"{act} ({n} of {total} networks diverged)"


def _mark_diverged(ax, ds, pref, y, color, **sel) -> None:
    """A cross at height ``y`` over each prefactor where some network of ``sel`` diverged."""
    div = _diverged(ds, **sel)
    if div is None:
        return
    any_seed = np.asarray(div.any("seed") if "seed" in div.dims else div, bool)
    if any_seed.any():
        ax.plot(pref[any_seed], np.full(int(any_seed.sum()), y), "x", color=color, ms=6, mew=1.5, zorder=6,
                clip_on=False)


def _diverged_note(ds) -> str:
    n = _n_diverged(ds)
    if not n:
        return ""
    return (f"\n{n} of {ds.diverged.size} networks diverged (non-finite loss or parameters): left out of means "
            "and fits, × marks their prefactors")


def plot_fig8(ds, out_dir: Path, name: str) -> Path:
    acts = list(ds.activation.values)
    pref = np.asarray(ds.prefactor.values, float)
    fig, axes = _figure(len(acts))
    for ax, act in zip(axes, acts):
        for k, m in enumerate(ds.modulus.values):
            color = _MODULUS_COLORS[k % len(_MODULUS_COLORS)]
            test = ds.test_accuracy.sel(activation=act, modulus=m)
            mean, std = _mean_std(test, "seed")
            ax.plot(pref, mean, "o-", color=color, ms=3, label=f"M={int(m)} test")
            ax.fill_between(pref, mean - std, mean + std, color=color, alpha=0.2, lw=0)
            train_mean, _ = _mean_std(ds.train_accuracy.sel(activation=act, modulus=m), "seed")
            ax.plot(pref, train_mean, ":", color=color, lw=1, alpha=0.8)
            _mark_diverged(ax, ds, pref, 0.32 + 0.02 * k, color, activation=act, modulus=m)
            fit = quadratic_peak(test, n_boot=300)
            if np.isfinite(fit.peak):
                # one row per modulus above the curves; a peak outside the prefactors tried sits at the
                # panel's edge as an open marker
                y = 1.055 - 0.018 * k
                lo_x, hi_x = pref.min() / 1.4, pref.max() * 1.4
                x = min(max(fit.peak, lo_x), hi_x)
                xerr = None
                if np.isfinite(fit.low) and np.isfinite(fit.high):
                    xerr = [[max(x - max(fit.low, lo_x), 0)], [max(min(fit.high, hi_x) - x, 0)]]
                ax.errorbar([x], [y], xerr=xerr, fmt="v", color=color, ms=6, capsize=2, lw=1,
                            mfc=color if fit.in_range else "white", mec="black", mew=0.6, zorder=5)
        ax.axhline(0.5, color="gray", lw=0.6, ls="--")
        _log2_axis(ax, pref)
        ax.set_xlim(pref.min() / 1.5, pref.max() * 1.5)
        ax.set_ylim(0.3, 1.07)
        ax.set_title(_title(ds, act))
        ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower left")
    n_seeds = ds.sizes.get("seed", 1)
    fig.suptitle(f"{name}: modular sum, test accuracy (solid, mean ± std over {n_seeds} seeds), train accuracy "
                 "(dotted)\n▼ fitted peak (quadratic in log2 prefactor) with 95% bootstrap interval over seeds, open "
                 "▼ = outside the range tried" + _diverged_note(ds), fontsize=9)
    return _save(fig, out_dir, f"fig8_{name}")


def plot_fig7(ds, out_dir: Path, name: str, measures=FIG7_MEASURES, n_boot: int = 300) -> Path | None:
    """Figure 7: per modulus and measure, each architecture's mean test accuracy against its mean complexity
    at init, the target's complexity as a vertical line. None when the Dataset has none of ``measures``."""
    from .analysis import spec_of, target_match_correlation
    from .modsum import target_complexity

    measures = [m for m in measures if f"{m}_init" in ds]
    if not measures:
        return None
    moduli = [int(m) for m in ds.modulus.values]
    try:
        targets = target_complexity(spec_of(ds), measures=tuple(measures))
    except (ConfigError, TypeError, ValueError):  # a Dataset without a readable spec (hand-made): no target line
        targets = None
    fig, axes = _figure(len(measures) * len(moduli), ncols=len(moduli), size=(4.0, 3.3))
    axes = axes.reshape(len(measures), len(moduli))
    pref = np.asarray(ds.prefactor.values, float)
    sizes = 10 + 50 * (np.log2(pref) - np.log2(pref).min()) / max(np.ptp(np.log2(pref)), 1e-9)
    for i, measure in enumerate(measures):
        corr = target_match_correlation(ds, measure, targets, n_boot=n_boot) if targets is not None else {}
        for j, m in enumerate(moduli):
            ax = axes[i, j]
            for act in ds.activation.values:
                x = ds[f"{measure}_init"].sel(activation=act, modulus=m).mean("seed", skipna=True).values
                y = ds.test_accuracy.sel(activation=act, modulus=m).mean("seed", skipna=True).values
                color = _ACT_COLORS.get(str(act), "black")
                ax.plot(x, y, "-", color=color, lw=0.6, alpha=0.5)
                ax.scatter(x, y, s=sizes, color=color, alpha=0.8, lw=0, label=str(act))
            title = f"M={m}, {_MEASURE_LABELS.get(measure, measure)}"
            if targets is not None:
                c_t = float(targets.sel(measure=measure, modulus=m))
                ax.axvline(c_t, color="black", ls="--", lw=1, label="target")
                r = corr[m]
                title += f"\nρ(acc, −|c−target|) = {r.rho:+.2f} [{r.low:+.2f}, {r.high:+.2f}]"
            ax.axhline(0.5, color="gray", lw=0.6, ls=":")
            ax.set_ylim(0.3, 1.03)
            ax.set_title(title, fontsize=8)
            ax.set_xlabel(f"{measure} at init (mean over seeds)", fontsize=8)
            ax.set_ylabel("test accuracy", fontsize=8)
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=6, loc="lower left")
    n_seeds = ds.sizes.get("seed", 1)
    fig.suptitle(f"{name}: modular sum, one point per architecture (activation x prefactor, mean over {n_seeds} "
                 "seeds; larger = larger prefactor)\ndashed: the target's complexity on the same lattice; ρ: "
                 "Spearman over architectures, 95% bootstrap interval over seeds" + _diverged_note(ds), fontsize=9)
    return _save(fig, out_dir, f"fig7_{name}")


def plot_complexity(ds, out_dir: Path, name: str) -> Path:
    pairs = [(m, f"{m}_init", f"{m}_final") for m in ("fourier", "fourier_dct", "lz")
             if f"{m}_init" in ds and f"{m}_final" in ds]
    fig, axes = _figure(len(pairs), ncols=3, size=(5.0, 4.4))
    markers = ["o", "s", "^", "D", "v", "P"]
    for ax, (measure, a, b) in zip(axes, pairs):
        both = np.concatenate([ds[a].values.ravel(), ds[b].values.ravel()])
        both = both[np.isfinite(both)]  # diverged networks have NaN final complexities: not drawn
        lo, hi = (float(both.min()), float(both.max())) if both.size else (0.0, 1.0)
        for act in ds.activation.values:
            for k, m in enumerate(ds.modulus.values if "modulus" in ds.dims else [None]):
                sel = {"activation": act} | ({"modulus": m} if m is not None else {})
                ax.scatter(ds[a].sel(sel).values.ravel(), ds[b].sel(sel).values.ravel(), s=9, alpha=0.55,
                           color=_ACT_COLORS.get(str(act), "black"), marker=markers[k % len(markers)],
                           label=str(act) if k == 0 else None, lw=0)
        ax.plot([lo, hi], [lo, hi], color="gray", lw=0.8, ls="--")
        ax.set_xlabel(f"{measure} at init")
        ax.set_ylabel(f"{measure} after training")
        ax.grid(alpha=0.3)
        ax.set_title(_MEASURE_LABELS.get(measure, measure))
    axes[0].legend(fontsize=7, markerscale=2)
    n_div = _n_diverged(ds)
    diverged = f"; {n_div} diverged networks not shown" if n_div else ""
    if "modulus" in ds.dims:
        key = ", ".join(f"{markers[k % len(markers)]}: M={int(m)}" for k, m in enumerate(ds.modulus.values))
        fig.suptitle(f"{name}: complexity of each network's function on the lattice, after training vs at init\n"
                     f"(markers {key}{diverged})", fontsize=10)
    elif diverged:
        fig.suptitle(f"{name}: complexity after training vs at init ({diverged[2:]})", fontsize=10)
    return _save(fig, out_dir, f"complexity_{name}")


def plot_fig9(ds, out_dir: Path, name: str) -> Path:
    acts = list(ds.activation.values)
    pref = np.asarray(ds.prefactor.values, float)
    fig, axes = _figure(len(acts), size=(4.4, 3.4))
    for ax, act in zip(axes, acts):
        for var, color, label in (("digit_accuracy", "tab:blue", "digit (test)"),
                                  ("color_accuracy", "tab:orange", "colour (test)")):
            mean, std = _mean_std(ds[var].sel(activation=act), "seed")
            ax.plot(pref, mean, "o-", color=color, ms=3, label=label)
            ax.fill_between(pref, mean - std, mean + std, color=color, alpha=0.2, lw=0)
        _mark_diverged(ax, ds, pref, 0.03, "tab:red", activation=act)
        ax.axhline(0.1, color="gray", lw=0.6, ls="--")
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("accuracy")
        _log2_axis(ax, pref)
        ax.set_title(_title(ds, act))
        ax.grid(alpha=0.3)
        if "lz_init" in ds:
            ax2 = ax.twinx()
            mean, std = _mean_std(ds.lz_init.sel(activation=act), "init_seed")
            ax2.plot(pref, mean, "s--", color="tab:green", ms=3, label="LZ at init")
            ax2.fill_between(pref, mean - std, mean + std, color="tab:green", alpha=0.15, lw=0)
            lz_all = ds.lz_init.values[np.isfinite(ds.lz_init.values)]
            if lz_all.size:  # one LZ scale for every panel, zoomed to the data
                lo, hi = float(lz_all.min()), float(lz_all.max())
                pad = max(0.08 * (hi - lo), 1.0)
                ax2.set_ylim(lo - pad, hi + pad)
            ax2.set_ylabel("LZ78 phrases at init", color="tab:green", fontsize=8)
            ax2.tick_params(axis="y", labelcolor="tab:green", labelsize=8)
            if act == acts[0]:
                h1, l1 = ax.get_legend_handles_labels()
                h2, l2 = ax2.get_legend_handles_labels()
                ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="center left")
        elif act == acts[0]:
            ax.legend(fontsize=7)
    n_seeds = ds.sizes.get("seed", 1)
    fig.suptitle(f"{name}: Colored-MNIST test accuracy (mean ± std over {n_seeds} seeds) and LZ complexity at "
                 "init (right axis)\nagainst the prefactor; chance 0.1" + _diverged_note(ds), fontsize=10)
    return _save(fig, out_dir, f"fig9_{name}")


def plot(ds, out_dir: str | os.PathLike) -> list[Path]:
    """Draw the figures of a training Dataset into ``out_dir``; returns the PNG paths.

    Dispatches on ``ds.attrs["kind"]``: ``"train_modsum"`` -> ``fig8_<name>.png``, ``fig7_<name>.png`` (where
    complexities at init were recorded) and ``complexity_<name>.png``; ``"train_cmnist"`` -> ``fig9_<name>.png``.
    """
    kind = ds.attrs.get("kind")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = str(ds.attrs.get("name") or kind)
    if kind == "train_modsum":
        fig7 = plot_fig7(ds, out_dir, name)
        return [plot_fig8(ds, out_dir, name)] + ([fig7] if fig7 else []) + [plot_complexity(ds, out_dir, name)]
    if kind == "train_cmnist":
        return [plot_fig9(ds, out_dir, name)]
    raise ValueError(f"plot: ds.attrs['kind']={kind!r} is not a training result; allowed: 'train_modsum', "
                     "'train_cmnist'")
