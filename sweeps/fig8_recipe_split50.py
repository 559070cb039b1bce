"""Modular sum under another recipe: a 50% train split (C12, "ReLU solves only the low-frequency task").

The default recipe (``sweeps/fig8_modsum.py``) trains on 70% of the 16 x 16 lattice, and there ReLU generalizes
on M = 7 as well as on M = 10. The paper's split is not known, so the claim is re-tested with half the points
for training (128 train / 128 test), everything else as in the default recipe.

Run: ``redshift-jax sweep sweeps/fig8_recipe_split50.py --laptop``, then ``redshift-jax plot PATH``.
LAPTOP: relu, tanh, sin x 3 moduli x 5 prefactors (2^-2, 2^0 .. 2^3) x 4 seeds = 180 trainings.
"""
import runpy
from pathlib import Path

# the Figure 8 grid (sweeps/fig8_modsum.py) with one change of recipe
SWEEP, LAPTOP, QUICK = runpy.run_path(str(Path(__file__).with_name("fig8_modsum.py")))["recipe"](
    "fig8_split50", train_fraction=0.5)
