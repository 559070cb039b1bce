"""Plan: what a sweep will compute, as a plain value (DESIGN.md section 11: plan -> execute -> assemble).

A ``Plan`` lists the structural variants (one compiled function each, up to the model's switched axis), the
flat numeric grid's size, the chunk length, and every unit of work ``"v{variant}_c{chunk}" -> (variant, start,
stop)`` with the process that computes it. Tests and the multi-host mode read it; ``execute`` runs its units;
``assemble`` turns the flat outputs into the labelled Dataset. Building a plan costs nothing per network: the
numeric grid is never built whole (``Sweep.numeric_grid(start, stop)`` reads any slice of it).
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
from collections.abc import Mapping

import numpy as np

from ..errors import ConfigError
from .spec import Sweep

__all__ = ["Plan", "Units", "plan_sweep", "plan_chunk", "estimate_cost", "check_size", "chunk_values", "GUARD_HOURS"]

# Rough sustained rates for the size guard's time estimate (flop/s per device). They only decide when a sweep
# is "far beyond the machine" (see ``estimate_cost``), so an order of magnitude is enough.
_FLOPS_PER_DEVICE = {"cpu": 1e10, "gpu": 2e13, "tpu": 5e13}
GUARD_HOURS = 48.0  # a sweep estimated to take longer asks for confirm=True (CLI: --yes)


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a sweep computes and where.

    Attributes:
      sweep: the validated sweep.
      variants: ``(index tuple over sweep.variant_dims, model)`` for every structural variant.
      n_networks: networks per variant (the flat numeric grid).
      n_shared: values of the shared axis read from each pass (1 when there is none).
      chunk: networks per compiled call (a multiple of ``n_devices``).
      n_devices: local devices each call is sharded over.
      units: ``{"v{variant}_c{chunk}": (variant, start, stop)}``, every unit of work in execution order (a
        ``Units`` mapping, computed on demand).
      process_of: ``{unit: process index}`` (all 0 in a single-process run).
    """

    sweep: Sweep
    variants: tuple
    n_networks: int
    n_shared: int
    chunk: int
    n_devices: int
    units: dict
    process_of: dict

    @property
    def n_chunks(self) -> int:
        return math.ceil(self.n_networks / self.chunk)

    def with_chunk(self, chunk: int, n_devices: int) -> "Plan":
        """The same plan with another chunk length (a resumed store keeps the one it was written with)."""
        units = _units(len(self.variants), chunk, self.n_networks)
        return dataclasses.replace(self, chunk=chunk, n_devices=n_devices, units=units,
                                   process_of=_OneProcess(units))


def _bytes_per_network(model, sweep: Sweep, n_shared: int) -> int:
    """Memory a chunk needs per network: its images (kept for the measures, copied once for the blocks).

    The forward pass runs one network at a time and the measures one block at a time, so their working
    memory does not grow with the chunk; only the images and outputs do.
    """
    points = sweep.resolution ** getattr(model, "in_dim", 1)
    return n_shared * points * 4 * (3 + (1 if sweep.keep_values else 0))


