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
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .. import multihost
from .._io import now_iso, provenance_attrs
from ..devices import device_mesh
from ..errors import ConfigError, StoreError
from ..grids import grid
from ..models.base import split_numeric
from ..store import MemoryStore, RunStore, describe_difference, is_result, load_dataset, result_fingerprint
from .plan import Plan, check_size, check_working_memory, chunk_values, estimate_cost, plan_chunk, plan_sweep
from .spec import Sweep
from .tokens import cell_table, compile_tokens, sample_sequence, seed_values

__all__ = ["run_sweep", "sample_network", "kept_whole", "compile_variant", "plan_chunk", "plan_sweep",
           "trace_count", "network_images", "measure_images", "estimate_cost", "execute", "assemble", "Plan",
           "MEASURE_BLOCK"]

_TRACES = {"count": 0}
_COMPILED: dict[Any, Any] = {}


def trace_count() -> int:
    """How many times a sweep function has been traced in this process (for no-recompile tests)."""
    return _TRACES["count"]


def _image_shape(sweep: Sweep) -> tuple[int, ...]:
    return (sweep.resolution,) * sweep.model.in_dim


def _shared_rows(sweep: Sweep) -> tuple[int, ...] | None:
    """Rows of ``apply_shared`` to keep (the shared axis's order), or None when the sweep shares no axis."""
    if sweep.shared_axis:
        return tuple(int(v) - 1 for v in sweep.axes[sweep.shared_axis])
    return None


def _measures_reading(sweep: Sweep, reads: str) -> tuple:
    return tuple(m for m in sweep.measures if m.reads == reads)


# Measures run over fixed-size batches of images (lax.map over vmapped blocks). XLA picks reduction and FFT
# kernels by array shape, so a fixed block shape is what makes a network's measures identical whatever the
# chunk size, device count or other axes of the sweep. It also bounds the measures' working memory.
MEASURE_BLOCK = 128


def _outputs(measure, value) -> dict:
    """``{result variable: value}`` of one network measure (several for a measure with extra outputs)."""
    if not isinstance(value, dict):
        return {measure.label: value}
    labels = measure.output_labels
    suffixes = [""] + [label[len(measure.label) + 1:] for label in labels[1:]]
    return {label: value[suffix] for label, suffix in zip(labels, suffixes)}


def _measure_network(measure, model, params, x, numeric, sweep: Sweep, switch_index=None) -> dict:
    """One network measure's outputs, called with the model of the network's own switched value.

    In a switched sweep (several values of the model's ``switch_axis`` share one compiled function, the network
    built with ``model.switched``), the measure is called through a ``lax.switch`` on ``switch_index`` over one
    branch per value, each with the model at that value (``model.replace(activation=...)``): the measure sees
    the same model and parameters as in a sweep of that value alone, and only the chosen branch runs."""
    choices = _switch_values(model, sweep)
    if choices is None or switch_index is None:
        return _outputs(measure, measure(model, params, x, numeric))
    axis = model.switch_axis

    def branch(value):
        at_value = model.replace(**{axis: value})
        return lambda p: _outputs(measure, measure(at_value, p, x, numeric))

    return jax.lax.switch(switch_index, [branch(v) for v in choices], params)


