"""Kinks of random ReLU networks (DESIGN.md section 15; Holmes, arXiv 2304.09837).

Holmes: where a random one-hidden-layer ReLU network bends depends on the *shape* of the parameter distribution,
not its size. On [-1, 1], with iid uniform (or Gaussian) weights and biases half the units put a kink inside
(E[K] = n/2); with the weight vector uniform in a ball (biases U(-T, T), T the radius) only n P_n ~ sqrt(2n/pi)
of n do. The closed forms are in ``redshift_jax.studies.kinks``; ``holmes_settings`` gives the settings used here.

A suite of parts (``FIGURE = "kinks"``, drawn by ``redshift_jax.studies.kinks.plot_kinks``):

- ``uniform``, ``normal``: one hidden layer, 1-D input, width axis x seeds, weight and bias scale 1 (uniform:
  W, b ~ U(-1, 1); normal: W ~ N(0, 1 / fan_in) = N(0, 1), b ~ N(0, 1)). Measures: ``kinks`` on [-1, 1] and
  ``kinks_R0p5``, ``kinks_R2`` on [-0.5, 0.5] and [-2, 2] (where the priors' P(R) differ).
- ``ball_n<width>``: the ``ball`` prior at one width each, bias scale = the first layer's ball radius
  T = sqrt(2 (n + 2) / (n + 1)) (so b ~ U(-T, T), Holmes' setting; T depends on the width, hence one part per width).
- ``depth_<prior>_L<depth>``: depth 1..6 at a fixed total of 60 hidden units (width 60 / depth), priors
  ``uniform`` and ``paper``: how deep ReLU networks place their kinks.
- ``complexity_1d``: kinks beside the Fourier and LZ complexity of the same networks (1-D input, 256-point grid,
  width 64, paper prior, depth 1..6 from one trunk, weight scales 0.5..20).
- ``complexity_2d``: linear regions beside Fourier and LZ on the NRS 64 x 64 grid (width 16, depth 1..4).

The engine still evaluates every network on its grid (8 points for the counting parts: negligible). Each prior
has its own ``base_seed``: with a shared one the uniform and normal parts would draw the same uniform bits (JAX's
normal sampler is a monotone transform of them), so their counts would coincide network by network.
"""
import redshift_jax as rj
from redshift_jax.studies.kinks import ball_radius

FIGURE = "kinks"
WIDTHS = (1, 2, 3, 5, 10, 30, 100, 300, 1000)
TOTAL_UNITS = 60
OTHER_R = (0.5, 2.0)   # kinks also counted on [-R, R]


def make(widths=WIDTHS, seeds=10_000, radii=OTHER_R, depths=range(1, 7), depth_priors=("uniform", "paper"),
         depth_seeds=2000, complexity_depths=range(1, 7), complexity_scales=(0.5, 1.0, 2.0, 5.0, 10.0, 20.0),
         complexity_seeds=100, regions_depths=range(1, 5), regions_scales=(1.0, 3.0, 10.0), regions_seeds=20):
    count = dict(resolution=8, measures=("kinks",))
    other = tuple(("kinks", {"lo": -r, "hi": r, "label": f"kinks_R{r:g}".replace(".", "p")}) for r in radii)
    holmes = dict(resolution=8, measures=("kinks",) + other)
    parts = {}
    for base_seed, prior in enumerate(("uniform", "normal")):
        parts[prior] = rj.Sweep(model=rj.MLP(in_dim=1, depth=1, prior=prior), base_seed=base_seed,
                                axes={"width": list(widths), "seed": list(range(seeds))}, name=f"kinks {prior}",
                                **holmes)
    for n in widths:
        parts[f"ball_n{n}"] = rj.Sweep(model=rj.MLP(in_dim=1, depth=1, width=n, prior="ball"), base_seed=2,
                                       axes={"bias_scale": [ball_radius(n)], "seed": list(range(seeds))},
                                       name=f"kinks ball n={n}", **holmes)
    for prior in depth_priors:
        for depth in depths:
            parts[f"depth_{prior}_L{depth}"] = rj.Sweep(
                model=rj.MLP(in_dim=1, depth=depth, width=TOTAL_UNITS // depth, prior=prior), base_seed=3,
                axes={"seed": list(range(depth_seeds))}, name=f"kinks depth {depth} {prior}", **count)
    if complexity_seeds:
        parts["complexity_1d"] = rj.Sweep(
            model=rj.MLP(in_dim=1, width=64, prior="paper"),
            axes={"depth": list(complexity_depths), "weight_scale": list(complexity_scales),
                  "seed": list(range(complexity_seeds))},
            resolution=256, measures=("kinks", "fourier", "lz"), name="kinks vs complexity (1-D)")
    if regions_seeds:
        parts["complexity_2d"] = rj.Sweep(
            model=rj.MLP(in_dim=2, width=16, prior="paper"),
            axes={"depth": list(regions_depths), "weight_scale": list(regions_scales),
                  "seed": list(range(regions_seeds))},
            resolution=64, measures=("linear_regions", "fourier", "lz"), name="linear regions vs complexity (2-D)")
    return parts


# Compiling dominates (about 25 variants); the counting itself is cheap, so LAPTOP keeps section 15's 10^4 seeds
# per width and prior (about 2.5 minutes on 2 cores) and only the depth and complexity parts are larger in SWEEP.
SWEEP = make(seeds=10_000, depth_seeds=10_000, complexity_seeds=500, regions_seeds=100)
LAPTOP = make(seeds=10_000, depth_seeds=2000, complexity_seeds=128, regions_seeds=32)
QUICK = make(widths=(1, 10), seeds=200, radii=(), depths=(1, 2), depth_priors=("uniform",), depth_seeds=100,
             complexity_depths=(1, 2), complexity_scales=(1.0, 5.0), complexity_seeds=20,
             regions_depths=(1, 2), regions_scales=(1.0,), regions_seeds=4)
