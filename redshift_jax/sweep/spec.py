"""The ``Sweep`` spec: a model, named axes, a grid resolution and measures; validated before compiling.

The axes a sweep may use are the model's own declarations (``models/base.py``): its ``structural_axes``, its
``numeric_axes`` and ``seed``. Nothing here names a concrete model.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import warnings
from typing import Any, Mapping, Sequence

import numpy as np

from .._version import __version__
from ..errors import ConfigError
from ..measures import Measure, measure_names, resolve_measure, validate_measure_names
from ..models import MLP, FlaxModel, Unbiased
from ..validate import check_bool, check_int, check_number
from .flows import Flow, flow_of

__all__ = ["Sweep", "NUMERIC_AXES", "STRUCTURAL_AXES", "MODELS", "register_model"]

# The MLP's axes, for reference (a sweep reads the axes of its own model).
STRUCTURAL_AXES = MLP.structural_axes
NUMERIC_AXES = tuple(MLP.numeric_axes) + ("seed",)
# Model classes a sweep's JSON spec can name (``Sweep.from_dict``); a new model registers itself here.
MODELS: dict[str, type] = {"MLP": MLP, "Unbiased": Unbiased, "FlaxModel": FlaxModel}
_MODEL_PROTOCOL = ("structural_axes", "numeric_axes", "init", "apply", "replace")


def register_model(cls: type) -> type:
    """Let ``Sweep.from_dict`` rebuild specs of ``cls`` (usable as a class decorator)."""
    MODELS[cls.__name__] = cls
    return cls


def _as_tuple(name: str, values) -> tuple:
    if isinstance(values, np.ndarray):
        values = values.tolist()
    elif isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, range)):
        values = [values]
    values = tuple(v.item() if isinstance(v, np.generic) else v for v in values)
    if len(values) == 0:
        raise ConfigError(f"axes[{name!r}] is empty; every axis needs at least one value")
    if len(set(map(repr, values))) != len(values):
        raise ConfigError(f"axes[{name!r}]={list(values)!r} has repeated values; each value must appear once")
    return values


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A grid of random networks to sample and measure.

    Attributes:
      model: the base architecture (``MLP`` or ``Unbiased``); axes override its fields.
      axes: ordered mapping axis name -> values. Structural axes (``activation, depth, width, prior,
        layernorm, residual, gating``) compile one variant per value (all depths share one trunk pass unless
        ``independent_depths``); numeric axes (``weight_scale, bias_scale, prefactor, seed``) are traced and
        vmapped. A numeric axis left out takes its default (scales 1, prefactor 1, seed 0).
      resolution: grid points per input dimension; the grid is ``[lo, hi]^in_dim``.
      measures: the measures, each a name from ``redshift_jax.measures.measure_names()``, a ``(name,
        {arguments})`` pair or a ``redshift_jax.measures.Measure``; held as ``Measure`` objects (``to_dict`` writes
        their JSON form).
      keep_values: also return every function's values, dims (axes..., y, x).
      independent_depths: draw each depth's network from its own key instead of reading all depths out of one
        shared trunk (costs one pass per depth).
      base_seed: the sweep's base PRNG key is ``jax.random.key(base_seed)``; network keys are
        ``fold_in(base, seed)`` so a seed's network is the same whatever else is in the sweep.
      chunk_size: networks per jitted call (rounded up to a multiple of the device count); ``None`` picks it
        from ``memory_budget_gb``.
      memory_budget_gb: device memory one chunk may use.
      precision: matmul precision (``"highest"`` keeps accelerators from using reduced-precision passes).
      lo, hi: the grid's interval (a model on a plane: the plane's (u, v) range, -1 and 1; ``Plane.scale`` widens
        the plane).
      tie_bias_to_weight: every network's bias_scale equals its weight_scale (the NRS co-author's code
        sweeps one amplitude for both); ``bias_scale`` may then not be an axis.
      name: a label carried into results and plots.
      n_new: token models (``output == "tokens"``, e.g. GPT-2): tokens each sequence generates after its prompt.
      crn: token models: common random numbers, i.e. seed s uses the same weights and prompt in every cell (all
        cells of a weight sample then decode as one batch); ``False`` draws fresh weights and a fresh prompt
        per cell from ``fold_in(fold_in(base, seed), tag)``, ``tag`` a hash of the cell's coordinates (the
        paper-literal design). MLP sweeps always share a seed's weights across numeric axes.
    """

    model: Any = dataclasses.field(default_factory=MLP)
    axes: Any = dataclasses.field(default_factory=dict)
    resolution: int = 64
    measures: tuple = ("fourier", "chebyshev", "legendre", "lz")
    keep_values: bool = False
    independent_depths: bool = False
    base_seed: int = 0
    chunk_size: int | None = None
    memory_budget_gb: float = 1.0
    precision: str | None = "highest"
    lo: float = -1.0
    hi: float = 1.0
    tie_bias_to_weight: bool = False
    name: str = ""
    n_new: int = 100
    crn: bool = True

    def __post_init__(self):
        missing = [attr for attr in _MODEL_PROTOCOL if not hasattr(self.model, attr)]
        if missing or not dataclasses.is_dataclass(self.model):
            raise ConfigError(f"Sweep.model={self.model!r} is not allowed; allowed: a model dataclass with "
                              f"{', '.join(_MODEL_PROTOCOL)} (e.g. redshift_jax.MLP, Unbiased)")
        if not isinstance(self.axes, Mapping):
            raise ConfigError(f"Sweep.axes={self.axes!r} is not allowed; axes must be a mapping name -> values")
        axes = {str(k): _as_tuple(str(k), v) for k, v in self.axes.items()}
        object.__setattr__(self, "axes", axes)
        entries = (self.measures,) if isinstance(self.measures, str) else tuple(self.measures)
        object.__setattr__(self, "measures", tuple(resolve_measure(m) for m in entries))
        self.validate()

    # ------------------------------------------------------------------------------------------------
    @property
    def measure_objects(self) -> tuple[Measure, ...]:
        """The measures (``Sweep.measures`` itself: ``Measure`` objects, name, arguments and result label)."""
        return self.measures

    @property
    def measure_labels(self) -> tuple[str, ...]:
        """The result variables' names: one per measure, and a measure's extra outputs after its label."""
        return tuple(label for m in self.measures for label in m.output_labels)

    @property
    def numeric_axes(self) -> dict:
        """The model's numeric axes (``NumericAxis`` each); ``seed`` is the engine's own."""
        return dict(self.model.numeric_axes)

    @property
    def shared_axis(self) -> str | None:
        """The structural axis read out of one pass (MLP: depth), when it is an axis of this sweep and shared."""
        axis = getattr(self.model, "shared_axis", None)
        return axis if axis in self.axes and not self.independent_depths else None

    def validate(self) -> None:
        """Check the whole sweep; raise ConfigError naming the field, value and what is allowed. A ``Sweep`` is
        frozen and checked once, when it is made (``run_sweep`` does not check it again)."""
        model = self.model
        allowed = tuple(model.structural_axes) + tuple(model.numeric_axes) + ("seed",)
        model_name = type(model).__name__
        for name in self.axes:
            if name not in allowed:
                raise ConfigError(
                    f"Sweep.axes has {name!r}, which is not an axis of {model_name}; allowed: {', '.join(allowed)}")
        check_int("Sweep.resolution", self.resolution, minimum=2)
        if hasattr(model, "check_sweep"):
            model.check_sweep(self)
        flow = self.flow
        flow.check_inputs(self)
        if len(self.measures) == 0:
            raise ConfigError("Sweep.measures is empty; allowed: any of " + ", ".join(measure_names()))
        validate_measure_names(self.measures, self.resolution)
        for measure in self.measures:
            measure.check(self)
        if self.resolution < 64 and {"chebyshev", "legendre", "chebyshev_energy", "legendre_energy"} & {
                m.name for m in self.measures}:
            warnings.warn(
                f"Sweep.resolution={self.resolution}: the polynomial measures use degree min(32, resolution - 1), "
                "and an equispaced least-squares fit of that degree is ill-conditioned below 2 x degree points, "
                "so chebyshev/legendre saturate near their white-noise value; use resolution >= 64 for them",
                stacklevel=3)
        for field in ("lo", "hi"):
            check_number(f"Sweep.{field}", getattr(self, field))
        if not self.lo < self.hi:
            raise ConfigError(f"Sweep.lo={self.lo!r}, hi={self.hi!r} is not allowed; need lo < hi")
        if self.chunk_size is not None:
            check_int("Sweep.chunk_size", self.chunk_size, minimum=1)
        check_number("Sweep.memory_budget_gb", self.memory_budget_gb, minimum=0, exclusive_minimum=True)
        if self.precision not in (None, "default", "high", "highest"):
            raise ConfigError(f"Sweep.precision={self.precision!r} is not allowed; "
                              "allowed: None, 'default', 'high', 'highest'")
        check_int("Sweep.base_seed", self.base_seed, minimum=0, maximum=2 ** 32 - 1)
        for flag in ("keep_values", "independent_depths", "tie_bias_to_weight", "crn"):
            check_bool(f"Sweep.{flag}", getattr(self, flag))
        check_int("Sweep.n_new", self.n_new, minimum=1)
        flow.check(self)
        if self.tie_bias_to_weight:
            if not {"weight_scale", "bias_scale"} <= set(model.numeric_axes):
                raise ConfigError(f"Sweep.tie_bias_to_weight=True is not allowed for {model_name}; it needs the "
                                  "numeric axes weight_scale and bias_scale")
            if "bias_scale" in self.axes:
                raise ConfigError("Sweep.axes has 'bias_scale' while tie_bias_to_weight=True; allowed: drop the "
                                  "bias_scale axis (it follows weight_scale) or set tie_bias_to_weight=False")
        for name, values in self.axes.items():
            if name in model.numeric_axes:
                axis = model.numeric_axes[name]
                for v in values:
                    check_number(f"axes[{name!r}] value", v, minimum=axis.minimum, float32=True)
            elif name == "seed":
                for v in values:
                    check_int("axes['seed'] value", v, minimum=0, maximum=2 ** 31 - 1)
        # Structural values: building a model with each value runs the model's own field validation
        # (the shared axis too, although shared variants are built only at its largest value).
        for name, values in self.axes.items():
            if name in model.structural_axes:
                for v in values:
                    try:
                        model.replace(**{name: v})
                    except (ConfigError, TypeError) as err:
                        raise ConfigError(f"Sweep.axes: {err}") from None
        for variant in self.structural_variants():
            del variant

    @property
    def flow(self) -> Flow:
        """What the sweep computes for its kind of model (``flows.py``: a field on a grid, on a plane through input
        space, a field with a setup step, tokens); spec, plan and engine ask it instead of branching on the kind."""
        return flow_of(self.model)

    @property
    def has_setup(self) -> bool:
        """The model has a setup step (``model.setup(grid, **numeric)``, e.g. a GP's Cholesky factor) computed
        once per structural variant and numeric point and shared by every seed (``flows.SetupFlow``)."""
        return self.flow.name == "setup"

    @property
    def decodes_tokens(self) -> bool:
        """The model outputs tokens: every cell of a seed's weight sample decodes in one batch
        (``flows.TokenFlow``)."""
        return self.flow.name == "tokens"

    # ------------------------------------------------------------------------------------------------
    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.axes.values())

    @property
    def num_networks(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def numeric_dims(self) -> tuple[str, ...]:
        return tuple(a for a in self.axes if a in self.model.numeric_axes or a == "seed")

    @property
    def depth_shared(self) -> bool:
        """The model's shared axis (MLP: depth) is an axis and is read out of one pass."""
        return self.shared_axis is not None

    @property
    def variant_dims(self) -> tuple[str, ...]:
        """Structural axes that each compile their own function (the shared axis excluded; for token models the
        switched axis too: its values decode in the same batch)."""
        flow = self.flow
        batched = {self.shared_axis, *flow.batched_axes(self)}
        setup = flow.variant_numeric_axes(self)
        return tuple(a for a in self.axes if (a in self.model.structural_axes or a in setup) and a not in batched)

    @property
    def cell_dims(self) -> tuple[str, ...]:
        """The axes one weight sample is read out at, in the order of a network's cells: the shared axis
        (first), then for token models the switched axis and the numeric axes but ``seed``, in sweep order."""
        return ((self.shared_axis,) if self.shared_axis else ()) + self.flow.cell_dims(self)

    @property
    def network_dims(self) -> tuple[str, ...]:
        """The axes that enumerate a variant's weight samples (its "networks"): the numeric axes, or for token
        models ``seed`` alone."""
        return self.flow.network_dims(self)

    def structural_variants(self):
        """Yield (index tuple over variant_dims, model) for every variant (with a setup step, the numeric values
        of a variant are read from its index: ``variant_numeric``)."""
        dims = self.variant_dims
        ranges = [range(len(self.axes[d])) for d in dims]
        shared = self.shared_axis
        batched = [a for a in self.flow.batched_axes(self) if a in self.axes]   # decoded together: the first value
        for idx in itertools.product(*ranges):
            changes = {d: self.axes[d][i] for d, i in zip(dims, idx) if d in self.model.structural_axes}
            if shared is not None:
                changes[shared] = max(self.axes[shared])
            for axis in batched:
                changes[axis] = self.axes[axis][0]
            try:
                model = self.model.replace(**changes)
            except ConfigError as err:
                raise ConfigError(f"Sweep.axes: {err}") from None
            except TypeError as err:
                raise ConfigError(f"Sweep.axes: {err}") from None
            yield idx, model

    def variant_numeric(self, idx: tuple) -> dict[str, float]:
        """A setup model's numeric values for the variant at ``idx`` (defaults for axes the sweep leaves out), as
        given (Python floats: the setup step may work in float64)."""
        fixed = dict(zip(self.variant_dims, idx))
        out = {}
        for name, axis in self.model.numeric_axes.items():
            out[name] = float(self.axes[name][fixed[name]] if name in fixed else axis.default)
        if self.tie_bias_to_weight:
            out["bias_scale"] = out["weight_scale"]
        return out

    @property
    def num_numeric(self) -> int:
        """Networks per structural variant (and depth): the product of the numeric axes' lengths."""
        return int(np.prod([len(self.axes[d]) for d in self.numeric_dims], dtype=np.int64))

    def numeric_grid(self, start: int = 0, stop: int | None = None) -> dict[str, np.ndarray]:
        """Flattened numeric grid (row-major over numeric axes in sweep order): one float32 array per numeric
        axis of the model (its default where the sweep leaves it out) and the uint32 ``seed``.

        ``start``/``stop`` select networks ``start .. stop-1`` of the flat grid without building the rest, so a
        sweep of any size is planned and run chunk by chunk in bounded memory.
        """
        dims = self.numeric_dims
        values = [np.asarray(self.axes[d]) for d in dims]
        total = self.num_numeric
        stop = total if stop is None else min(int(stop), total)
        index = np.arange(int(start), stop, dtype=np.int64)
        positions = np.unravel_index(index, tuple(len(v) for v in values)) if dims else ()
        flat = {d: v[p] for d, v, p in zip(dims, values, positions)}
        out = {}
        for d, axis in self.model.numeric_axes.items():
            out[d] = flat[d] if d in flat else np.full(len(index), axis.default)
        if self.tie_bias_to_weight:
            out["bias_scale"] = out["weight_scale"]
        out = {d: v.astype(np.float32) for d, v in out.items()}
        out["seed"] = (flat["seed"] if "seed" in flat else np.zeros(len(index), np.int64)).astype(np.uint32)
        return out

    def to_dict(self) -> dict:
        if hasattr(self.model, "spec_fields"):   # a model whose fields are not all JSON values (FlaxModel)
            model = self.model.spec_fields()
        else:
            model = dataclasses.asdict(self.model)
            defaults = {f.name: f.default for f in dataclasses.fields(self.model)}
            for field in getattr(type(self.model), "spec_optional", ()):
                if model.get(field) == defaults.get(field):
                    model.pop(field, None)
        return {
            "model": {"type": type(self.model).__name__, **model},
            "axes": {k: list(v) for k, v in self.axes.items()},
            "resolution": self.resolution,
            "measures": [m.to_spec() for m in self.measures],
            "keep_values": self.keep_values,
            "independent_depths": self.independent_depths,
            "base_seed": self.base_seed,
            "precision": self.precision,
            "lo": self.lo,
            "hi": self.hi,
            "tie_bias_to_weight": self.tie_bias_to_weight,
            "name": self.name,
            # token models only, so the specs (and resume fingerprints) of field sweeps are unchanged
            **self.flow.spec_fields(self),
        }

    def to_json(self) -> str:
        """The spec as JSON, keys in a fixed order and axes in the sweep's order (the order is part of it)."""
        return json.dumps(self.to_dict())

    def fingerprint(self) -> dict:
        """Everything that defines the numbers of a result, for resume checks: the whole spec (axes in order,
        measures, model fields, resolution, base seed, precision), the package version, and the revisions of the
        measures that declare one (``register_measure``; the key is absent when none does)."""
        out = {"spec": self.to_dict(), "package": f"redshift_jax {__version__}"}
        revisions = self.measure_revisions()
        if revisions:
            out["revisions"] = revisions
        return out

    def measure_revisions(self) -> dict:
        """``{label: revision}`` of the measures that declare a revision of their numbers."""
        return {m.label: m.revision for m in self.measure_objects if m.revision is not None}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Sweep":
        data = dict(data)
        model = dict(data.pop("model"))
        name = model.pop("type")
        if name not in MODELS:
            from .. import models as models_mod

            try:  # models that load lazily (GPT-2 and FlaxModel import flax)
                MODELS[name] = getattr(models_mod, name)
            except AttributeError:
                raise ConfigError(f"sweep spec model type {name!r} is unknown; allowed: "
                                  f"{', '.join([*MODELS, 'GPT2', 'FlaxModel'])}") from None
        model_cls = MODELS[name]
        if hasattr(model_cls, "from_spec"):   # the inverse of its spec_fields()
            return cls(model=model_cls.from_spec(model), **data)
        return cls(model=model_cls(**model), **data)

    def replace(self, **changes) -> "Sweep":
        return dataclasses.replace(self, **changes)

    def with_chunk_size(self, chunk_size: int | None) -> "Sweep":
        """The same sweep with another ``chunk_size`` (networks per compiled call; ``None``: from the memory
        budget). Only that field is checked: nothing else changed, and the chunk length changes no number."""
        if chunk_size is not None:
            check_int("Sweep.chunk_size", chunk_size, minimum=1)
        out = copy.copy(self)
        object.__setattr__(out, "chunk_size", None if chunk_size is None else int(chunk_size))
        return out

    def compile_key(self) -> str:
        """Everything about this sweep that shapes its compiled functions, derived from the spec: every field
        except the numeric axes (traced: the compiled function takes every numeric axis of the model, whichever
        the sweep varies), the fields that act on them before they are traced, and the name."""
        spec = self.to_dict()
        spec["axes"] = {k: v for k, v in spec["axes"].items() if k not in self.numeric_dims}
        for field in ("name", "tie_bias_to_weight"):
            spec.pop(field, None)
        return json.dumps(spec)

    def with_axis(self, name: str, values) -> "Sweep":
        """A copy with axis ``name`` set to ``values`` (appended at the end if new)."""
        axes = dict(self.axes)
        axes[name] = values
        return self.replace(axes=axes)

