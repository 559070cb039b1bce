"""Complexity measures: one function's values in, one float32 scalar out (DESIGN.md section 5).

Every measure is jit- and vmap-safe, runs without host round trips, returns 0.0 for a constant input and NaN
for an input with NaN or inf::

    from redshift_jax import measures
    measures.fourier(img, method="nrs")       # or "noise", "dct", "mirror"
    measures.chebyshev(img, degree=None, weights="l1")    # or weights="energy"
    measures.legendre(img, degree=None, weights="l1")
    measures.lz(values, variant="lz78", levels=2, normalize=True)   # "lz76", "lz78", "lzw"

``MEASURES`` maps the names a Sweep uses to callables on one image (or 1-D curve)::

    "fourier"        fourier(img, "nrs")           the co-author's published measure
    "fourier_noise"  fourier(img, "noise")         white noise ~ 1
    "fourier_dct"    fourier(img, "dct")           seam-free: radial DCT-II spectrum (DESIGN.md section 20)
    "fourier_mirror" fourier(img, "mirror")        seam-free: nrs of the even reflection
    "chebyshev"      chebyshev(img)                degree min(32, resolution - 1), |c| weights
    "legendre"       legendre(img)
    "chebyshev_energy"  chebyshev(img, weights="energy")   c^2 weights: mean order of the energy
    "legendre_energy"   legendre(img, weights="energy")
    "lz"             lz(img, "lz78", levels=2, normalize=True)
    "lz76"           lz(img, "lz76", levels=2, normalize=True)
    "lzw"            lz(img, "lzw", levels=2, normalize=True)

Each is a registered measure (``measures/base.py``) that reads ``values``; a sweep may set its arguments,
e.g. ``("lz", {"levels": 4, "label": "lz4"})`` or ``("chebyshev", {"degree": 16})``. Measures of other things
(tokens, a network's parameters) register the same way with ``register_measure``.
"""

from __future__ import annotations

import functools
from typing import Iterable

import numpy as np

from ..errors import ConfigError
from .base import READS, Measure, measure_names, register_measure, resolve_measure
from .fourier import FOURIER_METHODS, fourier
from .lz import LZ_VARIANTS, lz, quantize
from .polynomial import POLYNOMIAL_WEIGHTS, chebyshev, default_degree, legendre, validate_degree, validate_weights

__all__ = [
    "FOURIER_METHODS",
    "LZ_VARIANTS",
    "MEASURES",
    "calibration",
    "kinks",
    "volume",
    "POLYNOMIAL_WEIGHTS",
    "Measure",
    "READS",
    "chebyshev",
    "default_degree",
    "fourier",
    "legendre",
    "lz",
    "lz76_tokens",
    "lz_per_token",
    "lzw_size",
    "measure_names",
    "quantize",
    "register_measure",
    "resolve_measure",
    "tokens",
    "validate_degree",
    "validate_measure_names",
    "validate_weights",
]


def _check_degree_at(resolution: int, degree=None, weights="l1"):
    validate_degree(default_degree(int(resolution)) if degree is None else degree, int(resolution))
    validate_weights(weights)


def _check_degree(sweep, degree=None, weights="l1"):
    _check_degree_at(sweep.resolution, degree, weights)


def _check_method(sweep, method="nrs"):
    if method not in FOURIER_METHODS:
        raise ConfigError(f"fourier method={method!r} is unknown; allowed: {', '.join(FOURIER_METHODS)}")


register_measure("fourier", "values", fourier, {"method": "nrs"}, check=_check_method)
register_measure("fourier_noise", "values", fourier, {"method": "noise"}, check=_check_method)
register_measure("fourier_dct", "values", fourier, {"method": "dct"}, check=_check_method)
register_measure("fourier_mirror", "values", fourier, {"method": "mirror"}, check=_check_method)
register_measure("chebyshev", "values", chebyshev, {"degree": None, "weights": "l1"}, check=_check_degree)
register_measure("legendre", "values", legendre, {"degree": None, "weights": "l1"}, check=_check_degree)
register_measure("chebyshev_energy", "values", chebyshev, {"degree": None, "weights": "energy"}, check=_check_degree)
register_measure("legendre_energy", "values", legendre, {"degree": None, "weights": "energy"}, check=_check_degree)
for _name, _variant in (("lz", "lz78"), ("lz76", "lz76"), ("lzw", "lzw")):
    register_measure(_name, "values", functools.partial(lz, variant=_variant), {"levels": 2, "normalize": True})

# The values measures of DESIGN.md sections 3 and 20, each a callable on one image (or 1-D curve).
MEASURES: dict[str, Measure] = {name: Measure(name) for name in measure_names()}

# registered after MEASURES (the values measures only): the measures of token sequences (lz_per_token, lzw_size,
# lz76_tokens) and the network measures (kinks and linear_regions, volume)
from . import kinks, tokens, volume  # noqa: E402
from .tokens import lz76_tokens, lz_per_token, lzw_size  # noqa: E402


def validate_measure_names(names: Iterable, resolution: int) -> tuple:
    """Check measures (and that they make sense at ``resolution``) before anything is compiled.

    Args:
      names: measure entries (names, ``(name, {arguments})`` pairs or ``Measure`` objects); a single string is
        one name.
      resolution: grid points per axis of the functions the measures will read.

    Returns:
      The entries as a tuple.

    Raises:
      ConfigError: for an unknown name (naming it and the allowed ones), a duplicated result label, or a
        resolution that is not an integer >= 2.
    """
    if isinstance(names, str):
        names = (names,)
    names = tuple(names)
    seen = set()
    for entry in names:
        measure = resolve_measure(entry)
        if measure.label in seen:
            raise ConfigError(f"measure {measure.label!r} is listed twice; list each measure once (give one a "
                              f"\"label\" to keep both; allowed names: {', '.join(measure_names())})")
        seen.add(measure.label)
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or resolution < 2:
        raise ConfigError(f"resolution={resolution!r} is not allowed for the measures; allowed: an integer >= 2")
    for entry in names:
        measure = resolve_measure(entry)
        if measure.name in ("chebyshev", "legendre", "chebyshev_energy", "legendre_energy"):
            _check_degree_at(resolution, **dict(measure.args))
        elif measure.name.startswith("fourier"):
            _check_method(None, **dict(measure.args))
    return names


def __getattr__(name):
    # ``calibration`` (reference functions of known complexity) loads on first use, so that
    # ``python -m redshift_jax.measures.calibration`` does not find it imported already.
    if name == "calibration":
        import importlib

        return importlib.import_module(".calibration", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
