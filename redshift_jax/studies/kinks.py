"""Kinks of random ReLU networks against Holmes' closed forms (DESIGN.md section 15; Holmes, arXiv 2304.09837):
the closed forms, the kinks_holmes suite's summary numbers and its figures.

The exact algorithm and the sweep measures ``kinks`` and ``linear_regions`` are ``redshift_jax.measures.kinks``;
this module re-exports its public names, so ``rj.kinks`` (this module) gives both::

    rj.kinks.count_1d_many(spec, batch_of_params)        # the algorithm (measures/kinks.py)
    rj.kinks.expected_kinks("uniform", n=100)             # a closed form (here)

Closed forms (one hidden ReLU layer of width ``n``, 1-D input on ``[-R, R]``; Holmes): ``p_kink_*``,
``expected_kinks_*``, ``pmf_*``, ``density_*`` below, and ``holmes_settings(prior, n)`` gives the MLP settings
(``prior``, ``weight_scale``, ``bias_scale``) whose parameters have exactly those distributions.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError
from ..measures.kinks import (
    PIECEWISE_LINEAR,
    SLOPE_RTOL,
    check_spec,
    count_1d,
    count_1d_many,
    default_max_kinks,
    linear_regions_2d,
    positions_1d,
    positions_1d_many,
)
from ._common import save_figure, spearman

__all__ = [
    "PIECEWISE_LINEAR", "SLOPE_RTOL", "HOLMES_PRIORS", "check_spec", "default_max_kinks", "count_1d",
    "count_1d_many", "positions_1d", "positions_1d_many", "linear_regions_2d", "ball_radius", "holmes_settings",
    "p_kink_uniform", "p_kink_normal", "p_kink_ball", "ball_mean_abs", "expected_kinks", "expected_kinks_uniform",
    "expected_kinks_normal", "expected_kinks_ball", "kink_pmf", "pmf_uniform", "pmf_normal", "pmf_ball",
    "kink_density", "density_uniform", "density_normal", "density_ball", "plot_kinks", "kink_summary",
    "summary_markdown", "part_params", "part_positions",
]

HOLMES_PRIORS = ("uniform", "normal", "ball")


# ------------------------------------------------------------------------------------------------------------
# closed forms: one hidden ReLU layer of width n, 1-D input, kinks counted on [-R, R] (Holmes, arXiv 2304.09837)
#
# Unit j bends at x_j = -b_j / w_j (its readout weight is nonzero almost surely), so K = #{j : |x_j| < R}.

def ball_radius(width: int, weight_scale: float = 1.0) -> float:
    """Radius T of the ``ball`` prior's first layer for a 1-D-input MLP (the (1, width) W is the n-vector):
    ``s * sqrt((n + 2) / 3)`` with ``s = a * sqrt(6 / (1 + n))``, n = width (models/priors.py)."""
    s = weight_scale * math.sqrt(6.0 / (1 + width))
    return s * math.sqrt((width + 2) / 3.0)


def holmes_settings(prior: str, width: int, weight_scale: float = 1.0) -> dict:
    """MLP settings whose first layer has exactly the closed forms' distribution (R = 1 below):

    - ``uniform``: W ~ U(-a, a), b ~ U(-a, a): bias_scale = weight_scale.
    - ``normal``: W ~ N(0, a^2 / fan_in) = N(0, a^2) (fan_in = 1), b ~ N(0, a^2): bias_scale = weight_scale.
    - ``ball``: W uniform in the width-ball of radius T = ``ball_radius(width, a)``, b ~ U(-T, T): bias_scale = T.
    """
    if prior not in HOLMES_PRIORS:
        raise ConfigError(f"prior={prior!r} has no closed form here; allowed: {', '.join(HOLMES_PRIORS)}")
    bias = ball_radius(width, weight_scale) if prior == "ball" else weight_scale
    return {"prior": prior, "weight_scale": float(weight_scale), "bias_scale": float(bias)}


def p_kink_uniform(R: float = 1.0, weight_scale: float = 1.0, bias_scale: float = 1.0) -> float:
    """P(one unit bends inside [-R, R]) for W ~ U(-a, a), b ~ U(-b, b): with r = R a / b, r / 2 (r <= 1), else
    1 - 1 / (2 r). Holmes: R / 2 (R <= 1), 1 - 1 / (2R) for a = b.

    >>> p_kink_uniform(1.0), p_kink_uniform(0.5), p_kink_uniform(2.0)
    (0.5, 0.25, 0.75)
    """
    r = R * weight_scale / bias_scale
    return r / 2 if r <= 1 else 1 - 1 / (2 * r)


def p_kink_normal(R: float = 1.0, sigma_w: float = 1.0, sigma_b: float = 1.0) -> float:
    """P(one unit bends inside [-R, R]) for W ~ N(0, sigma_w^2), b ~ N(0, sigma_b^2): (2/pi) arctan(R sigma_w /
    sigma_b) (-b/w is Cauchy with scale sigma_b / sigma_w)."""
    return 2 / math.pi * math.atan(R * sigma_w / sigma_b)


def ball_mean_abs(n: int) -> float:
    """P_n = E|w_1| / T for w uniform in the n-ball of radius T: Gamma(n/2 + 1) / (sqrt(pi) Gamma(n/2 + 3/2)).

    >>> round(ball_mean_abs(1), 12), round(ball_mean_abs(3), 12), round(ball_mean_abs(2) * 3 * math.pi / 4, 12)
    (0.5, 0.375, 1.0)
    """
    return math.exp(math.lgamma(n / 2 + 1) - math.lgamma(n / 2 + 1.5)) / math.sqrt(math.pi)


def _ball_u_density_norm(n: int) -> float:
    """1 / B(1/2, (n+1)/2): the density of u = w_1 / T is (1 - u^2)^((n-1)/2) times this."""
    return math.exp(math.lgamma(n / 2 + 1) - math.lgamma(0.5) - math.lgamma((n + 1) / 2))


def p_kink_ball(n: int, R: float = 1.0, radius_over_bias: float = 1.0) -> float:
    """P(one unit bends inside [-R, R]) for W uniform in the n-ball of radius T, b ~ U(-B, B), T / B =
    ``radius_over_bias``: with r = R T / B, E[min(r |u|, 1)] = r P_n for r <= 1 (Holmes: P_n at R = 1, T = B)."""
    r = R * radius_over_bias
    if r <= 1:
        return r * ball_mean_abs(n)
    y = 1 / r   # E[r |u| 1{|u| < y}] + P(|u| >= y)
    c = _ball_u_density_norm(n)
    head = r * 2 * c * (1 - (1 - y * y) ** ((n + 1) / 2)) / (n + 1)
    nodes, weights = np.polynomial.legendre.leggauss(400)
    u = y + (1 - y) * (nodes + 1) / 2
    tail = 2 * c * float(np.sum(weights * (1 - u * u) ** ((n - 1) / 2))) * (1 - y) / 2
    return head + tail


def expected_kinks_uniform(n: int, R: float = 1.0, weight_scale: float = 1.0, bias_scale: float = 1.0) -> float:
    """E[K] = n P, P = ``p_kink_uniform`` (n / 2 on [-1, 1] for every a = b)."""
    return n * p_kink_uniform(R, weight_scale, bias_scale)


def expected_kinks_normal(n: int, R: float = 1.0, sigma_w: float = 1.0, sigma_b: float = 1.0) -> float:
    """E[K] = n (2/pi) arctan(R sigma_w / sigma_b)."""
    return n * p_kink_normal(R, sigma_w, sigma_b)


def expected_kinks_ball(n: int, R: float = 1.0, radius_over_bias: float = 1.0) -> float:
    """E[K] = n P_n at R = 1, T = B (about sqrt(2 n / pi) for large n)."""
    return n * p_kink_ball(n, R, radius_over_bias)


def _binomial_pmf(n: int, prob: float) -> np.ndarray:
    k = np.arange(n + 1)
    logc = np.array([math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1) for j in k])
    with np.errstate(divide="ignore"):
        logp = logc + k * np.log(prob) + (n - k) * np.log1p(-prob)
    return np.exp(logp)


def pmf_uniform(n: int, R: float = 1.0, weight_scale: float = 1.0, bias_scale: float = 1.0) -> np.ndarray:
    """P(K = k), k = 0..n: Binomial(n, ``p_kink_uniform``) (units are independent)."""
    return _binomial_pmf(n, p_kink_uniform(R, weight_scale, bias_scale))


def pmf_normal(n: int, R: float = 1.0, sigma_w: float = 1.0, sigma_b: float = 1.0) -> np.ndarray:
    """P(K = k), k = 0..n: Binomial(n, ``p_kink_normal``)."""
    return _binomial_pmf(n, p_kink_normal(R, sigma_w, sigma_b))


def pmf_ball(n: int, R: float = 1.0, radius_over_bias: float = 1.0) -> np.ndarray:
    """P(K = k), k = 0..n, for the ball prior (r = R T / B <= 1, n <= 200).

    Given w, units bend independently with p_j = r |u_j| (u = w / T), so P(K = k) = C(n, k) sum_l (-1)^l
    C(n - k, l) r^(k + l) m_(k + l), with the ball's moments m_q = E[|u_1| ... |u_q|] = Gamma(n/2 + 1) /
    (pi^(q/2) Gamma((n + q)/2 + 1)) (Dirichlet integral). Not binomial: the entries of w are dependent.
    """
    r = R * radius_over_bias
    if r > 1 or n > 200:
        raise ConfigError(f"pmf_ball(n={n}, R * T / B={r}) is not available; allowed: n <= 200 and R * T / B <= 1")

    def log_m(q):
        return math.lgamma(n / 2 + 1) - q / 2 * math.log(math.pi) - math.lgamma((n + q) / 2 + 1)

    def log_comb(a, b):
        return math.lgamma(a + 1) - math.lgamma(b + 1) - math.lgamma(a - b + 1)

    out = np.empty(n + 1)
    for k in range(n + 1):
        terms = [(-1) ** j * math.exp(log_comb(n - k, j) + (k + j) * math.log(r) + log_m(k + j)) if r > 0
                 else float(k + j == 0) for j in range(n - k + 1)]
        out[k] = math.exp(log_comb(n, k)) * math.fsum(terms)
    return np.clip(out, 0.0, 1.0)


def density_uniform(x, weight_scale: float = 1.0, bias_scale: float = 1.0) -> np.ndarray:
    """Density of one unit's kink position -b/w (W ~ U(-a, a), b ~ U(-b, b)): with c = b / a, 1 / (4c) for
    |x| <= c, c / (4 x^2) beyond (1/4 and 1 / (4 x^2) for a = b)."""
    c = bias_scale / weight_scale
    ax = np.abs(np.asarray(x, np.float64))
    with np.errstate(divide="ignore"):
        return np.where(ax <= c, 1 / (4 * c), c / (4 * np.maximum(ax, 1e-300) ** 2))


def density_normal(x, sigma_w: float = 1.0, sigma_b: float = 1.0) -> np.ndarray:
    """Density of -b/w for Gaussian w, b: Cauchy with scale gamma = sigma_b / sigma_w."""
    g = sigma_b / sigma_w
    return g / (math.pi * (g * g + np.asarray(x, np.float64) ** 2))


def density_ball(x, n: int, radius_over_bias: float = 1.0) -> np.ndarray:
    """Density of -b_j/w_j for the ball prior (b ~ U(-B, B), T / B = ``radius_over_bias``): with c = B / T,
    P_n / (2c) for |x| <= c, (1 - (1 - y^2)^((n+1)/2)) / (c (n+1) B(1/2, (n+1)/2)) with y = c / |x| beyond."""
    c = 1 / radius_over_bias
    ax = np.abs(np.asarray(x, np.float64))
    y = np.minimum(c / np.maximum(ax, 1e-300), 1.0)
    tail = (1 - (1 - y * y) ** ((n + 1) / 2)) * _ball_u_density_norm(n) / (c * (n + 1))
    return np.where(ax <= c, ball_mean_abs(n) / (2 * c), tail)


def _closed_form(prior: str):
    """``(expected_kinks, pmf, density)`` of ``prior`` (the three closed forms of section 15)."""
    forms = {"uniform": (expected_kinks_uniform, pmf_uniform, lambda x, n: density_uniform(x)),
             "normal": (expected_kinks_normal, pmf_normal, lambda x, n: density_normal(x)),
             "ball": (expected_kinks_ball, pmf_ball, density_ball)}
    if prior not in forms:
        raise ConfigError(f"prior={prior!r} has no closed form here; allowed: {', '.join(HOLMES_PRIORS)}")
    return forms[prior]


def expected_kinks(prior: str, n: int, R: float = 1.0) -> float:
    """E[K] under ``holmes_settings(prior, n)`` (any weight scale: only ratios matter)."""
    return _closed_form(prior)[0](n, R)


def kink_pmf(prior: str, n: int, R: float = 1.0) -> np.ndarray:
    """P(K = k), k = 0..n, under ``holmes_settings(prior, n)``."""
    return _closed_form(prior)[1](n, R)


def kink_density(prior: str, x, n: int) -> np.ndarray:
    """Density of one unit's kink position under ``holmes_settings(prior, n)`` (integrates to 1 over the line)."""
    return _closed_form(prior)[2](x, n)


