"""Modular sum under another recipe: 3 input dimensions (C12, "ReLU solves only the low-frequency task").

Label ``1[(x0 + x1 + x2) mod M < M/2]`` on the lattice {0..7}^3 (512 points, 70% train), everything else as in
the default recipe (``sweeps/fig8_modsum.py``, 16 x 16 = 256 points). n = 8 rather than 16 because {0..15}^3 has
4,096 points: measured 9.7 ms per network-step against 0.26-0.86 for 256 points on the shared 2-core CPU, too
slow for this machine. The complexities read the slice x2 = 0 (an 8 x 8 image); training and accuracies use all
512 points.

Run: ``redshift-jax sweep sweeps/fig8_recipe_dim3.py --laptop``, then ``redshift-jax plot PATH``.
LAPTOP: relu, tanh, sin x 3 moduli x 5 prefactors (2^-2, 2^0 .. 2^3) x 4 seeds = 180 trainings.
"""
import runpy
from pathlib import Path

# the Figure 8 grid (sweeps/fig8_modsum.py) with one change of recipe
SWEEP, LAPTOP, QUICK = runpy.run_path(str(Path(__file__).with_name("fig8_modsum.py")))["recipe"](
    "fig8_dim3", n=8, dim=3)
