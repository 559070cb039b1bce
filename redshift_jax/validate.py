"""The checks every spec shares, each raising ``ConfigError`` with the field, the value and what is allowed.

    check_int("MLP.depth", depth, minimum=1)
    check_number("Sweep.lo", lo)                       # finite
    check_number("axes['weight_scale']", v, minimum=0.0, float32=True)
    check_bool("MLP.gating", gating)
"""

from __future__ import annotations

import math

import numpy as np

from .errors import ConfigError

__all__ = ["FLOAT32_MAX", "check_bool", "check_int", "check_number", "check_scale", "is_int", "is_number"]

FLOAT32_MAX = float(np.finfo(np.float32).max)


def is_int(value) -> bool:
    """A Python or numpy integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_number(value) -> bool:
    """A Python or numpy real number, not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _range_text(minimum, maximum) -> str:
    if minimum is not None and maximum is not None:
        return f"in {minimum} .. {maximum}"
    if minimum is not None:
        return f">= {minimum}"
    if maximum is not None:
        return f"<= {maximum}"
    return ""


def check_int(what: str, value, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int, or ConfigError (``what`` names the field, e.g. ``"MLP.depth"``).

    Example:
      >>> check_int("MLP.depth", 3, minimum=1)
      3
      >>> check_int("MLP.depth", 0, minimum=1)
      Traceback (most recent call last):
      ...
      redshift_jax.errors.ConfigError: MLP.depth=0 is not allowed; allowed: an integer >= 1
    """
    ok = is_int(value) and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    if not ok:
        bounds = _range_text(minimum, maximum)
        raise ConfigError(f"{what}={value!r} is not allowed; allowed: an integer{' ' + bounds if bounds else ''}")
    return int(value)


def check_bool(what: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{what}={value!r} is not allowed; allowed: True or False")
    return bool(value)


def check_number(what: str, value, minimum: float | None = None, maximum: float | None = None,
                 exclusive_minimum: bool = False, float32: bool = False) -> float:
    """``value`` as a finite float in range, or ConfigError. ``float32``: also at most float32's max magnitude."""
    ok = is_number(value) and math.isfinite(value)
    if ok and float32:
        ok = abs(value) <= FLOAT32_MAX
    if ok and minimum is not None:
        ok = value > minimum if exclusive_minimum else value >= minimum
    if ok and maximum is not None:
        ok = value <= maximum
    if not ok:
        parts = []
        if minimum is not None:
            parts.append(f"{'>' if exclusive_minimum else '>='} {minimum}")
        if maximum is not None:
            parts.append(f"<= {maximum}")
        if float32:
            parts.append(f"of magnitude <= {FLOAT32_MAX:.7g} (float32; larger values overflow to inf)")
        raise ConfigError(f"{what}={value!r} is not allowed; allowed: a finite number"
                          + (" " + " and ".join(parts) if parts else ""))
    return float(value)


def check_scale(name: str, value) -> None:
    """Reject negative, NaN or float32-overflowing scales when concrete (traced values cannot be inspected)."""
    import jax

    if isinstance(value, jax.core.Tracer):
        return
    arr = np.asarray(value, dtype=np.float64)
    bad_mask = np.isnan(arr) | (arr < 0) | ~(np.abs(arr) <= FLOAT32_MAX)
    if bad_mask.any():
        bad = float(arr[bad_mask].ravel()[0])  # plain repr, not np.float64(...)
        raise ConfigError(f"{name}={bad!r} is not allowed; {name} must be a finite number >= 0 and "
                          f"<= {FLOAT32_MAX:.7g} (networks run in float32; larger values overflow to inf)")