# ------------------------------------------------------------------------------------------------------------
# the kinks_holmes suite: summary numbers and figures
#
# Part names (sweeps/kinks_holmes.py): "uniform", "normal" (width axis), "ball_n<width>" (one width each, bias
# scale = the ball's radius), "depth_<prior>_L<depth>" (fixed total units), "complexity_1d" (kinks, fourier, lz),
# "complexity_2d" (linear_regions, fourier, lz).

def _part_sweep(ds):
    return ds.rj.sweep


def part_params(ds, seeds, **cell):
    """Re-create the parameters of a part's networks (the engine's keys: ``fold_in(key(base_seed), seed)``).

    ``cell`` fixes structural axes (e.g. ``width=100``) and numeric ones; numeric axes not given take the part's
    only value or the model's default. Returns ``(model, params)`` with a leading seed axis on every leaf.
    """
    sweep = _part_sweep(ds)
    model = sweep.model
    changes = {k: v for k, v in cell.items() if k in model.structural_axes}
    for axis in model.structural_axes:
        if axis in sweep.axes and axis not in changes and len(sweep.axes[axis]) == 1:
            changes[axis] = sweep.axes[axis][0]
    model = model.replace(**changes) if changes else model
    numeric = {}
    for name, axis in model.numeric_axes.items():
        if axis.stage != "init":
            continue
        values = sweep.axes.get(name, (axis.default,))
        numeric[name] = np.float32(cell.get(name, values[0]))
    return model, _init_seeds(model, sweep.base_seed, jnp.asarray(np.asarray(seeds, np.uint32)), numeric)


