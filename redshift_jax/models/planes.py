"""Planes through input space (DESIGN.md section 19): how any architecture is evaluated on a 2-D grid.

A ``Plane`` maps the sweep's (u, v) grid on [-1, 1]^2 into a model's input space::

    x(u, v) = x0 + scale * (u d1 + v d2)

``x0`` is data point ``anchor`` of the dataset. Directions:

- ``mode="random"``: d1, d2 orthonormal Gaussian directions drawn from ``jax.random.key(seed)`` (float64
  Gram-Schmidt), each scaled to the dataset's per-image RMS norm ``sqrt(mean_i |x_i|^2)``, so ``scale=1`` spans
  about one image norm.
- ``mode="data"``: d1 = x1 - x0, d2 = the component of x2 - x0 orthogonal to d1 (x1, x2 = data[others]): the
  plane through three images; with ``scale=1`` the point (u, v) = (1, 0) is x1.

Datasets: ``"mnist"`` (the first ``MNIST_IMAGES`` test images of the offline MNIST files, pixels / 255,
28 x 28 x 1), ``"digits"`` (scikit-learn's bundled ``load_digits``, pixels / 16, 8 x 8 x 1) and user arrays
registered with ``from_array`` (the plane's ``dataset`` is then ``"array:<content hash>"``, so a ``Plane`` stays
hashable and JSON-able; the array itself lives in this process's registry).

``plane.points(resolution)`` is row-major like ``rj.grid``: row i = v, column j = u, both
``linspace(-1, 1, resolution)``, u varying fastest. A plane is a pure function of its fields; every network of
a sweep sees the same plane (the plane seed is the ``Plane``'s, ``seed=0`` by default), unless ``seed=None``: then
each network draws its own random directions from its own key (``draw``; ``FlaxModel.init`` keeps them with the
network's parameters), so the plane seed is the network seed (DESIGN.md section 19).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError

__all__ = ["Plane", "DATASETS", "MODES", "MNIST_IMAGES", "UV_RANGE", "uv_grid", "from_array", "dataset_array"]

DATASETS = ("mnist", "digits", "array")
MODES = ("random", "data")
MNIST_IMAGES = 1000   # test images of MNIST a plane may anchor on (indices 0 .. 999)
UV_RANGE = (-1.0, 1.0)   # the (u, v) interval of every plane (``Plane.scale`` widens a plane, not this)

_ARRAYS: dict[str, np.ndarray] = {}     # "array:<hash>" -> (n, *input_shape) float32, read-only
_ARRAY_NAMES: dict[str, str] = {}       # "array:<hash>" -> the name given to from_array (labels only)


@functools.lru_cache(maxsize=None)
def _builtin(name: str) -> np.ndarray:
    if name == "digits":
        try:
            from sklearn.datasets import load_digits
        except ImportError:  # pragma: no cover - a dependency
            raise ConfigError("Plane.dataset='digits' needs scikit-learn; install it with "
                              "`pip install scikit-learn`") from None
        data = load_digits().images.astype(np.float64) / 16.0
    else:
        from ..train.data import load_mnist

        data = load_mnist()["test_images"][:MNIST_IMAGES].astype(np.float64) / 255.0
    out = data[..., None].astype(np.float32)
    out.setflags(write=False)
    return out


def uv_grid(resolution: int) -> np.ndarray:
    """The plane coordinates a sweep evaluates its networks at: ``resolution`` x ``resolution`` points on
    ``UV_RANGE^2``, (resolution**2, 2) float32, row-major like ``rj.grid`` (column 0 = u varies fastest)."""
    from ..grids import grid

    return grid(int(resolution), 2, *UV_RANGE)


def dataset_array(dataset: str) -> np.ndarray:
    """The images a plane's ``dataset`` names: (n, *input_shape) float32, read-only."""
    if dataset in ("mnist", "digits"):
        return _builtin(dataset)
    if isinstance(dataset, str) and dataset.startswith("array:"):
        if dataset not in _ARRAYS:
            raise ConfigError(f"Plane.dataset={dataset!r} is not registered in this process; allowed: a dataset "
                              "returned by rj.planes.from_array(x) in this process (call it again with the same "
                              "array: its content hash gives the same name)")
        return _ARRAYS[dataset]
    if dataset == "array":
        raise ConfigError("Plane.dataset='array' is not allowed by itself; allowed: 'mnist', 'digits', or the "
                          "'array:<hash>' name of rj.planes.from_array(x) (which returns a Plane)")
    raise ConfigError(f"Plane.dataset={dataset!r} is unknown; allowed: 'mnist', 'digits', or an array registered "
                      "with rj.planes.from_array(x)")


