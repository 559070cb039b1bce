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
from .flows import chunk_values, model_flops
from .spec import Sweep

__all__ = ["Plan", "Units", "plan_sweep", "plan_chunk", "estimate_cost", "check_size", "chunk_values", "GUARD_HOURS",
           "memory_bytes", "check_working_memory", "MEMORY_FRACTION", "model_flops"]

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
      n_networks: weight samples ("networks") per variant, row-major over ``sweep.network_dims`` (the flat
        numeric grid; for token models the seeds).
      n_cells: outputs read from each network, row-major over ``sweep.cell_dims`` (the shared axis's values;
        for token models every cell of the weight sample); 1 when there are none.
      chunk: networks per compiled call (a multiple of ``n_devices``).
      n_devices: local devices each call is sharded over.
      units: ``{"v{variant}_c{chunk}": (variant, start, stop)}``, every unit of work in execution order (a
        ``Units`` mapping, computed on demand).
      process_of: ``{unit: process index}``: contiguous blocks of units in execution order, one per process
        (all 0 in a single-process run), so each process compiles few variants.
      n_processes: processes the units are split over.
    """

    sweep: Sweep
    variants: tuple
    n_networks: int
    n_cells: int
    chunk: int
    n_devices: int
    units: dict
    process_of: dict
    n_processes: int = 1

    @property
    def n_chunks(self) -> int:
        return math.ceil(self.n_networks / self.chunk)

    def with_chunk(self, chunk: int, n_devices: int) -> "Plan":
        """The same plan with another chunk length (a resumed store keeps the one it was written with)."""
        units = _units(len(self.variants), chunk, self.n_networks)
        return dataclasses.replace(self, chunk=chunk, n_devices=n_devices, units=units,
                                   process_of=_Processes(units, self.n_processes))

    def units_of(self, process: int) -> list[str]:
        """The units ``process`` computes, in execution order."""
        return [u for u in self.units if self.process_of[u] == process]


def _bytes_per_network(model, sweep: Sweep, n_cells: int) -> int:
    """Memory a chunk needs per network: its images (kept for the measures, copied once for the blocks).

    The forward pass runs one network at a time and the measures one block at a time, so their working
    memory does not grow with the chunk; only the images and outputs do.
    """
    points = sweep.flow.points(sweep)
    return n_cells * points * 4 * (3 + (1 if sweep.keep_values else 0))


def plan_chunk(sweep: Sweep, model, n_networks: int, n_cells: int, n_devices: int) -> int:
    """Networks per jitted call: the override, or what fits the memory budget; a multiple of the devices.

    A flow may choose its own default (token models: one seed per device per call, ``flows.TokenFlow``).
    """
    default = sweep.flow.default_chunk(sweep, n_devices)
    if sweep.chunk_size is not None:
        chunk = int(sweep.chunk_size)
    elif default is not None:
        chunk = default
    else:
        budget = sweep.memory_budget_gb * 2 ** 30
        chunk = max(1, int(budget // _bytes_per_network(model, sweep, n_cells)))
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


class _Processes(Mapping):
    """``{unit: process}``: unit ``i`` (in execution order) of ``n`` goes to process ``i * n_processes // n``."""

    def __init__(self, units: Units, n_processes: int = 1):
        self.units, self.n_processes = units, n_processes

    def __len__(self) -> int:
        return len(self.units)

    def __iter__(self):
        return iter(self.units)

    def __getitem__(self, unit: str) -> int:
        v, start, _ = self.units[unit]
        index = v * self.units.n_chunks + start // self.units.chunk
        return index * self.n_processes // len(self.units)


def _units(n_variants: int, chunk: int, n_networks: int) -> Units:
    return Units(n_variants, chunk, n_networks)


def plan_sweep(sweep: Sweep, n_devices: int, n_processes: int = 1) -> Plan:
    """The plan of ``sweep`` on ``n_devices`` local devices in each of ``n_processes`` processes."""
    variants = tuple(sweep.structural_variants())
    n_networks = int(np.prod([len(sweep.axes[d]) for d in sweep.network_dims], dtype=np.int64))
    n_cells = int(np.prod([len(sweep.axes[d]) for d in sweep.cell_dims], dtype=np.int64))
    # One chunk length for every variant: the smallest any variant's memory budget allows.
    chunk = min(plan_chunk(sweep, m, n_networks, n_cells, n_devices) for _, m in variants)
    units = _units(len(variants), chunk, n_networks)
    return Plan(sweep, variants, n_networks, n_cells, chunk, n_devices, units, _Processes(units, n_processes),
                n_processes)


