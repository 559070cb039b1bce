"""Modular sum under another recipe: 3 input dimensions (C12, "ReLU solves only the low-frequency task").

Label ``1[(x0 + x1 + x2) mod M < M/2]`` on the lattice {0..7}^3 (512 points, 70% train), everything else as in
the default recipe (``sweeps/fig8_modsum.py``, 16 x 16 = 256 points). n = 8 rather than 16 because {0..15}^3 has
4,096 points: measured 9.7 ms per network-step against 0.26-0.86 for 256 points on the shared 2-core CPU, too
slow for this machine. The complexities read the slice x2 = 0 (an 8 x 8 image); training and accuracies use all
512 points.

Run: ``redshift-jax sweep sweeps/fig8_recipe_dim3.py --laptop``, then ``redshift-jax plot PATH``.
LAPTOP: relu, tanh, sin x 3 moduli x 5 prefactors (2^-2, 2^0 .. 2^3) x 4 seeds = 180 trainings.
"""
import redshift_jax as rj
import redshift_jax.train  # noqa: F401  (rj.train)

SWEEP = rj.train.ModularSum(
    activations=("relu", "gelu", "swish", "tanh", "gaussian", "sin"),
    moduli=(10, 7, 4),
    prefactors=tuple(2.0 ** k for k in range(-3, 6)),
    seeds=tuple(range(8)),
    n=8,
    dim=3,
    name="fig8_dim3",
)

LAPTOP = SWEEP.replace(activations=("relu", "tanh", "sin"), prefactors=(0.25, 1.0, 2.0, 4.0, 8.0),
                       seeds=tuple(range(4)), name="fig8_dim3_laptop")

QUICK = SWEEP.replace(activations=("relu", "sin"), moduli=(10, 4), prefactors=(0.25, 1.0, 4.0), seeds=(0, 1),
                      steps=600, name="fig8_dim3_quick")
