"""The measure protocol (DESIGN.md section 11): what a measure reads, its arguments, and how a sweep names it.

A measure declares what it reads:

- ``"values"``: one function's values on the grid (an image or a curve) -> one number; the engine vmaps it over
  fixed blocks of images (fourier, chebyshev, legendre, lz...).
- ``"tokens"``: an integer sequence -> one number.
- ``"network"``: ``fn(model, params, inputs, numeric, **args)`` -> one number, with the network's model (at its
  own value of a switched axis: in a sweep over several activations the measure is called with each network's),
  parameters, evaluation inputs and numeric values (``{"weight_scale": ..., ...}``); for measures of the
  parameters or of the exact function (volume, exact kinks).

A sweep lists measures as names (``"lz"``), ``(name, {arguments})`` pairs (``("lz", {"levels": 4})``; a
``"label"`` entry names the result variable, by default the name) or ``Measure`` objects. Arguments are part of
the sweep's JSON spec and of its resume fingerprint. A new measure is one ``register_measure`` call.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable, Mapping

from ..errors import ConfigError

__all__ = ["Measure", "register_measure", "resolve_measure", "measure_names", "READS"]

READS = ("values", "tokens", "network")
# what each kind of measure needs the model to output
_OUTPUT_FOR = {"values": "field", "tokens": "tokens"}


@dataclasses.dataclass(frozen=True)
class _Kind:
    reads: str
    fn: Callable
    defaults: tuple  # ((argument, default), ...)
    check: Callable | None  # check(sweep, **args) -> None, raises ConfigError
    outputs: Callable | None = None  # outputs(**args) -> suffixes of the extra result variables (network measures)
    revision: str | None = None  # names the implementation's numbers (register_measure)


_REGISTRY: dict[str, _Kind] = {}


def _frozen(value):
    """A JSON value made hashable (lists as tuples, recursively), so a ``Measure`` (and a ``Sweep``) hashes."""
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def _thawed(value):
    """The JSON form of a frozen value (tuples as lists), as measures and specs have always received it."""
    if isinstance(value, tuple):
        return [_thawed(v) for v in value]
    return value


def register_measure(name: str, reads: str, fn: Callable, defaults: Mapping[str, Any] | None = None,
                     check: Callable | None = None, outputs: Callable | None = None,
                     revision: str | None = None) -> None:
    """Make ``name`` usable in a Sweep's ``measures``.

    Args:
      name: the measure's name (the result variable unless a label is given).
      reads: ``"values"``, ``"tokens"`` or ``"network"`` (see the module docstring).
      fn: the implementation: ``fn(x, **args)`` for values/tokens, ``fn(model, params, inputs, numeric, **args)``
        for network measures. Must be jit- and vmap-safe and return one float32 number.
      defaults: the arguments a sweep may set, with their defaults (others are refused).
      check: ``check(sweep, **args)`` raising ConfigError when the arguments do not fit the sweep.
      outputs: for a network measure with several results, ``outputs(**args)`` -> the suffixes of the extra
        result variables (``label_suffix``); ``fn`` then returns ``{"": main value, suffix: value, ...}``.
      revision: a name for the numbers the implementation gives (e.g. a date); change it when the same arguments
        start giving other numbers (a new default algorithm). A sweep's fingerprint carries the revisions of its
        measures (``Measure.revision``), so a run is never resumed, nor a stored result reused, across the change;
        measures without one leave the fingerprint as it was.
    """
    if reads not in READS:
        raise ConfigError(f"register_measure: reads={reads!r} is not allowed; allowed: {', '.join(READS)}")
    if outputs is not None and reads != "network":
        raise ConfigError(f"register_measure: outputs= is allowed for network measures only, not reads={reads!r}")
    if revision is not None and not isinstance(revision, str):
        raise ConfigError(f"register_measure: revision={revision!r} is not allowed; allowed: None or a string")
    _REGISTRY[name] = _Kind(reads, fn, tuple(sorted((defaults or {}).items())), check, outputs, revision)


def measure_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


@dataclasses.dataclass(frozen=True)
class Measure:
    """One measure as a sweep uses it: a registered name, its arguments and the result variable's label.

    Frozen and hashable (list arguments are held as tuples; ``kwargs`` and ``to_spec`` give them back as lists):
    ``Sweep.measures`` holds these objects, and only ``Sweep.to_dict`` writes their JSON form (``to_spec``).
    """

    name: str
    args: tuple = ()  # ((argument, value), ...), sorted by argument
    label: str = ""

    def __post_init__(self):
        if self.name not in _REGISTRY:
            raise ConfigError(f"measure {self.name!r} is unknown; allowed: {', '.join(_REGISTRY)}")
        args = dict(self.args)
        allowed = dict(_REGISTRY[self.name].defaults)
        for key in args:
            if key not in allowed:
                raise ConfigError(f"measure {self.name!r} has no argument {key!r}; allowed: "
                                  + (", ".join(allowed) or "none"))
        try:
            json.dumps(args)
        except TypeError:
            raise ConfigError(f"measure {self.name!r} arguments {args!r} are not allowed; allowed: JSON values "
                              "(numbers, strings, booleans, lists)") from None
        object.__setattr__(self, "args", tuple(sorted((k, _frozen(v)) for k, v in args.items())))
        object.__setattr__(self, "label", self.label or self.name)

    @property
    def reads(self) -> str:
        return _REGISTRY[self.name].reads

    @property
    def revision(self) -> str | None:
        """The registered revision of this measure's numbers (``register_measure``), or None."""
        return _REGISTRY[self.name].revision

    @property
    def kwargs(self) -> dict:
        return {**dict(_REGISTRY[self.name].defaults), **{k: _thawed(v) for k, v in self.args}}

    @property
    def output_labels(self) -> tuple[str, ...]:
        """The result variables: the label, then ``label_suffix`` for each extra output."""
        outputs = _REGISTRY[self.name].outputs
        extra = tuple(outputs(**self.kwargs)) if outputs is not None else ()
        return (self.label,) + tuple(f"{self.label}_{suffix}" for suffix in extra)

    def __call__(self, *inputs):
        return _REGISTRY[self.name].fn(*inputs, **self.kwargs)

    def check(self, sweep) -> None:
        """ConfigError when this measure cannot read what the sweep's model outputs, or its arguments are bad."""
        from ..models.base import output_kind

        output = output_kind(sweep.model)
        needs = _OUTPUT_FOR.get(self.reads)
        if needs is not None and output != needs:
            raise ConfigError(f"measure {self.label!r} reads {self.reads}, but {type(sweep.model).__name__} "
                              f"outputs {output}; allowed here: measures of {output}")
        kind = _REGISTRY[self.name]
        if kind.check is not None:
            kind.check(sweep, **self.kwargs)

    def to_spec(self):
        """The JSON form: the name alone, or ``[name, {arguments, "label": ...}]``."""
        if not self.args and self.label == self.name:
            return self.name
        extra = {"label": self.label} if self.label != self.name else {}
        # keys sorted, the label among them: the form every stored spec has (and its fingerprint and digest)
        return [self.name, dict(sorted({**{k: _thawed(v) for k, v in self.args}, **extra}.items()))]


def resolve_measure(entry) -> Measure:
    """A ``Measure`` from a name, a ``(name, {arguments})`` pair, its JSON list form, or a ``Measure``."""
    if isinstance(entry, Measure):
        return entry
    if isinstance(entry, str):
        return Measure(entry)
    if isinstance(entry, (tuple, list)) and len(entry) == 2 and isinstance(entry[0], str) \
            and isinstance(entry[1], Mapping):
        args = dict(entry[1])
        label = args.pop("label", "")
        if not isinstance(label, str):
            raise ConfigError(f"measure {entry[0]!r}: label={label!r} is not allowed; allowed: a string")
        return Measure(entry[0], tuple(args.items()), label)
    raise ConfigError(f"measure {entry!r} is not allowed; allowed: a name ({', '.join(_REGISTRY)}), a "
                      "(name, {arguments}) pair, or a redshift_jax.measures.Measure")
