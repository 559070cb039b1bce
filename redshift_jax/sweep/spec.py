"""The ``Sweep`` spec: a model, named axes, a grid resolution and measures; validated before compiling."""

from __future__ import annotations

import dataclasses
import itertools
import json
import warnings
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError
from ..nets import FLOAT32_MAX, MLP, Unbiased, check_scale

__all__ = ["Sweep", "NUMERIC_AXES", "STRUCTURAL_AXES", "NUMERIC_DEFAULTS"]

STRUCTURAL_AXES = ("activation", "depth", "width", "prior", "layernorm", "residual", "gating")
NUMERIC_AXES = ("weight_scale", "bias_scale", "prefactor", "seed")
NUMERIC_DEFAULTS = {"weight_scale": 1.0, "bias_scale": 1.0, "prefactor": 1.0, "seed": 0}
MODELS = {"MLP": MLP, "Unbiased": Unbiased}


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
      measures: names from ``redshift_jax.measures.MEASURES``.
      keep_values: also return every function's values, dims (axes..., y, x).
      independent_depths: draw each depth's network from its own key instead of reading all depths out of one
        shared trunk (costs one pass per depth).
      base_seed: the sweep's base PRNG key is ``jax.random.key(base_seed)``; network keys are
        ``fold_in(base, seed)`` so a seed's network is the same whatever else is in the sweep.
      chunk_size: networks per jitted call (rounded up to a multiple of the device count); ``None`` picks it
        from ``memory_budget_gb``.
      memory_budget_gb: device memory one chunk may use.
      precision: matmul precision (``"highest"`` keeps accelerators from using reduced-precision passes).
      lo, hi: the grid's interval.
      tie_bias_to_weight: every network's bias_scale equals its weight_scale (the NRS co-author's code
        sweeps one amplitude for both); ``bias_scale`` may then not be an axis.
      name: a label carried into results and plots.
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

    def __post_init__(self):
        if not isinstance(self.model, (MLP, Unbiased)):
            raise ConfigError(f"Sweep.model={self.model!r} is not allowed; use redshift_jax.MLP or Unbiased")
        if not isinstance(self.axes, Mapping):
            raise ConfigError(f"Sweep.axes={self.axes!r} is not allowed; axes must be a mapping name -> values")
        axes = {str(k): _as_tuple(str(k), v) for k, v in self.axes.items()}
        object.__setattr__(self, "axes", axes)
        measures = (self.measures,) if isinstance(self.measures, str) else tuple(self.measures)
        object.__setattr__(self, "measures", measures)
        self.validate()

    # ------------------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Check the whole sweep; raise ConfigError naming the field, value and what is allowed."""
        from .. import measures as measures_mod

        allowed = tuple(self.model.structural_axes) + tuple(self.model.numeric_axes)
        model_name = type(self.model).__name__
        for name in self.axes:
            if name not in allowed:
                raise ConfigError(
                    f"Sweep.axes has {name!r}, which is not an axis of {model_name}; allowed: {', '.join(allowed)}")
        if isinstance(self.resolution, bool) or not isinstance(self.resolution, (int, np.integer)) \
                or self.resolution < 2:
            raise ConfigError(f"Sweep.resolution={self.resolution!r} is not allowed; resolution must be an "
                              "integer >= 2")
        if isinstance(self.model, Unbiased) and self.model.resolution != self.resolution:
            raise ConfigError(f"Unbiased.resolution={self.model.resolution} differs from "
                              f"Sweep.resolution={self.resolution}; allowed: the same value")
        in_dim = self.model.in_dim
        if in_dim not in (1, 2):
            raise ConfigError(f"{model_name}.in_dim={in_dim} is not allowed in a sweep; the measures read 1-D "
                              "curves or 2-D images, so in_dim must be 1 or 2")
        if len(self.measures) == 0:
            raise ConfigError("Sweep.measures is empty; allowed: any of " + ", ".join(measures_mod.MEASURES))
        measures_mod.validate_measure_names(self.measures, self.resolution)
        if self.resolution < 64 and {"chebyshev", "legendre"} & set(self.measures):
            warnings.warn(
                f"Sweep.resolution={self.resolution}: the polynomial measures use degree min(32, resolution - 1), "
                "and an equispaced least-squares fit of that degree is ill-conditioned below 2 x degree points, "
                "so chebyshev/legendre saturate near their white-noise value; use resolution >= 64 for them",
                stacklevel=3)
        for field in ("lo", "hi"):
            if not np.isfinite(getattr(self, field)):
                raise ConfigError(f"Sweep.{field}={getattr(self, field)!r} is not allowed; it must be finite")
        if not self.lo < self.hi:
            raise ConfigError(f"Sweep.lo={self.lo!r}, hi={self.hi!r} is not allowed; need lo < hi")
        if self.chunk_size is not None and (isinstance(self.chunk_size, bool)
                                            or not isinstance(self.chunk_size, (int, np.integer))
                                            or self.chunk_size < 1):
            raise ConfigError(f"Sweep.chunk_size={self.chunk_size!r} is not allowed; use None or an integer >= 1")
        if not (isinstance(self.memory_budget_gb, (int, float)) and self.memory_budget_gb > 0):
            raise ConfigError(f"Sweep.memory_budget_gb={self.memory_budget_gb!r} is not allowed; it must be > 0")
        if self.precision not in (None, "default", "high", "highest"):
            raise ConfigError(f"Sweep.precision={self.precision!r} is not allowed; "
                              "allowed: None, 'default', 'high', 'highest'")
        if isinstance(self.base_seed, bool) or not isinstance(self.base_seed, (int, np.integer)) \
                or not 0 <= self.base_seed < 2 ** 32:
            raise ConfigError(f"Sweep.base_seed={self.base_seed!r} is not allowed; use an integer in [0, 2**32)")
        if self.tie_bias_to_weight and "bias_scale" in self.axes:
            raise ConfigError("Sweep.axes has 'bias_scale' while tie_bias_to_weight=True; allowed: drop the "
                              "bias_scale axis (it follows weight_scale) or set tie_bias_to_weight=False")
        for name, values in self.axes.items():
            if name in ("weight_scale", "bias_scale"):
                for v in values:
                    if isinstance(v, bool) or not isinstance(v, (int, float)):
                        raise ConfigError(f"axes[{name!r}] has {v!r}; allowed: finite numbers >= 0")
                    try:
                        check_scale(name, v)
                    except ConfigError as err:
                        raise ConfigError(f"axes[{name!r}]: {err}") from None
            elif name == "prefactor":
                for v in values:
                    if isinstance(v, bool) or not isinstance(v, (int, float)) or not abs(v) <= FLOAT32_MAX:
                        raise ConfigError(f"axes['prefactor'] has {v!r}; allowed: finite numbers of magnitude at most "
                                          f"{FLOAT32_MAX:.7g} (float32)")
            elif name == "seed":
                for v in values:
                    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < 2 ** 31:
                        raise ConfigError(f"axes['seed'] has {v!r}; allowed: integers in [0, 2**31)")
        # Structural values: building a model with each value runs the model's own field validation
        # (depth too, although shared-trunk variants are built only at the largest depth).
        for name, values in self.axes.items():
            if name in STRUCTURAL_AXES:
                for v in values:
                    try:
                        self.model.replace(**{name: v})
                    except (ConfigError, TypeError) as err:
                        raise ConfigError(f"Sweep.axes: {err}") from None
        for variant in self.structural_variants():
            del variant

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
        return tuple(a for a in self.axes if a in NUMERIC_AXES)

    @property
    def depth_shared(self) -> bool:
        """Depth is an axis and is read out of one trunk pass."""
        return "depth" in self.axes and not self.independent_depths

    @property
    def variant_dims(self) -> tuple[str, ...]:
        """Structural axes that each compile their own function (depth excluded when shared)."""
        return tuple(a for a in self.axes if a in STRUCTURAL_AXES and not (a == "depth" and self.depth_shared))

    def structural_variants(self):
        """Yield (index tuple over variant_dims, model) for every compiled variant."""
        dims = self.variant_dims
        ranges = [range(len(self.axes[d])) for d in dims]
        for idx in itertools.product(*ranges):
            changes = {d: self.axes[d][i] for d, i in zip(dims, idx)}
            if self.depth_shared:
                changes["depth"] = max(self.axes["depth"])
            try:
                model = self.model.replace(**changes)
            except ConfigError as err:
                raise ConfigError(f"Sweep.axes: {err}") from None
            except TypeError as err:
                raise ConfigError(f"Sweep.axes: {err}") from None
            yield idx, model

    @property
    def num_numeric(self) -> int:
        """Networks per structural variant (and depth): the product of the numeric axes' lengths."""
        return int(np.prod([len(self.axes[d]) for d in self.numeric_dims], dtype=np.int64))

    def numeric_grid(self, start: int = 0, stop: int | None = None) -> dict[str, np.ndarray]:
        """Flattened numeric grid (row-major over numeric axes in sweep order), one array per numeric axis.

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
        for d in NUMERIC_AXES:
            if d in flat:
                out[d] = flat[d]
            else:
                out[d] = np.full(len(index), NUMERIC_DEFAULTS[d])
        if self.tie_bias_to_weight:
            out["bias_scale"] = out["weight_scale"]
        out["weight_scale"] = out["weight_scale"].astype(np.float32)
        out["bias_scale"] = out["bias_scale"].astype(np.float32)
        out["prefactor"] = out["prefactor"].astype(np.float32)
        out["seed"] = out["seed"].astype(np.uint32)
        return out

    def to_dict(self) -> dict:
        model = dataclasses.asdict(self.model)
        return {
            "model": {"type": type(self.model).__name__, **model},
            "axes": {k: list(v) for k, v in self.axes.items()},
            "resolution": self.resolution,
            "measures": list(self.measures),
            "keep_values": self.keep_values,
            "independent_depths": self.independent_depths,
            "base_seed": self.base_seed,
            "precision": self.precision,
            "lo": self.lo,
            "hi": self.hi,
            "tie_bias_to_weight": self.tie_bias_to_weight,
            "name": self.name,
        }

    def to_json(self) -> str:
        """The spec as JSON, keys in a fixed order and axes in the sweep's order (the order is part of it)."""
        return json.dumps(self.to_dict())

    def fingerprint(self) -> dict:
        """Everything that defines the numbers of a result, for resume checks: the whole spec (axes in order,
        measures, model fields, resolution, base seed, precision) and the package version."""
        from .. import __version__

        return {"spec": self.to_dict(), "package": f"redshift_jax {__version__}"}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Sweep":
        data = dict(data)
        model = dict(data.pop("model"))
        model_cls = MODELS[model.pop("type")]
        return cls(model=model_cls(**model), **data)

    def replace(self, **changes) -> "Sweep":
        return dataclasses.replace(self, **changes)

    def with_axis(self, name: str, values) -> "Sweep":
        """A copy with axis ``name`` set to ``values`` (appended at the end if new)."""
        axes = dict(self.axes)
        axes[name] = values
        return self.replace(axes=axes)
