"""Infinite-width samples against finite networks (DESIGN.md section 16): functions/s on the 64 x 64 grid.

Both go through ``run_sweep`` with the same measure (``fourier``), so each figure is what a sweep gets per
function:

- ``NNGP``: ``rj.models.NNGP(activation, depth)``, one numeric point (weight scale 2); the timed run includes
  ``NNGP.setup`` (the float64 grid kernel and its Cholesky factor, timed apart too), amortized over the
  ``--gp-samples`` samples of that point, then ``L z`` per sample.
- ``MLP``: ``rj.MLP(activation, depth, width=1024, prior="normal")``, ``--mlp-networks`` networks, the same weight
  scale.

Each model first runs once with a few seeds (compiles; excluded, reported apart). Also reported: the GP rate
without the setup, and a plain batched ``L @ Z`` (one float32 matmul for all samples, outside the engine).

    .venv/bin/python benchmarks/nngp_bench.py [--activation relu] [--depth 3] [--gp-samples 512]
                                              [--mlp-networks 64] [--out benchmarks/nngp_results.json]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import redshift_jax as rj  # noqa: E402  (sets one CPU device per core before JAX starts)
from benchmarks.common import write_json  # noqa: E402
from redshift_jax.models.nngp import NNGP, factor  # noqa: E402

RESOLUTION = 64
WIDTH = 1024
WEIGHT_SCALE = 2.0


def _timed_sweep(sweep) -> float:
    t0 = time.perf_counter()
    ds = rj.run_sweep(sweep, progress=False)
    seconds = time.perf_counter() - t0
    assert bool(ds.finite.all())
    return seconds


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activation", default="relu")
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--gp-samples", type=int, default=512)
    parser.add_argument("--mlp-networks", type=int, default=64)
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)

    gp = NNGP(activation=args.activation, depth=args.depth)
    mlp = rj.MLP(activation=args.activation, depth=args.depth, width=WIDTH, prior="normal")
    common = dict(resolution=RESOLUTION, measures=("fourier",))
    axes = {"weight_scale": [WEIGHT_SCALE]}
    points = rj.grid(RESOLUTION, 2).astype(np.float64)

    # the setup's two steps, timed apart (the sweep below repeats them inside its own timing)
    t0 = time.perf_counter()
    k = gp.gram(points, weight_scale=WEIGHT_SCALE)
    t_kernel = time.perf_counter() - t0
    t0 = time.perf_counter()
    factor_l = factor(k).astype(np.float32)
    t_cholesky = time.perf_counter() - t0

    results = {}
    for name, model, count in (("nngp", gp, args.gp_samples), ("mlp", mlp, args.mlp_networks)):
        warm = rj.Sweep(model=model, axes={**axes, "seed": list(range(4))}, **common)
        t_first = _timed_sweep(warm)
        sweep = rj.Sweep(model=model, axes={**axes, "seed": list(range(4, 4 + count))}, **common)
        seconds = _timed_sweep(sweep)
        results[name] = {"functions": count, "seconds": seconds, "per_second": count / seconds,
                         "first_run_seconds": t_first}
        print(f"{name:5s}: {count} functions in {seconds:.2f} s = {count / seconds:.1f}/s "
              f"(first run with compile: {t_first:.2f} s)", flush=True)

    gp_only = max(results["nngp"]["seconds"] - t_kernel - t_cholesky, 1e-9)
    z = jax.random.normal(jax.random.key(0), (len(points), args.gp_samples), jnp.float32)
    batched = jax.jit(lambda a, b: jnp.dot(a, b, precision="highest"))
    lj = jnp.asarray(factor_l)
    batched(lj, z).block_until_ready()
    t0 = time.perf_counter()
    batched(lj, z).block_until_ready()
    t_batched = time.perf_counter() - t0

    report = {
        "benchmark": "nngp_bench", "date": time.strftime("%Y-%m-%d"), "grid": f"{RESOLUTION}x{RESOLUTION}",
        "activation": args.activation, "depth": args.depth, "mlp_width": WIDTH, "weight_scale": WEIGHT_SCALE,
        "setup": {"kernel_seconds": t_kernel, "cholesky_seconds": t_cholesky},
        "nngp": results["nngp"], "mlp": results["mlp"],
        "ratio_nngp_over_mlp": results["nngp"]["per_second"] / results["mlp"]["per_second"],
        "nngp_per_second_without_setup": args.gp_samples / gp_only,
        "batched_LZ_per_second": args.gp_samples / t_batched,
        "devices": [str(d) for d in jax.devices()], "jax": jax.__version__, "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(f"setup: kernel {t_kernel:.2f} s, Cholesky {t_cholesky:.2f} s; NNGP / MLP = "
          f"{report['ratio_nngp_over_mlp']:.1f}x; NNGP without setup {report['nngp_per_second_without_setup']:.0f}/s;"
          f" batched L @ Z {report['batched_LZ_per_second']:.0f}/s")
    if args.out:
        write_json(report, Path(args.out))
    return report


if __name__ == "__main__":
    main()
