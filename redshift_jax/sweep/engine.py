"""The sweep engine: plan -> execute -> assemble (DESIGN.md sections 7 and 11).

1. ``Sweep.validate`` checks everything before anything is traced.
2. ``plan_sweep`` (``plan.py``) lists the structural variants, the chunk length and every unit of work.
3. ``execute`` compiles one function per variant (the model's ``switch_axis`` values share one; its
   ``shared_axis`` values come out of one pass) for a fixed chunk of networks, sharded over the local devices,
   and runs the units that are not done, writing each to the store as it finishes (resumable).
4. ``assemble`` turns the flat outputs into a labelled ``xarray.Dataset``, one dimension per axis in order.

The engine reads only the model's declarations (``models/base.py``) and the measures' (``measures/base.py``).
Network ``seed`` uses the key ``fold_in(key(base_seed), seed)``: its function does not depend on the chunk
size, the device count or the other values in the sweep.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .. import multihost
from .._io import now_iso, provenance_attrs
from ..devices import device_mesh
from ..errors import ConfigError, StoreError
from ..store import MemoryStore, RunStore, describe_difference, is_result, load_dataset, result_fingerprint
from .network import (
    MEASURE_BLOCK,
    _switch,
    compile_variant,
    kept_whole,
    measure_images,
    network_images,
    sample_params,
    trace_count,
)
from .plan import Plan, check_size, check_working_memory, estimate_cost, plan_chunk, plan_sweep
from .spec import Sweep

__all__ = ["run_sweep", "sample_network", "kept_whole", "compile_variant", "plan_chunk", "plan_sweep",
           "trace_count", "network_images", "measure_images", "estimate_cost", "execute", "assemble", "Plan",
           "MEASURE_BLOCK", "sample_params"]

def sample_network(sweep: Sweep, cell: dict):
    """Re-create one network of ``sweep`` from a cell's coordinates (networks are pure functions of their key).

    Args:
      sweep: the sweep the network belongs to.
      cell: axis values, e.g. ``{"activation": "tanh", "depth": 3, "weight_scale": 10.0, "seed": 2}``; axes left
        out take the model's field or the numeric axis's default (seed 0).

    Returns:
      ``(image, network_values)`` as ``network_images`` gives them for this one network (image of shape
      ``image_shape``); for a token model ``(tokens, {"finite": finite})`` (``tokens.sample_sequence``).
    """
    return sweep.flow.sample(sweep, cell)


def _peak_bytes(compiled) -> int | None:
    try:
        stats = compiled.memory_analysis()
    except Exception:  # not every backend reports it
        return None
    if stats is None:
        return None
    return int(stats.temp_size_in_bytes + stats.argument_size_in_bytes + stats.output_size_in_bytes)


def _value_layout(sweep: Sweep) -> tuple[tuple[int, ...], Any, tuple[str, ...]]:
    """Shape, dtype and dims of one cell's kept values (the flow's: the image on the grid, or the token
    sequence)."""
    return sweep.flow.value_layout(sweep)


def _layout(plan: Plan) -> dict:
    sweep = plan.sweep
    shape = (len(plan.variants), plan.n_networks, plan.n_cells)
    layout = {label: (shape, np.float32) for label in sweep.measure_labels}
    layout["finite"] = (shape, np.bool_)
    if sweep.keep_values:
        value_shape, dtype, _ = _value_layout(sweep)
        layout["values"] = (shape + value_shape, dtype)
    return layout


def _coord(values: tuple):
    kinds = {type(v) for v in values}
    if kinds <= {bool}:
        return np.asarray(values, dtype=bool)
    if kinds <= {int}:
        return np.asarray(values, dtype=np.int64)
    if kinds <= {int, float}:
        return np.asarray(values, dtype=np.float64)
    return np.asarray([str(v) for v in values])  # e.g. residual = (False, True, "block")


def assemble(plan: Plan, arrays: dict[str, np.ndarray]):
    """The labelled Dataset from the flat outputs ``{name: (variants, networks, cells[, values])}``: networks
    row-major over ``sweep.network_dims``, cells over ``sweep.cell_dims``."""
    import xarray as xr

    sweep = plan.sweep
    dims = sweep.dims
    block_dims = sweep.network_dims + sweep.cell_dims
    block_shape = tuple(len(sweep.axes[d]) for d in block_dims)
    target_dims = tuple(d for d in dims if d not in sweep.variant_dims)
    perm = [block_dims.index(d) for d in target_dims]
    names = list(sweep.measure_labels) + ["finite"] + (["values"] if sweep.keep_values else [])
    image_dims = _value_layout(sweep)[2]
    data_vars = {}
    for name in names:
        flat = arrays[name]  # (variants, networks, cells, [values])
        extra = flat.shape[3:]
        full = np.empty(sweep.shape + extra, dtype=flat.dtype)
        for v, (idx, _) in enumerate(plan.variants):
            block = flat[v].reshape(block_shape + extra)
            block = np.transpose(block, perm + list(range(len(block_dims), block.ndim)))
            where = []
            it = iter(idx)
            for d in dims:
                where.append(next(it) if d in sweep.variant_dims else slice(None))
            full[tuple(where)] = block
        var_dims = dims + (image_dims if name == "values" else ())
        data_vars[name] = (var_dims, full)
    coords = {d: _coord(sweep.axes[d]) for d in dims}
    return xr.Dataset(data_vars, coords=coords)


def run_sweep(sweep: Sweep, out: str | os.PathLike | None = None, resume: bool = False, progress: bool = True,
              chunk_size: int | None = None, attrs: dict | None = None, num_devices: int | None = None,
              overwrite: bool = False, confirm: bool = False):
    """Run a sweep and return its labelled results.

    Args:
      sweep: the grid to sample (checked once, when it was made; not checked again here).
      out: zarr path for incremental, resumable results; ``None`` keeps everything in memory. Never replaces
        anything but a finished result of the same sweep (see ``overwrite``); see ``redshift_jax.store``.
      resume: continue a run killed before it finished (finished chunks are checked and kept, damaged ones
        recomputed); an already finished ``out`` of the same sweep is simply loaded.
      progress: show a progress bar with networks/s and ETA.
      chunk_size: override the automatic, memory-budgeted chunk size.
      attrs: extra attributes to store with the results (e.g. which figure to draw).
      num_devices: shard over the first this-many local devices (default: all of them).
      overwrite: discard an unfinished run at ``out`` and replace a finished result of another sweep there.
      confirm: run even when the estimated time or size is far beyond this machine (CLI: ``--yes``).

    Returns:
      ``xarray.Dataset``: one dimension per axis in the order given, one float variable per measure, a
      boolean ``finite``, ``values`` when ``keep_values``, and provenance ``attrs``.

    Raises:
      ConfigError: a bad setting, or a sweep too big to run without ``confirm``.
      StoreError: ``out`` may not be written (it holds something else, another process writes it, the
        disk is full, ...); the message says what to do.
    """
    if not isinstance(sweep, Sweep):
        raise ConfigError(f"run_sweep: sweep={sweep!r} is not allowed; pass a redshift_jax.Sweep")
    if chunk_size is not None:
        sweep = sweep.with_chunk_size(chunk_size)
    fingerprint = sweep.fingerprint()
    if out is not None:
        out = Path(out)
        if resume and not overwrite and is_result(out):
            recorded = result_fingerprint(out)
            if recorded is not None and describe_difference(recorded, fingerprint) is None:
                return load_dataset(out)

    start_time = now_iso()
    n_processes, rank = multihost.process_count(), multihost.process_index()
    if n_processes > 1 and out is None:
        raise ConfigError(f"run_sweep: out=None is not allowed in a run of {n_processes} processes; allowed: a "
                          "path on a filesystem every process shares (they write their chunks there)")
    mesh = device_mesh(num_devices)
    check_size(sweep, mesh.devices.size, mesh.devices.flat[0].platform, out, confirm)
    plan = plan_sweep(sweep, mesh.devices.size, n_processes)
    layout = _layout(plan)
    if out is None:
        store = MemoryStore(layout, plan.chunk)
    elif rank == 0:
        # process 0 creates (or checks) the store and verifies what it holds before the others start writing
        store = None
        try:
            store = RunStore(out, fingerprint, "sweep", resume=resume, overwrite=overwrite, layout=layout,
                             chunk=plan.chunk)
            plan = _replan(plan, store.chunk)
            if any(store.is_done(u) for u in plan.units):
                store.verify(plan.units)  # damaged chunks lose their markers and are recomputed below
        except BaseException as err:
            if store is not None:
                store.close()
            multihost.publish("store ready", str(err) or type(err).__name__)
            raise
        multihost.publish("store ready")
    else:
        multihost.wait_for("store ready")
        store = RunStore.attach(out, fingerprint, layout)
        plan = _replan(plan, store.chunk)
    mesh = device_mesh(plan.n_devices)
    try:
        stats = {"compile": 0.0, "run": 0.0, "peak": None}
        if n_processes > 1:  # each process its own chunks, then process 0 checks them all
            execute(plan, store, mesh, progress and rank == 0, stats, units=plan.units_of(rank), confirm=confirm)
            multihost.barrier("chunks written")
            if rank != 0:
                store.close()
                multihost.wait_for("result written")
                return load_dataset(out)
        for _attempt in range(3):
            execute(plan, store, mesh, progress, stats, confirm=confirm)
            bad, arrays = store.verify(plan.units)
            if not bad:
                break
        else:
            raise StoreError(f"{out}: chunks {', '.join(bad[:5])} failed their checksums three times after being "
                             "rewritten; the disk or filesystem is corrupting data")
    except BaseException as err:
        store.close()
        if isinstance(err, ConfigError) and isinstance(store, RunStore):
            store.discard_if_empty()  # refused before any chunk ran: leave nothing behind
        raise

    ds = assemble(plan, arrays)
    extra_attrs = dict(attrs or {})
    attrs = provenance_attrs(sweep.to_dict(), start_time, kind="sweep")
    attrs.update(extra_attrs)
    attrs.update({
        "sweep": sweep.to_json(),
        "chunk_size": int(plan.chunk),
        "devices_used": int(plan.n_devices),
        "num_networks": int(sweep.num_networks),
        "compile_wait_seconds": round(stats["compile"], 3),
        "run_seconds": round(stats["run"], 3),
        "depth_readout": ("independent" if sweep.independent_depths else "shared trunk")
        if "depth" in sweep.axes else "single depth",
    })
    if stats["peak"] is not None:
        attrs["compiled_chunk_bytes"] = int(stats["peak"])
    if n_processes > 1:
        attrs["processes"] = int(n_processes)
    ds.attrs.update(attrs)
    if out is not None:
        try:
            store.finish(ds)
        except BaseException as err:  # e.g. a full disk: the others end with process 0's own one-line error
            multihost.publish("result written", str(err) or type(err).__name__)
            raise
        finally:
            store.close()
        multihost.publish("result written")
    return ds


def _replan(plan: Plan, chunk: int) -> Plan:
    """The plan with a stored chunk length (a resumed store keeps the chunking its chunks were written with,
    perhaps with another device count): as many local devices as divide it."""
    if chunk == plan.chunk:
        return plan
    n_devices = max(d for d in range(1, plan.n_devices + 1) if chunk % d == 0)
    return plan.with_chunk(chunk, n_devices)


def execute(plan: Plan, store, mesh: Mesh, progress: bool = False, stats: dict | None = None,
            units=None, confirm: bool = True) -> None:
    """Compute every unit of ``plan`` (or of ``units``) that the store does not hold, writing each as it
    finishes. A SIGTERM (``multihost.request_stop``) stops it after the current unit is written. Without
    ``confirm``, a variant whose compiled chunk needs more working memory than this machine allows is refused
    before it runs (``plan.check_working_memory``)."""
    from tqdm.auto import tqdm

    stats = stats if stats is not None else {"compile": 0.0, "run": 0.0, "peak": None}
    sweep = plan.sweep
    flow = sweep.flow   # what this kind of model compiles, fixes per variant and passes per chunk
    todo_units = [u for u in (plan.units if units is None else units) if not store.is_done(u)]
    if not todo_units:
        return
    total = len(plan.variants) * plan.n_networks * plan.n_cells
    done_before = sum((stop - start) * plan.n_cells for u, (_, start, stop) in plan.units.items()
                      if store.is_done(u))
    bar = tqdm(total=total, initial=done_before, unit=flow.unit,
               disable=not progress, dynamic_ncols=True, desc=sweep.name or "sweep", smoothing=0.1)
    base_key = jax.random.key(sweep.base_seed)
    sharded = NamedSharding(mesh, PartitionSpec("net"))
    replicated = NamedSharding(mesh, PartitionSpec())  # a variant's fixed arguments, put on the devices once
    todo = sorted({plan.units[u][0] for u in todo_units})
    # XLA compiles outside the GIL, so the variants compile concurrently (one per core); the first variant
    # is waited for first so results start flowing while the others finish compiling.
    pool = ThreadPoolExecutor(max_workers=max(1, min(len(todo), os.cpu_count() or 1)))
    compile_jobs: dict = {}  # variants that differ only in a switched value share one compile
    futures = {}
    states: dict = {}  # setup models: variant -> state (the first variant of each compile, then the current one)
    for v in todo:
        model = plan.variants[v][1]
        shared = _switch(model, sweep)[1]
        if shared not in compile_jobs:
            shapes = flow.state_shapes(plan, v, states)
            compile_jobs[shared] = pool.submit(compile_variant, model, sweep, plan.chunk, mesh, shapes)
        futures[v] = compile_jobs[shared]
    pool.shutdown(wait=False)
    prepared: dict = {}  # variant -> (compiled, tag, fixed arguments), once per variant
    try:
        for unit in todo_units:
            v, start, stop = plan.units[unit]
            model = plan.variants[v][1]
            if v not in prepared:
                t1 = time.perf_counter()
                compiled = futures[v].result()
                stats["compile"] += time.perf_counter() - t1
                peak = _peak_bytes(compiled)
                if peak is not None:
                    stats["peak"] = max(stats["peak"] or 0, peak)
                if not confirm:
                    check_working_memory(peak, mesh.devices.size, mesh.devices.flat[0].platform,
                                         f"this sweep's chunk of {plan.chunk} networks")
                # independent_depths: the depth-d network uses fold_in(fold_in(base, seed), d)
                shared_axis = getattr(model, "shared_axis", None)
                independent = sweep.independent_depths and shared_axis in sweep.axes
                tag = np.uint32(getattr(model, shared_axis) if independent else 0)
                if flow.one_variant_at_a_time:  # (a setup state: kept only while its chunks run; units are in order)
                    prepared.clear()
                prepared[v] = (compiled, tag, flow.prepare(plan, v, states, replicated))
            compiled, tag, fixed = prepared[v]
            t0 = time.perf_counter()
            result = flow.run_chunk(compiled, plan, v, start, base_key, tag, fixed, sharded)
            outputs = {k: np.asarray(val)[:stop - start] for k, val in result.items()}
            stats["run"] += time.perf_counter() - t0
            store.write_region(unit, v, start, outputs)
            bar.update((stop - start) * plan.n_cells)
            multihost.check_stop()
    finally:
        bar.close()
        for future in futures.values():
            future.cancel()
