"""The volume estimator's error against closed forms, per estimator (docs/volume.md's table; issue 23).

    .venv/bin/python benchmarks/volume_closed_forms.py                 # the table (a few minutes on 2 cores)
    .venv/bin/python benchmarks/volume_closed_forms.py --networks      # and real networks against many rays
    .venv/bin/python benchmarks/volume_closed_forms.py --skip-table --nrs-corner   # volume_nrs's -inf corner

Estimators: the default (a quarter uniform, half the prior's direction law, a quarter the prior widened 1.25
times: ``alpha=0.25, widths=(1, 1, 1.25)``), DESIGN.md section 21's literal mixture (``alpha=0.5, widths=(1,)``) and
the widened mixture (``alpha=0.5, widths=(1, 4/3, 2, 20/7)``), each plain (``log mean w_i``) and self-normalised
(``log sum w_i - log sum w_i^inf``), and uniform directions. Per case: the mean absolute error (estimate - truth)
and its spread (min .. max) over the keys. ``--shares``: how many rays the partly saturated network needs on the
prior's own law.
"""

from __future__ import annotations

import argparse
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from redshift_jax.measures import volume as V

WIDENED = V.WIDTHS
ESTIMATORS = {"default": dict(widths=V.DEFAULT_WIDTHS, alpha=V.DEFAULT_ALPHA),
              "DESIGN 21": dict(widths=V.DESIGN_WIDTHS, alpha=V.DESIGN_ALPHA),
              "widened": dict(widths=WIDENED, alpha=V.DESIGN_ALPHA)}


def _never(w):
    return jnp.float32(0.0) * jnp.sum(w)


def cases():
    """(name, cost, w0, epsilon, sigma, truth)."""
    out = []
    for dim in (257, 4417):
        w0 = 0.3 * jax.random.normal(jax.random.key(dim), (dim,))
        out.append((f"never-reached D={dim}", _never, w0, 1e-2, None, 0.0))
    for dim in (300, 2000):
        c = jnp.ones(dim, jnp.float32)
        out.append((f"off-centre ball D={dim}", lambda w, c=c: jnp.sqrt(jnp.sum((w - c) ** 2)), c, math.sqrt(dim),
                    1.0, float(stats.ncx2.logcdf(dim, dim, dim))))
    for dim in (10, 300):
        a = jax.random.normal(jax.random.key(7), (dim,))
        a = a / jnp.linalg.norm(a)
        for t in (-1.5, 1.0):
            w0 = 0.5 * jax.random.normal(jax.random.key(8), (dim,))
            w0 = w0 - (jnp.dot(w0, a) - (t - 1.0)) * a          # one unit inside {a . w < t}
            out.append((f"half-space t={t:g} D={dim}", lambda w, a=a, w0=w0: jax.nn.relu(jnp.dot(a, w - w0)), w0,
                        1.0, 1.0, float(stats.norm.logcdf(t))))
    dim = 12
    s = jnp.linspace(0.2, 3.0, dim)
    w0 = s * jnp.linspace(-1.5, 1.0, dim)
    for rho in (1.0, 3.0):
        out.append((f"whitened ball rho={rho:g} D=12", lambda w, s=s, w0=w0: jnp.sqrt(jnp.sum(((w - w0) / s) ** 2)),
                    w0, rho, s, float(stats.ncx2.logcdf(rho ** 2, dim, float(jnp.sum((w0 / s) ** 2))))))
    return out


def run(cost, w0, eps, sigma, keys, rays, **options):
    """(plain, self-normalised) estimates over ``keys`` (one compile)."""
    fn = jax.jit(jax.vmap(lambda k: V.log_volume(cost, w0, k, rays, eps, sigma, normalize=False, **options)))
    est = fn(keys)
    plain = np.asarray(est.log_volume, np.float64)
    return plain, plain - np.asarray(est.full_ray, np.float64)


def row(errors):
    e = np.asarray(errors)
    return f"{np.mean(np.abs(e)):.3f} ({e.min():+.2f} .. {e.max():+.2f})"


def table(n_keys, rays):
    keys = jax.random.split(jax.random.key(2026), n_keys)
    heads = " | ".join(f"{name} | {name}, self-norm." for name in ESTIMATORS)
    print(f"| case | truth | {heads} | uniform directions |")
    print("|---|---|" + "---|" * (2 * len(ESTIMATORS) + 1))
    for name, cost, w0, eps, sigma, truth in cases():
        cells = []
        for options in ESTIMATORS.values():
            plain, normed = run(cost, w0, eps, sigma, keys, rays, **options)
            cells += [row(plain - truth), row(normed - truth)]
        uni = jax.jit(jax.vmap(lambda k: V.log_volume(cost, w0, k, rays, eps, sigma, directions="uniform")))(keys)
        cells.append(row(np.asarray(uni.log_volume, np.float64) - truth))
        print(f"| {name} | {truth:.2f} | " + " | ".join(cells) + " |", flush=True)


