"""Calibration functions: reference functions of known complexity, to test what a measure can resolve.

A complexity measure is only as good as its ranking of functions whose complexity we know (DESIGN.md section 20).
This module builds such functions on any regular grid over [-1, 1]^2 (x = the column coordinate, y = the row
coordinate, as ``redshift_jax.grid`` lays out an image), each with its *tier*: an expected complexity level, equal
tiers meaning "should score alike" (an edge along an axis and the same edge turned; a plane wave along an axis and
turned by 30 degrees)::

    tier 0  ramp            x
    tier 1  bump            exp(-(x^2 + y^2) / (2 * 0.3^2))
            kink_axis       |x - 0.03|
            kink_oblique    |x + 0.6 y - 0.1|
            wave_1_0, wave_1_30
    tier 2  wave_2_*        cos(pi k (x cos a + y sin a)), k = 2
            jump_oblique    sign(x + 0.6 y - 0.1)
            sum_1_2         wave(1, 0) + wave(2, 0)
    tier 3  wave_4_*
    tier 4  wave_8_*        sum_1_16 = wave(1, 0) + wave(16, 0) (energy split between tiers 1 and 5)
    tier 5  wave_16_*
    tier 6  noise           i.i.d. N(0, 1), seeded

Only the orderings that do not depend on taste are asserted by the tests (``tests/test_calibration.py``):
every measure puts the ramp below noise; a measure that calls itself a frequency ranks ``wave(k)`` increasing in
k at both angles; a measure that claims rotation invariance scores an edge and a wave alike along an axis and
turned. ``scores`` tabulates any measures on every function and ``report`` writes the table and figure of
``docs/measures.md``::

    from redshift_jax.measures import calibration
    refs = calibration.functions(64)                 # name -> (64, 64) float64 array
    table = calibration.scores(["fourier", "fourier_dct", "chebyshev", "chebyshev_energy", "lz"])
    calibration.report("docs/figures/calibration")   # calibration.md, calibration.png

or ``python -m redshift_jax.measures.calibration --out DIR``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from .._report import save_figure, spearman
from ..errors import ConfigError

__all__ = ["Reference", "REFERENCES", "WAVE_FREQUENCIES", "WAVE_ANGLES", "functions", "tiers", "scores",
           "rank_agreement", "properties", "markdown", "plot", "report", "network_examples", "DEFAULT_MEASURES"]

WAVE_FREQUENCIES = (1, 2, 4, 8, 16)
WAVE_ANGLES = (0, 30)
DEFAULT_MEASURES = ("fourier", "fourier_noise", "fourier_dct", "fourier_mirror", "chebyshev", "chebyshev_energy",
                    "legendre", "legendre_energy", "lz", "lz76", "lzw")


@dataclasses.dataclass(frozen=True)
class Reference:
    """One calibration function: ``fn(x, y, rng) -> values`` on coordinate arrays, its tier and a description."""

    name: str
    tier: int
    fn: Callable
    description: str


def _wave(k: int, angle_degrees: float) -> Callable:
    a = math.radians(angle_degrees)
    return lambda x, y, rng: np.cos(np.pi * k * (x * math.cos(a) + y * math.sin(a)))


def _wave_tier(k: int) -> int:
    return 1 + int(round(math.log2(k)))


def _references() -> tuple[Reference, ...]:
    refs = [
        Reference("ramp", 0, lambda x, y, rng: x, "x: linear, no curvature"),
        Reference("bump", 1, lambda x, y, rng: np.exp(-(x ** 2 + y ** 2) / (2 * 0.3 ** 2)),
                  "Gaussian bump, width 0.3: smooth, one scale"),
        Reference("kink_axis", 1, lambda x, y, rng: np.abs(x - 0.03), "|x - 0.03|: one kink along an axis"),
        Reference("kink_oblique", 1, lambda x, y, rng: np.abs(x + 0.6 * y - 0.1),
                  "|x + 0.6 y - 0.1|: the same kink, oblique (a ReLU unit)"),
        Reference("jump_oblique", 2, lambda x, y, rng: np.sign(x + 0.6 * y - 0.1),
                  "sign(x + 0.6 y - 0.1): one oblique step"),
    ]
    for k in WAVE_FREQUENCIES:
        for angle in WAVE_ANGLES:
            refs.append(Reference(f"wave_{k}_{angle}", _wave_tier(k), _wave(k, angle),
                                  f"cos(pi {k} (x cos {angle} + y sin {angle})): plane wave, {k / 2:g} periods"))
    refs += [
        Reference("sum_1_2", 2, lambda x, y, rng: _wave(1, 0)(x, y, rng) + _wave(2, 0)(x, y, rng),
                  "wave(1) + wave(2): two low frequencies"),
        Reference("sum_1_16", 4, lambda x, y, rng: _wave(1, 0)(x, y, rng) + _wave(16, 0)(x, y, rng),
                  "wave(1) + wave(16): energy split between tiers 1 and 5"),
        Reference("noise", 6, lambda x, y, rng: rng.standard_normal(x.shape), "i.i.d. N(0, 1): white noise"),
    ]
    return tuple(refs)


REFERENCES: tuple[Reference, ...] = _references()
_BY_NAME = {r.name: r for r in REFERENCES}


def _shape(resolution) -> tuple[int, int]:
    if isinstance(resolution, (int, np.integer)) and not isinstance(resolution, bool):
        shape = (int(resolution), int(resolution))
    elif isinstance(resolution, Sequence) and len(resolution) == 2:
        shape = tuple(int(n) for n in resolution)
    else:
        raise ConfigError(f"calibration resolution={resolution!r} is not allowed; allowed: an integer >= 8 or a "
                          "pair (rows, columns) of such integers")
    if min(shape) < 8:
        raise ConfigError(f"calibration resolution={resolution!r} is not allowed; allowed: at least 8 points per "
                          "axis (the plane waves need 2 points per half period up to k = n / 4)")
    return shape


def functions(resolution=64, seed: int = 0, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """The calibration functions on a regular grid over [-1, 1]^2, as float64 images.

    Args:
      resolution: points per axis (an integer, or ``(rows, columns)``); image ``[i, j]`` is at
        ``x = linspace(-1, 1, columns)[j]``, ``y = linspace(-1, 1, rows)[i]``.
      seed: the noise image's seed (numpy ``default_rng``).
      names: a subset of the reference names (default: all, in ``REFERENCES`` order). The wave frequencies
        stop at n / 4 of the smaller axis (two samples per half period), so small grids drop the highest ones.

    Returns:
      ``{name: (rows, columns) array}``.
    """
    rows, cols = _shape(resolution)
    wanted = [r.name for r in REFERENCES] if names is None else list(names)
    unknown = [n for n in wanted if n not in _BY_NAME]
    if unknown:
        raise ConfigError(f"calibration function(s) {unknown} unknown; allowed: {', '.join(_BY_NAME)}")
    y, x = np.meshgrid(np.linspace(-1.0, 1.0, rows), np.linspace(-1.0, 1.0, cols), indexing="ij")
    out = {}
    for name in wanted:
        if name.startswith(("wave_", "sum_")) and max(int(k) for k in _frequencies(name)) > min(rows, cols) // 4:
            continue
        rng = np.random.default_rng(seed)
        out[name] = np.asarray(_BY_NAME[name].fn(x, y, rng), dtype=np.float64)
    return out


def _frequencies(name: str) -> list[str]:
    parts = name.split("_")
    return parts[1:2] if name.startswith("wave_") else parts[1:]


def tiers(names: Iterable[str] | None = None) -> dict[str, int]:
    """``{name: tier}`` for the given (default: all) reference names."""
    return {n: _BY_NAME[n].tier for n in ([r.name for r in REFERENCES] if names is None else names)}


def scores(measures: Iterable = DEFAULT_MEASURES, resolution=64, seed: int = 0,
           extra: Mapping[str, np.ndarray] | None = None) -> dict[str, dict[str, float]]:
    """Every measure's score on every calibration function.

    Args:
      measures: measure entries as a Sweep takes them (names like ``"fourier_dct"``, ``(name, {args})`` pairs).
      resolution: as for :func:`functions`.
      seed: as for :func:`functions`.
      extra: more images to score beside the references (e.g. random networks), ``{row name: image}``.

    Returns:
      ``{function name: {measure label: score}}``, references first (in ``REFERENCES`` order), then ``extra``.
    """
    from .base import resolve_measure

    resolved = [resolve_measure(m) for m in measures]
    images = dict(functions(resolution, seed))
    images.update(extra or {})
    return {name: {m.label: float(m(np.asarray(img, np.float32))) for m in resolved} for name, img in images.items()}


def rank_agreement(table: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Per measure, the Spearman rank correlation between its scores and the tiers over the reference functions
    of ``table`` (rows that are not references, e.g. networks, are left out)."""
    names = [n for n in table if n in _BY_NAME]
    tier = np.array([_BY_NAME[n].tier for n in names], float)
    measures = list(next(iter(table.values())))
    return {m: spearman(np.array([table[n][m] for n in names]), tier) for m in measures}


