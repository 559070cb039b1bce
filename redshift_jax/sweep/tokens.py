"""The engine's flow for models that output tokens (GPT-2; DESIGN.md sections 11 and 13).

A token model's network is one weight sample: seed ``s`` draws its weights and its prompt from
``fold_in(key(base_seed), s)``. Its cells are every value of the sweep's other axes that act at decoding time:
the shared axis (depth: a depth-L model is the first L blocks of the sample, ``model.at_shared``), the switched
axis (activation, chosen by a traced index) and the numeric axes (``ln_gain``). With common random numbers
(``Sweep.crn``, the default) all cells of a seed use the same weights and prompt and decode together: one
``generate`` per shared value, vmapped over the cells, so the weights are read once per step for the whole batch
(``GPT2.generate`` shares unbatched parameters across a vmapped batch). Every cell is still an exact sample of
the model's distribution; comparisons between cells become paired.

With ``crn=False`` (the paper-literal design) each cell draws fresh weights and a fresh prompt from
``fold_in(fold_in(key(base_seed), s), cell_tag)``, ``cell_tag`` a CRC-32 of the cell's coordinates (so a cell's
sequence does not depend on what else the sweep holds), and the cells decode one after another.

The plan (``plan.py``) enumerates seeds as its networks and the cells in ``Sweep.cell_dims`` order, shared axis
first, so each shared value's cells are one contiguous block.
"""

from __future__ import annotations

import json
import zlib
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

if TYPE_CHECKING:
    from .spec import Sweep

__all__ = ["cell_table", "cell_tag", "compile_tokens", "seed_values", "sample_sequence"]


def _coordinate(value):
    """A coordinate in a canonical JSON form: numbers as floats (1 and 1.0 are one cell), others as they are."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return value
    return float(value)


def cell_tag(coordinates: dict) -> int:
    """The uint32 folded into a seed's key for one cell when ``crn=False``: CRC-32 of its sorted coordinates
    (every axis but ``seed``)."""
    text = json.dumps(sorted((str(k), _coordinate(v)) for k, v in coordinates.items() if k != "seed"))
    return zlib.crc32(text.encode()) & 0xFFFFFFFF


def cell_table(sweep: Sweep, variant: tuple = ()) -> dict[str, np.ndarray]:
    """Every cell of one variant's weight samples, in ``sweep.cell_dims`` order (row-major).

    Args:
      sweep: a token-model sweep.
      variant: the variant's index tuple over ``sweep.variant_dims`` (its coordinates go into the cell tags).

    Returns:
      ``{"numeric": {axis: (n_cells,) float32}, "switch": (n_cells,) int32, "tag": (n_cells,) uint32}``: each
      cell's numeric values (defaults where the sweep leaves an axis out), the index of its switched value in
      the sweep's axis, and its ``crn=False`` tag.
    """
    dims = sweep.cell_dims
    shape = tuple(len(sweep.axes[d]) for d in dims)
    n = int(np.prod(shape, dtype=np.int64))
    positions = dict(zip(dims, np.unravel_index(np.arange(n), shape))) if dims else {}
    numeric = {}
    for name, axis in sweep.model.numeric_axes.items():
        if name in positions:
            numeric[name] = np.asarray(sweep.axes[name], np.float64)[positions[name]].astype(np.float32)
        else:
            numeric[name] = np.full(n, axis.default, np.float32)
    switch_axis = getattr(sweep.model, "switch_axis", None)
    switch = positions.get(switch_axis, np.zeros(n, np.int64)).astype(np.int32)
    fixed = {d: sweep.axes[d][i] for d, i in zip(sweep.variant_dims, variant)}
    tags = np.empty(n, np.uint32)
    for c in range(n):
        coordinates = dict(fixed)
        coordinates.update({d: sweep.axes[d][int(positions[d][c])] for d in dims})
        tags[c] = cell_tag(coordinates)
    return {"numeric": numeric, "switch": switch, "tag": tags}


def seed_values(sweep: Sweep, start: int, chunk: int) -> np.ndarray:
    """Seeds ``start .. start + chunk - 1`` of the sweep (uint32); past the end, copies of the first seed."""
    seeds = np.asarray(sweep.axes.get("seed", (0,)), np.int64)
    out = seeds[start:start + chunk]
    if len(out) < chunk:
        out = np.concatenate([out, np.repeat(seeds[:1], chunk - len(out))])
    return out.astype(np.uint32)


def _groups(sweep: Sweep) -> tuple[tuple, int]:
    """The shared axis's values in cell order and the number of cells per value."""
    n_cells = int(np.prod([len(sweep.axes[d]) for d in sweep.cell_dims], dtype=np.int64))
    values = tuple(sweep.axes[sweep.shared_axis]) if sweep.shared_axis else (None,)
    return values, n_cells // len(values)