@functools.partial(jax.jit, static_argnames=("model", "base_seed"))
def _init_seeds(model, base_seed, seeds, numeric):
    keys = jax.vmap(jax.random.fold_in, (None, 0))(jax.random.key(base_seed), seeds)
    return jax.vmap(lambda k: model.init(k, **numeric))(keys)


def part_positions(ds, seeds, lo=-3.0, hi=3.0, **cell) -> tuple[np.ndarray, int]:
    """Kink positions in (lo, hi) of a part's networks (all seeds pooled) and the number of hidden units behind
    them (networks x width x depth), for per-unit densities."""
    model, params = part_params(ds, seeds, **cell)
    pos, _ = positions_1d_many(model, params, lo, hi)
    pos = np.asarray(pos).ravel()
    return pos[np.isfinite(pos)], len(seeds) * model.width * model.depth


def _radius_of(label: str) -> float | None:
    """R of a kinks variable: "kinks" -> 1, "kinks_R0p5" -> 0.5, "kinks_R2" -> 2; None for other variables."""
    if label == "kinks":
        return 1.0
    if label.startswith("kinks_R"):
        try:
            return float(label[len("kinks_R"):].replace("p", "."))
        except ValueError:
            return None
    return None


def _width_rows(parts):
    rows = []
    for prior in HOLMES_PRIORS:
        if prior == "ball":
            entries = [(int(name.split("_n")[1]), ds) for name, ds in parts.items() if name.startswith("ball_n")]
        elif prior in parts:
            ds = parts[prior]
            entries = [(int(n), ds.sel(width=n)) for n in ds.width.values]
        else:
            entries = []
        for n, ds in sorted(entries, key=lambda e: e[0]):
            for label in ds.data_vars:
                R = _radius_of(str(label))
                if R is None:
                    continue
                values = np.asarray(ds[label].values, np.float64).ravel()
                good = values[np.isfinite(values)]
                mean = float(good.mean())
                se = float(good.std(ddof=1) / math.sqrt(len(good))) if len(good) > 1 else 0.0
                want = expected_kinks(prior, n, R)
                rows.append({"prior": prior, "width": n, "R": R, "networks": int(len(good)),
                             "nan": int(values.size - good.size), "mean": mean, "se": se, "closed_form": want,
                             "z": (mean - want) / se if se > 0 else float("nan"), "values": good})
    return sorted(rows, key=lambda r: (HOLMES_PRIORS.index(r["prior"]), r["R"], r["width"]))