def networks(n_keys, rays, reference_rays):
    """Blog-grid networks (tanh, torch prior, KL over the 16 x 16 lattice, sigma='init'): each estimator's error
    against the mean of the self-normalised and plain widened estimates with ``reference_rays`` rays."""
    import redshift_jax as rj

    x = jnp.asarray(rj.grid(16, 2))
    keys = jax.random.split(jax.random.key(5), n_keys)
    heads = " | ".join(f"{name} | {name}, self-norm." for name in ESTIMATORS)
    print(f"| network | D | reference ({reference_rays} rays) | {heads} | saturated | resolved |")
    print("|---|---|---|" + "---|" * (2 * len(ESTIMATORS) + 2))
    for depth, scale, act in ((1, 1.0, "tanh"), (1, 3.16, "tanh"), (2, 1.78, "tanh"), (2, 3.16, "relu")):
        model = rj.MLP(activation=act, depth=depth, width=64, prior="torch")
        params = model.init(jax.random.key(0), weight_scale=scale)

        def est(k, n, widths, alpha, _m=model, _p=params, _s=scale):
            return V.network_log_volume(_m, _p, x, k, n_directions=n, sigma="init", weight_scale=_s, widths=widths,
                                        alpha=alpha, normalize=False)

        ref = jax.jit(lambda k: est(k, reference_rays, WIDENED, V.DESIGN_ALPHA))(jax.random.key(99))
        ref_plain = float(ref.log_volume)
        ref_norm = ref_plain - float(ref.full_ray)
        truth = (ref_plain + ref_norm) / 2
        cells = []
        for options in ESTIMATORS.values():
            out = jax.jit(jax.vmap(lambda k, o=options: est(k, rays, o["widths"], o["alpha"])))(keys)
            plain = np.asarray(out.log_volume, np.float64)
            cells += [row(plain - truth), row(plain - np.asarray(out.full_ray) - truth)]
        dim = int(jax.flatten_util.ravel_pytree(params)[0].shape[0])
        print(f"| {act} depth {depth} scale {scale:g} | {dim} | {truth:.1f} (plain {ref_plain:.1f}, self-norm. "
              f"{ref_norm:.1f}) | " + " | ".join(cells) + f" | {float(ref.saturated):.2f} | {bool(ref.resolved)} |",
              flush=True)


def shares(n_keys, rays, reference=-2.4):
    """How many rays the partly saturated network needs on the prior's own law (docs/volume.md "Why this default"):
    tanh, depth 2, scale 1.78 (D = 4,417) against its 1,024-ray estimate (``--networks``: -2.4), per component mix,
    the 5 / 25 / 50 / 75 / 95% quantiles of ``estimate - reference`` over ``n_keys`` keys."""
    import redshift_jax as rj

    x = jnp.asarray(rj.grid(16, 2))
    model = rj.MLP(activation="tanh", depth=2, width=64, prior="torch")
    params = model.init(jax.random.key(0), weight_scale=1.78)
    keys = jax.random.split(jax.random.key(11), n_keys)
    mixes = {"DESIGN 21 (24 prior rays)": (V.DESIGN_WIDTHS, V.DESIGN_ALPHA),
             "default (24 prior rays)": (V.DEFAULT_WIDTHS, V.DEFAULT_ALPHA),
             "(1, 1, 1, 1.25), alpha 0.5 (18)": ((1.0, 1.0, 1.0, 1.25), 0.5),
             "(1, 1.25), alpha 0.5 (12)": ((1.0, 1.25), 0.5), "(1, 4/3), alpha 0.5 (12)": ((1.0, 4 / 3), 0.5),
             "WIDTHS, alpha 0.5 (6)": (V.WIDTHS, 0.5)}
    print("| mix (rays on the prior's own law) | quantiles 5 / 25 / 50 / 75 / 95% | share within 1 nat |")
    print("|---|---|---|")
    for name, (widths, alpha) in mixes.items():
        out = jax.jit(jax.vmap(lambda k, w=widths, a=alpha: V.network_log_volume(
            model, params, x, k, n_directions=rays, sigma="init", weight_scale=1.78, widths=w, alpha=a,
            normalize=False).log_volume))(keys)
        err = np.asarray(out, np.float64) - reference
        q = " / ".join(f"{v:+.1f}" for v in np.percentile(err, [5, 25, 50, 75, 95]))
        print(f"| {name} | {q} | {np.mean(np.abs(err) < 1):.2f} |", flush=True)


def nrs_corner():
    """The volume_nrs corner that gave -inf (relu, depth 4, weight scale 50, MSE on the 16 x 16 sub-grid, 32 rays),
    through the sweep's path: the estimate, ``unmoved`` and ``resolved`` at depth 1..4."""
    import redshift_jax as rj

    sweep = rj.Sweep(model=rj.MLP(activation="relu", width=64), resolution=64, name="nrs corner",
                     axes={"depth": [1, 2, 3, 4], "weight_scale": [50.0], "seed": [0]},
                     measures=(("volume", {"cost": "mse", "n_directions": 32, "resolution": 16}),))
    ds = rj.run_sweep(sweep, progress=False)
    for name in ("volume", "volume_unmoved", "volume_resolved", "volume_ess"):
        print(name, ds[name].values.ravel())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=6)
    parser.add_argument("--rays", type=int, default=48)
    parser.add_argument("--networks", action="store_true", help="also real networks against a many-ray reference")
    parser.add_argument("--reference-rays", type=int, default=2048)
    parser.add_argument("--skip-table", action="store_true")
    parser.add_argument("--shares", action="store_true", help="the partly saturated network per component mix")
    parser.add_argument("--nrs-corner", action="store_true", help="the volume_nrs corner that was -inf")
    args = parser.parse_args()
    start = time.time()
    if not args.skip_table:
        table(args.keys, args.rays)
    if args.networks:
        networks(args.keys, args.rays, args.reference_rays)
    if args.shares:
        shares(args.keys, args.rays)
    if args.nrs_corner:
        nrs_corner()
    print(f"\n{args.keys} keys, {args.rays} rays; {time.time() - start:.0f} s wall")


if __name__ == "__main__":
    main()