def estimate_cost(sweep: Sweep, n_devices: int, platform: str) -> dict:
    """What a sweep will cost, before anything is compiled: networks, seconds (rough), result bytes.

    The time is the sweep's flops (``_flops``) at a rough rate per device (CPU 1e10 flop/s, GPU 2e13, TPU 5e13)
    on ``n_devices``; the result bytes are the assembled Dataset's variables.
    """
    seconds = _flops(sweep) / (_FLOPS_PER_DEVICE.get(platform, 1e10) * max(1, n_devices))
    value_bytes = sweep.flow.value_bytes(sweep)   # a kept function's grid values, a kept sequence's tokens
    result_bytes = sweep.num_networks * (4 * len(sweep.measures) + 1 + (value_bytes if sweep.keep_values else 0))
    return {"networks": sweep.num_networks, "seconds": seconds, "result_bytes": result_bytes}


def _flops(sweep: Sweep) -> float:
    """Rough flops of a whole sweep: its flow's estimate (``flows.py``) from what the model declares
    (``models/base.py``: ``flops(points)``, ``setup_flops(points)``); ``flows.model_flops`` guesses for a model
    that declares nothing."""
    return sweep.flow.flops(sweep)


MEMORY_FRACTION = 0.5  # of this machine's memory (or a device's), what one sweep's working set may take


def memory_bytes(platform: str = "cpu") -> int | None:
    """The memory a sweep's working set lives in: physical RAM on CPU (every CPU device shares it), else the
    first local device's limit; None when unknown."""
    if platform != "cpu":
        try:
            import jax

            return int(jax.local_devices()[0].memory_stats()["bytes_limit"])
        except Exception:  # not every backend reports it
            return None
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _gib(n: float) -> str:
    return f"{n / 2 ** 30:,.1f} GiB" if n >= 2 ** 30 else f"{n / 2 ** 20:,.1f} MiB"


def check_working_memory(peak_bytes: int | None, n_devices: int, platform: str, what: str) -> None:
    """Refuse a compiled chunk whose working memory (XLA's memory analysis: arguments, outputs and temporaries,
    measures included) does not fit: on CPU every device's share lives in the same RAM."""
    limit = memory_bytes(platform)
    if peak_bytes is None or limit is None:
        return
    need = peak_bytes * (n_devices if platform == "cpu" else 1)
    allowed = MEMORY_FRACTION * limit
    if need > allowed:
        where = f"{n_devices} CPU devices x {_gib(peak_bytes)}" if platform == "cpu" else f"per {platform} device"
        raise ConfigError(f"{what} needs about {_gib(need)} of working memory ({where}, the network and its "
                          f"measures as XLA compiled them); allowed: at most {_gib(allowed)} (half of this "
                          f"machine's {_gib(limit)}): lower --chunk-size or the sweep's width/resolution, or confirm "
                          "with --yes (Python: confirm=True)")


def check_size(sweep: Sweep, n_devices: int, platform: str, out, confirm: bool) -> None:
    """Refuse (unless ``confirm``) a sweep whose time, size or memory is far beyond this machine; say the estimate."""
    if confirm:
        return
    cost = estimate_cost(sweep, n_devices, platform)
    problems = []
    if cost["seconds"] > GUARD_HOURS * 3600:
        problems.append(f"about {cost['seconds'] / 3600:,.0f} h on {n_devices} {platform} device(s)")
    ram = memory_bytes("cpu")
    need = sweep.flow.setup_bytes(sweep)
    if need is not None and ram:
        if need > MEMORY_FRACTION * ram:
            raise ConfigError(f"this sweep's setup step needs about {_gib(need)} of memory "
                              f"({type(sweep.model).__name__} at resolution {sweep.resolution}: a dense kernel and "
                              f"its factor); allowed: at most {_gib(MEMORY_FRACTION * ram)} (half of this machine's "
                              f"{_gib(ram)}): lower the resolution, or confirm with --yes (Python: confirm=True)")
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