def _pmf_rows(width_rows, max_width=10):
    rows = []
    for row in width_rows:
        n = row["width"]
        if n > max_width or (row["prior"] == "ball" and row["R"] > 1):
            continue
        values = row["values"].astype(int)
        emp = np.bincount(values, minlength=n + 1)[: n + 1] / len(values)
        want = kink_pmf(row["prior"], n, row["R"])
        se = np.sqrt(np.maximum(want * (1 - want), 1e-300) / len(values))
        keep = want * len(values) >= 5
        chi2 = float(np.sum((emp - want)[keep] ** 2 * len(values) / want[keep]))
        rows.append({"prior": row["prior"], "width": n, "R": row["R"], "networks": len(values), "empirical": emp,
                     "closed_form": want,
                     "max_abs": float(np.max(np.abs(emp - want))), "max_z": float(np.max(np.abs(emp - want) / se)),
                     "chi2": chi2, "dof": int(keep.sum() - 1)})
    return rows


DENSITY_EDGES = np.linspace(-3.0, 3.0, 25)


def _density_rows(parts, width=None, max_networks=2000):
    """Per-unit kink-position density on [-3, 3] in 24 bins against the closed form, at one width per prior."""
    rows = []
    for prior in HOLMES_PRIORS:
        if prior == "ball":
            names = sorted((int(k.split("_n")[1]), k) for k in parts if k.startswith("ball_n"))
            if not names:
                continue
            n = _pick_width([w for w, _ in names], width)
            ds, cell = parts[dict(names)[n]], {}
        elif prior in parts:
            ds = parts[prior]
            n = _pick_width([int(w) for w in ds.width.values], width)
            cell = {"width": n}
        else:
            continue
        seeds = np.asarray(ds.seed.values)[:max_networks]
        pos, units = part_positions(ds, seeds, DENSITY_EDGES[0], DENSITY_EDGES[-1], **cell)
        counts, _ = np.histogram(pos, DENSITY_EDGES)
        widths = np.diff(DENSITY_EDGES)
        emp = counts / (units * widths)
        fine = np.linspace(DENSITY_EDGES[:-1], DENSITY_EDGES[1:], 201)   # bin averages of the closed form
        want = np.trapezoid(kink_density(prior, fine, n), fine, axis=0) / widths
        se = np.sqrt(np.maximum(want * widths * units, 1.0)) / (units * widths)
        rows.append({"prior": prior, "width": n, "networks": len(seeds), "empirical": emp, "closed_form": want,
                     "max_z": float(np.max(np.abs(emp - want) / se)), "max_rel": float(np.max(np.abs(emp / want - 1)))})
    return rows


