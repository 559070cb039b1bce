"""Complexity measures: one function's values in, one float32 scalar out (DESIGN.md section 5).

Every measure is jit- and vmap-safe, runs without host round trips, returns 0.0 for a constant input and NaN
for an input with NaN or inf::

    from redshift_jax import measures
    measures.fourier(img, method="nrs")       # or "noise"
    measures.chebyshev(img, degree=None)
    measures.legendre(img, degree=None)
    measures.lz(values, variant="lz78", levels=2, normalize=True)   # "lz76", "lz78", "lzw"

``MEASURES`` maps the names a Sweep uses to callables on one image (or 1-D curve)::

    "fourier"        fourier(img, "nrs")           the co-author's published measure
    "fourier_noise"  fourier(img, "noise")         white noise ~ 1
    "chebyshev"      chebyshev(img)                degree min(32, resolution - 1)
    "legendre"       legendre(img)
    "lz"             lz(img, "lz78", levels=2, normalize=True)
    "lz76"           lz(img, "lz76", levels=2, normalize=True)
    "lzw"            lz(img, "lzw", levels=2, normalize=True)
"""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

from ..nets import ConfigError
from .fourier import FOURIER_METHODS, fourier
from .lz import LZ_VARIANTS, lz, quantize
from .polynomial import chebyshev, default_degree, legendre, validate_degree

__all__ = [
    "FOURIER_METHODS",
    "LZ_VARIANTS",
    "MEASURES",
    "chebyshev",
    "default_degree",
    "fourier",
    "legendre",
    "lz",
    "quantize",
    "validate_degree",
    "validate_measure_names",
]


def _fourier_nrs(img):
    return fourier(img, method="nrs")


def _fourier_noise(img):
    return fourier(img, method="noise")


def _chebyshev(img):
    return chebyshev(img)


def _legendre(img):
    return legendre(img)


def _lz78(img):
    return lz(img, variant="lz78", levels=2, normalize=True)


def _lz76(img):
    return lz(img, variant="lz76", levels=2, normalize=True)


def _lzw(img):
    return lz(img, variant="lzw", levels=2, normalize=True)


MEASURES: dict[str, Callable] = {
    "fourier": _fourier_nrs,
    "fourier_noise": _fourier_noise,
    "chebyshev": _chebyshev,
    "legendre": _legendre,
    "lz": _lz78,
    "lz76": _lz76,
    "lzw": _lzw,
}

def validate_measure_names(names: Iterable[str], resolution: int) -> tuple[str, ...]:
    """Check measure names (and that they make sense at ``resolution``) before anything is compiled.

    Args:
      names: measure names, each a key of ``MEASURES`` (a single string is one name).
      resolution: grid points per axis of the functions the measures will read.

    Returns:
      The names as a tuple.

    Raises:
      ConfigError: for an unknown name (naming it and the allowed ones), a duplicated name, or a resolution
        that is not an integer >= 2.
    """
    if isinstance(names, str):
        names = (names,)
    names = tuple(names)
    allowed = ", ".join(MEASURES)
    seen = set()
    for name in names:
        if not isinstance(name, str) or name not in MEASURES:
            raise ConfigError(f"measure {name!r} is unknown; allowed: {allowed}")
        if name in seen:
            raise ConfigError(f"measure {name!r} is listed twice; list each measure once (allowed: {allowed})")
        seen.add(name)
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or resolution < 2:
        raise ConfigError(f"resolution={resolution!r} is not allowed for the measures; allowed: an integer >= 2")
    for name in names:
        if name in ("chebyshev", "legendre"):  # the default degree min(32, resolution - 1) must be valid
            validate_degree(default_degree(int(resolution)), int(resolution))
    return names
