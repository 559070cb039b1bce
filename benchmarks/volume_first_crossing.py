"""How often the local-volume radius search ends at the *first* crossing of epsilon along a ray (the star domain's
radius), for ``start="one"`` (the default) and ``start="warm"``, on networks of a stored ``volume_blog`` result.

For each network the estimator runs as the sweep runs it (48 rays x the sweep's epsilons, ``sigma="init"``), the
cost is scanned along every searched ray on ``--points`` log-spaced radii from 0.01 to 1,000, and the first scan
point at or above the ray's epsilon is taken as the first crossing (to one scan step, 0.8% at 1,500 points). Each
search's radius is counted *at* it (within 2% in radius), *beyond* it (more than 2% further out, infinite
included) or *before* it (more than 2% inside: a cost flat within the search's 1% tolerance, or a bump narrower
than a scan step). Only rays whose scan finds a finite crossing are counted.

    .venv/bin/python benchmarks/volume_first_crossing.py [--result results/record-laptop/volume_blog]
        [--activation relu] [--depth 3] [--scale 1.0] [--seeds 2] [--points 1500]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import redshift_jax as rj  # noqa: E402
from redshift_jax.measures import volume as V  # noqa: E402
from redshift_jax.studies._common import sample_params  # noqa: E402


def searched_rays(model, params, x, args, start, weight_scale):
    """The estimate's radii and the (cost_fn, w0, directions, epsilons) its radius search saw."""
    seen = {}
    search = V.star_radii

    def spy(cost_fn, w0, directions, epsilon, *a, **k):
        seen.update(cost_fn=cost_fn, w0=w0, directions=directions, epsilon=np.asarray(epsilon))
        return search(cost_fn, w0, directions, epsilon, *a, **k)

    V.star_radii = spy
    try:
        est = V.network_log_volume(model, params, x, start=start, weight_scale=weight_scale, **args)
    finally:
        V.star_radii = search
    return np.asarray(est.radii).reshape(-1), np.asarray(est.log_volume), seen


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--result", default="results/record-laptop/volume_blog")
    parser.add_argument("--activation", default="relu")
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--points", type=int, default=1500)
    a = parser.parse_args(argv)
    suite = rj.load_suite(a.result)
    ds = suite[a.activation] if isinstance(suite, dict) else suite.sel(activation=a.activation)
    sweep = ds.rj.sweep
    (volume,) = [m for m in sweep.measure_objects if m.name == "volume"]
    kw = volume.kwargs
    eps = [float(kw["epsilon"])] + [float(e) for e in kw["epsilons"] or () if float(e) != float(kw["epsilon"])]
    args = {"n_directions": kw["n_directions"], "epsilon": np.asarray(eps, np.float32), "sigma": kw["sigma"],
            "cost": kw["cost"]}
    x = jnp.asarray(rj.grid(sweep.resolution, 2))
    grid = np.geomspace(1e-2, 1e3, a.points).astype(np.float32)
    counts = {s: np.zeros(3, int) for s in ("one", "warm")}
    for seed in range(a.seeds):
        cell = {"depth": a.depth, "weight_scale": a.scale, "seed": seed}
        if "activation" in sweep.axes:
            cell["activation"] = a.activation
        model, params = sample_params(sweep, cell)
        for start in counts:
            r, est, seen = searched_rays(model, params, x, args, start, a.scale)
            scan = jax.jit(jax.vmap(lambda u: jax.vmap(lambda t: seen["cost_fn"](seen["w0"] + t * u))(grid)))
            costs = np.concatenate([np.asarray(scan(seen["directions"][i:i + 48]))
                                    for i in range(0, seen["directions"].shape[0], 48)])
            above = costs >= np.broadcast_to(seen["epsilon"], (costs.shape[0],))[:, None]
            first = np.where(above.any(1), grid[np.argmax(above, 1)], np.inf)
            ok = np.isfinite(first)
            rr, ff = r[ok], first[ok]
            gap = np.where(np.isfinite(rr), np.log(np.where(np.isfinite(rr), rr, 1.0)) - np.log(ff), np.inf)
            at = np.abs(gap) < 0.02
            beyond = ~at & (gap > 0)
            counts[start] += [at.sum(), beyond.sum(), (~at & ~beyond).sum()]
            print(f"seed {seed} start={start}: log-volume {np.round(est, 1).tolist()}", file=sys.stderr)
    out = {}
    for start, (at, beyond, before) in counts.items():
        n = at + beyond + before
        out[start] = {"rays": int(n), "at": at / n, "beyond": beyond / n, "before": before / n}
        print(f"start={start}: {n} rays with a finite first crossing; at it {at / n:.2f}, beyond it {beyond / n:.2f},"
              f" before it {before / n:.2f}")
    return out


if __name__ == "__main__":
    main()
