"""The sweep engine: one compiled function per structural variant, vmapped over every numeric axis.

Plan for a sweep:
1. Validate everything (``Sweep.validate``) before anything is traced.
2. Flatten the numeric axes (weight_scale, bias_scale, prefactor, seed) into one list of networks.
3. For each structural variant (activation, width, flags, ...; all depths share one trunk pass), compile
   ``vmap(network -> measures)`` once for a fixed chunk of networks, sharded over all local devices.
4. Call it chunk by chunk; each finished chunk is written to the store immediately (resumable).
5. Assemble a labelled ``xarray.Dataset`` with one dimension per axis, in the order given.

Network ``seed`` uses the key ``fold_in(key(base_seed), seed)``: its function does not depend on the chunk
size, the device count or the other values in the sweep.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .. import measures as measures_mod
from .._io import now_iso, provenance_attrs
from ..devices import device_mesh
from ..errors import ConfigError, StoreError
from ..grids import grid
from ..nets import ACTIVATIONS, MLP
from ..store import MemoryStore, RunStore, describe_difference, is_result, load_dataset, result_fingerprint
from .spec import Sweep

__all__ = ["run_sweep", "compile_variant", "plan_chunk", "trace_count", "network_images", "measure_images",
           "estimate_cost"]

_TRACES = {"count": 0}
_COMPILED: dict[Any, Any] = {}


def trace_count() -> int:
    """How many times a sweep function has been traced in this process (for no-recompile tests)."""
    return _TRACES["count"]


def _image_shape(sweep: Sweep) -> tuple[int, ...]:
    return (sweep.resolution,) * sweep.model.in_dim


def _depth_rows(sweep: Sweep) -> tuple[int, ...] | None:
    """Rows of ``apply_depths`` to keep (depth axis order), or None when each variant has one depth."""
    if sweep.depth_shared:
        return tuple(int(d) - 1 for d in sweep.axes["depth"])
    return None


# Measures run over fixed-size batches of images (lax.map over vmapped blocks). XLA picks reduction and FFT
# kernels by array shape, so a fixed block shape is what makes a network's measures identical whatever the
# chunk size, device count or other axes of the sweep. It also bounds the measures' working memory.
MEASURE_BLOCK = 128


def network_images(model, sweep: Sweep, depth_rows, base_key, weight_scale, bias_scale, prefactor, seed,
                   depth_tag=None, activation_fn=None) -> jax.Array:
    """Sample one network and evaluate it on the grid: (n_depths, *image_shape)."""
    x = jnp.asarray(grid(sweep.resolution, model.in_dim, sweep.lo, sweep.hi))
    key = jax.random.fold_in(base_key, seed)
    if depth_tag is not None:
        key = jax.random.fold_in(key, depth_tag)
    params = model.init(key, weight_scale, bias_scale)
    if depth_rows is not None:
        ys = model.apply_depths(params, x, prefactor, precision=sweep.precision,
                                activation_fn=activation_fn)[np.asarray(depth_rows)]
    else:
        ys = model.apply(params, x, prefactor, precision=sweep.precision, activation_fn=activation_fn)[None]
    return ys.reshape((ys.shape[0],) + _image_shape(sweep))


def _kept_whole(fn: Callable, platform: str = "cpu") -> Callable:
    """``fn`` run as one opaque step (inside a conditional) so XLA:CPU does not split its loops across threads;
    ``fn`` itself on any other ``platform`` (a device's ``platform``, or ``jax.default_backend()``).

    XLA:CPU partitions big elementwise loops over its intra-op thread pool. The engine already keeps every core
    busy with one device per core, each running networks one after another; the extra splitting then only adds
    hand-offs between threads. Measured on the 2-core CPU, for each network's forward pass: W1 about 7-10%
    faster (5.43 -> 5.06 s, 6.83 -> 6.12 s in interleaved runs), single-activation sine and swish sweeps 1.2-1.4x
    faster. (Wrapping the measure blocks as well did not help, so they are left alone.) XLA:CPU does not
    partition loops inside a conditional's branches, so the step runs through a two-way ``lax.switch`` between
    two copies of ``fn`` whose index is a runtime zero (an optimization barrier keeps XLA from folding it
    away). The same operations run either way, so values are unchanged (the engine's bitwise tests compare
    against standalone ``apply``).
    """

    if platform != "cpu":
        return fn

    def whole(*args):
        zero = jax.lax.optimization_barrier(jnp.int32(0))
        return jax.lax.switch(zero, [fn, fn], *args)

    return whole


def measure_images(sweep: Sweep, images: jax.Array) -> dict[str, jax.Array]:
    """Every measure of every image in ``images`` (n, *image_shape), in fixed blocks of MEASURE_BLOCK."""
    n = images.shape[0]
    blocks = -(-n // MEASURE_BLOCK)
    padded = jnp.concatenate(
        [images, jnp.zeros((blocks * MEASURE_BLOCK - n,) + images.shape[1:], images.dtype)], axis=0)
    padded = padded.reshape((blocks, MEASURE_BLOCK) + images.shape[1:])

    def block(imgs):
        return {name: jax.vmap(measures_mod.MEASURES[name])(imgs) for name in sweep.measures}

    out = jax.lax.map(block, padded)
    return {name: v.reshape(-1)[:n] for name, v in out.items()}


def _bytes_per_network(model, sweep: Sweep, n_depths: int) -> int:
    """Memory a chunk needs per network: its images (kept for the measures, copied once for the blocks).

    The forward pass runs one network at a time and the measures one block at a time, so their working
    memory does not grow with the chunk; only the images and outputs do.
    """
    points = sweep.resolution ** model.in_dim
    return n_depths * points * 4 * (3 + (1 if sweep.keep_values else 0))


def plan_chunk(sweep: Sweep, model, n_networks: int, n_depths: int, n_devices: int) -> int:
    """Networks per jitted call: the override, or what fits the memory budget; a multiple of the devices."""
    if sweep.chunk_size is not None:
        chunk = int(sweep.chunk_size)
    else:
        budget = sweep.memory_budget_gb * 2 ** 30
        chunk = max(1, int(budget // _bytes_per_network(model, sweep, n_depths)))
        chunk = min(chunk, 1024)  # keeps progress, resume granularity and padding reasonable
    chunk = min(chunk, max(1, n_networks))
    # Balance the chunks (240 networks in chunks of 101 would compute 303): same count, least padding.
    n_chunks = math.ceil(n_networks / chunk)
    chunk = math.ceil(n_networks / n_chunks)
    return int(math.ceil(chunk / n_devices) * n_devices)


def switched_activations(sweep: Sweep) -> tuple[str, ...] | None:
    """Activations served by one compiled function through ``lax.switch`` (None: activation is static).

    The switch index is one scalar per call, not per network, so XLA keeps a real conditional and runs only
    the chosen branch; one compile then covers every activation of the sweep (7x fewer compiles for Fig. 4).
    """
    values = sweep.axes.get("activation", ())
    return tuple(values) if len(values) > 1 else None


def compile_variant(model, sweep: Sweep, chunk: int, mesh: Mesh | None = None):
    """The compiled, sharded function for one structural variant and chunk size (cached).

    Its arguments: (base_key, weight_scale, bias_scale, prefactor, seed, depth_tag, activation_index).
    """
    depth_rows = _depth_rows(sweep)
    mesh = mesh or device_mesh()
    independent = sweep.independent_depths and "depth" in sweep.axes
    choices = switched_activations(sweep) if isinstance(model, MLP) else None
    if choices is not None:
        model = model.replace(activation=choices[0])  # the activation comes from the switch
    cache_key = (model, choices, sweep.resolution, sweep.lo, sweep.hi, sweep.measures, sweep.keep_values,
                 sweep.precision, depth_rows, independent, chunk, tuple(d.id for d in mesh.devices.flat))
    if cache_key in _COMPILED:
        return _COMPILED[cache_key]

    def local(base_key, weight_scale, bias_scale, prefactor, seed, tag, activation_index):
        # One device's share of the chunk: every network's images, then the measures in fixed blocks.
        _TRACES["count"] += 1  # runs at trace time only
        activation_fn = None
        if choices is not None:
            branches = [ACTIVATIONS[name] for name in choices]

            def activation_fn(z):
                return jax.lax.switch(activation_index, branches, z)

        # Networks run one after another (lax.map), not vmapped: each network's (points x width) matmuls
        # are already BLAS-sized, a vmapped batch of them spills out of cache (1.4-2x slower on CPU), and
        # the loop compiles in half the time. It also makes a network's values independent of the chunk.
        def one_network(args):
            return network_images(model, sweep, depth_rows, base_key, *args,
                                  depth_tag=tag if independent else None, activation_fn=activation_fn)

        images = jax.lax.map(_kept_whole(one_network, mesh.devices.flat[0].platform),
                             (weight_scale, bias_scale, prefactor, seed))
        n_local, n_depths = images.shape[:2]
        flat = images.reshape((n_local * n_depths,) + images.shape[2:])
        out = {name: v.reshape(n_local, n_depths) for name, v in measure_images(sweep, flat).items()}
        out["finite"] = jnp.all(jnp.isfinite(flat.reshape(n_local, n_depths, -1)), axis=-1)
        if sweep.keep_values:
            out["values"] = images
        return out

    net, rep = PartitionSpec("net"), PartitionSpec()
    fn = jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(rep, net, net, net, net, rep, rep), out_specs=net,
                               check_vma=False))
    sharded = NamedSharding(mesh, net)
    f32 = jax.ShapeDtypeStruct((chunk,), jnp.float32, sharding=sharded)
    args = (jax.eval_shape(lambda: jax.random.key(0)), f32, f32, f32,
            jax.ShapeDtypeStruct((chunk,), jnp.uint32, sharding=sharded),
            jax.ShapeDtypeStruct((), jnp.uint32), jax.ShapeDtypeStruct((), jnp.int32))
    compiled = fn.lower(*args).compile()
    _COMPILED[cache_key] = compiled
    return compiled


def _peak_bytes(compiled) -> int | None:
    try:
        stats = compiled.memory_analysis()
    except Exception:  # not every backend reports it
        return None
    if stats is None:
        return None
    return int(stats.temp_size_in_bytes + stats.argument_size_in_bytes + stats.output_size_in_bytes)


def _layout(sweep: Sweep, n_variants: int, n_networks: int, n_depths: int) -> dict:
    layout = {name: ((n_variants, n_networks, n_depths), np.float32) for name in sweep.measures}
    layout["finite"] = ((n_variants, n_networks, n_depths), np.bool_)
    if sweep.keep_values:
        layout["values"] = ((n_variants, n_networks, n_depths) + _image_shape(sweep), np.float32)
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


def _assemble(sweep: Sweep, arrays: dict[str, np.ndarray], variant_indices: list[tuple], n_depths: int):
    import xarray as xr

    dims = sweep.dims
    numeric_shape = tuple(len(sweep.axes[d]) for d in sweep.numeric_dims)
    block_dims = sweep.numeric_dims + (("depth",) if sweep.depth_shared else ())
    target_dims = tuple(d for d in dims if d not in sweep.variant_dims)
    perm = [block_dims.index(d) for d in target_dims]
    names = list(sweep.measures) + ["finite"] + (["values"] if sweep.keep_values else [])
    image_dims = ("y", "x")[-sweep.model.in_dim:] if sweep.model.in_dim == 2 else ("x",)
    data_vars = {}
    for name in names:
        flat = arrays[name]  # (variants, networks, depths, [image])
        extra = flat.shape[3:]
        full = np.empty(sweep.shape + extra, dtype=flat.dtype)
        for v, idx in enumerate(variant_indices):
            block = flat[v].reshape(numeric_shape + ((n_depths,) if sweep.depth_shared else ()) + extra)
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


# Rough sustained rates for the size guard's time estimate (flop/s per device). They only decide when a sweep
# is "far beyond the machine" (see ``estimate_cost``), so an order of magnitude is enough.
_FLOPS_PER_DEVICE = {"cpu": 1e10, "gpu": 2e13, "tpu": 5e13}
GUARD_HOURS = 48.0  # a sweep estimated to take longer asks for confirm=True (CLI: --yes)


def estimate_cost(sweep: Sweep, n_devices: int, platform: str) -> dict:
    """What a sweep will cost, before anything is compiled: networks, seconds (rough), result bytes.

    The time is the forward passes' matmul flops (plus a per-point allowance for activations and measures)
    at ``_FLOPS_PER_DEVICE`` on ``n_devices``; the result bytes are the assembled Dataset's variables.
    """
    model = sweep.model
    points = sweep.resolution ** model.in_dim
    per_network = 0.0
    for _, variant in sweep.structural_variants():
        width = getattr(variant, "width", 64)
        depth = getattr(variant, "depth", 1)
        gate = 2 if getattr(variant, "gating", False) else 1
        flops = 2.0 * points * (model.in_dim * width + (depth - 1) * width * width * gate + width)
        per_network += flops + 200.0 * points * (depth * width / 64 + len(sweep.measures))
    n_numeric = sweep.num_numeric
    seconds = per_network * n_numeric / (_FLOPS_PER_DEVICE.get(platform, 1e10) * max(1, n_devices))
    values = points * 4 if sweep.keep_values else 0
    result_bytes = sweep.num_networks * (4 * len(sweep.measures) + 1 + values)
    return {"networks": sweep.num_networks, "seconds": seconds, "result_bytes": result_bytes}


def _guard(sweep: Sweep, n_devices: int, platform: str, out, confirm: bool) -> None:
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


def _regions(n_variants: int, n_chunks: int, chunk: int, n_networks: int) -> dict[str, tuple[int, int, int]]:
    """Every unit of work: ``{"v{variant}_c{chunk}": (variant, start, stop)}``."""
    return {f"v{v}_c{c}": (v, c * chunk, min((c + 1) * chunk, n_networks))
            for v in range(n_variants) for c in range(n_chunks)}


def _chunk_args(sweep: Sweep, start: int, chunk: int, n_networks: int) -> dict[str, np.ndarray]:
    """The numeric values of networks ``start .. start+chunk-1``; past the end, copies of network 0."""
    values = sweep.numeric_grid(start, start + chunk)
    pad = chunk - len(values["seed"])
    if pad:
        first = sweep.numeric_grid(0, 1)
        values = {k: np.concatenate([v, np.repeat(first[k], pad)]) for k, v in values.items()}
    return values


def run_sweep(sweep: Sweep, out: str | os.PathLike | None = None, resume: bool = False, progress: bool = True,
              chunk_size: int | None = None, attrs: dict | None = None, num_devices: int | None = None,
              overwrite: bool = False, confirm: bool = False):
    """Run a sweep and return its labelled results.

    Args:
      sweep: the grid to sample (validated already at construction).
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
    from tqdm.auto import tqdm

    if not isinstance(sweep, Sweep):
        raise ConfigError(f"run_sweep: sweep={sweep!r} is not allowed; pass a redshift_jax.Sweep")
    if chunk_size is not None:
        sweep = sweep.replace(chunk_size=chunk_size)
    sweep.validate()
    fingerprint = sweep.fingerprint()
    if out is not None:
        out = Path(out)
        if resume and not overwrite and is_result(out):
            recorded = result_fingerprint(out)
            if recorded is not None and describe_difference(recorded, fingerprint) is None:
                return load_dataset(out)

    start_time = now_iso()
    n_networks = sweep.num_numeric
    n_depths = len(sweep.axes["depth"]) if sweep.depth_shared else 1
    variants = list(sweep.structural_variants())
    mesh = device_mesh(num_devices)
    n_devices = mesh.devices.size
    _guard(sweep, n_devices, mesh.devices.flat[0].platform, out, confirm)
    # One chunk size for every variant: the smallest any variant's memory budget allows.
    chunk = min(plan_chunk(sweep, m, n_networks, n_depths, n_devices) for _, m in variants)
    layout = _layout(sweep, len(variants), n_networks, n_depths)
    if out is None:
        store = MemoryStore(layout, chunk)
    else:
        store = RunStore(out, fingerprint, "sweep", resume=resume, overwrite=overwrite, layout=layout,
                         chunk=chunk)
        chunk = store.chunk  # a resumed store keeps the chunking its chunks were written with
        if chunk % n_devices:  # written with another device count: use as many devices as divide its chunks
            n_devices = max(d for d in range(1, n_devices + 1) if chunk % d == 0)
            mesh = device_mesh(n_devices)
    try:
        n_chunks = math.ceil(n_networks / chunk)
        regions = _regions(len(variants), n_chunks, chunk, n_networks)
        if any(store.is_done(u) for u in regions):
            store.verify(regions)  # damaged chunks lose their markers and are recomputed below
        stats = {"compile": 0.0, "run": 0.0, "peak": None}
        for _attempt in range(3):
            _execute(sweep, store, variants, regions, chunk, n_networks, n_depths, mesh, progress, stats, tqdm)
            bad, arrays = store.verify(regions)
            if not bad:
                break
        else:
            raise StoreError(f"{out}: chunks {', '.join(bad[:5])} failed their checksums three times after being "
                             "rewritten; the disk or filesystem is corrupting data")
    except BaseException:
        store.close()
        raise

    ds = _assemble(sweep, arrays, [idx for idx, _ in variants], n_depths)
    extra_attrs = dict(attrs or {})
    attrs = provenance_attrs(sweep.to_dict(), start_time, kind="sweep")
    attrs.update(extra_attrs)
    attrs.update({
        "sweep": sweep.to_json(),
        "chunk_size": int(chunk),
        "devices_used": int(n_devices),
        "num_networks": int(sweep.num_networks),
        "compile_wait_seconds": round(stats["compile"], 3),
        "run_seconds": round(stats["run"], 3),
        "depth_readout": ("independent" if sweep.independent_depths else "shared trunk")
        if "depth" in sweep.axes else "single depth",
    })
    if stats["peak"] is not None:
        attrs["compiled_chunk_bytes"] = int(stats["peak"])
    ds.attrs.update(attrs)
    if out is not None:
        try:
            store.finish(ds)
        finally:
            store.close()
    return ds


def _execute(sweep, store, variants, regions, chunk, n_networks, n_depths, mesh, progress, stats, tqdm) -> None:
    """Compute every unit of ``regions`` that is not marked done, writing each to the store as it finishes."""
    n_chunks = math.ceil(n_networks / chunk)
    todo_units = [u for u in regions if not store.is_done(u)]
    if not todo_units:
        return
    total = len(variants) * n_networks * n_depths
    done_before = sum((stop - start) * n_depths for u, (_, start, stop) in regions.items() if store.is_done(u))
    bar = tqdm(total=total, initial=done_before, unit="net", disable=not progress, dynamic_ncols=True,
               desc=sweep.name or "sweep", smoothing=0.1)
    base_key = jax.random.key(sweep.base_seed)
    sharded = NamedSharding(mesh, PartitionSpec("net"))
    todo = sorted({regions[u][0] for u in todo_units})
    # XLA compiles outside the GIL, so the variants compile concurrently (one per core); the first variant
    # is waited for first so results start flowing while the others finish compiling.
    pool = ThreadPoolExecutor(max_workers=max(1, min(len(todo), os.cpu_count() or 1)))
    compile_jobs: dict = {}  # variants that differ only in a switched activation share one compile
    futures = {}
    for v in todo:
        model = variants[v][1]
        choices = switched_activations(sweep) if isinstance(model, MLP) else None
        shared = model.replace(activation=choices[0]) if choices else model
        if shared not in compile_jobs:
            compile_jobs[shared] = pool.submit(compile_variant, model, sweep, chunk, mesh)
        futures[v] = compile_jobs[shared]
    pool.shutdown(wait=False)
    try:
        for v in todo:
            model = variants[v][1]
            t1 = time.perf_counter()
            compiled = futures[v].result()
            stats["compile"] += time.perf_counter() - t1
            peak = _peak_bytes(compiled)
            if peak is not None:
                stats["peak"] = max(stats["peak"] or 0, peak)
            # independent_depths: the depth-d network uses fold_in(fold_in(base, seed), d)
            tag = np.uint32(model.depth if sweep.independent_depths and "depth" in sweep.axes else 0)
            choices = switched_activations(sweep) if isinstance(model, MLP) else None
            activation_index = np.int32(choices.index(model.activation) if choices else 0)
            for c in range(n_chunks):
                unit = f"v{v}_c{c}"
                if store.is_done(unit):
                    continue
                t0 = time.perf_counter()
                values = _chunk_args(sweep, c * chunk, chunk, n_networks)
                args = [jax.device_put(values[k], sharded)
                        for k in ("weight_scale", "bias_scale", "prefactor", "seed")]
                result = compiled(base_key, *args, tag, activation_index)
                real = min(chunk, n_networks - c * chunk)
                outputs = {k: np.asarray(val)[:real] for k, val in result.items()}
                stats["run"] += time.perf_counter() - t0
                store.write_region(unit, v, c * chunk, outputs)
                bar.update(real * n_depths)
    finally:
        bar.close()
        for future in futures.values():
            future.cancel()
