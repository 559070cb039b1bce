"""What a model declares so that the sweep engine can run it without knowing it (DESIGN.md section 11).

A model is a frozen, hashable dataclass. The engine reads only these declarations:

- ``structural_axes``: the fields a ``Sweep`` may vary; each value is its own compiled variant unless it is
  the ``shared_axis`` or the ``switch_axis``.
- ``numeric_axes``: ``{name: NumericAxis}``, the traced, vmapped axes besides ``seed`` (which every model has:
  a network's key is ``fold_in(key(base_seed), seed)``). ``NumericAxis.stage`` says whether the value goes to
  ``init`` or to ``apply`` as a keyword argument.
- ``inputs``: what the model is evaluated on, which picks the sweep's flow (``sweep/flows.py``); ``"grid"``:
  ``resolution`` points per input axis on ``[lo, hi]^in_dim`` (so the model has ``in_dim``); ``"plane"``: the
  plane's (u, v) coordinates, ``resolution`` x ``resolution`` points on ``[-1, 1]^2`` (``planes.uv_grid``), which
  the model's ``apply`` maps onto its ``plane`` through its input space (``models/planes.py``); the plane flow
  requires the sweep's ``lo=-1, hi=1``.
- ``output``: ``"field"`` (one value per grid point, read by ``values`` measures) or ``"tokens"``. A model whose
  ``output`` field means something else (``FlaxModel``: which logit) declares the kind as ``output_kind``.
- ``init(key, **init_numeric) -> params`` and ``apply(params, inputs, precision=..., **apply_numeric)``.
- Optionally ``shared_axis`` (e.g. MLP ``"depth"``): its values come out of one pass,
  ``apply_shared(params, inputs, ...) -> (max value, N)``, row ``v - 1`` being the model with that value, and
  ``at_shared(params, value) -> (model, params)`` gives that model and its parameters (for network measures).
- Optionally ``switch_axis`` (e.g. MLP ``"activation"``): one compiled function serves all of a sweep's values,
  ``switched(values) -> (model, branch)`` where ``branch(index)`` gives extra ``apply`` keyword arguments for
  the value at a traced ``index``.
- Optionally ``check_sweep(sweep)``: extra consistency checks against the sweep (raise ``ConfigError``).
- Optionally ``flops(points) -> float``: the rough cost of one network's output at ``points`` inputs (a field
  model: grid points; a token model: a sequence of ``points`` tokens decoded one by one), and for a model with a
  setup step ``setup_flops(points)`` and ``setup_bytes(points)``. The size guard (``sweep/plan.py``) reads them;
  a model without them is costed like an MLP of its ``width`` (64 when it has none) and ``depth``.

A model with ``inputs = "prompt"`` and ``output = "tokens"`` (GPT-2) instead provides ``prompt(key)`` (the
seed's prompt, from the same key as ``init``) and ``generate(params, prompt, n_new=..., precision=...,
return_finite=True, **apply_numeric, **branch_kwargs) -> (tokens, finite)``; its numeric axes act at apply time,
and its ``shared_axis`` values are cut out of one sample (``at_shared``) rather than read out of one pass. The
engine then decodes every cell of a seed's weight sample in one batch (``redshift_jax/sweep/tokens.py``).

Adding a model is one file that declares these; the engine never names a concrete model.
"""

from __future__ import annotations

import dataclasses

__all__ = ["NumericAxis", "FIELD", "TOKENS", "numeric_defaults", "split_numeric", "output_kind"]

FIELD = "field"
TOKENS = "tokens"


@dataclasses.dataclass(frozen=True)
class NumericAxis:
    """A numeric axis of a model: traced and vmapped, never a recompile.

    Attributes:
      default: the value when a sweep leaves the axis out.
      minimum: values below are refused (``None``: any finite float32 value).
      stage: ``"init"`` (a keyword argument of ``init``) or ``"apply"`` (of ``apply``).
    """

    default: float
    minimum: float | None = None
    stage: str = "init"


def numeric_defaults(model) -> dict[str, float]:
    return {name: axis.default for name, axis in model.numeric_axes.items()}


def split_numeric(model, values: dict) -> tuple[dict, dict]:
    """``values`` (one entry per numeric axis) split into ``init`` and ``apply`` keyword arguments."""
    init, apply = {}, {}
    for name, axis in model.numeric_axes.items():
        (init if axis.stage == "init" else apply)[name] = values[name]
    return init, apply


def output_kind(model) -> str:
    """What a model outputs for the engine: ``"field"`` or ``"tokens"`` (``output_kind``, else ``output``)."""
    kind = getattr(model, "output_kind", None)
    return kind if kind is not None else getattr(model, "output", FIELD)