def _pick_width(widths, width):
    """``width`` if the part has it, else the largest width <= 100 (else the smallest)."""
    widths = sorted(widths)
    if width in widths:
        return width
    small = [w for w in widths if w <= 100]
    return small[-1] if small else widths[0]


def _depth_rows(parts):
    rows = []
    for name, ds in parts.items():
        if not name.startswith("depth_"):
            continue
        prior, depth = name[len("depth_"):].rsplit("_L", 1)
        sweep = _part_sweep(ds)
        values = np.asarray(ds.kinks.values, np.float64).ravel()
        good = values[np.isfinite(values)]
        rows.append({"prior": prior, "depth": int(depth), "width": int(sweep.model.width),
                     "units": int(sweep.model.width) * int(depth), "networks": int(len(good)),
                     "nan": int(values.size - good.size), "mean": float(good.mean()),
                     "se": float(good.std(ddof=1) / math.sqrt(len(good))) if len(good) > 1 else 0.0, "name": name})
    return sorted(rows, key=lambda r: (r["prior"], r["depth"]))


def _complexity_rows(parts):
    rows = []
    for name, count in (("complexity_1d", "kinks"), ("complexity_2d", "linear_regions")):
        if name not in parts:
            continue
        ds = parts[name]
        for measure in ("fourier", "lz"):
            if measure not in ds:
                continue
            row = {"part": name, "count": count, "measure": measure,
                   "rho_all": spearman(ds[count].values, ds[measure].values)}
            if "depth" in ds.dims:
                row["rho_by_depth"] = {int(d): spearman(ds[count].sel(depth=d).values, ds[measure].sel(depth=d).values)
                                       for d in ds.depth.values}
            rows.append(row)
    return rows


def kink_summary(parts: Mapping[str, object], density_width: int | None = 100) -> dict:
    """The numbers behind the kinks_holmes figures: measured mean kinks against the closed forms per prior and
    width (z = (mean - E[K]) / SE), the pmf for widths <= 10 (max |difference|, its largest z, chi-square over
    cells with >= 5 expected), the per-unit position density on [-3, 3] (largest bin z), the depth panel, and
    Spearman correlations of kinks / linear regions with Fourier and LZ of the same networks."""
    width_rows = _width_rows(parts)
    return {"width": width_rows, "pmf": _pmf_rows(width_rows), "density": _density_rows(parts, density_width),
            "depth": _depth_rows(parts), "complexity": _complexity_rows(parts)}


