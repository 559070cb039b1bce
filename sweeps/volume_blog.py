"""Local volume of random networks over depth and weight scale (DESIGN.md section 14; Jaburi & Belrose's blog
grid, the estimator of EleutherAI's tyche).

The blog's grid: relu, gelu, tanh, sigmoid, gaussian x 1..5 hidden layers x weight scale {0.32, 0.56, 1.0, 1.78,
3.16} x 100 seeds, PyTorch's default init (``prior="torch"``). The blog does not publish its network, so we use the
modular-sum network of section 10 instead: ``MLP(width=64, in_dim=2, prior="torch")`` on the 16 x 16 lattice
(``resolution=16`` on [-1, 1]^2 is exactly the modular-sum inputs ``x / 15 * 2 - 1``), a scalar logit, and the
Bernoulli KL cost over the lattice (``("volume", {"cost": "kl"})``, epsilon 1e-2, the importance-sampled estimator
of DESIGN.md section 21, Gaussian measure with ``sigma="init"``: each parameter's own prior std, ``a / sqrt(3
fan_in)`` for weights, ``1 / sqrt(3 fan_in)`` for biases). The weight scale multiplies the weights' bounds ``1 /
sqrt(fan_in)``; biases keep PyTorch's default. The same rays are also searched at every epsilon of ``EPSILONS``
(``volume_eps0.0001`` ... ``volume_eps1``, with ``_resolved`` and ``_saturated``), in the same program. Depth is
read out of one trunk per seed (the depth-d network is the first d layers plus the
shared readout). Fourier and LZ complexity of the same networks' 16 x 16 logit images sit beside the volume.

One sweep over activation x depth x weight scale x seed (the activations share one compiled function; the volume
measure sees each network's own activation), drawn by ``redshift_jax.studies.volume.plot_volume`` (``FIGURE =
"volume"``) one activation at a time: heatmaps of log-volume and per-parameter log-volume (depth x weight scale),
volume against Fourier and LZ with Spearman rho, and ``volume.md``. Until 2026-12-07 this file was a suite of one
part per activation (``results/record-laptop/volume_blog/{activation}.zarr``); each network's numbers are bitwise
the same in both (checked at QUICK size), and ``plot_volume`` draws either.

    redshift-jax sweep sweeps/volume_blog.py --laptop --figures figures/volume_blog
"""
import redshift_jax as rj

FIGURE = "volume"
ACTIVATIONS = ("relu", "gelu", "tanh", "sigmoid", "gaussian")
SCALES = (0.32, 0.56, 1.0, 1.78, 3.16)


EPSILONS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def make(activations=ACTIVATIONS, depths=range(1, 6), scales=SCALES, seeds=100, n_directions=100, epsilon=1e-2,
         epsilons=EPSILONS, name="volume_blog"):
    volume = ("volume", {"cost": "kl", "n_directions": n_directions, "epsilon": epsilon, "sigma": "init",
                         "epsilons": list(epsilons)})
    return rj.Sweep(model=rj.MLP(width=64, in_dim=2, prior="torch"),
                    axes={"activation": list(activations), "depth": list(depths), "weight_scale": list(scales),
                          "seed": list(range(seeds))},
                    resolution=16, measures=("fourier", "lz", volume), name=name)


SWEEP = make(seeds=100, n_directions=100)    # 2,500 networks (x 5 depths from one trunk), 100 rays each
# 2026-12-06: with 2 seeds (--set seed=0,1) 17 minutes on 2 CPU cores shared with other jobs (load average 13-16);
# the 16 seeds below take several times that (the epsilon axis searches every ray five times).
LAPTOP = make(seeds=16, n_directions=48, name="volume_blog_laptop")
QUICK = make(activations=("relu", "tanh"), depths=(1, 2), scales=(0.32, 3.16), seeds=2, n_directions=4,
             epsilons=(1e-3, 1e-1), name="volume_blog_quick")
