"""One flow per input kind (DESIGN.md section 18): grid, setup, tokens, plane.

A flow owns everything that differs between kinds of model: which axes a weight sample is read out at (its
cells), which enumerate the weight samples (its networks), the extra checks and spec fields, the default chunk,
the cost estimate, the inputs the networks are evaluated on, what it compiles for a variant, the arguments fixed
per variant and those per chunk, the kept values' layout, and how one network is re-created alone. ``spec.py``,
``plan.py`` and ``engine.py`` ask the sweep's flow (``Sweep.flow``) instead of branching on the kind of model.

- ``FieldFlow`` (``"field"``): a field on a grid of ``resolution`` points per axis on ``[lo, hi]^in_dim``
  (``MLP``, ``Unbiased``: ``inputs = "grid"``).
- ``PlaneFlow`` (``"plane"``): a field on a plane through a model's input space (``FlaxModel``, so ``CNN``,
  ``ViT``, ``PixelMLP``: ``inputs = "plane"``), evaluated at the plane's (u, v) grid on ``[-1, 1]^2``; it
  checks the sweep against the plane (``lo=-1, hi=1``) and costs a network by the model's declared flops.
- ``SetupFlow`` (``"setup"``): a field model with a setup step shared by its seeds (``NNGP``: the kernel's
  Cholesky factor).
- ``TokenFlow`` (``"tokens"``): a model that decodes tokens from a prompt (``GPT2``; ``tokens.py``).

A new kind of input (say, Boolean inputs) is one new ``Flow`` subclass registered with ``register_flow``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import jax
import numpy as np

from ..errors import ConfigError
from ..grids import grid
from ..models.base import output_kind
from ..models.planes import UV_RANGE, uv_grid
from .network import _TRACES, _cell_network, _setup_state, _shapes, _switch_index, compile_field, network_images
from .tokens import cell_table, compile_tokens, sample_sequence, seed_values

if TYPE_CHECKING:
    from .spec import Sweep

__all__ = ["Flow", "FieldFlow", "PlaneFlow", "SetupFlow", "TokenFlow", "FLOWS", "flow_of", "register_flow",
           "chunk_values", "model_flops"]


def chunk_values(sweep: Sweep, start: int, chunk: int) -> dict[str, np.ndarray]:
    """The numeric values of networks ``start .. start+chunk-1``; past the end, copies of network 0."""
    values = sweep.numeric_grid(start, start + chunk)
    pad = chunk - len(values["seed"])
    if pad:
        first = sweep.numeric_grid(0, 1)
        values = {k: np.concatenate([v, np.repeat(first[k], pad)]) for k, v in values.items()}
    return values


def model_flops(model, points: int, kind: str = "field") -> float:
    """``model.flops(points)`` where the model declares it (``models/base.py``); else the guess the size guard
    always made: a transformer of GPT-2 small's size (``kind="tokens"``), a matrix-vector product
    (``"setup"``), or an MLP of the model's ``width`` (64 when it has none) and ``depth`` on its ``in_dim``
    inputs (``"field"``; ``"plane"``: on the plane's flattened images)."""
    declared = getattr(model, "flops", None)
    if callable(declared):
        return float(declared(points))
    if kind == "tokens":
        d, vocab = getattr(model, "d_model", 768), getattr(model, "vocab", 50257)
        return 2.0 * points * (getattr(model, "depth", 12) * (12 * d * d + points * d) + d * vocab)
    if kind == "setup":
        return 2.0 * points ** 2
    width = getattr(model, "width", None) or 64
    depth = getattr(model, "depth", 1)
    gate = 2 if getattr(model, "gating", False) else 1
    if kind == "plane":
        in_dim = math.prod(getattr(getattr(model, "plane", None), "input_shape", (2,)))
    else:
        in_dim = getattr(model, "in_dim", 1)
    return 2.0 * points * (in_dim * width + (depth - 1) * width * width * gate + width) \
        + 200.0 * points * depth * width / 64


class Flow:
    """The field flow's defaults; each kind of model overrides what differs (see the module docstring)."""

    name = "field"
    unit = "net"                 # what the progress bar counts
    one_variant_at_a_time = False  # the engine keeps only the current variant's fixed arguments

    @staticmethod
    def accepts(model) -> bool:
        return output_kind(model) == "field"

    # ---- the spec ----------------------------------------------------------------------------------------
    def check_inputs(self, sweep: Sweep) -> None:
        """Checks of what the model is evaluated on (``Sweep.validate`` calls it right after the model's own
        ``check_sweep``, before the measures' checks)."""
        model, name = sweep.model, type(sweep.model).__name__
        if getattr(model, "inputs", "grid") == "grid" and model.in_dim not in (1, 2):
            raise ConfigError(f"{name}.in_dim={model.in_dim} is not allowed in a sweep; the measures "
                              "read 1-D curves or 2-D images, so in_dim must be 1 or 2")

    def check(self, sweep: Sweep) -> None:
        """Checks of this kind of model against the rest of the sweep (``Sweep.validate`` calls it last)."""
        model, name = sweep.model, type(sweep.model).__name__
        if not sweep.crn:
            raise ConfigError(f"Sweep.crn=False is not allowed for {name}, which outputs "
                              f"{output_kind(model)}; allowed: crn=False for token models (GPT-2). "
                              "MLP sweeps share a seed's weights across numeric axes; for depths drawn from their "
                              "own keys use independent_depths=True")

    def batched_axes(self, sweep: Sweep) -> tuple[str, ...]:
        """Structural axes whose values are cells of one weight sample (besides the shared axis)."""
        return ()

    def variant_numeric_axes(self, sweep: Sweep) -> tuple[str, ...]:
        """Numeric axes whose values are variants (each its own fixed arguments) rather than networks."""
        return ()

    def cell_dims(self, sweep: Sweep) -> tuple[str, ...]:
        """Axes a weight sample is read out at, after the shared axis."""
        return ()

    def network_dims(self, sweep: Sweep) -> tuple[str, ...]:
        """Axes that enumerate a variant's weight samples."""
        return sweep.numeric_dims

    def spec_fields(self, sweep: Sweep) -> dict:
        """Fields of ``Sweep.to_dict`` only this kind of model has (so the others' specs stay as they were)."""
        return {}

    # ---- the plan ------------------------------------------------------------------------------------------
    def default_chunk(self, sweep: Sweep, n_devices: int) -> int | None:
        """Networks per compiled call when the sweep does not say; ``None``: what fits the memory budget."""
        return None

    def inputs(self, sweep: Sweep, model) -> np.ndarray:
        """The points every network is evaluated on, ``(N, in_dim)`` float32, row-major like ``value_layout``:
        the grid of ``resolution`` points per axis on ``[lo, hi]^in_dim``."""
        return grid(sweep.resolution, model.in_dim, sweep.lo, sweep.hi)

    def value_layout(self, sweep: Sweep) -> tuple[tuple[int, ...], type, tuple[str, ...]]:
        """Shape, dtype and dims of one cell's kept values."""
        dims = ("y", "x") if sweep.model.in_dim == 2 else ("x",)
        return (sweep.resolution,) * sweep.model.in_dim, np.float32, dims

    def value_bytes(self, sweep: Sweep) -> int:
        shape, dtype, _ = self.value_layout(sweep)
        return int(math.prod(shape)) * np.dtype(dtype).itemsize

    def points(self, sweep: Sweep) -> int:
        """How many inputs each network is evaluated on."""
        return int(math.prod(self.value_layout(sweep)[0]))

    def network_flops(self, model, points: int) -> float:
        """Rough flops of one network's output at ``points`` inputs (``model_flops``)."""
        return model_flops(model, points)

    def flops(self, sweep: Sweep) -> float:
        """Rough flops of the whole sweep: every network's forward pass at every grid point
        (``network_flops``), plus 200 flops per point for each measure."""
        points = self.points(sweep)
        per_network = 0.0
        for _, variant in sweep.structural_variants():
            per_network += self.network_flops(variant, points) + 200.0 * points * len(sweep.measures)
        return per_network * sweep.num_numeric

    def setup_bytes(self, sweep: Sweep) -> int | None:
        """Memory of a setup step, when there is one and the model declares it."""
        return None

    # ---- the engine ----------------------------------------------------------------------------------------
    def compile(self, model, sweep: Sweep, chunk: int, mesh, branch, state_shapes):
        """The compiled function of one variant (``model`` switched, ``branch`` its switch or None)."""
        return compile_field(model, sweep, chunk, mesh, branch, state_shapes, uses_state=False)

    def state_shapes(self, plan, v: int, states: dict):
        """The shapes of variant ``v``'s state, the compiled function's last argument (``None``: none)."""
        return None

    def prepare(self, plan, v: int, states: dict, replicated):
        """The arguments fixed for every chunk of variant ``v`` (put on the devices once)."""
        return _switch_index(plan.variants[v][1], plan.sweep)

    def run_chunk(self, compiled, plan, v: int, start: int, base_key, tag, fixed, sharded):
        """Run the networks ``start .. start + plan.chunk - 1`` of variant ``v``: ``{output: (chunk, ...)}``."""
        model = plan.variants[v][1]
        values = chunk_values(plan.sweep, start, plan.chunk)
        numeric = {k: jax.device_put(values[k], sharded) for k in model.numeric_axes}
        return compiled(base_key, numeric, jax.device_put(values["seed"], sharded), tag, fixed, {})

    def _state(self, model, sweep: Sweep, cell: dict):
        return None

    def sample(self, sweep: Sweep, cell: dict):
        """One network of ``sweep`` re-created alone from a cell's coordinates: ``(image, network_values)``."""
        model, alone, numeric, tag = _cell_network(sweep, cell)
        images, values = network_images(model, alone, None, jax.random.key(sweep.base_seed), numeric,
                                        np.uint32(cell.get("seed", 0)), tag=tag,
                                        state=self._state(model, sweep, cell))
        return np.asarray(images[0]), {k: np.asarray(v[0]) for k, v in values.items()}


FieldFlow = Flow


class PlaneFlow(FieldFlow):
    """A field on a plane through a model's input space (``inputs = "plane"``: ``FlaxModel``, so ``CNN``, ``ViT``,
    ``PixelMLP``; DESIGN.md section 19). The networks are evaluated at the plane's (u, v) coordinates, the
    ``resolution`` x ``resolution`` grid on ``[-1, 1]^2`` (``planes.uv_grid``); the model maps them onto its
    plane (``Plane.embed``) inside its own ``apply``. Everything else (one compiled function per variant, the
    networks one after another, the measures of the (resolution, resolution) image) is the field flow's.

    What the plane changes:

    - checks: the sweep's ``lo``, ``hi`` must be the plane's (u, v) range -1, 1 (``Plane.scale`` widens a plane);
    - inputs: ``uv_grid(resolution)``, whatever the model's ``in_dim``;
    - cost: the model's declared ``flops(points)`` (``FlaxModel``: XLA's cost analysis of its module on one
      image), else an MLP guess on the plane's flattened images;
    - spec: nothing added: the plane is part of the model's spec (``FlaxModel.spec_fields``: dataset, anchor,
      mode, others, scale, seed; ``seed=None``: each network's own plane, drawn by ``FlaxModel.init``), so
      ``Sweep.from_dict`` redraws it; ``plane_points`` gives the images;
    - ``sample``: one network re-created alone is its field on the plane, ``(resolution, resolution)``.
    """

    name = "plane"

    @staticmethod
    def accepts(model) -> bool:
        return output_kind(model) == "field" and getattr(model, "inputs", None) == "plane"

    def check_inputs(self, sweep: Sweep) -> None:
        """The sweep's ``lo``, ``hi`` against the plane's (u, v) range, naming the values that differ."""
        bad = [f"{field}={value!r}" for field, value, want in (("lo", sweep.lo, UV_RANGE[0]),
                                                               ("hi", sweep.hi, UV_RANGE[1])) if value != want]
        if bad:
            raise ConfigError(f"Sweep.{', '.join(bad)} is not allowed for {type(sweep.model).__name__}, which is "
                              f"evaluated on a plane; allowed: lo={UV_RANGE[0]:g}, hi={UV_RANGE[1]:g} (the "
                              "plane's (u, v) range; set Plane.scale to widen the plane)")

    def inputs(self, sweep: Sweep, model) -> np.ndarray:
        """The plane's (u, v) coordinates, ``(resolution**2, 2)`` float32, row-major like ``value_layout``
        (``planes.uv_grid``: v the row, u the column)."""
        return uv_grid(sweep.resolution)

    def value_layout(self, sweep: Sweep):
        return (sweep.resolution, sweep.resolution), np.float32, ("y", "x")

    def network_flops(self, model, points: int) -> float:
        """The model's declared ``flops(points)``; without one, an MLP guess on the plane's flattened images."""
        return model_flops(model, points, "plane")

    def spec_fields(self, sweep: Sweep) -> dict:
        """Nothing: the plane is stored with the model (``Sweep.to_dict()["model"]["plane"]``), so the specs, and
        the fingerprints and digests of stored results, are what they were before planes had their own flow."""
        return {}

    def compile(self, model, sweep: Sweep, chunk: int, mesh, branch, state_shapes):
        """The field flow's program, each network in a jit of its own so the plane's constants stay constants
        (``compile_field``'s ``network_jit``: XLA:CPU's fusion of a CNN otherwise fills one more buffer)."""
        return compile_field(model, sweep, chunk, mesh, branch, state_shapes, uses_state=False, network_jit=True)

    def plane_points(self, sweep: Sweep) -> np.ndarray:
        """The images the networks see, ``(resolution**2, *input_shape)`` float32 in the layout of the values:
        ``sweep.model.plane.points(resolution)`` (the plane is not a structural axis: one per sweep). A per-network
        plane (``Plane(seed=None)``) has none shared: a ``ConfigError`` (a network's own is
        ``plane.points(resolution, params["plane"])``)."""
        return sweep.model.plane.points(sweep.resolution)


class SetupFlow(FieldFlow):
    """A field model with ``setup(grid_points, **numeric)`` (the NNGP's Cholesky factor), computed once per
    structural variant and numeric point and shared by its seeds: the numeric axes are variants, the seeds its
    networks, and the state the compiled function's last argument."""

    name = "setup"
    one_variant_at_a_time = True   # a state is large (a dense factor): keep only the current one

    @staticmethod
    def accepts(model) -> bool:
        return output_kind(model) == "field" and callable(getattr(model, "setup", None))

    def variant_numeric_axes(self, sweep: Sweep) -> tuple[str, ...]:
        return tuple(sweep.model.numeric_axes)

    def network_dims(self, sweep: Sweep) -> tuple[str, ...]:
        return ("seed",) if "seed" in sweep.axes else ()

    def flops(self, sweep: Sweep) -> float:
        """A setup per variant (``model.setup_flops``, else a Cholesky factor), then one output per seed."""
        points = self.points(sweep)
        seeds = len(sweep.axes.get("seed", (0,)))
        total = 0.0
        for _, variant in sweep.structural_variants():
            setup = getattr(variant, "setup_flops", None)
            total += (setup(points) if callable(setup) else points ** 3 / 3.0) \
                + seeds * model_flops(variant, points, "setup")
        return total

    def setup_bytes(self, sweep: Sweep) -> int | None:
        declared = getattr(sweep.model, "setup_bytes", None)
        return None if declared is None else declared(self.points(sweep))

    def compile(self, model, sweep: Sweep, chunk: int, mesh, branch, state_shapes):
        return compile_field(model, sweep, chunk, mesh, branch, state_shapes, uses_state=True)

    def state_shapes(self, plan, v: int, states: dict):
        """The first variant of each compile builds its state here (kept for ``prepare``): the compiled
        function takes the state, so its shapes come from a real one."""
        idx, model = plan.variants[v]
        states[v] = _setup_state(model, plan.sweep, plan.sweep.variant_numeric(idx))
        return _shapes(states[v])

    def prepare(self, plan, v: int, states: dict, replicated):
        idx, model = plan.variants[v]
        numeric = plan.sweep.variant_numeric(idx)
        state = states.pop(v, None)
        state = _setup_state(model, plan.sweep, numeric) if state is None else state
        state = jax.device_put(state, replicated)  # once, not with every chunk
        return numeric, _switch_index(model, plan.sweep), state

    def run_chunk(self, compiled, plan, v: int, start: int, base_key, tag, fixed, sharded):
        numeric, switch_index, state = fixed
        values = {k: jax.device_put(np.full(plan.chunk, x, np.float32), sharded) for k, x in numeric.items()}
        seeds = jax.device_put(seed_values(plan.sweep, start, plan.chunk), sharded)
        return compiled(base_key, values, seeds, tag, switch_index, state)

    def _state(self, model, sweep: Sweep, cell: dict):
        # float64 values, as the engine's setup gets them
        exact = {name: float(cell.get(name, axis.default)) for name, axis in model.numeric_axes.items()}
        if sweep.tie_bias_to_weight:
            exact["bias_scale"] = exact["weight_scale"]
        return _setup_state(model, sweep, exact)


class TokenFlow(Flow):
    """A model that outputs tokens (GPT-2): a network is a seed's weight sample and its cells every value of the
    shared, switched and numeric axes, decoded in one batch (``tokens.py``)."""

    name = "tokens"
    unit = "seq"

    @staticmethod
    def accepts(model) -> bool:
        return output_kind(model) == "tokens"

    def check_inputs(self, sweep: Sweep) -> None:
        """A prompt: nothing to check before the measures."""

    def check(self, sweep: Sweep) -> None:
        model, model_name = sweep.model, type(sweep.model).__name__
        init_axes = [n for n, a in model.numeric_axes.items() if a.stage != "apply"]
        if init_axes:
            raise ConfigError(f"{model_name} has numeric axes {init_axes} applied at init; a token model's numeric "
                              "axes must act at apply time (every cell of a seed shares one weight sample)")
        network = [m.label for m in sweep.measures if m.reads == "network"]
        if network:
            raise ConfigError(f"Sweep.measures {network} read the network, which token-model sweeps do not "
                              "offer; allowed here: measures of tokens")
        positions = getattr(model, "n_positions", None)
        if positions is not None and sweep.n_new > positions:
            raise ConfigError(f"Sweep.n_new={sweep.n_new!r} is not allowed for {model_name} with n_positions="
                              f"{positions}; allowed: 1 .. {positions} (the one-token prompt and n_new - 1 "
                              "generated tokens are fed back)")

    def batched_axes(self, sweep: Sweep) -> tuple[str, ...]:
        switch = getattr(sweep.model, "switch_axis", None)
        return (switch,) if switch else ()

    def cell_dims(self, sweep: Sweep) -> tuple[str, ...]:
        switch = getattr(sweep.model, "switch_axis", None)
        return tuple(a for a in sweep.axes if a != sweep.shared_axis
                     and (a == switch or a in sweep.model.numeric_axes))

    def network_dims(self, sweep: Sweep) -> tuple[str, ...]:
        return ("seed",) if "seed" in sweep.axes else ()

    def spec_fields(self, sweep: Sweep) -> dict:
        return {"n_new": sweep.n_new, "crn": sweep.crn}

    def default_chunk(self, sweep: Sweep, n_devices: int) -> int | None:
        # one seed per device per call: each seed is already a batch of every cell, its calls last seconds, and
        # a small chunk keeps progress and resume fine-grained
        return n_devices

    def value_layout(self, sweep: Sweep):
        return (sweep.n_new + 1,), np.int32, ("position",)

    def flops(self, sweep: Sweep) -> float:
        """Every cell's sequence of ``n_new + 1`` tokens, at each value of the shared axis."""
        model, length = sweep.model, sweep.n_new + 1
        axis = getattr(model, "shared_axis", None)
        values = tuple(sweep.axes[axis]) if axis in sweep.axes else (None,)
        per_cell = sum(model_flops(model if v is None else model.replace(**{axis: v}), length, "tokens")
                       for v in values)
        return per_cell * (sweep.num_networks // len(values))

    def compile(self, model, sweep: Sweep, chunk: int, mesh, branch, state_shapes):
        return compile_tokens(model, sweep, chunk, mesh, branch, _TRACES)

    def prepare(self, plan, v: int, states: dict, replicated):
        # every cell of a weight sample, the same for each chunk of seeds
        cells = cell_table(plan.sweep, plan.variants[v][0])
        return jax.device_put((cells["numeric"], cells["switch"], cells["tag"]), replicated)

    def run_chunk(self, compiled, plan, v: int, start: int, base_key, tag, fixed, sharded):
        seeds = jax.device_put(seed_values(plan.sweep, start, plan.chunk), sharded)
        return compiled(base_key, seeds, tag, *fixed)

    def sample(self, sweep: Sweep, cell: dict):
        """``(tokens, {"finite": finite})`` of one cell decoded alone (``tokens.sample_sequence``)."""
        tokens, finite = sample_sequence(sweep, cell)
        return tokens, {"finite": np.bool_(finite)}


# Checked in order: the first flow that accepts a model runs it.
FLOWS: list[Flow] = [TokenFlow(), SetupFlow(), PlaneFlow(), FieldFlow()]


def register_flow(flow: Flow) -> Flow:
    """Let sweeps run the models ``flow.accepts`` (checked before the built-in flows)."""
    FLOWS.insert(0, flow)
    return flow


def flow_of(model) -> Flow:
    """The flow that runs ``model``."""
    for flow in FLOWS:
        if flow.accepts(model):
            return flow
    raise ConfigError(f"no sweep flow runs {type(model).__name__} (output {output_kind(model)!r}); allowed: a "
                      "model that outputs 'field' or 'tokens', or a flow registered with register_flow")