def summary_markdown(summary: dict) -> str:
    """``kink_summary`` as Markdown tables."""
    lines = ["## Mean kink count against the closed forms (one hidden ReLU layer, kinks in [-R, R])", "",
             "| prior | R | width n | networks | mean K | SE | closed form E[K] | z |",
             "|---|---|---|---|---|---|---|---|"]
    for r in summary["width"]:
        lines.append(f"| {r['prior']} | {r['R']:g} | {r['width']} | {r['networks']}"
                     + (f" ({r['nan']} NaN)" if r["nan"] else "")
                     + f" | {r['mean']:.4f} | {r['se']:.4f} | {r['closed_form']:.4f} | {r['z']:+.2f} |")
    lines += ["", "## Kink-count pmf (widths <= 10)", "",
              "| prior | R | n | networks | max abs diff | max z | chi2 / dof |", "|---|---|---|---|---|---|---|"]
    for r in summary["pmf"]:
        lines.append(f"| {r['prior']} | {r['R']:g} | {r['width']} | {r['networks']} | {r['max_abs']:.4f} | "
                     f"{r['max_z']:.2f} | {r['chi2']:.1f} / {r['dof']} |")
    lines += ["", "## Kink-position density per unit on [-3, 3] (24 bins)", "",
              "| prior | n | networks | max z over bins | max rel. diff |", "|---|---|---|---|---|"]
    for r in summary["density"]:
        lines.append(f"| {r['prior']} | {r['width']} | {r['networks']} | {r['max_z']:.2f} | {r['max_rel']:.3f} |")
    if summary["depth"]:
        lines += ["", "## Depth at fixed total units", "",
                  "| prior | depth | width | networks | mean K | SE | K per unit |", "|---|---|---|---|---|---|---|"]
        for r in summary["depth"]:
            lines.append(f"| {r['prior']} | {r['depth']} | {r['width']} | {r['networks']} | {r['mean']:.3f} | "
                         f"{r['se']:.3f} | {r['mean'] / r['units']:.4f} |")
    if summary["complexity"]:
        lines += ["", "## Kinks / linear regions against Fourier and LZ of the same networks (Spearman rho)", "",
                  "| part | count | measure | rho (all) | rho per depth |", "|---|---|---|---|---|"]
        for r in summary["complexity"]:
            per = ", ".join(f"{d}: {v:.2f}" for d, v in r.get("rho_by_depth", {}).items())
            lines.append(f"| {r['part']} | {r['count']} | {r['measure']} | {r['rho_all']:.3f} | {per} |")
    return "\n".join(lines) + "\n"


_PRIOR_COLORS = {"uniform": "tab:blue", "normal": "tab:orange", "ball": "tab:green", "paper": "tab:red"}


