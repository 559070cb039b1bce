"""Sweeps: a whole grid of random networks, sampled and measured in one jitted call per variant."""

from .engine import run_sweep
from .spec import NUMERIC_AXES, STRUCTURAL_AXES, Sweep
from .suite import load_suite, run_suite

__all__ = ["Sweep", "run_sweep", "run_suite", "load_suite", "NUMERIC_AXES", "STRUCTURAL_AXES"]
