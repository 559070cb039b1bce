"""The training claims as numbers: rank correlations over architecture means, with bootstrap intervals over seeds.

An *architecture* of the modular-sum experiment is one (activation, prefactor) pair; its value is the mean over
seeds (NaN networks, e.g. diverged ones, left out). Correlating architecture means, not individual networks,
asks whether the architectures that start complex end complex (the paper's Figure 7 plots one point per
architecture); the bootstrap resamples the seeds with replacement, the same resample for both variables and
every architecture (the seeds are paired: a seed fixes the split and the initial parameters everywhere).

- ``spearman_of_means(x, y)``: Spearman's rho of the seed means of two arrays, with its bootstrap interval.
- ``init_final_correlation(ds, measure)``: C14, complexity at init against complexity after training, per
  modulus and pooled over moduli.
- ``target_match_correlation(ds, measure)``: C13, test accuracy against closeness of the complexity at init to
  the target's (``-|c_init - c_target|``), per modulus.
- ``solved_table(ds)``: C12, each (activation, modulus)'s best mean test accuracy over prefactors, its SE over
  seeds and whether it reaches ``threshold``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .._report import spearman as _spearman
from ..errors import ConfigError
from .modsum import ModularSum, _check_int, quadratic_peak, target_complexity

__all__ = ["SpearmanCI", "spearman_of_means", "init_final_correlation", "target_match_correlation",
           "solved_table", "spec_of"]


@dataclasses.dataclass(frozen=True)
class SpearmanCI:
    """Spearman's rho over cells (each cell the mean over seeds) and its bootstrap interval over seeds.

    Attributes:
      rho: the rank correlation of the cell means (NaN with fewer than 3 finite cells).
      low, high: 2.5 and 97.5 percentiles of rho over bootstrap resamples of the seeds (NaN without resamples).
      n_cells: cells with both means finite.
      n_seeds: seeds resampled.
      rho_networks: the rank correlation over individual networks (every cell and seed one point), for
        comparison.
    """

    rho: float
    low: float
    high: float
    n_cells: int
    n_seeds: int
    rho_networks: float

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        return f"{self.rho:+.2f} [{self.low:+.2f}, {self.high:+.2f}]"


def spearman(a, b) -> float:
    """Spearman's rho of the finite pairs (``redshift_jax.studies.spearman``, the project's one Spearman)."""
    return _spearman(a, b)


def _values(name: str, da, seed_dim: str) -> np.ndarray:
    import xarray as xr

    if not isinstance(da, xr.DataArray):
        raise ConfigError(f"spearman_of_means: {name} is a {type(da).__name__}; allowed: an xarray.DataArray with "
                          f"a {seed_dim!r} dimension")
    if seed_dim not in da.dims:
        raise ConfigError(f"spearman_of_means: {name} has dims {tuple(da.dims)}; allowed: dims including "
                          f"{seed_dim!r} (the dimension resampled)")
    other = [d for d in da.dims if d != seed_dim]
    return np.asarray(da.transpose(seed_dim, *other).values, np.float64).reshape(da.sizes[seed_dim], -1)


def _nanmean0(a: np.ndarray) -> np.ndarray:
    n = np.isfinite(a).sum(0)
    s = np.where(np.isfinite(a), a, 0.0).sum(0)
    return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def spearman_of_means(x, y, n_boot: int = 1000, seed: int = 0, seed_dim: str = "seed") -> SpearmanCI:
    """Spearman's rho between the means over ``seed_dim`` of ``x`` and ``y``, every other coordinate a cell.

    ``x`` and ``y`` are ``xarray.DataArray`` s with the same dims and sizes (e.g. (activation, prefactor, seed)
    at one modulus); NaN values are left out of a cell's mean. The interval: ``n_boot`` resamples of the seeds
    with replacement (``numpy.random.default_rng(seed)``), the same seeds for ``x`` and ``y``, rho recomputed
    on the resampled means; percentiles 2.5 and 97.5 of the finite values.

    Raises:
      ConfigError: an argument is not a DataArray with ``seed_dim``, the two differ in dims or sizes, or
        ``n_boot`` / ``seed`` is not an integer >= 0.
    """
    _check_int("spearman_of_means", "n_boot", n_boot, 0)
    _check_int("spearman_of_means", "seed", seed, 0)
    a, b = _values("x", x, seed_dim), _values("y", y, seed_dim)
    if set(x.dims) != set(y.dims) or any(x.sizes[d] != y.sizes[d] for d in x.dims):
        raise ConfigError(f"spearman_of_means: x has sizes {dict(x.sizes)} and y {dict(y.sizes)}; allowed: the "
                          "same dims and sizes")
    b = _values("y", y.transpose(*x.dims), seed_dim)
    ma, mb = _nanmean0(a), _nanmean0(b)
    rho = spearman(ma, mb)
    n_seeds = a.shape[0]
    low = high = float("nan")
    if n_boot > 0 and n_seeds > 1:
        rng = np.random.default_rng(seed)
        rhos = np.empty(n_boot)
        for i in range(n_boot):
            pick = rng.integers(0, n_seeds, n_seeds)
            rhos[i] = spearman(_nanmean0(a[pick]), _nanmean0(b[pick]))
        rhos = rhos[np.isfinite(rhos)]
        if rhos.size:
            low, high = (float(v) for v in np.percentile(rhos, [2.5, 97.5]))
    n_cells = int((np.isfinite(ma) & np.isfinite(mb)).sum())
    return SpearmanCI(rho=rho, low=low, high=high, n_cells=n_cells, n_seeds=n_seeds,
                      rho_networks=spearman(a, b))


def _check_measure(ds, measure: str, suffixes=("_init",)) -> None:
    missing = [f"{measure}{s}" for s in suffixes if f"{measure}{s}" not in ds]
    if missing:
        have = sorted({str(v).rsplit("_", 1)[0] for v in ds.data_vars if str(v).endswith("_init")})
        raise ConfigError(f"measure={measure!r}: the Dataset has no {', '.join(missing)}; allowed: "
                          f"{', '.join(have) or 'none (no complexity recorded)'}")


def init_final_correlation(ds, measure: str = "fourier", n_boot: int = 1000, seed: int = 0) -> dict:
    """C14: Spearman's rho of the complexity at init against after training, over architecture means.

    Args:
      ds: a modular-sum result (``rj.train.run(ModularSum(...))``) with ``<measure>_init`` and
        ``<measure>_final``.
      measure: e.g. ``"fourier"``, ``"fourier_dct"``, ``"lz"``.

    Returns:
      ``{modulus: SpearmanCI, ..., "pooled": SpearmanCI}``: per modulus the cells are (activation, prefactor);
      pooled, (activation, prefactor, modulus).
    """
    _check_measure(ds, measure, ("_init", "_final"))
    x, y = ds[f"{measure}_init"], ds[f"{measure}_final"]
    out = {int(m): spearman_of_means(x.sel(modulus=m), y.sel(modulus=m), n_boot, seed) for m in ds.modulus.values}
    out["pooled"] = spearman_of_means(x, y, n_boot, seed)
    return out


def spec_of(ds) -> ModularSum:
    """The ``ModularSum`` a result was run with (``ds.attrs["spec"]``), for its lattice and moduli."""
    import json

    raw = ds.attrs.get("spec")
    if raw is None or ds.attrs.get("kind") != "train_modsum":
        raise ConfigError(f"spec_of: the Dataset has kind {ds.attrs.get('kind')!r} and spec {raw!r}; allowed: a "
                          "modular-sum result (kind 'train_modsum') carrying its spec")
    d = json.loads(raw) if isinstance(raw, str) else dict(raw)
    d.pop("type", None)
    return ModularSum(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def target_match_correlation(ds, measure: str = "fourier_dct", targets=None, n_boot: int = 1000,
                             seed: int = 0) -> dict:
    """C13: Spearman's rho of test accuracy against ``-|c_init - c_target|`` over architecture means.

    ``c_init`` is an architecture's mean complexity at init (each network's ``-|c - c_target|`` is averaged
    over seeds), ``c_target`` the target's complexity on the same lattice (``target_complexity``), so a positive
    rho says the architectures whose functions at init are as complex as the target generalize better.

    Args:
      ds: a modular-sum result with ``<measure>_init`` and ``test_accuracy``.
      targets: ``target_complexity`` output (default: computed from ``ds.attrs["spec"]``).

    Returns:
      ``{modulus: SpearmanCI}`` (cells: activation x prefactor).
    """
    _check_measure(ds, measure)
    if targets is None:
        targets = target_complexity(spec_of(ds), measures=(measure,))
    out = {}
    for m in ds.modulus.values:
        c_t = float(targets.sel(measure=measure, modulus=int(m)))
        closeness = -abs(ds[f"{measure}_init"].sel(modulus=m) - c_t)
        out[int(m)] = spearman_of_means(closeness, ds.test_accuracy.sel(modulus=m), n_boot, seed)
    return out


def solved_table(ds, threshold: float = 0.9) -> list[dict]:
    """C12: per (activation, modulus), the prefactor with the best mean test accuracy over seeds.

    Returns rows ``{"activation", "modulus", "prefactor", "mean", "se", "n", "solved"}``: ``se`` = std / sqrt(n)
    over the seeds that did not diverge, ``solved`` = ``mean >= threshold``. The best prefactor is picked on the
    same seeds, so ``mean`` is optimistic by a selection bias of the order of ``se``.
    """
    if not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
        raise ConfigError(f"solved_table: threshold={threshold!r}; allowed: a number in (0, 1]")
    rows = []
    for act in ds.activation.values:
        for m in ds.modulus.values:
            acc = np.asarray(ds.test_accuracy.sel(activation=act, modulus=m).transpose("prefactor", "seed").values)
            n = np.isfinite(acc).sum(1)
            mean = np.where(n > 0, np.nansum(acc, 1) / np.maximum(n, 1), -np.inf)
            k = int(np.argmax(mean))
            vals = acc[k][np.isfinite(acc[k])]
            se = float(vals.std(ddof=1) / np.sqrt(vals.size)) if vals.size > 1 else float("nan")
            best = float(mean[k]) if np.isfinite(mean[k]) else float("nan")
            rows.append({"activation": str(act), "modulus": int(m), "prefactor": float(ds.prefactor.values[k]),
                         "mean": best, "se": se, "n": int(vals.size), "solved": bool(best >= threshold)})
    return rows


# ----------------------------------------------------------------------------------------------------------
# The record: ``python -m redshift_jax.train.analysis RESULT.zarr [...]`` prints the claims' tables (markdown)
# ----------------------------------------------------------------------------------------------------------

CORRELATION_MEASURES = ("fourier", "fourier_dct", "lz")


def _fmt(r: SpearmanCI) -> str:
    return f"{r.rho:+.2f} [{r.low:+.2f}, {r.high:+.2f}]"


def report(ds, n_boot: int = 1000, threshold: float = 0.9, measures=CORRELATION_MEASURES) -> str:
    """Markdown tables of one modular-sum result: the targets' complexity, C14 (init vs trained), C13 (accuracy
    against closeness to the target) and C12 (best test accuracy per activation and modulus)."""
    spec = spec_of(ds)
    measures = [m for m in measures if f"{m}_init" in ds]
    acts = ", ".join(map(str, ds.activation.values))
    lines = [f"### {ds.attrs.get('name', 'modsum')}: n = {spec.n}, dim = {spec.dim}, train_fraction = "
             f"{spec.train_fraction}, {ds.sizes['seed']} seeds, activations {acts}", ""]
    t = target_complexity(spec)
    moduli = [int(m) for m in ds.modulus.values]
    lines += ["Targets' complexity (`rj.train.modsum.target_complexity`):", "",
              "| measure | " + " | ".join(f"M={m}" for m in moduli) + " |", "|---|" + "---|" * len(moduli)]
    lines += [f"| {name} | " + " | ".join(f"{float(t.sel(measure=name, modulus=m)):.3f}" for m in moduli) + " |"
              for name in t.measure.values]
    lines += ["", "C14, Spearman of complexity at init vs after training over architecture means (activation x "
              "prefactor), 95% bootstrap interval over seeds; per network in brackets:", "",
              "| measure | " + " | ".join(f"M={m}" for m in moduli) + " | pooled |",
              "|---|" + "---|" * (len(moduli) + 1)]
    for name in measures:
        c = init_final_correlation(ds, name, n_boot)
        cells = [f"{_fmt(c[k])} ({c[k].rho_networks:+.2f})" for k in moduli + ["pooled"]]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "C13, Spearman of test accuracy against -|complexity at init - target's| over architecture means, "
              "95% bootstrap interval over seeds:", "",
              "| measure | " + " | ".join(f"M={m}" for m in moduli) + " |", "|---|" + "---|" * len(moduli)]
    for name in measures:
        c = target_match_correlation(ds, name, n_boot=n_boot)
        lines.append(f"| {name} | " + " | ".join(_fmt(c[m]) for m in moduli) + " |")
    rows = solved_table(ds, threshold)
    lines += ["", f"C12, best mean test accuracy over prefactors +- SE over seeds (prefactor); bold = solved "
              f"(>= {threshold}):", "", "| activation | " + " | ".join(f"M={m}" for m in moduli) + " |",
              "|---|" + "---|" * len(moduli)]
    for act in ds.activation.values:
        cells = []
        for m in moduli:
            r = next(r for r in rows if r["activation"] == str(act) and r["modulus"] == m)
            cells.append(f"{'**' if r['solved'] else ''}{r['mean']:.2f} +- {r['se']:.2f}{'**' if r['solved'] else ''}"
                         f" ({r['prefactor']:g})")
        lines.append(f"| {act} | " + " | ".join(cells) + " |")
    if ds.sizes["prefactor"] >= 3:
        lines += ["", "Fitted best prefactor (`quadratic_peak`, 95% bootstrap interval over seeds; * = outside the "
                  "prefactors tried):", "", "| activation | " + " | ".join(f"M={m}" for m in moduli) + " |",
                  "|---|" + "---|" * len(moduli)]
        for act in ds.activation.values:
            cells = []
            for m in moduli:
                q = quadratic_peak(ds.test_accuracy.sel(activation=act, modulus=m), n_boot=n_boot)
                cells.append(f"{q.peak:.3g}{'' if q.in_range else '*'} [{q.low:.3g}, {q.high:.3g}]")
            lines.append(f"| {act} | " + " | ".join(cells) + " |")
    n_div = int(ds.diverged.sum()) if "diverged" in ds else 0
    lines += ["", f"Diverged networks: {n_div} of {ds.test_accuracy.size}.", ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    import argparse

    from ..store import load_dataset

    parser = argparse.ArgumentParser(prog="python -m redshift_jax.train.analysis",
                                     description="The modular-sum claims' tables (markdown) of result stores.")
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--threshold", type=float, default=0.9)
    args = parser.parse_args(argv)
    for path in args.paths:
        print(report(load_dataset(path), n_boot=args.n_boot, threshold=args.threshold))


if __name__ == "__main__":
    main()