def from_array(x, name: str | None = None, **plane_fields) -> "Plane":
    """Register a user array as a plane dataset and return ``Plane(dataset="array:<hash>", **plane_fields)``.

    Args:
      x: (n, *input_shape) data points (n >= 1, at least one input axis), finite; stored as float32.
      name: a label for the array (kept in this process's registry, not in the plane).
      plane_fields: the other ``Plane`` fields (``anchor``, ``mode``, ``others``, ``scale``, ``seed``).
    """
    try:
        arr = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError):
        raise ConfigError(f"planes.from_array(x) got {type(x).__name__}; allowed: a numeric array of shape "
                          "(n, *input_shape)") from None
    if arr.ndim < 2 or arr.shape[0] < 1 or arr.size == 0:
        raise ConfigError(f"planes.from_array(x) got shape {arr.shape}; allowed: (n, *input_shape) with n >= 1 "
                          "and at least one input axis (e.g. (n, 28, 28, 1))")
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ConfigError(f"planes.from_array(x) has {bad} non-finite values; allowed: finite values only")
    arr = np.ascontiguousarray(arr)
    digest = hashlib.sha256(repr(arr.shape).encode() + arr.tobytes()).hexdigest()[:16]
    dataset = f"array:{digest}"
    arr.setflags(write=False)
    _ARRAYS.setdefault(dataset, arr)
    if name is not None:
        _ARRAY_NAMES[dataset] = str(name)
    return Plane(dataset=dataset, **plane_fields)


def _int(field: str, value, minimum: int = 0, maximum: int | None = None) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"Plane.{field}={value!r} is not allowed; {field} must be an integer")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        top = "" if maximum is None else f" .. {maximum}"
        raise ConfigError(f"Plane.{field}={value!r} is out of range; allowed: {minimum}{top}")
    return value