def plot_kinks(parts: Mapping[str, object], out_dir: str | Path, density_width: int | None = 100) -> list[Path]:
    """The kinks_holmes figures and ``kinks.md`` (the summary tables) in ``out_dir``.

    - ``kinks_width.png``: mean kink count against width per prior (+- 2 SE) with the closed forms drawn over it,
      and measured / closed form.
    - ``kinks_pmf.png``: the kink-count pmf for widths <= 10 against the formulas.
    - ``kinks_density.png``: the per-unit kink-position density on [-3, 3] against the formulas.
    - ``kinks_depth.png``: depth at fixed total units: mean kinks, and where the kinks sit.
    - ``kinks_complexity.png``: kinks (1-D) and linear regions (2-D) against Fourier and LZ of the same networks.
    """
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = kink_summary(parts, density_width)
    paths = []

    def save(fig, name):
        paths.append(save_figure(fig, out_dir / name))

    unit_rows = [r for r in summary["width"] if r["R"] == 1.0]
    if unit_rows:
        fig, (ax, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4.2), constrained_layout=True)
        grid_n = np.geomspace(1, max(r["width"] for r in unit_rows), 200)
        for prior in HOLMES_PRIORS:
            rows = [r for r in unit_rows if r["prior"] == prior]
            if not rows:
                continue
            n = np.array([r["width"] for r in rows])
            mean = np.array([r["mean"] for r in rows])
            se = np.array([r["se"] for r in rows])
            color = _PRIOR_COLORS[prior]
            ax.errorbar(n, mean, 2 * se, fmt="o", color=color, ms=4, capsize=2, label=f"{prior} (measured)")
            curve = [expected_kinks(prior, k) for k in grid_n]
            ax.plot(grid_n, curve, "-", color=color, lw=1, alpha=0.8,
                    label={"uniform": "n/2 (uniform)", "normal": "n (2/pi) arctan(1) = n/2 (normal)",
                           "ball": "n P_n (ball)"}[prior])
            want = np.array([r["closed_form"] for r in rows])
            ax2.errorbar(n * {"uniform": 0.94, "normal": 1.0, "ball": 1.06}[prior], mean / want, 2 * se / want,
                         fmt="o", color=color, ms=4, capsize=2, label=prior)
        ax.plot(grid_n, np.sqrt(2 * grid_n / np.pi), ":", color="gray", lw=1, label="sqrt(2n/pi)")
        ax.set(xscale="log", yscale="log", xlabel="width n", ylabel="mean kinks in [-1, 1]",
               title="One hidden ReLU layer: kinks against width")
        ax.legend(fontsize=7)
        ax2.axhline(1.0, color="gray", lw=1)
        ax2.set(xscale="log", xlabel="width n", ylabel="measured / closed form (+- 2 SE)",
                title="Measured against the closed forms")
        ax2.legend(fontsize=7)
        radii = np.geomspace(0.1, 4.0, 200)
        for prior in HOLMES_PRIORS:
            rows = [r for r in summary["width"] if r["prior"] == prior]
            if not rows:
                continue
            n = max(r["width"] for r in rows)
            rows = [r for r in rows if r["width"] == n]
            color = _PRIOR_COLORS[prior]
            ax3.errorbar([r["R"] for r in rows], [r["mean"] / n for r in rows], [2 * r["se"] / n for r in rows],
                         fmt="o", color=color, ms=4, capsize=2, label=f"{prior}, n={n}")
            ax3.plot(radii, [expected_kinks(prior, n, R) / n for R in radii], "-", color=color, lw=1, alpha=0.8)
        ax3.set(xscale="log", xlabel="R (kinks counted in [-R, R])", ylabel="kinks per unit",
                title="P(R): R/2 or 1 - 1/(2R); (2/pi) arctan R; R P_n")
        ax3.legend(fontsize=7)
        save(fig, "kinks_width.png")

    pmf_rows = [r for r in summary["pmf"] if r["R"] == 1.0]
    if pmf_rows:
        widths = sorted({r["width"] for r in pmf_rows})
        priors = [p for p in HOLMES_PRIORS if any(r["prior"] == p for r in pmf_rows)]
        fig, axes = plt.subplots(len(priors), len(widths), figsize=(2.4 * len(widths) + 0.5, 2.1 * len(priors) + 0.5),
                                 squeeze=False, constrained_layout=True)
        for i, prior in enumerate(priors):
            for j, n in enumerate(widths):
                ax = axes[i, j]
                row = next((r for r in pmf_rows if r["prior"] == prior and r["width"] == n), None)
                if row is None:
                    ax.axis("off")
                    continue
                k = np.arange(n + 1)
                ax.bar(k, row["empirical"], color=_PRIOR_COLORS[prior], alpha=0.6, label="measured")
                ax.plot(k, row["closed_form"], "k.", ms=6, label="formula")
                ax.set_xticks(k if n <= 5 else k[::2])
                ax.set_title(f"{prior}, n={n}", fontsize=8)
                ax.tick_params(labelsize=7)
                if i == len(priors) - 1:
                    ax.set_xlabel("kinks K", fontsize=8)
                if j == 0:
                    ax.set_ylabel("P(K = k)", fontsize=8)
        axes[0, 0].legend(fontsize=7)
        fig.suptitle("Kink-count pmf: uniform and normal Binomial(n, 1/2); ball by inclusion-exclusion", fontsize=9)
        save(fig, "kinks_pmf.png")

    if summary["density"]:
        fig, axes = plt.subplots(1, len(summary["density"]), figsize=(4 * len(summary["density"]), 3.4),
                                 squeeze=False, constrained_layout=True)
        centers = (DENSITY_EDGES[1:] + DENSITY_EDGES[:-1]) / 2
        for ax, row in zip(axes[0], summary["density"]):
            ax.stairs(row["empirical"], DENSITY_EDGES, color=_PRIOR_COLORS[row["prior"]], fill=True, alpha=0.5,
                      label=f"measured ({row['networks']} networks)")
            xs = np.linspace(DENSITY_EDGES[0], DENSITY_EDGES[-1], 601)
            ax.plot(xs, kink_density(row["prior"], xs, row["width"]), "k-", lw=1, label="formula")
            ax.plot(centers, row["closed_form"], "k.", ms=3)
            ax.axvspan(-1, 1, color="gray", alpha=0.08)
            ax.set(title=f"{row['prior']}, n={row['width']}", xlabel="kink position -b/w",
                   ylabel="density per unit")
            ax.legend(fontsize=7)
        save(fig, "kinks_density.png")

    if summary["depth"]:
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
        for prior in sorted({r["prior"] for r in summary["depth"]}):
            rows = [r for r in summary["depth"] if r["prior"] == prior]
            ax.errorbar([r["depth"] for r in rows], [r["mean"] for r in rows], [2 * r["se"] for r in rows],
                        fmt="o-", color=_PRIOR_COLORS.get(prior), capsize=2,
                        label=f"{prior} ({rows[0]['units']} units)")
        ax.set(xlabel="depth (width = units / depth)", ylabel="mean kinks in [-1, 1]",
               title="Kinks at fixed total units")
        ax.legend(fontsize=7)
        prior = "uniform" if any(r["prior"] == "uniform" for r in summary["depth"]) else summary["depth"][0]["prior"]
        cmap = plt.get_cmap("viridis")
        rows = [r for r in summary["depth"] if r["prior"] == prior]
        for i, r in enumerate(rows):
            ds = parts[r["name"]]
            seeds = np.asarray(ds.seed.values)[:500]
            pos, units = part_positions(ds, seeds, DENSITY_EDGES[0], DENSITY_EDGES[-1])
            counts, _ = np.histogram(pos, DENSITY_EDGES)
            ax2.stairs(counts / (units * np.diff(DENSITY_EDGES)), DENSITY_EDGES, color=cmap(i / max(1, len(rows) - 1)),
                       label=f"depth {r['depth']}")
        ax2.axvspan(-1, 1, color="gray", alpha=0.08)
        ax2.set(xlabel="kink position", ylabel="kinks per unit per unit length",
                title=f"Where the kinks sit ({prior} prior)")
        ax2.legend(fontsize=7)
        save(fig, "kinks_depth.png")

    rows = [(name, count) for name, count in (("complexity_1d", "kinks"), ("complexity_2d", "linear_regions"))
            if name in parts and count in parts[name]]
    if rows:
        fig, axes = plt.subplots(len(rows), 4, figsize=(16, 3.4 * len(rows)), squeeze=False, constrained_layout=True)
        cmap = plt.get_cmap("viridis")
        for (name, count), row in zip(rows, axes):
            ds = parts[name]
            depths = [int(d) for d in ds.depth.values] if "depth" in ds.dims else [None]
            for j, variable in enumerate((count, "fourier", "lz")):
                ax = row[j]
                if variable not in ds or "weight_scale" not in ds.dims:
                    ax.axis("off")
                    continue
                for i, d in enumerate(depths):
                    da = ds[variable] if d is None else ds[variable].sel(depth=d)
                    mean = da.mean("seed")
                    ax.plot(mean.weight_scale.values, mean.values, "o-", ms=3,
                            color=cmap(i / max(1, len(depths) - 1)), label=None if d is None else f"depth {d}")
                ax.set(xscale="log", xlabel="weight scale", ylabel=f"mean {variable.replace('_', ' ')}",
                       title=f"{name}: {variable.replace('_', ' ')}")
                if j == 0 and depths[0] is not None:
                    ax.legend(fontsize=7)
            ax = row[3]
            measure = "fourier" if "fourier" in ds else None
            if measure is None:
                ax.axis("off")
                continue
            x = np.asarray(ds[count].values).ravel()
            y = np.asarray(ds[measure].values).ravel()
            colors = ds.depth.broadcast_like(ds[count]).values.ravel() if "depth" in ds[count].dims else None
            sc = ax.scatter(x, y, s=3, c=colors, cmap="viridis", alpha=0.5)
            rho = next(r["rho_all"] for r in summary["complexity"] if r["part"] == name and r["measure"] == measure)
            ax.set(xlabel=count.replace("_", " "), ylabel=measure, title=f"every network: Spearman {rho:.2f}")
            if colors is not None:
                fig.colorbar(sc, ax=ax, label="depth")
        save(fig, "kinks_complexity.png")

    md = out_dir / "kinks.md"
    md.write_text(summary_markdown(summary))
    paths.append(md)
    return paths


def figure_kinks(parts: Mapping[str, object], out_dir: str | Path, claims: Mapping[str, str]) -> list[Path]:
    """``"kinks"`` (sweeps/kinks_holmes.py): ``plot_kinks``."""
    return plot_kinks(parts, out_dir)