def network_images(model, sweep: Sweep, shared_rows, base_key, numeric: dict, seed, tag=None,
                   branch_kwargs: dict | None = None, state=None, switch_index=None):
    """Sample one network and evaluate it on the grid.

    Args:
      model: the variant's model (for a shared axis: at its largest value).
      sweep: the sweep (grid, precision, measures).
      shared_rows: rows of ``model.apply_shared`` to keep, or None.
      base_key: ``jax.random.key(sweep.base_seed)``.
      numeric: one value per numeric axis of the model (``Sweep.numeric_grid`` entries, ``seed`` excluded).
      seed: the network's seed (its key is ``fold_in(base_key, seed)``).
      tag: with ``independent_depths``, the shared-axis value folded into the key.
      branch_kwargs: extra ``apply`` arguments of a switched axis (``model.switched``).
      state: a setup model's shared state (``model.setup``), passed to ``apply`` as ``state=``.
      switch_index: in a switched sweep, the index of the network's value of the switch axis (the one
        ``branch_kwargs`` select); network measures are called with the model at that value.

    Returns:
      ``(images, network_values)``: images ``(rows, *image_shape)``, and ``{label: (rows,)}`` for the sweep's
      network measures.
    """
    x = jnp.asarray(grid(sweep.resolution, model.in_dim, sweep.lo, sweep.hi))
    key = jax.random.fold_in(base_key, seed)
    if tag is not None:
        key = jax.random.fold_in(key, tag)
    init_args, apply_args = split_numeric(model, numeric)
    params = model.init(key, **init_args)
    extra = dict(branch_kwargs or {})
    if state is not None:
        extra["state"] = state
    if shared_rows is not None:
        ys = model.apply_shared(params, x, precision=sweep.precision, **apply_args, **extra)[np.asarray(shared_rows)]
    else:
        ys = model.apply(params, x, precision=sweep.precision, **apply_args, **extra)[None]
    network_values = {}
    for measure in _measures_reading(sweep, "network"):
        if shared_rows is not None:
            rows = []
            for r in shared_rows:
                sub_model, sub_params = model.at_shared(params, r + 1)
                rows.append(_measure_network(measure, sub_model, sub_params, x, numeric, sweep, switch_index))
            network_values.update({k: jnp.stack([row[k] for row in rows]) for k in rows[0]})
        else:
            network_values.update({k: jnp.asarray(v)[None] for k, v in
                                    _measure_network(measure, model, params, x, numeric, sweep,
                                                     switch_index).items()})
    return ys.reshape((ys.shape[0],) + _image_shape(sweep)), network_values


def _cell_network(sweep: Sweep, cell: dict):
    """What ``network_images`` needs to re-create one network of ``sweep`` alone: ``(model, sweep_alone, numeric,
    tag)`` (a setup model's state is built by the caller that evaluates the network)."""
    model = sweep.model
    changes = {k: v for k, v in cell.items() if k in model.structural_axes}
    model = model.replace(**changes) if changes else model
    numeric = {name: np.float32(cell.get(name, axis.default)) for name, axis in model.numeric_axes.items()}
    if sweep.tie_bias_to_weight:
        numeric["bias_scale"] = numeric["weight_scale"]
    axis = getattr(model, "shared_axis", None)
    independent = sweep.independent_depths and axis in sweep.axes
    tag = np.uint32(getattr(model, axis)) if independent else None
    alone = sweep.replace(axes={}, independent_depths=False)
    return model, alone, numeric, tag


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
    if sweep.decodes_tokens:
        tokens, finite = sample_sequence(sweep, cell)
        return tokens, {"finite": np.bool_(finite)}
    model, alone, numeric, tag = _cell_network(sweep, cell)
    state = None
    if sweep.has_setup:   # (float64 values, as the engine's setup gets them)
        exact = {name: float(cell.get(name, axis.default)) for name, axis in model.numeric_axes.items()}
        if sweep.tie_bias_to_weight:
            exact["bias_scale"] = exact["weight_scale"]
        state = _setup_state(model, sweep, exact)
    images, values = network_images(model, alone, None, jax.random.key(sweep.base_seed), numeric,
                                    np.uint32(cell.get("seed", 0)), tag=tag, state=state)
    return np.asarray(images[0]), {k: np.asarray(v[0]) for k, v in values.items()}


def sample_params(sweep: Sweep, cell: dict):
    """``(model, params)`` of one network of ``sweep``: the model at the cell's structural values and the
    parameters ``network_images`` draws for it (the key ``fold_in(key(base_seed), seed)``, as in
    ``sample_network``)."""
    model, _, numeric, tag = _cell_network(sweep, cell)
    key = jax.random.fold_in(jax.random.key(sweep.base_seed), np.uint32(cell.get("seed", 0)))
    if tag is not None:
        key = jax.random.fold_in(key, tag)
    init_args, _ = split_numeric(model, numeric)
    return model, model.init(key, **init_args)