@dataclasses.dataclass(frozen=True)
class Plane:
    """A plane through input space: ``x(u, v) = x0 + scale * (u d1 + v d2)`` on (u, v) in [-1, 1]^2.

    Attributes:
      dataset: ``"mnist"``, ``"digits"`` or ``"array:<hash>"`` (from ``rj.planes.from_array``).
      anchor: index of x0 in the dataset.
      mode: ``"random"`` (orthonormal Gaussian directions at the data's RMS image norm) or ``"data"`` (through
        data points ``others``).
      others: two data indices (mode ``"data"``; ignored by ``"random"``), distinct from each other and ``anchor``.
      scale: s > 0.
      seed: the random directions' key is ``jax.random.key(seed)`` (mode ``"random"``); ``None``: each network
        draws its own directions from its own key (``draw``), so the plane follows the network seed.

    A dict (a plane that went through ``dataclasses.asdict``/JSON) is accepted wherever a model takes a plane
    (``Plane.coerce``). Everything is checked at construction, before any compile.
    """

    dataset: str = "mnist"
    anchor: int = 0
    mode: str = "random"
    others: tuple = (1, 2)
    scale: float = 1.0
    seed: int | None = 0

    def __post_init__(self):
        if not isinstance(self.dataset, str):
            raise ConfigError(f"Plane.dataset={self.dataset!r} is not allowed; allowed: 'mnist', 'digits', or "
                              "an array registered with rj.planes.from_array(x)")
        data = dataset_array(self.dataset)
        n = data.shape[0]
        if self.mode not in MODES:
            raise ConfigError(f"Plane.mode={self.mode!r} is unknown; allowed: {', '.join(map(repr, MODES))}")
        object.__setattr__(self, "anchor", _int("anchor", self.anchor, 0, n - 1))
        others = self.others
        if isinstance(others, np.ndarray):
            others = others.tolist()
        if isinstance(others, (str, bytes)) or not isinstance(others, (tuple, list)) or len(others) != 2:
            raise ConfigError(f"Plane.others={self.others!r} is not allowed; allowed: two data indices, e.g. (1, 2)")
        others = tuple(_int("others", o, 0) for o in others)
        if self.mode == "data":
            others = tuple(_int("others", o, 0, n - 1) for o in others)
            if len({self.anchor, *others}) != 3:
                raise ConfigError(f"Plane.others={others!r} with anchor={self.anchor} is not allowed in mode "
                                  "'data'; allowed: three distinct data indices")
        object.__setattr__(self, "others", others)
        if isinstance(self.scale, (bool, np.bool_)) or not isinstance(self.scale, (int, float, np.number)) \
                or not math.isfinite(float(self.scale)) or float(self.scale) <= 0:
            raise ConfigError(f"Plane.scale={self.scale!r} is not allowed; allowed: a finite number > 0")
        object.__setattr__(self, "scale", float(self.scale))
        if self.seed is not None:
            object.__setattr__(self, "seed", _int("seed", self.seed, 0, 2 ** 32 - 1))
            _basis(self)   # degenerate data planes fail here, before any compile
        elif self.mode != "random":
            raise ConfigError(f"Plane.seed=None is not allowed in mode {self.mode!r}: the plane through data points "
                              "has no random directions to draw per network; allowed: an int seed, or mode 'random'")
        else:
            _anchor_and_rms(self.dataset, self.anchor)   # an all-zero dataset fails here

    @classmethod
    def coerce(cls, value, owner: str = "plane") -> "Plane":
        """A ``Plane`` from a ``Plane`` or its ``dataclasses.asdict`` form (lists for tuples, as JSON gives)."""
        if isinstance(value, Plane):
            return value
        if isinstance(value, dict):
            fields = {f.name for f in dataclasses.fields(cls)}
            unknown = sorted(set(value) - fields)
            if unknown:
                raise ConfigError(f"{owner}={value!r} has unknown fields {unknown}; allowed: {', '.join(fields)}")
            return cls(**value)
        raise ConfigError(f"{owner}={value!r} is not allowed; allowed: an rj.Plane (or its dict form)")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one input (e.g. (8, 8, 1) for digits)."""
        return tuple(dataset_array(self.dataset).shape[1:])

    @property
    def per_network(self) -> bool:
        """Whether each network draws its own plane (``seed=None``)."""
        return self.seed is None

    def basis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(x0, d1, d2)``, each of ``input_shape``, float32 (computed in float64); a per-network plane
        (``seed=None``) has no single basis: ``draw`` gives a network's directions."""
        if self.per_network:
            raise ConfigError("Plane.seed=None: each network has its own plane, so there is no single basis; "
                              "allowed: an int seed, or a network's directions (Plane.draw, FlaxModel params "
                              "['plane'])")
        return _basis(self)

    def draw(self, key) -> dict:
        """A per-network plane's directions from the network's ``key`` (traced, float32): ``{"d1", "d2"}``, each
        ``(prod(input_shape),)``: two Gaussian vectors ``jax.random.normal(key, (2, D))``, Gram-Schmidt in float32,
        scaled to the data's RMS image norm (the fixed plane's recipe, there in float64 from ``key(seed)``)."""
        if not self.per_network:
            raise ConfigError(f"Plane.draw is for per-network planes (seed=None); this plane's seed is {self.seed}: "
                              "its directions are basis()")
        _, rms = _anchor_and_rms(self.dataset, self.anchor)
        g = jax.random.normal(key, (2, math.prod(self.input_shape)), jnp.float32)
        d1, d2 = _random_directions(g, jnp.float32(rms), jnp)
        return {"d1": d1, "d2": d2}

    def embed(self, uv, directions: dict | None = None) -> jax.Array:
        """Map (n, 2) plane coordinates (column 0 = u, column 1 = v) to (n, *input_shape) float32 inputs.

        jnp, so it traces inside a model's ``apply``; ``points`` is this on the ``linspace(-1, 1)`` grid. A
        per-network plane (``seed=None``) takes the network's ``directions`` (``draw``).
        """
        if self.per_network:
            if directions is None:
                raise ConfigError("Plane.seed=None: each network has its own plane; embed needs the network's "
                                  "directions (Plane.draw(key), kept by FlaxModel.init under 'plane')")
            x0 = jnp.asarray(_anchor_and_rms(self.dataset, self.anchor)[0])
            d1, d2 = jnp.asarray(directions["d1"], jnp.float32), jnp.asarray(directions["d2"], jnp.float32)
        else:
            x0, d1, d2 = (jnp.asarray(a.reshape(-1)) for a in _basis(self))
        uv = jnp.asarray(uv, jnp.float32)
        if uv.ndim != 2 or uv.shape[1] != 2:
            raise ConfigError(f"Plane.embed got coordinates of shape {uv.shape}; expected (n, 2)")
        s = jnp.float32(self.scale)
        flat = x0 + s * (uv[:, 0:1] * d1 + uv[:, 1:2] * d2)
        return flat.reshape((uv.shape[0],) + self.input_shape)

    def points(self, resolution: int, directions: dict | None = None) -> np.ndarray:
        """The plane on a ``resolution`` x ``resolution`` grid over [-1, 1]^2: (resolution**2, *input_shape)
        float32, row-major (row i = v, column j = u): ``embed(uv_grid(resolution), directions)``."""
        return np.asarray(self.embed(uv_grid(resolution), directions))


