"""Studies: the paper's figures and tables, closed forms and reports, built on stored results (DESIGN.md section 18).

One module per topic: ``nrs`` (Figures 3-6, Table 1), ``kinks`` (Holmes' closed forms), ``volume``, ``nngp``
(the width limit), ``gpt2`` (Figure 10), ``architectures`` (MLP, CNN and ViT on planes), and ``record`` (every
figure of ``docs/``, ``redshift-jax figures``).
Studies import downward (models, measures, sweep); nothing below ``studies/`` imports them.

``FIGURES`` maps the name a sweep file sets (``FIGURE = "heatmaps"``) to ``"module:function"`` inside
``studies/``; ``plot_result`` imports that module by name when the figure is drawn. Every such function is called
as ``fig(parts, out_dir, claims)`` (``parts``: the result's Datasets by part name; ``claims``: the sweep file's
``CLAIMS``, ``{}`` when it has none) and returns the written paths.

``_common`` holds what every study shares: the statistics (``mean_se``, ``spearman``), ``save_figure``, the
measures' labels and the ``ds.rj`` xarray accessor, registered when ``redshift_jax`` is imported::

    ds = rj.run_sweep(sweep)
    ds.rj.sweep              # the Sweep rebuilt from the stored spec
    ds.rj.measures           # the measures' variables, in the sweep's order
    mean, se = ds.rj.mean_se("seed")
    net = ds.rj.network(activation="tanh", depth=3, weight_scale=10.0, seed=2)   # params and field of one cell
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable, Mapping

from ..errors import ConfigError
from ._common import Network, ResultAccessor, mean_se, spearman

__all__ = ["FIGURES", "Network", "ResultAccessor", "figure_function", "mean_se", "plot_path", "plot_result",
           "spearman"]

FIGURES = {
    "auto": "nrs:figure_heatmaps",   # a sweep file without FIGURE: heatmaps, or the summary plots
    "heatmaps": "nrs:figure_heatmaps",
    "curves": "nrs:figure_curves",
    "correlations": "nrs:figure_correlations",
    "table1": "nrs:plot_table1",
    "components": "nrs:plot_component_maps",
    "gallery": "nrs:figure_gallery",
    "kinks": "kinks:figure_kinks",
    "fig10": "gpt2:figure_fig10",
    "volume": "volume:figure_volume",
    "width_limit": "nngp:figure_width_limit",
    "architectures": "architectures:figure_architectures",
}


def figure_function(figure: str) -> Callable:
    """The function that draws ``figure`` (a name of ``FIGURES``), its study module imported by name."""
    if figure not in FIGURES:
        raise ConfigError(f"figure={figure!r} is unknown; allowed: {', '.join(FIGURES)}")
    module, name = FIGURES[figure].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def plot_result(result, figure: str, out_dir: str | Path, claims: Mapping[str, str] | None = None) -> list[Path]:
    """Draw ``figure`` (a name of ``FIGURES``) for a Dataset or a dict of parts; the written paths."""
    parts = result if isinstance(result, dict) else {"main": result}  # (a Dataset is a Mapping too)
    return figure_function(figure)(parts, out_dir, claims or {})


def plot_path(path: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Draw a stored result (a sweep, a suite folder or a training run) into ``out_dir`` (default
    ``figures/NAME``) with its own figure; return the files written."""
    path = Path(path)
    out_dir = Path(out_dir) if out_dir else Path("figures") / path.name.removesuffix(".zarr")
    from ..sweep.files import load_result

    result, figure, claims = load_result(path)
    if not isinstance(result, dict) and str(result.attrs.get("kind", "")).startswith("train_"):
        from ..train import plots as train_plots

        return train_plots.plot(result, out_dir)
    return plot_result(result, figure, out_dir, claims)
