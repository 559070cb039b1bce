"""Any ``flax.linen`` module as a sweep model, evaluated on a plane through its input space (DESIGN.md section 19).

``FlaxModel(module, input_shape, output="logit", klass=0, plane=Plane(...))`` declares the model protocol of
``models/base.py``: ``inputs = "plane"`` (a sweep runs it through its plane flow, ``sweep/flows.py``
``PlaneFlow``: the networks get the plane's (u, v) coordinates, which ``apply`` maps onto ``plane``, and the sweep
is checked against the plane), ``output = "field"``, numeric axes ``weight_scale`` and ``bias_scale``,
and as structural axes the module's own plain fields (ints, floats, strs, bools: ``depth``, ``width``,
``activation``...) plus ``output`` and ``klass``.

A module may declare more numeric axes, passed to its ``__call__`` as keyword arguments at apply time (traced, so
never a recompile): a class attribute ``numeric_inputs = {"ln_gain": NumericAxis(1.0, minimum=0.0)}`` (``ViT``
does, for its LayerNorm gain as in GPT-2).

``init(key, weight_scale, bias_scale)`` is the module's own ``init`` on a dummy input, then every parameter
named ``kernel`` or ``embedding`` times ``weight_scale`` and every ``bias`` times ``bias_scale`` (bitwise
``module.init`` at 1, 1). A LayerNorm ``scale`` (a ``scale`` whose module's name contains ``norm`` or starts with
``ln``) and position embeddings (``pos_embedding``, ``position_embedding``, ``cls``) are left as initialized; any
other parameter name is a ``ConfigError`` at construction, naming its path, and so is a module with no weight
at all (``weight_scale`` would change nothing). Collections other than ``params``
(e.g. ``batch_stats``) are left as initialized.

Specs: ``spec_fields()`` gives the JSON form (the module's class name and plain fields, the plane as a dict);
``from_spec`` rebuilds it for module classes registered with ``register_module`` (the library's ``CNN`` is);
other modules still run and store their results, but ``Sweep.from_dict`` of their spec raises ``ConfigError``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError
from .base import FIELD, NumericAxis
from .planes import Plane

__all__ = ["FlaxModel", "OUTPUTS", "MODULES", "PLANE_TAG", "register_module", "WEIGHT_NAMES", "BIAS_NAMES",
           "KEPT_NAMES", "SCALE_AXES"]

OUTPUTS = ("logit", "margin")
WEIGHT_NAMES = ("kernel", "embedding")
BIAS_NAMES = ("bias",)
KEPT_NAMES = ("pos_embedding", "position_embedding", "cls")   # left as the module initializes them
SCALE_AXES = {"weight_scale": NumericAxis(1.0, minimum=0.0, stage="init"),
              "bias_scale": NumericAxis(1.0, minimum=0.0, stage="init")}
# (module, input shape) -> number of outputs, for modules that passed FlaxModel's checks in this process
_SHAPE_CHECKS: dict = {}
# flax module classes a spec can rebuild by name (``FlaxModel.from_spec``)
MODULES: dict[str, type] = {}
# module class -> outputs(module, input_shape): its output count without tracing it (``register_module``)
_OUTPUTS: dict[type, Callable] = {}
_PLAIN = (bool, int, float, str)
# folded into a network's key to draw its own plane (``Plane(seed=None)``), apart from the module's init stream
PLANE_TAG = 0x504C4E45


def register_module(cls: type | None = None, *, outputs: Callable | None = None):
    """Let ``FlaxModel.from_spec`` (and so ``Sweep.from_dict``) rebuild modules of ``cls`` from their fields.

    ``outputs(module, input_shape) -> int``, optional: the module's number of outputs on one input of
    ``input_shape``, after the checks its ``__call__`` makes on that shape (raising ``ConfigError``). ``FlaxModel``
    then takes it instead of tracing the module's init abstractly: validating a sweep builds every structural
    variant, and a ViT sweep file's hundreds of variants took seconds each to trace (``redshift-jax list sweeps``:
    17 s of CPU, 2026-12-07). Use as ``@register_module`` or ``@register_module(outputs=...)``.
    """
    if cls is None:
        return functools.partial(register_module, outputs=outputs)
    MODULES[cls.__name__] = cls
    if outputs is not None:
        _OUTPUTS[cls] = outputs
    return cls


@functools.lru_cache(maxsize=64)
def _module_flops(module, input_shape: tuple) -> float:
    """Flops of ``module`` on one input (XLA's cost analysis of the lowered program; nothing runs); a
    dense-network guess from the parameter count when the backend reports none."""
    dummy = jax.ShapeDtypeStruct((1,) + tuple(input_shape), jnp.float32)
    variables = jax.eval_shape(module.init, jax.random.key(0), dummy)
    try:
        cost = jax.jit(module.apply).lower(variables, dummy).cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        return float(cost["flops"])
    except Exception:  # not every backend analyses cost
        return 2.0 * sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(variables))


def _module_fields(module) -> dict[str, Any]:
    return {f.name: getattr(module, f.name) for f in dataclasses.fields(module) if f.name not in ("parent", "name")}


def _key_name(entry) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def _role(path) -> str:
    """``"weight"``, ``"bias"`` or ``"kept"`` for a parameter at ``path`` (a ``params`` leaf); else ConfigError."""
    names = ["params"] + [_key_name(p) for p in path]
    leaf = names[-1]
    if leaf in WEIGHT_NAMES:
        return "weight"
    if leaf in BIAS_NAMES:
        return "bias"
    if leaf in KEPT_NAMES:
        return "kept"
    parent = names[-2].lower() if len(names) > 1 else ""
    if leaf == "scale" and ("norm" in parent or parent.startswith("ln")):
        return "kept"
    raise ConfigError(
        f"FlaxModel: parameter {'/'.join(names)!r} is neither a weight ({', '.join(WEIGHT_NAMES)}), a bias "
        f"({', '.join(BIAS_NAMES)}), a LayerNorm 'scale' nor a position embedding ({', '.join(KEPT_NAMES)}); "
        "allowed: rename it to one of these so weight_scale / bias_scale know what to do with it")


@dataclasses.dataclass(frozen=True)
class FlaxModel:
    """A ``flax.linen`` module as a random-network sweep model on a plane through its input space.

    Attributes:
      module: any ``flax.linen.Module`` taking a batch ``(n, *input_shape)`` and returning ``(n, K)`` or ``(n,)``.
      input_shape: the shape of one input; ``None`` (default) takes the plane's (it must match the plane's).
      output: ``"logit"`` (logit ``klass``) or ``"margin"`` (top logit minus runner-up); a module with a single
        output gives that output for ``"logit"``.
      klass: the class whose logit is the field (``output="logit"``).
      plane: the ``rj.Plane`` the module is evaluated on (a dict is converted: specs store it that way).

    A sweep of it runs through ``PlaneFlow`` (``sweep/flows.py``), which checks the sweep against the plane: its
    grid must be the default ``lo=-1, hi=1`` (the plane's (u, v) range; scale the plane with ``Plane.scale``).
    """

    module: Any
    input_shape: tuple | None = None
    output: str = "logit"
    klass: int = 0
    plane: Any = dataclasses.field(default_factory=Plane)

    inputs = "plane"
    in_dim = 2   # (u, v): what ``apply`` takes; the plane flow reads only ``inputs``

    def __post_init__(self):
        try:
            import flax.linen as nn
        except ImportError:  # pragma: no cover - a dependency
            raise ConfigError("FlaxModel needs flax; install it with `pip install flax`") from None
        if not isinstance(self.module, nn.Module):
            raise ConfigError(f"FlaxModel.module={self.module!r} is not allowed; allowed: a flax.linen.Module")
        object.__setattr__(self, "plane", Plane.coerce(self.plane, "FlaxModel.plane"))
        shape = self.plane.input_shape
        if self.input_shape is not None:
            given = self.input_shape
            if isinstance(given, (int, np.integer)):
                given = (int(given),)
            if isinstance(given, (str, bytes)) or not isinstance(given, (tuple, list)) \
                    or tuple(int(s) for s in given) != shape:
                raise ConfigError(f"FlaxModel.input_shape={self.input_shape!r} does not match the plane's input "
                                  f"shape {shape} (dataset {self.plane.dataset!r}); allowed: {shape} or None")
        object.__setattr__(self, "input_shape", shape)
        if self.output not in OUTPUTS:
            raise ConfigError(f"FlaxModel.output={self.output!r} is unknown; allowed: {', '.join(map(repr, OUTPUTS))}")
        if isinstance(self.klass, (bool, np.bool_)) or not isinstance(self.klass, (int, np.integer)) or self.klass < 0:
            raise ConfigError(f"FlaxModel.klass={self.klass!r} is not allowed; allowed: a class index >= 0")
        object.__setattr__(self, "klass", int(self.klass))
        n_out = self._check_shapes()
        if self.output == "logit" and self.klass >= n_out:
            raise ConfigError(f"FlaxModel.klass={self.klass} is out of range for a module with {n_out} outputs; "
                              f"allowed: 0 .. {n_out - 1}")
        if self.output == "margin" and n_out < 2:
            raise ConfigError("FlaxModel.output='margin' is not allowed for a module with one output; allowed: "
                              "'logit' (the output itself)")

    @property
    def numeric_axes(self) -> dict[str, NumericAxis]:
        """``weight_scale`` and ``bias_scale`` (init), and the module's ``numeric_inputs`` (apply keywords)."""
        extra = {name: dataclasses.replace(axis, stage="apply")
                 for name, axis in getattr(type(self.module), "numeric_inputs", {}).items()}
        return {**SCALE_AXES, **extra}

    # ``output`` is a field here (the logit read-out); the engine's "field"/"tokens" kind is ``output_kind``
    # (``models.base.output_kind``).
    output_kind = FIELD

    # ---- the module -------------------------------------------------------------------------------------

    def _dummy(self):
        return jnp.zeros((1,) + self.input_shape, jnp.float32)

    def _check_shapes(self) -> int:
        """Trace the module's init (with its output) abstractly, no compute: check every parameter's name and the
        output shape; return the number of outputs. Remembered per (module, input shape): a sweep's validation
        rebuilds every structural variant, often more than once. A module class registered with its ``outputs``
        (``register_module``: the built-in CNN, ViT, PixelMLP) is not traced: its own shape checks run instead."""
        try:
            cache_key = (self.module, self.input_shape)
            hash(cache_key)
        except TypeError:   # a module with unhashable fields: checked every time
            cache_key = None
        if cache_key is not None and cache_key in _SHAPE_CHECKS:
            return _SHAPE_CHECKS[cache_key]
        known = _OUTPUTS.get(type(self.module))
        if known is not None:  # a registered module that states its outputs (the built-ins): nothing to trace
            return known(self.module, self.input_shape)
        try:
            # inside eval_shape the key and the dummy input are traced too: checking compiles nothing
            out, variables = jax.eval_shape(
                lambda: self.module.init_with_output(jax.random.key(0), self._dummy()))
        except ConfigError:
            raise
        except Exception as err:  # the module cannot take this input
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ConfigError(f"FlaxModel.module {type(self.module).__name__} cannot be initialized on inputs of "
                              f"shape (1, {', '.join(map(str, self.input_shape))}): {first}; allowed: a module "
                              "that takes a batch of the plane's inputs") from None
        roles = [_role(path) for path, _ in jax.tree_util.tree_leaves_with_path(variables.get("params", {}))]
        if "weight" not in roles:
            raise ConfigError(f"FlaxModel.module {type(self.module).__name__} has no weight parameter "
                              f"({', '.join(WEIGHT_NAMES)}), so weight_scale would change nothing; allowed: a "
                              "module with at least one kernel or embedding")
        shape = getattr(out, "shape", None)
        if shape is None or len(shape) not in (1, 2) or shape[0] != 1:
            raise ConfigError(f"FlaxModel.module {type(self.module).__name__} returns {out!r} for one input; "
                              "allowed: an array of shape (n, K) or (n,)")
        n_out = 1 if len(shape) == 1 else int(shape[1])
        if cache_key is not None:
            _SHAPE_CHECKS[cache_key] = n_out
        return n_out

    @property
    def structural_axes(self) -> tuple[str, ...]:
        """The module's plain fields (ints, floats, strs, bools) and ``output``, ``klass``."""
        plain = tuple(k for k, v in _module_fields(self.module).items()
                      if isinstance(v, _PLAIN) or isinstance(v, np.generic))
        return plain + ("output", "klass")

    def init(self, key, weight_scale=1.0, bias_scale=1.0) -> dict:
        """The module's ``init`` on a dummy input, kernels/embeddings times ``weight_scale``, biases times
        ``bias_scale`` (scales may be traced). With a per-network plane (``Plane(seed=None)``) the network's own
        plane directions are drawn from ``fold_in(key, PLANE_TAG)`` and kept under ``"plane"`` (the module's
        variables are the same as without)."""
        variables = self.module.init(key, self._dummy())
        params = variables.get("params", {})
        ws = jnp.asarray(weight_scale, jnp.float32)
        bs = jnp.asarray(bias_scale, jnp.float32)

        def scale(path, leaf):
            role = _role(path)
            if role == "weight":
                return leaf * ws.astype(leaf.dtype)
            if role == "bias":
                return leaf * bs.astype(leaf.dtype)
            return leaf

        out = dict(variables)
        out["params"] = jax.tree_util.tree_map_with_path(scale, params)
        if self.plane.per_network:
            out["plane"] = self.plane.draw(jax.random.fold_in(key, PLANE_TAG))
        return out

    def logits(self, params, uv, precision=None, **numeric):
        """The module's raw output on the plane points of ``uv`` (n, 2); ``numeric``: its ``numeric_inputs``."""
        if "plane" in params:   # a per-network plane's directions (``init``), not a module variable
            params = dict(params)
            x = self.plane.embed(uv, params.pop("plane"))
        else:
            x = self.plane.embed(uv)
        if precision is None:
            return self.module.apply(params, x, **numeric)
        with jax.default_matmul_precision(precision):
            return self.module.apply(params, x, **numeric)

    def apply(self, params, uv, precision=None, **numeric) -> jax.Array:
        """The field: ``uv`` (n, 2) plane coordinates -> (n,); ``numeric``: the module's ``numeric_inputs``
        (e.g. ``ln_gain``), passed to its ``__call__``."""
        out = self.logits(params, uv, precision, **numeric)
        if out.ndim == 1:
            return out
        if out.shape[-1] == 1:
            return out[:, 0]
        if self.output == "logit":
            return out[:, self.klass]
        top2 = jax.lax.top_k(out, 2)[0]
        return top2[:, 0] - top2[:, 1]

    def split_fixed(self, params) -> tuple[dict, dict]:
        """``(weights, fixed)``: the network's own plane (``params["plane"]``, ``Plane(seed=None)``) is where it is
        looked at, not a parameter, so weight-space measures (local volume) hold it fixed."""
        if "plane" not in params:
            return params, {}
        return {k: v for k, v in params.items() if k != "plane"}, {"plane": params["plane"]}

    def flops(self, points: int) -> float:
        """Rough flops of the field at ``points`` plane points (the size guard's estimate): XLA's cost analysis
        of the module on one input, times ``points``."""
        return points * _module_flops(self.module, self.input_shape)

    def replace(self, **changes) -> "FlaxModel":
        """Module fields through ``module.clone``, this model's own fields through ``dataclasses.replace``."""
        own = {f.name for f in dataclasses.fields(self)}
        module_fields = _module_fields(self.module)
        unknown = sorted(set(changes) - own - set(module_fields))
        if unknown:
            raise ConfigError(f"{type(self).__name__}.replace: unknown fields {unknown}; allowed: "
                              f"{', '.join([*module_fields, *sorted(own)])}")
        mod = {k: v for k, v in changes.items() if k in module_fields and k not in own}
        rest = {k: v for k, v in changes.items() if k not in mod}
        module = self.module.clone(**mod) if mod else self.module
        return dataclasses.replace(self, module=module, **rest)

    # ---- specs ------------------------------------------------------------------------------------------

    def spec_fields(self) -> dict:
        """The JSON form of this model (``Sweep.to_dict``): the module's class and plain fields, the plane."""
        fields = _module_fields(self.module)
        plain, other = {}, {}
        for k, v in fields.items():
            if isinstance(v, np.generic):
                v = v.item()
            if isinstance(v, _PLAIN) and not (isinstance(v, float) and not math.isfinite(v)):
                plain[k] = v
            elif isinstance(v, tuple) and all(isinstance(e, _PLAIN) for e in v):
                plain[k] = list(v)
            else:
                other[k] = repr(v)
        cls = type(self.module)
        module = {"class": cls.__name__, "fields": plain,
                  "rebuildable": not other and MODULES.get(cls.__name__) is cls}
        if other:
            module["unserializable"] = other
        return {"module": module, "input_shape": list(self.input_shape), "output": self.output,
                "klass": self.klass, "plane": dataclasses.asdict(self.plane)}

    @classmethod
    def from_spec(cls, fields: dict) -> "FlaxModel":
        """Rebuild from ``spec_fields()`` (its JSON round trip); ``ConfigError`` for a module that cannot be."""
        fields = dict(fields)
        module = dict(fields.pop("module"))
        name = module.get("class")
        if name not in MODULES:
            from . import cnn, pixel_mlp, vit  # noqa: F401  (the library's modules register themselves)
        if name not in MODULES or not module.get("rebuildable", False):
            why = (f"its fields {sorted(module.get('unserializable', {}))} are not JSON values"
                   if module.get("unserializable") else "its class is not registered")
            raise ConfigError(f"sweep spec module class {name!r} cannot be rebuilt ({why}); allowed: modules "
                              f"registered with redshift_jax.models.flax_model.register_module "
                              f"({', '.join(MODULES) or 'none'}) whose fields are plain values. The results of a "
                              "sweep of it are stored; rebuild its Sweep by hand")
        module_cls = MODULES[name]
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in module["fields"].items()}
        shape = fields.pop("input_shape", None)
        return cls(module=module_cls(**kwargs), input_shape=None if shape is None else tuple(shape), **fields)