def _random_directions(g, rms, xp):
    """The random plane's directions from two Gaussian rows ``g`` (2, D): Gram-Schmidt, scaled to ``rms``; ``xp``
    is numpy (a fixed plane, float64) or jax.numpy (a per-network plane, float32, traced)."""
    d1 = g[0] / xp.linalg.norm(g[0])
    d2 = g[1] - xp.dot(g[1], d1) * d1
    d2 = d2 / xp.linalg.norm(d2)
    return rms * d1, rms * d2


@functools.lru_cache(maxsize=256)
def _anchor_and_rms(dataset: str, anchor: int) -> tuple[np.ndarray, float]:
    """x0 flattened (float32, read-only) and the data's RMS image norm (float64; > 0, else a ConfigError)."""
    data = dataset_array(dataset)
    flat = data.reshape(data.shape[0], -1).astype(np.float64)
    rms = math.sqrt(float(np.mean(np.sum(flat ** 2, axis=1))))
    if rms == 0.0:
        raise ConfigError(f"Plane.dataset={dataset!r} is all zeros; mode 'random' scales its directions "
                          "to the data's RMS image norm, which must be > 0")
    x0 = flat[anchor].astype(np.float32)
    x0.setflags(write=False)
    return x0, rms


@functools.lru_cache(maxsize=256)
def _basis(plane: Plane) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data = dataset_array(plane.dataset)
    shape = data.shape[1:]
    flat = data.reshape(data.shape[0], -1).astype(np.float64)
    x0 = flat[plane.anchor]
    if plane.mode == "random":
        g = np.asarray(jax.random.normal(jax.random.key(plane.seed), (2, flat.shape[1]), jnp.float32), np.float64)
        d1, d2 = _random_directions(g, _anchor_and_rms(plane.dataset, plane.anchor)[1], np)
    else:
        d1 = flat[plane.others[0]] - x0
        d2 = flat[plane.others[1]] - x0
        n1 = float(d1 @ d1)
        if n1 == 0.0:
            raise ConfigError(f"Plane.others[0]={plane.others[0]} equals the anchor's data point; allowed: a data "
                              "point that differs from x0")
        d2 = d2 - (d2 @ d1) / n1 * d1
        if float(np.linalg.norm(d2)) <= 1e-12 * math.sqrt(n1):
            raise ConfigError(f"Plane.others={plane.others} lie on one line with the anchor; allowed: three data "
                              "points that span a plane")
    out = tuple(a.reshape(shape).astype(np.float32) for a in (x0, d1, d2))
    for a in out:
        a.setflags(write=False)
    return out
