"""Sweeps: a whole grid of random networks, sampled and measured in one jitted call per variant."""

from .engine import run_sweep
from .spec import NUMERIC_AXES, STRUCTURAL_AXES, Sweep

__all__ = ["Sweep", "run_sweep", "NUMERIC_AXES", "STRUCTURAL_AXES"]