def properties(table: Mapping[str, Mapping[str, float]], measure: str) -> dict[str, float]:
    """The validity checks of one measure on a score table (what the tests assert and the docs report):

    - ``ramp_over_noise``: ramp score / noise score (must be < 1; near 0 for a measure without a floor);
    - ``waves_monotone_0`` / ``waves_monotone_30``: 1.0 when ``wave(k)`` scores increase strictly in k;
    - ``kink_rotation`` / ``wave_rotation``: |axis - oblique| relative to the noise score (kinks; the largest
      over wave frequencies): a rotation-invariant measure keeps them small.
    """
    s = {n: row[measure] for n, row in table.items()}
    noise = s["noise"]
    out = {"ramp_over_noise": s["ramp"] / noise if noise else float("nan")}
    for angle in WAVE_ANGLES:
        waves = [s[f"wave_{k}_{angle}"] for k in WAVE_FREQUENCIES if f"wave_{k}_{angle}" in s]
        out[f"waves_monotone_{angle}"] = float(all(b > a for a, b in zip(waves, waves[1:])))
    out["kink_rotation"] = abs(s["kink_axis"] - s["kink_oblique"]) / noise
    out["wave_rotation"] = max(abs(s[f"wave_{k}_0"] - s[f"wave_{k}_30"]) / noise
                               for k in WAVE_FREQUENCIES if f"wave_{k}_0" in s)
    return out


