"""Regular input grids on [lo, hi]^dim and integer lattices."""

from __future__ import annotations

import numpy as np

from .errors import ConfigError
from .validate import check_int

__all__ = ["grid", "lattice"]


def _mesh(axis_values: np.ndarray, dim: int) -> np.ndarray:
    # Coordinate 0 varies fastest, so for dim=2 ``y.reshape(res, res)[i, j]`` is row i (2nd coordinate),
    # column j (1st coordinate): the image convention of matplotlib's imshow.
    mesh = np.meshgrid(*([axis_values] * dim), indexing="ij")
    return np.stack([m.reshape(-1) for m in reversed(mesh)], axis=-1)


def grid(resolution: int = 64, dim: int = 2, lo: float = -1.0, hi: float = 1.0,
         dtype=np.float32) -> np.ndarray:
    """Regular grid of ``resolution**dim`` points on ``[lo, hi]^dim`` (both ends included).

    Returns a numpy array of shape ``(resolution**dim, dim)``; for ``dim=2``,
    ``values.reshape(resolution, resolution)[i, j]`` is the point with 2nd coordinate ``i`` and 1st ``j``.

    Example:
      >>> from redshift_jax import grid
      >>> grid(3, 2)[:4].tolist()
      [[-1.0, -1.0], [0.0, -1.0], [1.0, -1.0], [-1.0, 0.0]]
    """
    for name, value in (("resolution", resolution), ("dim", dim)):
        check_int(f"grid {name}", value, minimum=1)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ConfigError(f"grid lo={lo!r}, hi={hi!r} is not allowed; need finite lo < hi")
    if resolution == 1:
        axis = np.array([(lo + hi) / 2.0])
    else:
        axis = np.linspace(lo, hi, resolution)
    return _mesh(axis, dim).astype(dtype)


def lattice(n: int, dim: int) -> np.ndarray:
    """Every integer point of ``{0..n-1}^dim``, shape ``(n**dim, dim)``, coordinate 0 fastest (int32).

    Example:
      >>> from redshift_jax import lattice
      >>> lattice(2, 2).tolist()
      [[0, 0], [1, 0], [0, 1], [1, 1]]
    """
    for name, value in (("n", n), ("dim", dim)):
        check_int(f"lattice {name}", value, minimum=1)
    return _mesh(np.arange(n), dim).astype(np.int32)
