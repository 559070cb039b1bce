"""``run``: train a whole experiment grid, one compiled program per activation, resumable per activation.

For each activation the experiment's per-network functions (``setup``, ``step``, ``finish``) are vmapped over
the flattened grid (modular sum: modulus x prefactor x seed; Colored-MNIST: prefactor x seed) and jitted:
``setup`` initializes the parameters and optimizer (and measures the function at init), the training loop is a
``lax.scan`` of ``step``, and ``finish`` evaluates. The prefactor is a traced, non-trainable array, so a new
set of prefactor values (of the same count) reuses the compiled program. The scan is called in segments of
``segment_steps`` steps (the carried state is donated), only so the progress bar and ETA update during
training; the steps are the same as one long scan. With several local devices the scan runs on all of them (at
most one per chunk of networks), each device running the same single-device program on its share of whole
chunks (see ``train_grid``), so results are bitwise the same for any device count.

Finished activations are written as checked pieces of the run's store (``redshift_jax.store.RunStore``)
beside ``out``; ``resume=True`` reads them back (a damaged piece is retrained) and trains only the missing
activations, and the final store only appears, whole and checked, at the end.
"""

from __future__ import annotations

import collections
import json
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .. import multihost
from .._io import now_iso, provenance_attrs
from .._version import __version__
from ..devices import local_devices
from ..errors import ConfigError
from ..store import RunStore, describe_difference, is_result, load_dataset, result_fingerprint

__all__ = ["run", "COMPILE_COUNT", "train_grid", "train_single"]

# (program cache key, function name) -> number of XLA compilations; tests read it to check reuse.
COMPILE_COUNT: collections.Counter = collections.Counter()
_COMPILED: dict = {}


def _shape_key(tree) -> tuple:
    return tuple((tuple(x.shape), str(x.dtype)) for x in jax.tree.leaves(tree))


def _compile(program, name: str, fn, args, static: tuple = (), donate: tuple = ()):
    """AOT-compile ``fn`` for these argument shapes once per (program, name, shapes); returns the executable."""
    key = (program.cache_key, name, _shape_key(args), static)
    exe = _COMPILED.get(key)
    if exe is None:
        t0 = time.perf_counter()
        exe = jax.jit(fn, donate_argnums=donate).lower(*args).compile()
        program.compile_seconds = getattr(program, "compile_seconds", 0.0) + time.perf_counter() - t0
        COMPILE_COUNT[(program.cache_key, name)] += 1
        _COMPILED[key] = exe
    return exe