def markdown(table: Mapping[str, Mapping[str, float]]) -> str:
    """The score table as Markdown: one row per function (with its tier), one column per measure, then the
    Spearman correlation with the tiers and the validity checks per measure."""
    measures = list(next(iter(table.values())))
    lines = ["| function | tier | " + " | ".join(measures) + " |", "|---|---|" + "---|" * len(measures)]
    for name, row in table.items():
        tier = str(_BY_NAME[name].tier) if name in _BY_NAME else "(network)"
        lines.append(f"| {name} | {tier} | " + " | ".join(f"{row[m]:.3f}" for m in measures) + " |")
    agreement = rank_agreement(table)
    lines.append("| **Spearman with tier** | | " + " | ".join(f"**{agreement[m]:.2f}**" for m in measures) + " |")
    checks = {m: properties(table, m) for m in measures}
    labels = {"ramp_over_noise": "ramp / noise", "waves_monotone_0": "waves rise with k (axis)",
              "waves_monotone_30": "waves rise with k (30 deg)", "kink_rotation": "kink: |axis - oblique| / noise",
              "wave_rotation": "waves: max |axis - 30 deg| / noise"}
    for key, label in labels.items():
        cells = [("yes" if checks[m][key] else "**no**") if key.startswith("waves_monotone") else
                 f"{checks[m][key]:.2f}" for m in measures]
        lines.append(f"| {label} | | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(table: Mapping[str, Mapping[str, float]], path, images: Mapping[str, np.ndarray] | None = None):
    """One panel per measure: score (normalized by the noise score) against the reference functions ordered by
    tier; the reference images above. Returns the written path."""
    import matplotlib.pyplot as plt

    names = [n for n in sorted(table, key=lambda n: (_BY_NAME[n].tier if n in _BY_NAME else 99, n))]
    measures = list(next(iter(table.values())))
    fig = plt.figure(figsize=(max(10.0, 0.55 * len(names)), 3.0 + 0.9 * len(measures)))
    grid = fig.add_gridspec(1 + len(measures), len(names), height_ratios=[1.2] + [1.0] * len(measures))
    for j, name in enumerate(names):
        ax = fig.add_subplot(grid[0, j])
        if images is not None and name in images:
            ax.imshow(images[name], origin="lower", cmap="viridis")
        ax.set_title(name.replace("_", " "), fontsize=6, rotation=60, ha="left")
        ax.set_xticks([])
        ax.set_yticks([])
    x = np.arange(len(names))
    colors = [plt.cm.viridis(_BY_NAME[n].tier / 6.0) if n in _BY_NAME else "0.5" for n in names]
    for i, m in enumerate(measures):
        ax = fig.add_subplot(grid[1 + i, :])
        noise = table["noise"][m] if "noise" in table else 1.0
        ax.bar(x, [table[n][m] / noise for n in names], color=colors)
        ax.axhline(1.0, color="k", lw=0.6, ls="--")
        ax.set_ylabel(m, fontsize=7, rotation=0, ha="right", va="center")
        ax.set_xlim(-0.6, len(names) - 0.4)
        ax.set_xticks([])
        ax.tick_params(labelsize=6)
    fig.suptitle("Calibration: score / white-noise score per measure (bars coloured by expected tier, 0 = ramp "
                 "... 6 = noise)", fontsize=9)
    return save_figure(fig, Path(path))


def report(out_dir, measures: Iterable = DEFAULT_MEASURES, resolution=64, seed: int = 0,
           extra: Mapping[str, np.ndarray] | None = None) -> list[Path]:
    """Write ``calibration.md`` (the table of :func:`markdown`) and ``calibration.png`` (:func:`plot`)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = scores(measures, resolution, seed, extra)
    images = {**functions(resolution, seed), **(extra or {})}
    md = out_dir / "calibration.md"
    md.write_text(f"Calibration functions on the {resolution} x {resolution} grid (seed {seed}); generated by "
                  "`python -m redshift_jax.measures.calibration`.\n\n" + markdown(table))
    return [md, plot(table, out_dir / "calibration.png", images)]


def network_examples(resolution: int = 64, seed: int = 0) -> dict[str, np.ndarray]:
    """A few random networks (paper prior, width 64) to show beside the references: ReLU at depth 1 / scale 1
    and depth 6 / scale 10, tanh at depth 6 / scale 10."""
    import jax

    from ..grids import grid
    from ..models import MLP

    x = grid(resolution, 2)
    out = {}
    for activation, depth, scale in (("relu", 1, 1.0), ("relu", 6, 10.0), ("tanh", 6, 10.0)):
        model = MLP(activation=activation, depth=depth, width=64)
        params = model.init(jax.random.PRNGKey(seed), weight_scale=scale, bias_scale=1.0)
        out[f"{activation} net, depth {depth}, scale {scale:g}"] = np.asarray(
            model.apply(params, x)).reshape(resolution, resolution)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m redshift_jax.measures.calibration",
                                     description="Score every measure on the calibration functions.")
    parser.add_argument("--out", default="figures/calibration", help="folder for calibration.md and .png")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-networks", action="store_true", help="leave out the example random networks")
    args = parser.parse_args(argv)
    extra = None if args.no_networks else network_examples(args.resolution, args.seed)
    for path in report(args.out, resolution=args.resolution, seed=args.seed, extra=extra):
        print(path)


if __name__ == "__main__":
    main()
