"""W1 on two source trees, timed in alternating processes on the same machine: is the new one slower?

W1 is the 16,800-network Figure 4 grid (``workloads.w1_sweep``: 7 activations x depth 1..10 x 15 weight scales x
16 seeds, width 64, 64 x 64 grid, fourier + chebyshev + lz), ``rj.run_sweep(sweep, progress=False)`` in memory.
One worker process per tree imports that tree's ``redshift_jax`` (``PYTHONPATH=TREE``, same venv; it checks that
the package came from TREE), sets ``XLA_FLAGS=--xla_force_host_platform_device_count=<cores>`` itself before JAX
starts (older trees do not do it on import) and runs W1 once cold (compile, first-call paths). The workers are
started one after the other; then they take turns, one warm W1 run at a time (the other waits idle on its
pipe), in ABBA order (old new, new old, old new, ...), so both trees see the same moments of a shared machine.
Each tree's figure is its best warm run; ``pair_ratios`` are new/old of the two runs of each alternation
(adjacent in time, so they see about the same load) and their median is the steadier figure on a busy machine.

    .venv/bin/python benchmarks/compare_revisions.py --old /tmp/oldrev --new . [--rounds 3] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLAG = "--xla_force_host_platform_device_count"


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def serve(tree: str, devices: int) -> None:
    """Worker: W1 cold once, then one warm W1 run per ``run`` line on stdin, one JSON line each on stdout.

    Imports only this tree's package, nothing from benchmarks/ (its common.py would put this checkout on the path).
    """
    flags = " ".join(f for f in os.environ.get("XLA_FLAGS", "").split() if not f.startswith(FLAG))
    os.environ["XLA_FLAGS"] = f"{flags} {FLAG}={devices}".strip()
    import jax
    import numpy as np

    import redshift_jax as rj

    where = Path(rj.__file__).resolve()
    if Path(tree).resolve() not in where.parents:
        raise SystemExit(f"redshift_jax came from {where}, not from {tree}")
    # The grid of benchmarks/workloads.py w1_sweep, written out (see above).
    sweep = rj.Sweep(
        model=rj.MLP(width=64),
        axes={"activation": ("relu", "gelu", "swish", "selu", "tanh", "gaussian", "sin"),
              "depth": tuple(range(1, 11)), "weight_scale": np.geomspace(1, 50, 15), "seed": tuple(range(16))},
        resolution=64, measures=("fourier", "chebyshev", "lz"), name="bench-w1")

    def one() -> dict:
        t0 = time.perf_counter()
        ds = rj.run_sweep(sweep, progress=False)
        seconds = time.perf_counter() - t0
        return {"seconds": seconds, "engine_run_seconds": ds.attrs.get("run_seconds"),
                "chunk_size": ds.attrs.get("chunk_size"), "finite_fraction": float(np.asarray(ds["finite"]).mean())}

    cold = one()
    print(json.dumps({"ready": True, "package": str(where.parent), "networks": sweep.num_networks,
                      "devices": jax.local_device_count(), "cold": cold}), flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        print(json.dumps(one()), flush=True)


class Worker:
    def __init__(self, tree: Path, devices: int):
        env = dict(os.environ)
        env["PYTHONPATH"] = str(tree)
        env.pop("XLA_FLAGS", None)  # the worker sets its own
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # leave both trees as they are (no __pycache__ written into them)
        self.cwd = tempfile.TemporaryDirectory(prefix="w1cmp-")  # nothing of either tree on the path but PYTHONPATH
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve", str(tree),
                                      "--devices", str(devices)], env=env, cwd=self.cwd.name, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.tree = tree
        self.info = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker for {self.tree} exited with {self.proc.wait()} (its stderr is above)")
        return json.loads(line)

    def run(self) -> dict:
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        self.cwd.cleanup()


def log(msg: str) -> None:
    print(f"[w1cmp {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def compare(old: Path, new: Path, rounds: int, devices: int) -> dict:
    workers = {}
    try:
        for name, tree in (("old", old), ("new", new)):  # one at a time: each cold run has the machine alone
            workers[name] = Worker(tree, devices)
            log(f"{name} ready ({workers[name].info['package']}): cold {workers[name].info['cold']['seconds']:.2f} s")
        runs = {"old": [], "new": []}
        order = []
        for r in range(rounds):  # ABBA: old new, new old, ...
            for name in (("old", "new") if r % 2 == 0 else ("new", "old")):
                res = workers[name].run()
                runs[name].append(res)
                order.append(name)
                log(f"round {r + 1} {name}: {res['seconds']:.2f} s (engine run {res['engine_run_seconds']} s); "
                    f"load {os.getloadavg()[0]:.2f}")
    finally:
        for w in workers.values():
            w.close()
    best = {k: min(x["seconds"] for x in v) for k, v in runs.items()}
    pairs = [n["seconds"] / o["seconds"] for o, n in zip(runs["old"], runs["new"])]
    return {"old_tree": str(old), "new_tree": str(new), "rounds": rounds, "devices": devices, "order": order,
            "networks": workers["new"].info["networks"],
            "cold_seconds": {k: w.info["cold"]["seconds"] for k, w in workers.items()},
            "runs": runs, "old_w1_seconds": best["old"], "new_w1_seconds": best["new"],
            "new_over_old": best["new"] / best["old"], "pair_ratios": pairs,
            "median_pair_ratio": statistics.median(pairs)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", help="source tree of the old revision (a checkout; holds redshift_jax/)")
    parser.add_argument("--new", default=str(Path(__file__).resolve().parents[1]), help="default: this checkout")
    parser.add_argument("--rounds", type=int, default=3, help="alternations (one warm W1 run per tree each)")
    parser.add_argument("--devices", type=int, default=_cores(), help="CPU devices (default: one per core)")
    parser.add_argument("--out", default=None, help="write the result JSON here")
    parser.add_argument("--serve", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        serve(args.serve, args.devices)
        return 0
    if not args.old:
        parser.error("--old is required")
    res = compare(Path(args.old).resolve(), Path(args.new).resolve(), args.rounds, args.devices)
    ratio = res["new_over_old"]
    print(f"W1 ({res['networks']:,} networks, best of {args.rounds} alternating warm runs per tree): "
          f"old {res['old_w1_seconds']:.2f} s, new {res['new_w1_seconds']:.2f} s, new/old {ratio:.3f}; "
          f"median new/old of adjacent pairs {res['median_pair_ratio']:.3f} "
          f"({', '.join(f'{p:.2f}' for p in res['pair_ratios'])})")
    for name in ("old", "new"):
        times = ", ".join(f"{x['seconds']:.2f}" for x in res["runs"][name])
        print(f"  {name}: {times} s "
              f"(cold {res['cold_seconds'][name]:.2f} s)")
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
