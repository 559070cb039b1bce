"""Modular sum under another recipe: a 50% train split (C12, "ReLU solves only the low-frequency task").

The default recipe (``sweeps/fig8_modsum.py``) trains on 70% of the 16 x 16 lattice, and there ReLU generalizes
on M = 7 as well as on M = 10. The paper's split is not known, so the claim is re-tested with half the points
for training (128 train / 128 test), everything else as in the default recipe.

Run: ``redshift-jax sweep sweeps/fig8_recipe_split50.py --laptop``, then ``redshift-jax plot PATH``.
LAPTOP: relu, tanh, sin x 3 moduli x 5 prefactors (2^-2, 2^0 .. 2^3) x 4 seeds = 180 trainings.
"""
import redshift_jax as rj
import redshift_jax.train  # noqa: F401  (rj.train)

SWEEP = rj.train.ModularSum(
    activations=("relu", "gelu", "swish", "tanh", "gaussian", "sin"),
    moduli=(10, 7, 4),
    prefactors=tuple(2.0 ** k for k in range(-3, 6)),
    seeds=tuple(range(8)),
    train_fraction=0.5,
    name="fig8_split50",
)

LAPTOP = SWEEP.replace(activations=("relu", "tanh", "sin"), prefactors=(0.25, 1.0, 2.0, 4.0, 8.0),
                       seeds=tuple(range(4)), name="fig8_split50_laptop")

QUICK = SWEEP.replace(activations=("relu", "sin"), moduli=(10, 4), prefactors=(0.25, 1.0, 4.0), seeds=(0, 1),
                      steps=600, name="fig8_split50_quick")
