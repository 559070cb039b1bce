"""``redshift-jax``: run the sweeps in ``sweeps/``, plot their results, list them.

    redshift-jax sweep sweeps/fig4_heatmaps.py [--out PATH] [--quick | --laptop] [--resume]
                       [--set AXIS=VALUES ...] [--chunk-size N] [--figures DIR] [--no-progress]
    redshift-jax plot PATH [--out DIR]
    redshift-jax list [DIR]

A sweep file defines ``SWEEP`` (paper scale), ``QUICK`` (smoke size, under a minute on 2 CPU cores) and
usually ``LAPTOP`` (a few minutes); each is a ``Sweep``, a dict of named ``Sweep`` parts, or a training
experiment (``redshift_jax.train``). ``FIGURE`` names the plot and ``CLAIMS`` (Table 1) the paper's claims.
"""

from __future__ import annotations

import argparse
import json
import math
import runpy
import sys
from pathlib import Path

import numpy as np

from .nets import ConfigError

SIZES = {"full": "SWEEP", "laptop": "LAPTOP", "quick": "QUICK"}


def parse_values(text: str) -> list:
    """``1,2,3`` | ``1:10`` (integers, inclusive) | ``geom:1:50:15`` | ``lin:0:1:5`` | ``relu,tanh`` | ``true,false``."""
    text = text.strip()
    if text.startswith(("geom:", "lin:")):
        kind, lo, hi, n = text.split(":")
        space = np.geomspace if kind == "geom" else np.linspace
        return [round(float(v), 6) for v in space(float(lo), float(hi), int(n))]
    if ":" in text and "," not in text:
        lo, hi = text.split(":")
        return list(range(int(lo), int(hi) + 1))
    out = []
    for item in text.split(","):
        item = item.strip()
        low = item.lower()
        if low in ("true", "false"):
            out.append(low == "true")
            continue
        try:
            out.append(int(item))
            continue
        except ValueError:
            pass
        try:
            out.append(float(item))
        except ValueError:
            out.append(item)
    return out