def kept_whole(fn: Callable, platform: str = "cpu") -> Callable:
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
    """Every ``values`` measure of every image in ``images`` (n, *image_shape), in fixed blocks."""
    measures = _measures_reading(sweep, "values")
    n = images.shape[0]
    if not measures:
        return {}
    blocks = -(-n // MEASURE_BLOCK)
    padded = jnp.concatenate(
        [images, jnp.zeros((blocks * MEASURE_BLOCK - n,) + images.shape[1:], images.dtype)], axis=0)
    padded = padded.reshape((blocks, MEASURE_BLOCK) + images.shape[1:])

    def block(imgs):
        return {m.label: jax.vmap(m)(imgs) for m in measures}

    out = jax.lax.map(block, padded)
    return {name: v.reshape(-1)[:n] for name, v in out.items()}


def _switch_values(model, sweep: Sweep) -> tuple | None:
    """The values of the model's switch axis in this sweep when there are several (they share one compiled
    function, chosen by a traced index), else None."""
    axis = getattr(model, "switch_axis", None)
    values = tuple(sweep.axes.get(axis, ())) if axis else ()
    return values if len(values) > 1 else None


def _switch(model, sweep: Sweep):
    """``(values, model, branch)`` when the model's switch axis has several values here, else ``(None, model,
    None)``: one compiled function then serves every value, chosen by a traced index."""
    values = _switch_values(model, sweep)
    if values is not None:
        switched, branch = model.switched(values)
        return values, switched, branch
    return None, model, None


def _switch_index(model, sweep: Sweep) -> np.int32:
    choices, _, _ = _switch(model, sweep)
    return np.int32(choices.index(getattr(model, model.switch_axis)) if choices else 0)


def _setup_state(model, sweep: Sweep, numeric: dict):
    """A setup model's state for one numeric point, on the sweep's grid (float64 points)."""
    points = grid(sweep.resolution, model.in_dim, sweep.lo, sweep.hi).astype(np.float64)
    return model.setup(points, **{k: float(v) for k, v in numeric.items()})


def _shapes(tree):
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), np.asarray(a).dtype), tree)


def compile_variant(model, sweep: Sweep, chunk: int, mesh: Mesh | None = None, state_shapes=None):
    """The compiled, sharded function for one structural variant and chunk length (cached).

    Its arguments: ``(base_key, numeric, seed, tag, switch_index)``: ``numeric`` a dict of (chunk,) float32
    arrays, one per numeric axis of the model; ``seed`` (chunk,) uint32; ``tag`` uint32 (independent depths);
    ``switch_index`` int32 (the switched axis's value); ``state`` a setup model's state (shapes
    ``state_shapes``; ``{}`` for other models). Token models: ``tokens.compile_tokens``'s arguments.
    The cache key is derived from the spec (``Sweep.compile_key``), the variant's model, the chunk and the
    devices.
    """
    shared_rows = _shared_rows(sweep)
    mesh = mesh or device_mesh()
    independent = sweep.independent_depths and getattr(model, "shared_axis", None) in sweep.axes
    choices, model, branch = _switch(model, sweep)
    cells = tuple(len(sweep.axes[d]) for d in sweep.cell_dims)  # token models: the batch's shape
    state_shapes = {} if state_shapes is None else state_shapes
    state_key = tuple((str(p), s.shape, str(s.dtype)) for p, s in jax.tree_util.tree_leaves_with_path(state_shapes))
    cache_key = (model, choices, sweep.compile_key(), cells, state_key, chunk, tuple(d.id for d in mesh.devices.flat))
    if cache_key in _COMPILED:
        return _COMPILED[cache_key]
    if sweep.decodes_tokens:
        _COMPILED[cache_key] = compile_tokens(model, sweep, chunk, mesh, branch, _TRACES)
        return _COMPILED[cache_key]
    platform = mesh.devices.flat[0].platform

    def local(base_key, numeric, seed, tag, switch_index, state):
        # One device's share of the chunk: every network's images, then the measures in fixed blocks.
        _TRACES["count"] += 1  # runs at trace time only
        branch_kwargs = branch(switch_index) if branch is not None else None
        state = state if sweep.has_setup else None

        # Networks run one after another (lax.map), not vmapped: each network's (points x width) matmuls
        # are already BLAS-sized, a vmapped batch of them spills out of cache (1.4-2x slower on CPU), and
        # the loop compiles in half the time. It also makes a network's values independent of the chunk.
        def one_network(args):
            values, s = args
            return network_images(model, sweep, shared_rows, base_key, values, s,
                                  tag=tag if independent else None, branch_kwargs=branch_kwargs, state=state,
                                  switch_index=switch_index)

        images, network_values = jax.lax.map(kept_whole(one_network, platform), (numeric, seed))
        n_local, n_rows = images.shape[:2]
        flat = images.reshape((n_local * n_rows,) + images.shape[2:])
        out = {name: v.reshape(n_local, n_rows) for name, v in measure_images(sweep, flat).items()}
        out.update(network_values)
        out["finite"] = jnp.all(jnp.isfinite(flat.reshape(n_local, n_rows, -1)), axis=-1)
        for measure in _measures_reading(sweep, "network"):   # a network measure's NaN: its network broke
            out["finite"] &= ~jnp.isnan(network_values[measure.label])
        if sweep.keep_values:
            out["values"] = images
        return out

    net, rep = PartitionSpec("net"), PartitionSpec()
    names = tuple(model.numeric_axes)
    fn = jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(rep, {k: net for k in names}, net, rep, rep, rep),
                               out_specs=net, check_vma=False))
    sharded = NamedSharding(mesh, net)
    f32 = jax.ShapeDtypeStruct((chunk,), jnp.float32, sharding=sharded)
    args = (jax.eval_shape(lambda: jax.random.key(0)), {k: f32 for k in names},
            jax.ShapeDtypeStruct((chunk,), jnp.uint32, sharding=sharded),
            jax.ShapeDtypeStruct((), jnp.uint32), jax.ShapeDtypeStruct((), jnp.int32), state_shapes)
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


