"""What the reliability contract costs: a sweep written to disk with and without verification.

Verification is what ``redshift_jax.store.RunStore`` does beyond writing: each chunk is read back and its
CRC-32 recorded in its marker, every chunk is checked again before assembly, and the final store is read back
against its checksums. The reference run writes the same chunks and markers (empty) and the same final store
without reading anything back. Both run the same sweep (fig4 LAPTOP by default) in this process after a warm-up
that compiles, interleaved, best of ``repeats`` each; the ratio is what a user pays for the guarantees.

    .venv/bin/python benchmarks/store_bench.py [--quick] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import runpy
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def unverified():
    """RunStore without read-backs or checksums: the write path of a store that trusts the disk."""
    import numpy as np

    from redshift_jax import store as store_mod

    saved = (store_mod.RunStore.write_region, store_mod.RunStore.verify, store_mod.write_final)

    def write_region(self, unit, variant, start, outputs):
        for name, values in outputs.items():
            self.group[name][variant, start:start + values.shape[0]] = values
        self._marker(unit).write_text("{}")

    def verify(self, regions):
        return [], {name: np.asarray(self.group[name][...]) for name in self.group.array_keys()}

    def write_final(ds, out, workdir, fingerprint, overwrite, hint):
        tmp = workdir / "final.zarr"
        ds.to_zarr(tmp, mode="w", consolidated=True, zarr_format=2)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)

    store_mod.RunStore.write_region, store_mod.RunStore.verify, store_mod.write_final = \
        write_region, verify, write_final
    try:
        yield
    finally:
        store_mod.RunStore.write_region, store_mod.RunStore.verify, store_mod.write_final = saved


def run_store_bench(quick: bool = False, repeats: int = 3) -> dict:
    import redshift_jax as rj

    module = runpy.run_path(str(ROOT / "sweeps" / "fig4_heatmaps.py"))
    sweep = module["QUICK" if quick else "LAPTOP"]
    work = Path(tempfile.mkdtemp(prefix="store_bench-"))
    times: dict[str, list[float]] = {"verified": [], "unverified": []}
    try:
        rj.run_sweep(sweep, out=work / "warm.zarr", progress=False)  # compiles
        for i in range(repeats):
            for name in ("verified", "unverified"):
                out = work / f"{name}-{i}.zarr"
                ctx = unverified() if name == "unverified" else contextlib.nullcontext()
                with ctx:
                    t0 = time.perf_counter()
                    rj.run_sweep(sweep, out=out, progress=False)
                    times[name].append(time.perf_counter() - t0)
                shutil.rmtree(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    best = {k: min(v) for k, v in times.items()}
    return {"sweep": "fig4_heatmaps " + ("QUICK" if quick else "LAPTOP"), "networks": sweep.num_networks,
            "seconds": times, "best_seconds": best,
            "verification_overhead": best["verified"] / best["unverified"] - 1.0}


def main(argv=None) -> int:
    from redshift_jax.devices import use_all_cpu_cores

    use_all_cpu_cores()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    result = run_store_bench(args.quick, args.repeats)
    print(json.dumps(result, indent=1))
    print(f"verification overhead: {100 * result['verification_overhead']:+.1f}% "
          f"(target < 5%; best of {args.repeats}: {result['best_seconds']['verified']:.2f} s verified, "
          f"{result['best_seconds']['unverified']:.2f} s unverified)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
