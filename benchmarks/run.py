"""`make bench`: the redshift_jax performance table (DESIGN.md section 8), every figure against an in-run reference.

Workloads (see benchmarks/README.md; one module each):
  W1 "heatmaps"   (w1.py) 7 activations x depth 1..10 x 15 weight scales x 16 seeds = 16,800 networks, width 64,
                  64 x 64 grid, measures fourier + chebyshev + lz (lz78). Run cold (compile included), then warm.
  measures        (measures_share.py) the three measures alone on a representative sample of W1's images (one
                  image per network and depth), scaled to 16,800 images, as a share of warm W1.
  W2 "efficiency" (w2.py) relu, depth 8, width 64, 64 x 64 grid, 4,096 seeds, no measures: forward FLOP/s divided
                  by the FLOP/s of one 2048^3 float32 jnp.matmul measured in the same run.
  baseline        (baseline.py) the same per-network computation (init + apply + 3 measures, jitted for ONE
                  network) called from a Python loop over a subset of W1; W1 networks/s over the loop's.
  bound           (bound.py) the least time W1 could take here: matmuls at the in-run rate + activation passes.
  scaling         (scaling.py) relu depth 2 width 64, fourier only, 10^2 .. 10^5 networks, each in a fresh process.
  store           (store_bench.py) a sweep written to disk verified vs unverified: what verification costs.
  train           (train_bench.py) the modular-sum training grid vs a per-network loop.

This file only runs them in order and writes the results (report.py prints the table).

    .venv/bin/python benchmarks/run.py [--quick] [--skip-train] [--skip-store] [--out PATH] [--max-scaling N]
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as a file, Python puts benchmarks/ first on the path, where its small modules (common, report, ...) would
# shadow any top-level module of the same name: import them as the package `benchmarks` from the root instead.
if sys.path and Path(sys.path[0] or ".").resolve() == HERE:
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.baseline import Baseline, baseline_pairs  # noqa: E402,F401  (baseline_pairs: tests read it here)
from benchmarks.bound import bench_bound  # noqa: E402
from benchmarks.common import log, machine_info, rss_gb, write_json  # noqa: E402
from benchmarks.measures_share import bench_measures  # noqa: E402
from benchmarks.report import TARGETS, table, verdict  # noqa: E402
from benchmarks.scaling import bench_scaling  # noqa: E402
from benchmarks.w1 import bench_w1  # noqa: E402
from benchmarks.w2 import bench_w2  # noqa: E402
from benchmarks.workloads import sizes, w1_sweep  # noqa: E402,F401


def bench_train(quick: bool) -> dict:
    """benchmarks/train_bench.py's run_train_bench(), or a note saying why it was skipped."""
    try:
        from benchmarks import train_bench
    except Exception as err:  # missing or broken: skip with a note
        return {"skipped": f"benchmarks/train_bench.py did not import: {type(err).__name__}: {err}"}
    t0 = time.perf_counter()
    try:
        if quick:
            res = train_bench.run_train_bench(activations=("relu",), steps=30, loop_networks=2)
        else:
            res = train_bench.run_train_bench()
    except Exception as err:
        return {"skipped": f"run_train_bench() failed: {type(err).__name__}: {err}"}
    res = dict(res)
    res["bench_wall_seconds"] = round(time.perf_counter() - t0, 1)
    return res


def bench_store(quick: bool) -> dict:
    """benchmarks/store_bench.py's run_store_bench() (fig4 LAPTOP, or QUICK with --quick), or why it was skipped."""
    t0 = time.perf_counter()
    try:
        from benchmarks.store_bench import run_store_bench

        res = dict(run_store_bench(quick=quick, repeats=1 if quick else 3))
    except Exception as err:
        return {"skipped": f"run_store_bench() failed: {type(err).__name__}: {err}"}
    res["bench_wall_seconds"] = round(time.perf_counter() - t0, 1)
    log(f"store: verification overhead {100 * res['verification_overhead']:+.1f}% ({res['best_seconds']})")
    return res


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="redshift_jax benchmark table (DESIGN.md section 8)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test, not a measurement")
    parser.add_argument("--skip-train", action="store_true", help="skip benchmarks/train_bench.py")
    parser.add_argument("--skip-store", action="store_true", help="skip benchmarks/store_bench.py")
    parser.add_argument("--out", default=None, help="results JSON (default benchmarks/results.json; "
                                                    "benchmarks/results-quick.json with --quick)")
    parser.add_argument("--max-scaling", type=int, default=None,
                        help="leave out scaling sizes above this many networks (10^5 alone takes minutes)")
    args = parser.parse_args(argv)

    t_start = time.perf_counter()
    sz = sizes(args.quick)
    out = Path(args.out) if args.out else HERE / ("results-quick.json" if args.quick else "results.json")
    machine = machine_info()
    log(f"{machine['cpu']}, {machine['cores']} cores, load {machine['load_average_at_start']}")

    sweep = w1_sweep(sz)
    loop = Baseline(sweep, sz["baseline_combos"], sz["baseline_per_combo"])
    w1 = bench_w1(sweep, after_cold=loop.prepare, between=loop.run_pass)  # first: its compile is cold
    baseline = loop.result()
    measures = bench_measures(sweep, sz["sample_networks"], w1["warm_seconds"])
    w2 = bench_w2(sz["w2_seeds"], sz["w2_chunk"], sz["matmul_n"])
    bound = bench_bound(sweep, w2["matmul_gflops"], w1["warm_seconds"], baseline["networks_per_second"])
    main_rss = rss_gb()
    scaling_sizes = tuple(n for n in sz["scaling"] if args.max_scaling is None or n <= args.max_scaling)
    scaling = bench_scaling(scaling_sizes, sz["scaling_limit_s"])
    ok_rows = [r for r in scaling["rows"] if "seconds" in r]
    store = None if args.skip_store else bench_store(args.quick)
    train = None if args.skip_train else bench_train(args.quick)
    main_rss = max(main_rss, rss_gb())

    peak = max([main_rss] + [r["peak_rss_gb"] for r in ok_rows])
    res = {
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": bool(args.quick),
        "w1_seconds": w1["warm_seconds"],
        "w1_compile_seconds": w1["compile_seconds"],
        "networks_per_second": w1["networks_per_second"],
        "efficiency": w2["efficiency"],
        "baseline_speedup": w1["networks_per_second"] / baseline["networks_per_second"],
        "measures_share": measures["share"],
        "peak_rss_gb": peak,
        "scaling": [{"networks": r["networks"], "seconds": r.get("seconds"), "peak_rss_gb": r.get("peak_rss_gb"),
                     **({"error": r["error"]} if "error" in r else {})} for r in scaling["rows"]],
        "machine": machine,
        "train": train if train is not None else {"skipped": "--skip-train"},
        "store": store if store is not None else {"skipped": "--skip-store"},
        "targets": {k: {"target": v[2], "pass": None} for k, v in TARGETS.items()},
        "details": {"w1": w1, "measures": measures, "w2": w2, "baseline": baseline, "bound": bound, "scaling": scaling,
                    "main_process_peak_rss_gb": main_rss},
    }
    for k in TARGETS:
        res["targets"][k]["pass"] = verdict(k, res[k]) == "PASS"
    res["bench_wall_seconds"] = time.perf_counter() - t_start
    res["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    text = table({**res, "train": train, "store": store})
    print(text, flush=True)
    res["table"] = text
    write_json(res, out)
    print(f"wrote {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