def load_sweep_file(path: str | Path, size: str = "full"):
    """(target, figure, claims) from a sweep file; target is a Sweep, a dict of parts or an experiment."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"sweep file {str(path)!r} does not exist; see `redshift-jax list`")
    module = runpy.run_path(str(path))
    name = SIZES[size]
    if name not in module:
        if size == "laptop" and "SWEEP" in module:
            print(f"{path.name} defines no LAPTOP size; running SWEEP", file=sys.stderr)
            name = "SWEEP"
        else:
            raise ConfigError(f"{path.name} defines no {name}; allowed sizes here: "
                              + ", ".join(k for k, v in SIZES.items() if v in module))
    return module[name], module.get("FIGURE", path.stem), module.get("CLAIMS", {})


def _is_experiment(target) -> bool:
    return type(target).__module__.startswith("redshift_jax.train")


def apply_overrides(target, overrides: list[str]):
    from .sweep.spec import Sweep

    if not overrides:
        return target
    parts = target if isinstance(target, dict) else {"": target}
    changes = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r} is not allowed; use AXIS=VALUES, e.g. --set seed=0:7")
        axis, values = item.split("=", 1)
        changes[axis.strip()] = parse_values(values)
    new = {}
    for key, sweep in parts.items():
        if not isinstance(sweep, Sweep):
            raise ConfigError("--set works on sweeps of random networks, not on training experiments")
        for axis, values in changes.items():
            sweep = sweep.with_axis(axis, values)
        new[key] = sweep
    return new if isinstance(target, dict) else new[""]


def default_out(file: Path, size: str, suite: bool) -> Path:
    stem = file.stem + ("" if size == "full" else f"-{size}")
    return Path("results") / (stem if suite else stem + ".zarr")


def run_target(target, out: Path, resume: bool, progress: bool, figure: str, claims: dict,
               chunk_size: int | None = None):
    """Run a Sweep / dict of parts / experiment into ``out``; return what ``load_result`` would."""
    from .sweep import run_sweep

    if _is_experiment(target):
        from . import train

        return train.run(target, out=str(out), resume=resume, progress=progress)
    if isinstance(target, dict):
        out.mkdir(parents=True, exist_ok=True)
        results = {}
        for name, sweep in target.items():
            if progress:
                print(f"[{name}] {sweep.num_networks} networks", file=sys.stderr)
            results[name] = run_sweep(sweep, out=out / f"{name}.zarr", resume=resume, progress=progress,
                                      chunk_size=chunk_size, attrs={"figure": figure})
        manifest = {"figure": figure, "parts": list(target), "claims": claims}
        (out / "suite.json").write_text(json.dumps(manifest, indent=1))
        return results
    return run_sweep(target, out=out, resume=resume, progress=progress, chunk_size=chunk_size,
                     attrs={"figure": figure})


def load_result(path: str | Path):
    """(result, figure, claims): a Dataset, or a dict of part Datasets for a suite directory."""
    import xarray as xr

    path = Path(path)
    manifest = path / "suite.json"
    if manifest.exists():
        meta = json.loads(manifest.read_text())
        parts = {name: xr.open_zarr(path / f"{name}.zarr", consolidated=True).load() for name in meta["parts"]}
        return parts, meta["figure"], meta.get("claims", {})
    if not path.exists():
        raise ConfigError(f"result {str(path)!r} does not exist; run `redshift-jax sweep` first")
    ds = xr.open_zarr(path, consolidated=True).load()
    return ds, ds.attrs.get("figure", "heatmaps"), {}


def plot_path(path: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    from . import plots

    path = Path(path)
    out_dir = Path(out_dir) if out_dir else Path("figures") / path.name.removesuffix(".zarr")
    result, figure, claims = load_result(path)
    if not isinstance(result, dict) and str(result.attrs.get("kind", "")).startswith("train_"):
        from .train import plots as train_plots

        return train_plots.plot(result, out_dir)
    return plots.plot_result(result, figure, out_dir, claims)


def cmd_sweep(args) -> int:
    size = "quick" if args.quick else "laptop" if args.laptop else "full"
    file = Path(args.file)
    target, figure, claims = load_sweep_file(file, size)
    target = apply_overrides(target, args.set or [])
    out = Path(args.out) if args.out else default_out(file, size, isinstance(target, dict))
    result = run_target(target, out, args.resume, not args.no_progress, figure, claims, args.chunk_size)
    del result
    print(f"results: {out}")
    if args.figures:
        for p in plot_path(out, args.figures):
            print(f"figure: {p}")
    return 0


def cmd_plot(args) -> int:
    for p in plot_path(args.path, args.out):
        print(f"figure: {p}")
    return 0


def cmd_list(args) -> int:
    directory = Path(args.dir)
    files = sorted(directory.glob("*.py"))
    if not files:
        print(f"no sweep files in {directory}/", file=sys.stderr)
        return 1
    for file in files:
        module = runpy.run_path(str(file))
        doc = (module.get("__doc__") or "").strip().splitlines()
        sizes = []
        for size, var in SIZES.items():
            target = module.get(var)
            if target is None:
                continue
            if _is_experiment(target):
                sizes.append(f"{size}: training")
                continue
            parts = target.values() if isinstance(target, dict) else [target]
            sizes.append(f"{size}: {sum(p.num_networks for p in parts):,} networks")
        print(f"{str(file):34s} {doc[0] if doc else ''}\n{'':34s} ({'; '.join(sizes)})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="redshift-jax", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("sweep", help="run a sweep file")
    p.add_argument("file")
    p.add_argument("--out", help="result path (default results/<name>[-size].zarr, or a directory for suites)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="the file's QUICK size (smoke test, < 1 min)")
    group.add_argument("--laptop", action="store_true", help="the file's LAPTOP size (a few minutes)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run; finished chunks are kept")
    p.add_argument("--set", action="append", metavar="AXIS=VALUES",
                   help="override an axis: 1,2,3 | 1:10 | geom:1:50:15 | lin:0:1:5 | relu,tanh")
    p.add_argument("--chunk-size", type=int, default=None, help="networks per jitted call (default: automatic)")
    p.add_argument("--figures", help="also draw the figures into this directory")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_sweep)
    p = sub.add_parser("plot", help="draw the figures of a result")
    p.add_argument("path")
    p.add_argument("--out", help="figure directory (default figures/<name>)")
    p.set_defaults(func=cmd_plot)
    p = sub.add_parser("list", help="list the sweep files")
    p.add_argument("dir", nargs="?", default="sweeps")
    p.set_defaults(func=cmd_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .devices import use_all_cpu_cores

    use_all_cpu_cores()  # a CPU-only sweep then runs on every core (same results, bitwise)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as err:
        print(f"redshift-jax: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