def plan_chunk(sweep: Sweep, model, n_networks: int, n_shared: int, n_devices: int) -> int:
    """Networks per jitted call: the override, or what fits the memory budget; a multiple of the devices."""
    if sweep.chunk_size is not None:
        chunk = int(sweep.chunk_size)
    else:
        budget = sweep.memory_budget_gb * 2 ** 30
        chunk = max(1, int(budget // _bytes_per_network(model, sweep, n_shared)))
        chunk = min(chunk, 1024)  # keeps progress, resume granularity and padding reasonable
    chunk = min(chunk, max(1, n_networks))
    # Balance the chunks (240 networks in chunks of 101 would compute 303): same count, least padding.
    n_chunks = math.ceil(n_networks / chunk)
    chunk = math.ceil(n_networks / n_chunks)
    return int(math.ceil(chunk / n_devices) * n_devices)


class Units(Mapping):
    """``{"v{variant}_c{chunk}": (variant, start, stop)}`` in execution order, computed on demand (a sweep
    of 10^10 networks has 10^7 units; none is stored)."""

    def __init__(self, n_variants: int, chunk: int, n_networks: int):
        self.n_variants, self.chunk, self.n_networks = n_variants, chunk, n_networks
        self.n_chunks = math.ceil(n_networks / chunk)

    def __len__(self) -> int:
        return self.n_variants * self.n_chunks

    def __iter__(self):
        for v in range(self.n_variants):
            for c in range(self.n_chunks):
                yield f"v{v}_c{c}"

    def __getitem__(self, unit: str) -> tuple[int, int, int]:
        try:
            v_text, c_text = unit.split("_")
            v, c = int(v_text[1:]), int(c_text[1:])
        except (ValueError, AttributeError):
            raise KeyError(unit) from None
        if not (0 <= v < self.n_variants and 0 <= c < self.n_chunks) or unit != f"v{v}_c{c}":
            raise KeyError(unit)
        return v, c * self.chunk, min((c + 1) * self.chunk, self.n_networks)


class _OneProcess(Mapping):
    """Every unit on process 0."""

    def __init__(self, units: Units):
        self.units = units

    def __len__(self) -> int:
        return len(self.units)

    def __iter__(self):
        return iter(self.units)

    def __getitem__(self, unit: str) -> int:
        self.units[unit]
        return 0


def _units(n_variants: int, chunk: int, n_networks: int) -> Units:
    return Units(n_variants, chunk, n_networks)


def plan_sweep(sweep: Sweep, n_devices: int) -> Plan:
    """The plan of ``sweep`` on ``n_devices`` local devices (one process)."""
    variants = tuple(sweep.structural_variants())
    n_networks = sweep.num_numeric
    n_shared = len(sweep.axes[sweep.shared_axis]) if sweep.shared_axis else 1
    # One chunk length for every variant: the smallest any variant's memory budget allows.
    chunk = min(plan_chunk(sweep, m, n_networks, n_shared, n_devices) for _, m in variants)
    units = _units(len(variants), chunk, n_networks)
    return Plan(sweep, variants, n_networks, n_shared, chunk, n_devices, units, _OneProcess(units))


def chunk_values(sweep: Sweep, start: int, chunk: int) -> dict[str, np.ndarray]:
    """The numeric values of networks ``start .. start+chunk-1``; past the end, copies of network 0."""
    values = sweep.numeric_grid(start, start + chunk)
    pad = chunk - len(values["seed"])
    if pad:
        first = sweep.numeric_grid(0, 1)
        values = {k: np.concatenate([v, np.repeat(first[k], pad)]) for k, v in values.items()}
    return values


def estimate_cost(sweep: Sweep, n_devices: int, platform: str) -> dict:
    """What a sweep will cost, before anything is compiled: networks, seconds (rough), result bytes.

    The time is the forward passes' matmul flops (plus a per-point allowance for activations and measures)
    at a rough rate per device (CPU 1e10 flop/s, GPU 2e13, TPU 5e13) on ``n_devices``; the result bytes are
    the assembled Dataset's variables.
    """
    points = sweep.resolution ** getattr(sweep.model, "in_dim", 1)
    per_network = 0.0
    for _, variant in sweep.structural_variants():
        width = getattr(variant, "width", 64)
        depth = getattr(variant, "depth", 1)
        gate = 2 if getattr(variant, "gating", False) else 1
        in_dim = getattr(variant, "in_dim", 1)
        flops = 2.0 * points * (in_dim * width + (depth - 1) * width * width * gate + width)
        per_network += flops + 200.0 * points * (depth * width / 64 + len(sweep.measures))
    seconds = per_network * sweep.num_numeric / (_FLOPS_PER_DEVICE.get(platform, 1e10) * max(1, n_devices))
    values = points * 4 if sweep.keep_values else 0
    result_bytes = sweep.num_networks * (4 * len(sweep.measures) + 1 + values)
    return {"networks": sweep.num_networks, "seconds": seconds, "result_bytes": result_bytes}


def check_size(sweep: Sweep, n_devices: int, platform: str, out, confirm: bool) -> None:
    """Refuse (unless ``confirm``) a sweep whose time or size is far beyond this machine; say the estimate."""
    if confirm:
        return
    cost = estimate_cost(sweep, n_devices, platform)
    problems = []
    if cost["seconds"] > GUARD_HOURS * 3600:
        problems.append(f"about {cost['seconds'] / 3600:,.0f} h on {n_devices} {platform} device(s)")
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = None
    if ram and cost["result_bytes"] > ram / 2:
        problems.append(f"a {cost['result_bytes'] / 2**30:,.1f} GiB result, more than half of this machine's "
                        f"{ram / 2**30:,.0f} GiB memory (the result is assembled in memory)")
    if out is not None:
        parent = os.path.dirname(os.path.abspath(out))
        while parent and not os.path.isdir(parent):
            parent = os.path.dirname(parent)
        free = shutil.disk_usage(parent).free
        if 2 * cost["result_bytes"] > free:  # the partial store and the final one
            problems.append(f"about {2 * cost['result_bytes'] / 2**30:,.1f} GiB on disk with "
                            f"{free / 2**30:,.1f} GiB free")
    if problems:
        raise ConfigError(f"this sweep of {cost['networks']:,} networks would need {'; '.join(problems)}; "
                          "shrink it, or confirm with --yes (Python: confirm=True)")
