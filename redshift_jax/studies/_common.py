"""What every study shares: statistics over seeds, Spearman's rho, ``save_figure``, the measures' labels, and the
``ds.rj`` accessor of a result (DESIGN.md section 18)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple

import numpy as np
import xarray as xr

from .._report import save_figure, spearman
from ..errors import ConfigError
from ..sweep.engine import run_sweep, sample_network, sample_params
from ..sweep.spec import Sweep

__all__ = ["Network", "ResultAccessor", "MEASURE_LABELS", "each_part", "mean_se", "save_figure", "spearman",
           "sweep_dict"]

# the measures' names on the studies' figures
MEASURE_LABELS = {
    "fourier": "Fourier (nrs)", "fourier_noise": "Fourier (noise = 1)", "fourier_dct": "Fourier (dct, seam-free)",
    "fourier_mirror": "Fourier (mirror, seam-free)", "chebyshev": "Chebyshev order",
    "chebyshev_energy": "Chebyshev order (energy)", "legendre_energy": "Legendre order (energy)",
    "legendre": "Legendre order", "lz": "LZ78 (normalized)", "lz76": "LZ76 (normalized)", "lzw": "LZW (normalized)",
}

# stored variables that are not a measure's values
_NOT_MEASURES = ("finite", "values")


def show_image(ax, img, title: str | None = None, ylabel: str | None = None) -> None:
    """One example function in a grid of panels: the image (diverging colours, origin lower left), no ticks, the
    column title on the first row and the row label on the first column (None: leave it off)."""
    ax.imshow(img, cmap="RdBu_r", origin="lower")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=7)
    if ylabel is not None:
        ax.set_ylabel(ylabel, fontsize=8)


def mean_se(values, axis: int = -1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, se, n)`` over ``axis``, ignoring NaN and infinite values: the mean of the finite values, its
    standard error ``sd / sqrt(n)`` (``ddof=1``; NaN with fewer than two) and their count ``n``."""
    x = np.asarray(values, np.float64)
    finite = np.isfinite(x)
    n = finite.sum(axis=axis)
    total = np.where(finite, x, 0.0).sum(axis=axis)
    mean = np.where(n > 0, total / np.maximum(n, 1), np.nan)
    dev = np.where(finite, x - np.expand_dims(mean, axis), 0.0)
    var = np.where(n > 1, (dev * dev).sum(axis=axis) / np.maximum(n - 1, 1), np.nan)
    return mean, np.sqrt(var / np.maximum(n, 1)), n


def each_part(plot: Callable, parts: Mapping[str, Any], out_dir) -> list[Path]:
    """``plot(ds, folder)`` for every part of a result: into ``out_dir`` for a single part, else into
    ``out_dir/<part name>``; the written paths, in order."""
    paths = []
    for name, ds in parts.items():
        paths += plot(ds, Path(out_dir) if len(parts) == 1 else Path(out_dir) / name)
    return paths


def sweep_dict(ds) -> dict:
    """The stored sweep specification of a result (the JSON of ``Sweep.to_dict``)."""
    if "sweep" not in ds.attrs:
        raise ConfigError("this dataset has no stored sweep (attrs['sweep']); allowed: a result of run_sweep or "
                          "load_dataset")
    return json.loads(ds.attrs["sweep"])


class Network(NamedTuple):
    """One stored network: its model (at the cell's structural values), parameters and field (or tokens), and its
    network measures' values, exactly as the sweep computed them."""
    model: Any
    params: Any
    field: np.ndarray
    values: dict


@xr.register_dataset_accessor("rj")
class ResultAccessor:
    """``ds.rj``: a redshift_jax result's sweep, measures, statistics and networks."""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds
        self._sweep = None

    @property
    def sweep(self):
        """The ``Sweep`` rebuilt from the stored specification."""
        if self._sweep is None:
            self._sweep = Sweep.from_dict(sweep_dict(self._ds))
        return self._sweep

    @property
    def measures(self) -> list[str]:
        """The measures' variables, in the order the sweep listed its measures (a store lists variables
        alphabetically), then any other stored variables (a measure's extra outputs and diagnostics)."""
        ds = self._ds
        listed = sweep_dict(ds)["measures"] if "sweep" in ds.attrs else []
        listed = [m if isinstance(m, str) else m[1].get("label", m[0]) for m in listed]   # [name, {args}] entries
        present = [m for m in ds.data_vars if m not in _NOT_MEASURES]
        return [m for m in listed if m in present] + [m for m in present if m not in listed]

    def mean_se(self, dim: str = "seed") -> tuple[xr.Dataset, xr.Dataset]:
        """``(mean, se)`` over ``dim`` of every measure variable that has it, ignoring non-finite values (see
        ``mean_se``); the other variables are left out."""
        ds = self._ds
        if dim not in ds.dims:
            raise ConfigError(f"mean_se: the result has no dimension {dim!r}; allowed: {', '.join(map(str, ds.dims))}")
        means, ses = {}, {}
        for name in self.measures:
            da = ds[name]
            if dim not in da.dims or not np.issubdtype(da.dtype, np.number):
                continue
            m, s, _ = mean_se(da.values, axis=da.get_axis_num(dim))
            dims = [d for d in da.dims if d != dim]
            coords = {d: da.coords[d] for d in dims if d in da.coords}
            means[name] = xr.DataArray(m, dims=dims, coords=coords)
            ses[name] = xr.DataArray(s, dims=dims, coords=coords)
        return xr.Dataset(means), xr.Dataset(ses)

    def network(self, **cell) -> Network:
        """The network of one stored cell, re-created from its key: its field (or tokens) and network measures'
        values computed by the engine on a sweep of this one cell (bitwise the stored ones: a network's values do
        not depend on the rest of the grid), and its parameters. Axes left out take their only value, the model's
        field or the numeric axis's default (seed 0)."""
        sweep = self.sweep
        allowed = set(sweep.axes) | {"seed"}
        unknown = [k for k in cell if k not in allowed]
        if unknown:
            raise ConfigError(f"network: {unknown[0]!r} is not an axis of this sweep; allowed: "
                              f"{', '.join(sorted(allowed))}")
        full = {k: v[0] for k, v in sweep.axes.items() if len(v) == 1}
        full.update(cell)
        for name, value in full.items():
            if name in sweep.axes and value not in sweep.axes[name]:
                raise ConfigError(f"network: {name}={value!r} is not in the sweep; allowed: "
                                  f"{', '.join(map(repr, sweep.axes[name]))}")
        if sweep.decodes_tokens:
            tokens, values = sample_network(sweep, full)
            return Network(sweep.model, None, tokens, values)
        axes = {name: [full[name]] if name in full else values for name, values in sweep.axes.items()}
        axes.setdefault("seed", [full.get("seed", 0)])
        one = run_sweep(sweep.replace(axes=axes, keep_values=True), progress=False)
        sel = one.isel({d: 0 for d in one["values"].dims if d in axes})
        values = {name: np.asarray(sel[name].values) for name in self.measures if name in sel and
                  sel[name].ndim == 0}
        model, params = sample_params(sweep, full)
        return Network(model, params, np.asarray(sel["values"].values), values)
