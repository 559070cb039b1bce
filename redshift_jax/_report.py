"""What the reports below ``studies/`` share with the studies: Spearman's rho (``train.analysis``,
``measures.calibration``) and ``save_figure`` (``measures.calibration``'s figure). ``studies/_common`` re-exports
both, so a study imports them from there; this module only keeps them below ``studies/`` (DESIGN.md section 18:
nothing below ``studies/`` imports it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["save_figure", "spearman"]


def save_figure(fig, path: Path) -> Path:
    """Write ``fig`` to ``path`` (PNG at 110 dpi, the figures' common resolution) and close it."""
    import matplotlib.pyplot as plt  # loaded already: ``fig`` is a matplotlib figure

    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="mergesort")
    ranks = np.empty(v.size)
    ranks[order] = np.arange(v.size)
    _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / counts)[inverse]


def spearman(a, b, mask=None) -> float:
    """Spearman rank correlation (average ranks for ties) of the pairs where both are finite (and ``mask`` holds);
    NaN with fewer than three pairs or a constant side."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    keep = np.isfinite(a) & np.isfinite(b)
    if mask is not None:
        keep &= np.asarray(mask, bool).ravel()
    a, b = a[keep], b[keep]
    if a.size < 3:
        return float("nan")
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")