def compile_tokens(model, sweep: Sweep, chunk: int, mesh: Mesh, branch, trace_counter: dict):
    """The compiled, sharded function of one token-model variant for ``chunk`` seeds.

    Its arguments: ``(base_key, seed (chunk,) uint32, tag uint32, numeric {axis: (n_cells,) float32},
    switch (n_cells,) int32, cell_tags (n_cells,) uint32)``; its outputs ``{measure label: (chunk, n_cells),
    "finite": (chunk, n_cells)[, "values": (chunk, n_cells, n_new + 1) int32]}``.
    """
    values, per_group = _groups(sweep)
    shared = sweep.shared_axis
    independent = sweep.independent_depths and getattr(model, "shared_axis", None) in sweep.axes
    measures = tuple(m for m in sweep.measures if m.reads == "tokens")

    def decode(sub_model, params, prompt, numeric, index):
        extra = branch(index) if branch is not None else {}
        return sub_model.generate(params, prompt, n_new=sweep.n_new, precision=sweep.precision,
                                  return_finite=True, **numeric, **extra)

    def local(base_key, seed, tag, numeric, switch, cell_tags):
        trace_counter["count"] += 1  # runs at trace time only

        def one_seed(s):
            key = jax.random.fold_in(base_key, s)
            if independent:
                key = jax.random.fold_in(key, tag)
            if sweep.crn:
                params, prompt = model.init(key), model.prompt(key)
            tokens, finite = [], []
            for g, value in enumerate(values):
                cells = slice(g * per_group, (g + 1) * per_group)
                group = ({k: v[cells] for k, v in numeric.items()}, switch[cells])
                if sweep.crn:
                    sub_model, sub_params = model.at_shared(params, value) if shared else (model, params)
                    t, f = jax.vmap(lambda nv, i: decode(sub_model, sub_params, prompt, nv, i))(*group)
                else:
                    sub_model = model.replace(**{shared: value}) if shared else model

                    def one_cell(args, sub_model=sub_model):
                        nv, i, ct = args
                        k = jax.random.fold_in(key, ct)
                        return decode(sub_model, sub_model.init(k), sub_model.prompt(k), nv, i)

                    t, f = jax.lax.map(one_cell, group + (cell_tags[cells],))
                tokens.append(t)
                finite.append(f)
            tokens, finite = jnp.concatenate(tokens), jnp.concatenate(finite)
            # tokens decoded from non-finite logits are argmax of NaN, not a sequence: their measures are NaN,
            # like every float measure of a non-finite input (DESIGN.md section 12)
            out = {m.label: jnp.where(finite, jax.vmap(m)(tokens).astype(jnp.float32), jnp.float32(jnp.nan))
                   for m in measures}
            out["finite"] = finite
            if sweep.keep_values:
                out["values"] = tokens
            return out

        return jax.lax.map(one_seed, seed)

    net, rep = PartitionSpec("net"), PartitionSpec()
    names = tuple(model.numeric_axes)
    fn = jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(rep, net, rep, {k: rep for k in names}, rep, rep),
                               out_specs=net, check_vma=False))
    sharded = jax.sharding.NamedSharding(mesh, net)
    n_cells = per_group * len(values)
    f32 = jax.ShapeDtypeStruct((n_cells,), jnp.float32)
    args = (jax.eval_shape(lambda: jax.random.key(0)), jax.ShapeDtypeStruct((chunk,), jnp.uint32, sharding=sharded),
            jax.ShapeDtypeStruct((), jnp.uint32), {k: f32 for k in names},
            jax.ShapeDtypeStruct((n_cells,), jnp.int32), jax.ShapeDtypeStruct((n_cells,), jnp.uint32))
    return fn.lower(*args).compile()


def sample_sequence(sweep: Sweep, cell: dict):
    """Decode one cell of a token-model sweep on its own (not batched): the reference the engine must match.

    Args:
      sweep: a token-model sweep.
      cell: axis values, e.g. ``{"activation": "relu", "ln_gain": 3.0, "depth": 6, "seed": 2}``; axes left out
        take the model's field or the numeric axis's default (seed 0).

    Returns:
      ``(tokens (n_new + 1,) int32, finite bool)`` as numpy values.
    """
    model = sweep.model
    changes = {k: v for k, v in cell.items() if k in model.structural_axes}
    model = model.replace(**changes) if changes else model
    numeric = {name: np.float32(cell.get(name, axis.default)) for name, axis in model.numeric_axes.items()}
    key = jax.random.fold_in(jax.random.key(sweep.base_seed), np.uint32(cell.get("seed", 0)))
    axis = getattr(model, "shared_axis", None)
    if sweep.independent_depths and axis in sweep.axes:
        key = jax.random.fold_in(key, np.uint32(getattr(model, axis)))
    if not sweep.crn:
        coordinates = {d: cell.get(d, getattr(model, d, None)) for d in sweep.dims if d != "seed"}
        for d in sweep.dims:
            if d in model.numeric_axes:
                coordinates[d] = cell.get(d, model.numeric_axes[d].default)
        key = jax.random.fold_in(key, np.uint32(cell_tag(coordinates)))
    tokens, finite = model.generate(model.init(key), model.prompt(key), n_new=sweep.n_new, precision=sweep.precision,
                                    return_finite=True, **numeric)
    return np.asarray(tokens), bool(finite)
