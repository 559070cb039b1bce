"""What every benchmark shares: paths, one CPU device per core, timing, memory, machine info, the results file.

One CPU device per core, as the CLI uses: ``import redshift_jax`` sets it up before JAX starts its backends
(importing jax does not start them; the first computation does), and this module asks again explicitly.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # run from anywhere without installing
    sys.path.insert(0, str(ROOT))

from redshift_jax.devices import device_mesh, use_all_cpu_cores  # noqa: E402

use_all_cpu_cores()  # one CPU device per core, before JAX starts (import redshift_jax does it too)

import jax  # noqa: E402


def rss_gb() -> float:
    """This process's peak resident memory (GB): ``VmHWM`` of /proc/self/status where there is one.

    Not ``ru_maxrss`` on Linux: a child keeps the parent's resident size at fork in its ``ru_maxrss`` across
    exec, so every scaling subprocess would report at least the main process's peak (1.6 GB at every size in
    the runs before this was found), hiding its own. ``VmHWM`` belongs to the exec'd program's memory alone.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e9  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e9 if sys.platform == "darwin" else peak * 1024 / 1e9  # bytes on macOS, kB elsewhere


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def best_of(fn, repeats: int) -> float:
    """The shortest wall time of ``repeats`` calls of ``fn`` (its result waited for)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t0)
    return best


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def on_all_devices(fn, n_replicated: int = 0):
    """jit(fn) with its leading arguments (arrays or dicts of arrays) split over every local device along their
    first axis, as the engine runs a chunk (jax.shard_map); the last ``n_replicated`` go to every device whole."""
    from jax.sharding import PartitionSpec

    def wrapped(*args):
        n_split = len(args) - n_replicated
        specs = (PartitionSpec("net"),) * n_split + (PartitionSpec(),) * n_replicated
        return jax.shard_map(fn, mesh=device_mesh(), in_specs=specs, out_specs=PartitionSpec("net"),
                             check_vma=False)(*args)
    return jax.jit(wrapped)


def machine_info() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram_gb = round(int(line.split()[1]) * 1024 / 1e9, 1)
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    import jaxlib

    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        rev = None
    dev = jax.devices()[0]
    return {
        "cpu": cpu, "cores": cores, "ram_gb": ram_gb, "platform": platform.platform(),
        "python": platform.python_version(), "jax": jax.__version__, "jaxlib": jaxlib.__version__,
        "backend": jax.default_backend(), "device_kind": dev.device_kind, "device_count": jax.device_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()], "git_revision": rev,
    }


def write_json(res: dict, out: Path) -> None:
    """Write ``res`` to ``out`` atomically (numpy scalars as Python numbers)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(res, indent=2, default=lambda o: o.item() if hasattr(o, "item") else str(o)) + "\n")
    os.replace(tmp, out)