def _batched_fns(program, chunk: int):
    def setup(net, shared):
        return jax.vmap(program.setup, in_axes=(0, None))(net, shared)

    def segment(state, net, ctx, shared, start, length):
        def one(state, net, ctx):
            def body(st, i):
                return program.step(st, net, ctx, shared, i), None

            return jax.lax.scan(body, state, start + jnp.arange(length, dtype=jnp.int32))[0]

        # vmap within chunks of networks, lax.map over the chunks: the working set of one chunk stays in
        # cache (on CPU, 36 networks at a time trained ~1.5x faster than all 216 at once for sine)
        n = jax.tree.leaves(net)[0].shape[0]
        def split(a):
            return a.reshape((n // chunk, chunk) + a.shape[1:])

        out = jax.lax.map(lambda args: jax.vmap(one)(*args), jax.tree.map(split, (state, net, ctx)))
        return jax.tree.map(lambda a: a.reshape((n,) + a.shape[2:]), out)

    def finish(state, net, ctx, shared):
        return jax.vmap(program.finish, in_axes=(0, 0, 0, None))(state, net, ctx, shared)

    return setup, segment, finish


def _segments(steps: int, segment_steps: int | None) -> list[int]:
    if not segment_steps or segment_steps >= steps:
        return [steps]
    n_seg = math.ceil(steps / segment_steps)
    size = math.ceil(steps / n_seg)
    out = [size] * (steps // size)
    if steps % size:
        out.append(steps % size)
    return out


def train_grid(program, grid: dict, steps: int, segment_steps: int | None = 250, on_segment=None,
               return_state: bool = False, num_devices: int | None = None):
    """Train every network of ``grid`` (flat per-network arrays) with one activation's program.

    Returns a dict of numpy arrays (one entry per output, leading axis = network), plus the final state
    ``(params, opt_state)`` when ``return_state``. ``on_segment(n_steps)`` is called after each segment.
    The training steps run split over the local devices (at most ``num_devices``; default all, and at most one
    per network chunk), each device training whole chunks. Results are bitwise the same for any device count.
    """
    n_nets = len(next(iter(grid.values())))
    chunk = min(getattr(program, "network_chunk", n_nets), n_nets)
    padded = -(-n_nets // chunk) * chunk
    n_chunks = padded // chunk
    devices = local_devices(num_devices)[:n_chunks]
    setup, segment, finish = _batched_fns(program, chunk)
    if padded != n_nets:  # whole chunks: repeat the last network, drop its copies at the end
        grid = {k: np.concatenate([np.asarray(v), np.repeat(np.asarray(v)[-1:], padded - n_nets)])
                for k, v in grid.items()}
    net = program.net_inputs(grid)
    shared = program.shared
    exe = _compile(program, "setup", setup, (net, shared))
    state, ctx, init_out = exe(net, shared)
    # The training steps: each device trains a contiguous group of whole chunks with its own copy of the same
    # single-device program, dispatched asynchronously so the devices run at once (on CPU, one device per
    # core: 1.4-1.6x faster on 2 cores than one device splitting each op over threads). Every chunk then runs
    # the same code as on one device, so results are bitwise the same for any device count (one SPMD
    # program over a mesh was not: its compile differs from the single-device one in the last bits).
    home = jax.tree.leaves(state)[0].sharding
    # contiguous groups of whole chunks, sizes differing by at most one chunk (e.g. 3 chunks on 2 devices: 1 + 2)
    bounds = [chunk * (n_chunks * i // len(devices)) for i in range(len(devices) + 1)]
    groups = [jax.device_put(jax.tree.map(lambda a, _lo=lo, _hi=hi: a[_lo:_hi], (state, net, ctx)) + (shared,), dev)
              for dev, lo, hi in zip(devices, bounds[:-1], bounds[1:])]
    del state  # the groups hold it now

    def compile_segment(length, i):
        s0 = jax.device_put(np.int32(0), devices[i])
        return _compile(program, f"segment{length}",
                        lambda st, n, c, sh, s0, _l=length: segment(st, n, c, sh, s0, _l),
                        groups[i] + (s0,), static=(length, chunk, devices[i].id), donate=(0,))

    lengths = _segments(steps, segment_steps)
    todo = [(length, i) for length in sorted(set(lengths)) for i in range(len(devices))]
    before, t0 = getattr(program, "compile_seconds", 0.0), time.perf_counter()
    with ThreadPoolExecutor(max_workers=min(len(todo), os.cpu_count() or 1)) as pool:  # XLA compiles in parallel
        exes = dict(zip(todo, pool.map(lambda a: compile_segment(*a), todo)))
    program.compile_seconds = before + time.perf_counter() - t0  # wall time, not the sum over threads
    start = 0
    for length in lengths:
        for i, dev in enumerate(devices):
            st, n, c, sh = groups[i]
            groups[i] = (exes[length, i](st, n, c, sh, jax.device_put(np.int32(start), dev)), n, c, sh)
        start += length
        if on_segment is not None:
            jax.block_until_ready([g[0] for g in groups])
            on_segment(length)
    state = jax.tree.map(lambda *parts: jnp.concatenate([jax.device_put(p, home) for p in parts]),
                         *[g[0] for g in groups])
    fin = _compile(program, "finish", finish, (state, net, ctx, shared))
    out = {k: np.asarray(v)[:n_nets] for k, v in {**init_out, **fin(state, net, ctx, shared)}.items()}
    if return_state:
        return out, jax.tree.map(lambda a: a[:n_nets], state)
    return out


def train_single(program, net_one: dict, steps: int, return_state: bool = False):
    """The per-network reference: one network (unbatched inputs) trained by one jitted, un-vmapped function.

    ``net_one`` holds this network's entries of ``program.net_inputs(grid)`` (index them with ``[i]``).
    """
    key = (program.cache_key, "single", _shape_key(net_one), steps)
    fn = _COMPILED.get(key)
    if fn is None:
        def single(net, shared):
            state, ctx, init_out = program.setup(net, shared)

            def body(st, i):
                return program.step(st, net, ctx, shared, i), None

            state = jax.lax.scan(body, state, jnp.arange(steps, dtype=jnp.int32))[0]
            return {**init_out, **program.finish(state, net, ctx, shared)}, state

        fn = jax.jit(single).lower(net_one, program.shared).compile()
        _COMPILED[key] = fn
        COMPILE_COUNT[(program.cache_key, "single")] += 1
    out, state = fn(net_one, program.shared)
    out = {k: np.asarray(v) for k, v in out.items()}
    return (out, state) if return_state else out


def _piece(exp, activation: str, outputs: dict, extra: dict):
    import xarray as xr

    coords = exp.coords()
    dims = tuple(coords)
    shape = tuple(len(v) for v in coords.values())
    data_vars = {}
    for name, v in outputs.items():  # numbers as float32; boolean outputs (``diverged``) stay boolean
        v = np.asarray(v)
        v = v if v.dtype == np.bool_ else v.astype(np.float32)
        data_vars[name] = (("activation",) + dims, v.reshape((1,) + shape))
    for name, (vdims, arr, vcoords) in extra.items():
        data_vars[name] = (("activation",) + vdims, np.asarray(arr)[None])
        coords = {**coords, **vcoords}
    return xr.Dataset(data_vars, coords={"activation": [activation], **coords})


def run(exp, out: str | os.PathLike | None = None, resume: bool = False, progress: bool = True,
        segment_steps: int | None = 250, num_devices: int | None = None, overwrite: bool = False):
    """Train an experiment's whole grid and return its labelled results.

    Args:
      exp: a ``ModularSum`` or ``ColoredMNIST`` spec (validated before anything is compiled).
      out: zarr path; finished activations are kept beside it (``<out>.partial``) until the end, then the
        whole Dataset is written, checked, under ``out``. ``None`` keeps everything in memory. Never replaces
        anything but a finished result of the same spec (see ``overwrite``).
      resume: reuse the finished activations of a killed run with the same spec (a finished ``out`` with
        the same spec is simply loaded); a different spec is refused, saying what differs.
      progress: a tqdm bar counting network-steps (steps/s, ETA) with the trainings done as a postfix.
      segment_steps: steps per compiled scan call (only affects how often progress updates).
      num_devices: train on at most this many local devices (default: all; on CPU the CLI exposes one device
        per core). Results are bitwise the same for any count.
      overwrite: discard an unfinished run at ``out`` and replace a finished result of another spec there.

    Returns:
      ``xarray.Dataset`` with ``attrs["kind"]`` = ``exp.kind`` (``"train_modsum"``/``"train_cmnist"``), the
      spec as JSON (``attrs["spec"]``), versions, backend, times, and ``compile_seconds``,
      ``train_seconds``, ``ms_per_network_step``.
    """
    import xarray as xr
    from tqdm.auto import tqdm

    if not hasattr(exp, "program") or not hasattr(exp, "validate"):
        raise ConfigError(f"run: exp={type(exp).__name__} is not allowed; allowed: ModularSum, ColoredMNIST")
    exp.validate()
    fingerprint = {"spec": json.loads(exp.to_json()), "package": f"redshift_jax {__version__}"}
    if out is not None and resume and not overwrite and is_result(Path(out)):
        recorded = result_fingerprint(Path(out))
        if recorded is not None and describe_difference(recorded, fingerprint) is None:
            return load_dataset(out)

    start_time = now_iso()
    n_processes, rank = multihost.process_count(), multihost.process_index()
    if n_processes > 1 and out is None:
        raise ConfigError(f"run: out=None is not allowed in a run of {n_processes} processes; allowed: a path on a "
                          "filesystem every process shares")
    store = None
    if out is not None and rank == 0:
        try:
            store = RunStore(out, fingerprint, exp.kind, resume=resume, overwrite=overwrite)
        except BaseException as err:
            multihost.publish("store ready", str(err) or type(err).__name__)
            raise
        multihost.publish("store ready")
    elif out is not None:
        multihost.wait_for("store ready")
        store = RunStore.attach(out, fingerprint)
    try:
        if n_processes > 1:  # each process trains its block of activations, then process 0 assembles
            acts = list(exp.activations)
            mine = [a for i, a in enumerate(acts) if i * n_processes // len(acts) == rank]
            _train_all(exp, store, progress and rank == 0, segment_steps, num_devices, start_time, tqdm, xr,
                       only=mine)
            multihost.barrier("pieces written")
            if rank != 0:
                store.close()
                multihost.wait_for("result written")
                return load_dataset(out)
        ds = _train_all(exp, store, progress, segment_steps, num_devices, start_time, tqdm, xr)
        if store is not None:
            try:
                store.finish(ds)
            except BaseException as err:  # e.g. a full disk: the others end with process 0's own one-line error
                multihost.publish("result written", str(err) or type(err).__name__)
                raise
            multihost.publish("result written")
    finally:
        if store is not None:
            store.close()
    return ds


def _train_all(exp, store, progress, segment_steps, num_devices, start_time, tqdm, xr, only=None):
    """Train every activation the store does not hold (or, with ``only``, just those, writing their pieces and
    returning None) and assemble the Dataset."""
    grid = exp.flat_grid()
    n_nets = len(next(iter(grid.values())))
    acts = list(exp.activations)
    total_trainings = n_nets * len(acts)
    stored = {a: store.read_piece(a) for a in acts} if store is not None else {}
    done_acts = [a for a in acts if stored.get(a) is not None]
    bar = tqdm(total=total_trainings * exp.steps, initial=len(done_acts) * n_nets * exp.steps,
               unit="step", unit_scale=True, disable=not progress, dynamic_ncols=True,
               desc=f"{exp.name} ({exp.kind})", smoothing=0.1)
    trainings_done = len(done_acts) * n_nets
    bar.set_postfix_str(f"trainings {trainings_done}/{total_trainings}")
    pieces = []
    compile_seconds = 0.0
    train_seconds = 0.0
    trained_steps = 0
    try:
        for act in acts:
            if stored.get(act) is not None:
                pieces.append(stored[act])
                continue
            if only is not None and act not in only:
                continue
            program = exp.program(act)
            program.compile_seconds = 0.0
            bar.set_description(f"{exp.name} {act}")

            def tick(length, _n=n_nets):
                bar.update(length * _n)

            t0 = time.perf_counter()
            outputs = train_grid(program, grid, exp.steps, segment_steps, on_segment=tick, num_devices=num_devices)
            extra = exp.extra_outputs(program) if hasattr(exp, "extra_outputs") else {}
            elapsed = time.perf_counter() - t0
            compile_seconds += program.compile_seconds
            train_seconds += elapsed - program.compile_seconds
            trained_steps += n_nets * exp.steps
            piece = _piece(exp, act, outputs, extra)
            if store is not None:
                store.write_piece(act, piece)
            pieces.append(piece)
            trainings_done += n_nets
            bar.set_postfix_str(f"trainings {trainings_done}/{total_trainings}")
            multihost.check_stop()
    finally:
        bar.close()
    if only is not None:
        return None

    ds = xr.concat(pieces, dim="activation", data_vars="all", coords="minimal", compat="override",
                   join="override")
    attrs = provenance_attrs(exp.to_dict(), start_time, kind=exp.kind)
    attrs.update({
        "name": exp.name,
        "num_trainings": int(total_trainings),
        "steps": int(exp.steps),
        "compile_seconds": round(compile_seconds, 3),
        "train_seconds": round(train_seconds, 3),
    })
    if trained_steps:
        attrs["ms_per_network_step"] = round(1e3 * train_seconds / trained_steps, 5)
    if len(done_acts):
        attrs["resumed_activations"] = ", ".join(done_acts)
    ds.attrs.update(attrs)
    return ds