def _value_layout(sweep: Sweep) -> tuple[tuple[int, ...], Any, tuple[str, ...]]:
    """Shape, dtype and dims of one cell's kept values: the image on the grid, or the token sequence."""
    if sweep.decodes_tokens:
        return (sweep.n_new + 1,), np.int32, ("position",)
    dims = ("y", "x") if sweep.model.in_dim == 2 else ("x",)
    return _image_shape(sweep), np.float32, dims


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
    todo_units = [u for u in (plan.units if units is None else units) if not store.is_done(u)]
    if not todo_units:
        return
    total = len(plan.variants) * plan.n_networks * plan.n_cells
    done_before = sum((stop - start) * plan.n_cells for u, (_, start, stop) in plan.units.items()
                      if store.is_done(u))
    bar = tqdm(total=total, initial=done_before, unit="seq" if sweep.decodes_tokens else "net",
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
            shapes = None
            if sweep.has_setup:  # the compiled function takes the state: its shapes come from a real one
                states[v] = _setup_state(model, sweep, sweep.variant_numeric(plan.variants[v][0]))
                shapes = _shapes(states[v])
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
                if sweep.decodes_tokens:  # every cell of a weight sample, the same for each chunk of seeds
                    cells = cell_table(sweep, plan.variants[v][0])
                    fixed = (cells["numeric"], cells["switch"], cells["tag"])
                    prepared[v] = (compiled, tag, jax.device_put(fixed, replicated))
                elif sweep.has_setup:  # one state per variant, kept only while its chunks run (units are in order)
                    numeric = sweep.variant_numeric(plan.variants[v][0])
                    state = states.pop(v, None)
                    state = _setup_state(model, sweep, numeric) if state is None else state
                    state = jax.device_put(state, replicated)  # once, not with every chunk
                    prepared = {v: (compiled, tag, (numeric, _switch_index(model, sweep), state))}
                else:
                    prepared[v] = (compiled, tag, _switch_index(model, sweep))
            compiled, tag, fixed = prepared[v]
            t0 = time.perf_counter()
            if sweep.decodes_tokens:
                seeds = jax.device_put(seed_values(sweep, start, plan.chunk), sharded)
                result = compiled(base_key, seeds, tag, *fixed)
            elif sweep.has_setup:
                numeric, switch_index, state = fixed
                values = {k: jax.device_put(np.full(plan.chunk, x, np.float32), sharded) for k, x in numeric.items()}
                seeds = jax.device_put(seed_values(sweep, start, plan.chunk), sharded)
                result = compiled(base_key, values, seeds, tag, switch_index, state)
            else:
                values = chunk_values(sweep, start, plan.chunk)
                numeric = {k: jax.device_put(values[k], sharded) for k in model.numeric_axes}
                result = compiled(base_key, numeric, jax.device_put(values["seed"], sharded), tag, fixed, {})
            outputs = {k: np.asarray(val)[:stop - start] for k, val in result.items()}
            stats["run"] += time.perf_counter() - t0
            store.write_region(unit, v, start, outputs)
            bar.update((stop - start) * plan.n_cells)
            multihost.check_stop()
    finally:
        bar.close()
        for future in futures.values():
            future.cancel()
