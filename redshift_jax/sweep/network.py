"""One network of a sweep, and one compiled chunk of a field model's networks (DESIGN.md sections 7 and 11).

``network_images`` samples a network from its key and evaluates it on the grid (the switched activation, the
shared depth, a setup model's state), with its network measures; ``measure_images`` runs the values measures
over fixed blocks of images; ``compile_field`` compiles a chunk of networks, sharded over the devices, and
``compile_variant`` caches what a sweep's flow (``flows.py``) compiles. ``engine.py`` runs the chunks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ..devices import device_mesh
from ..models.base import split_numeric

if TYPE_CHECKING:
    from .spec import Sweep

__all__ = ["network_images", "measure_images", "kept_whole", "compile_variant", "compile_field", "sample_params",
           "trace_count", "MEASURE_BLOCK"]

_TRACES = {"count": 0}
_COMPILED: dict[Any, Any] = {}


def trace_count() -> int:
    """How many times a sweep function has been traced in this process (for no-recompile tests)."""
    return _TRACES["count"]


def _image_shape(sweep: Sweep) -> tuple[int, ...]:
    return sweep.flow.value_layout(sweep)[0]


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
    x = jnp.asarray(sweep.flow.inputs(sweep, model))
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
    partition loops inside a conditional's branches, so the step runs through a two-way ``lax.switch`` whose
    index is a runtime zero (an optimization barrier keeps XLA from folding it away): branch 0 is ``fn``, branch 1
    (never taken) returns zeros of ``fn``'s output shapes. Branch 0 is compiled exactly as ``fn`` alone would be,
    so values are unchanged (the engine's bitwise tests compare against standalone ``apply``). Branch 1 was a
    second copy of ``fn`` until 2026-12-07: XLA compiled the forward pass twice, a fifth of a small sweep's
    compile time (docs/performance.md).
    """

    if platform != "cpu":
        return fn

    def whole(*args):
        zero = jax.lax.optimization_barrier(jnp.int32(0))
        shapes = jax.eval_shape(fn, *args)

        def never(*_):
            return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

        return jax.lax.switch(zero, [fn, never], *args)

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
    """A setup model's state for one numeric point, on the sweep's inputs (float64 points)."""
    points = sweep.flow.inputs(sweep, model).astype(np.float64)
    return model.setup(points, **{k: float(v) for k, v in numeric.items()})


def _shapes(tree):
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), np.asarray(a).dtype), tree)


def compile_variant(model, sweep: Sweep, chunk: int, mesh: Mesh | None = None, state_shapes=None):
    """The compiled, sharded function for one structural variant and chunk length (cached), as the sweep's
    flow compiles it (``flows.py``; field models: ``compile_field``, token models: ``tokens.compile_tokens``).

    The cache key is derived from the spec (``Sweep.compile_key``), the variant's model (switched: at the first
    switched value), the chunk, a setup model's state shapes (``state_shapes``) and the devices.
    """
    mesh = mesh or device_mesh()
    choices, switched, branch = _switch(model, sweep)
    cells = tuple(len(sweep.axes[d]) for d in sweep.cell_dims)  # token models: the batch's shape
    state_shapes = {} if state_shapes is None else state_shapes
    state_key = tuple((str(p), s.shape, str(s.dtype)) for p, s in jax.tree_util.tree_leaves_with_path(state_shapes))
    cache_key = (switched, choices, sweep.compile_key(), cells, state_key, chunk,
                 tuple(d.id for d in mesh.devices.flat))
    if cache_key not in _COMPILED:
        _COMPILED[cache_key] = sweep.flow.compile(switched, sweep, chunk, mesh, branch, state_shapes)
    return _COMPILED[cache_key]


def compile_field(model, sweep: Sweep, chunk: int, mesh: Mesh, branch, state_shapes, uses_state: bool,
                  network_jit: bool = False):
    """The compiled function of a field model's variant (``model`` already switched, ``branch`` its switch).

    Its arguments: ``(base_key, numeric, seed, tag, switch_index, state)``: ``numeric`` a dict of (chunk,)
    float32 arrays, one per numeric axis of the model; ``seed`` (chunk,) uint32; ``tag`` uint32 (independent
    depths); ``switch_index`` int32 (the switched axis's value); ``state`` a setup model's state (shapes
    ``state_shapes``, passed to ``apply`` when ``uses_state``; ``{}`` for other models).

    With ``network_jit`` (the plane flow's models: ``FlaxModel``, ``CNN``, ``ViT``, ``PixelMLP``) each network runs
    as a nested ``jax.jit`` that takes every traced value as an argument, so the constants its forward pass
    closes over (the grid's (u, v) points, the plane's basis) stay compile-time constants inside it, as in the
    network jitted alone. Otherwise ``shard_map`` (on more than one device) and ``lax.map`` pass them in as
    operands, and XLA:CPU's YNNPACK fusion of the whole CNN then fills one more activation-sized buffer per
    network (``CNN(depth=4, width=32)`` on 64 x 64 MNIST planes: 587k instead of 482k page faults per network,
    and two devices faulting at once; ``benchmarks/architectures_bench.py`` measures the engine against a
    per-network loop, docs/performance.md records the runs). The same operations run, so the values are unchanged
    (bit for bit, CNN, ViT and PixelMLP sweeps). Other models keep
    their constants as operands: in a jit of their own XLA folds some of them at compile time (``Unbiased``'s
    ``grid @ frequencies``), which would move the last bits of their recorded results.
    """
    shared_rows = _shared_rows(sweep)
    independent = sweep.independent_depths and getattr(model, "shared_axis", None) in sweep.axes
    platform = mesh.devices.flat[0].platform

    def network(base_key, values, s, tag, switch_index, state):
        # One network's images and network measures (``network_images``).
        branch_kwargs = branch(switch_index) if branch is not None else None
        return network_images(model, sweep, shared_rows, base_key, values, s, tag=tag if independent else None,
                              branch_kwargs=branch_kwargs, state=state if uses_state else None,
                              switch_index=switch_index)

    if network_jit:
        network = jax.jit(network)   # its closed-over constants stay constants (see the docstring)

    def local(base_key, numeric, seed, tag, switch_index, state):
        # One device's share of the chunk: every network's images, then the measures in fixed blocks.
        _TRACES["count"] += 1  # runs at trace time only
        step = kept_whole(network, platform)

        # Networks run one after another (lax.map), not vmapped: each network's (points x width) matmuls
        # are already BLAS-sized, a vmapped batch of them spills out of cache (1.4-2x slower on CPU), and
        # the loop compiles in half the time. It also makes a network's values independent of the chunk.
        def one_network(args):
            values, s = args
            return step(base_key, values, s, tag, switch_index, state)

        images, network_values = jax.lax.map(one_network, (numeric, seed))
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
    return fn.lower(*args).compile()
