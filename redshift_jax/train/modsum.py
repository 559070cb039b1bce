"""The modular-sum task (the paper's Figures 7-8) and the quadratic fit of the best prefactor.

Each input is a point of the integer lattice ``{0..n-1}^dim`` fed as ``x / (n - 1) * 2 - 1``; its label is
``1[(sum_i x_i) mod M < M / 2]``. A per-seed random permutation puts the first ``round(train_fraction * n^dim)``
points in the training set and the rest in the test set. Lower moduli are higher-frequency functions of x.

Keys: a seed's key is ``fold_in(key(base_seed), seed)``; from it ``fold_in(., 0)`` draws the initial
parameters, ``fold_in(., 1)`` the split (and ``fold_in(., 2)`` minibatches, where a task has any). So a seed's
run is the same whatever else is in the grid, and the same seed has the same split and initial parameters for
every modulus, prefactor and activation (paired comparisons).

Diverged networks: a network whose training loss turned non-finite at any step, or whose final training loss,
parameters or optimizer state are non-finite, has ``diverged = True`` (a boolean with the dims of the
accuracies) and NaN ``train_accuracy``, ``test_accuracy`` and every ``<measure>_final`` instead of the
chance-level numbers its broken function would score; its ``<measure>_init`` are kept. Means
with ``skipna`` (xarray's default) and ``quadratic_peak`` leave such networks out; count them with
``ds.diverged.sum()``. Networks that did not diverge get exactly the numbers they would without this check.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..errors import ConfigError
from ..grids import lattice
from ..models import ACTIVATIONS, MLP, PRIORS
from ..validate import check_int, check_number

__all__ = ["ModularSum", "QuadraticPeak", "quadratic_peak", "modsum_inputs", "modsum_labels", "modsum_split",
           "seed_key", "tree_finite", "nan_where", "INIT_TAG", "SPLIT_TAG", "BATCH_TAG", "NETWORK_MEASURES",
           "TARGET_MEASURES", "target_complexity"]

INIT_TAG, SPLIT_TAG, BATCH_TAG = 0, 1, 2
VOLUME_TAG = 3  # fold_in(seed key, VOLUME_TAG): the directions of the local-volume estimate (``volume``)
VOLUME_OPTIONS = ("n_directions", "epsilon", "sigma", "measure", "rtol", "max_steps")

# ----------------------------------------------------------------------------------------------------------
# Validation helpers shared by the experiment specs (they raise ConfigError naming field, value and allowed).
# ----------------------------------------------------------------------------------------------------------


def _tuple(owner: str, name: str, values) -> tuple:
    if isinstance(values, np.ndarray):
        values = values.tolist()
    elif isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, range)):
        values = [values]
    values = tuple(v.item() if isinstance(v, np.generic) else v for v in values)
    if len(values) == 0:
        raise ConfigError(f"{owner}.{name}=() is empty; allowed: a non-empty sequence")
    if len(set(values)) != len(values):
        raise ConfigError(f"{owner}.{name}={list(values)!r} has repeated values; allowed: each value once")
    return values


def _check_activations(owner: str, values) -> tuple:
    values = _tuple(owner, "activations", values)
    for a in values:
        if not isinstance(a, str) or a not in ACTIVATIONS:
            raise ConfigError(f"{owner}.activations contains {a!r}, an unknown activation; allowed: "
                              f"{', '.join(ACTIVATIONS)}")
    return values


def _check_prefactors(owner: str, values) -> tuple:
    values = _tuple(owner, "prefactors", values)
    return tuple(check_number(f"{owner}.prefactors value", p, minimum=0, exclusive_minimum=True, float32=True)
                 for p in values)


def _check_ints(owner: str, name: str, values, minimum: int) -> tuple:
    values = _tuple(owner, name, values)
    return tuple(check_int(f"{owner}.{name} value", v, minimum, 2 ** 31 - 1) for v in values)


def _check_int(owner: str, name: str, value, minimum: int, maximum: int | None = None) -> int:
    return check_int(f"{owner}.{name}", value, minimum, maximum)


def _check_positive(owner: str, name: str, value, allow_zero: bool = False) -> float:
    return check_number(f"{owner}.{name}", value, minimum=0, exclusive_minimum=not allow_zero, float32=True)


def _check_prior(owner: str, value) -> str:
    if value not in PRIORS:
        raise ConfigError(f"{owner}.prior={value!r} is unknown; allowed: {', '.join(PRIORS)}")
    return value


def seed_key(base_seed: int, seed):
    """The key of training seed ``seed``: ``fold_in(key(base_seed), seed)`` (seed may be traced)."""
    return jax.random.fold_in(jax.random.key(base_seed), seed)


# ----------------------------------------------------------------------------------------------------------
# The experiment spec
# ----------------------------------------------------------------------------------------------------------


class ExperimentSpec:
    """What both experiment specs share: copies with changes, and the JSON written beside their results."""

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["type"] = type(self).__name__
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    # Fields whose values reach the compiled programs only as traced per-network inputs (or not at all).
    traced_fields = ("activations", "moduli", "prefactors", "seeds", "name")

    def compile_key(self, activation: str) -> tuple:
        """What one activation's compiled programs depend on besides array shapes, derived from the spec:
        every field except ``traced_fields`` (a new field is part of the key unless listed there)."""
        spec = {k: v for k, v in self.to_dict().items() if k not in self.traced_fields}
        return (type(self).__name__, activation, json.dumps(spec, sort_keys=True))


@dataclasses.dataclass(frozen=True)
class ModularSum(ExperimentSpec):
    """Train MLPs on the modular sum, a grid of (activation, modulus, prefactor, seed); DESIGN.md section 10.

    The defaults are the recipe: 16 x 16 lattice, moduli 10, 7, 4, prefactors 2^-3 .. 2^5, 8 seeds,
    ``MLP(depth=2, width=64, prior="torch")``, full-batch sigmoid binary cross-entropy (mean),
    ``optax.adam(1e-3)``, 3000 steps. ``run`` returns dims (activation, modulus, prefactor, seed) with
    ``train_accuracy``, ``test_accuracy``, and the complexity of each network's function on the full lattice
    at init and after training under each measure of ``NETWORK_MEASURES`` (``fourier`` = nrs, ``fourier_dct``,
    ``chebyshev``, ``chebyshev_energy``, ``lz`` = lz78 on 2 levels, normalized; variables ``<measure>_init`` and
    ``<measure>_final``), and the boolean ``diverged`` (non-finite
    training loss at any step, or non-finite final loss, parameters or optimizer state); a diverged network's
    accuracies and final complexities are NaN, not chance (see the module docstring).

    Attributes:
      activations: activation names (one compiled program each).
      moduli: the moduli M (>= 2).
      prefactors: the prefactor multiplying every pre-activation (> 0); traced, never recompiled per value.
      seeds: training seeds (>= 0); each seed fixes the split and the initial parameters.
      n, dim: the input lattice ``{0..n-1}^dim`` (dim 1, 2 or 3). The complexities read the function's
        1-D or 2-D image; with dim 3 they read the slice ``x_2 = 0`` (the first ``n^2`` lattice points, an
        ``n x n`` image), since the measures take 1-D or 2-D images only. Training and accuracies use all
        ``n^3`` points.
      train_fraction: the first ``round(train_fraction * n^dim)`` points of each seed's permutation train.
      depth, width, prior, weight_scale, bias_scale: the network (``redshift_jax.MLP``).
      steps: full-batch adam steps; learning_rate: adam's step size.
      base_seed: the base PRNG key ``jax.random.key(base_seed)``.
      name: a label for results and plots.
      volume: ``None`` (default), or arguments of ``redshift_jax.volume.log_volume`` (``n_directions``,
        ``epsilon``, ``sigma``, ``measure``, ``rtol``, ``max_steps``) to also record ``log_volume_init`` and
        ``log_volume_final``: the network's local volume (DESIGN.md section 14) with the Bernoulli KL cost over the
        whole lattice, at init and after training (NaN when diverged), with the directions drawn from
        ``fold_in(seed key, VOLUME_TAG)`` (the same directions before and after training).
    """

    activations: tuple = ("relu", "gelu", "swish", "tanh", "gaussian", "sin")
    moduli: tuple = (10, 7, 4)
    prefactors: tuple = tuple(2.0 ** k for k in range(-3, 6))
    seeds: tuple = tuple(range(8))
    n: int = 16
    dim: int = 2
    train_fraction: float = 0.7
    depth: int = 2
    width: int = 64
    prior: str = "torch"
    weight_scale: float = 1.0
    bias_scale: float = 1.0
    steps: int = 3000
    learning_rate: float = 1e-3
    base_seed: int = 0
    name: str = "modsum"
    volume: dict | None = None

    kind = "train_modsum"
    grid_dims = ("modulus", "prefactor", "seed")

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Check every field; raise ConfigError naming the field, the value and what is allowed."""
        o = "ModularSum"
        s = object.__setattr__
        s(self, "activations", _check_activations(o, self.activations))
        s(self, "moduli", _check_ints(o, "moduli", self.moduli, 2))
        s(self, "prefactors", _check_prefactors(o, self.prefactors))
        s(self, "seeds", _check_ints(o, "seeds", self.seeds, 0))
        _check_int(o, "n", self.n, 2)
        _check_int(o, "dim", self.dim, 1, 3)
        check_number(f"{o}.train_fraction", self.train_fraction, minimum=0, maximum=1, exclusive_minimum=True)
        if not 1 <= self.n_train < self.n_points:
            raise ConfigError(f"{o}.train_fraction={self.train_fraction!r} gives {self.n_train} training points of "
                              f"{self.n_points}; allowed: at least one training and one test point")
        _check_int(o, "depth", self.depth, 1)
        _check_int(o, "width", self.width, 1)
        _check_prior(o, self.prior)
        s(self, "weight_scale", _check_positive(o, "weight_scale", self.weight_scale, allow_zero=True))
        s(self, "bias_scale", _check_positive(o, "bias_scale", self.bias_scale, allow_zero=True))
        _check_int(o, "steps", self.steps, 1)
        s(self, "learning_rate", _check_positive(o, "learning_rate", self.learning_rate))
        _check_int(o, "base_seed", self.base_seed, 0, 2 ** 31 - 1)
        if not isinstance(self.name, str):
            raise ConfigError(f"{o}.name={self.name!r} is not allowed; allowed: a string")
        if self.volume is not None:
            from ..measures.volume import check_volume_args

            if not isinstance(self.volume, dict):
                raise ConfigError(f"{o}.volume={self.volume!r} is not allowed; allowed: None or a dict with keys "
                                  f"among {', '.join(VOLUME_OPTIONS)}")
            check_volume_args(f"{o}.volume", self.volume, VOLUME_OPTIONS)

    def to_dict(self) -> dict:
        d = super().to_dict()
        if d.get("volume") is None:  # specs without the option keep their JSON (and resume fingerprints)
            d.pop("volume", None)
        return d

    # ---- derived ------------------------------------------------------------------------------------

    @property
    def n_points(self) -> int:
        return self.n ** self.dim

    @property
    def n_train(self) -> int:
        return int(round(self.train_fraction * self.n_points))

    def model(self, activation: str) -> MLP:
        return MLP(activation=activation, depth=self.depth, width=self.width, in_dim=self.dim, prior=self.prior)

    def coords(self) -> dict:
        return {"modulus": list(self.moduli), "prefactor": list(self.prefactors), "seed": list(self.seeds)}

    def flat_grid(self) -> dict:
        """Per-network arguments, (modulus, prefactor, seed) flattened with seed fastest."""
        m, p, s = np.meshgrid(np.array(self.moduli, np.int32), np.array(self.prefactors, np.float32),
                              np.array(self.seeds, np.uint32), indexing="ij")
        return {"modulus": m.ravel(), "prefactor": p.ravel(), "seed": s.ravel()}

    def program(self, activation: str) -> "ModsumProgram":
        return ModsumProgram(self, activation)


# ----------------------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------------------


def modsum_inputs(n: int = 16, dim: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The lattice ``{0..n-1}^dim`` (int32, coordinate 0 fastest) and the network inputs ``x/(n-1)*2-1``."""
    pts = lattice(n, dim)
    return pts, (pts.astype(np.float32) / (n - 1) * 2 - 1).astype(np.float32)


def modsum_labels(points, modulus):
    """``1[(sum_i x_i) mod M < M / 2]`` as float32 (numpy or jax; modulus may be traced)."""
    xp = jnp if isinstance(points, jax.Array) or isinstance(modulus, jax.Array) else np
    total = points.sum(axis=-1)
    # (s mod M) < M / 2  <=>  2 (s mod M) < M, exactly, in integers.
    return (2 * xp.mod(total, modulus) < modulus).astype(xp.float32)


def modsum_split(key, n_points: int, n_train: int):
    """(train indices, test indices) of a seed: a permutation drawn from ``fold_in(key, SPLIT_TAG)``."""
    perm = jax.random.permutation(jax.random.fold_in(key, SPLIT_TAG), n_points)
    return perm[:n_train], perm[n_train:]


# ----------------------------------------------------------------------------------------------------------
# The per-network program: setup (init + measures at init), a segment of adam steps, the final evaluation.
# runner.py vmaps these over the flattened (modulus, prefactor, seed) grid, one compiled program per
# activation; the same functions un-vmapped are the per-network reference.
# ----------------------------------------------------------------------------------------------------------


def tree_finite(tree):
    """True when every element of every leaf of ``tree`` is finite (integer leaves always are)."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]))


def nan_where(diverged, value):
    """``value``, or NaN where ``diverged`` (a diverged network reports no accuracy rather than chance)."""
    return jnp.where(diverged, jnp.nan, value)


# The measures recorded for every network at init and after training (``<name>_init``, ``<name>_final``) and
# for the targets (``target_complexity``); names as in ``redshift_jax.measures.MEASURES``.
NETWORK_MEASURES = ("fourier", "fourier_dct", "chebyshev", "chebyshev_energy", "lz")
TARGET_MEASURES = ("fourier", "fourier_dct", "chebyshev", "chebyshev_energy", "lz", "lz76", "lzw")


def _image(spec, values):
    """The function's values on the lattice as the image the measures read (coordinate 0 fastest ->
    image[.., x1, x0]); with dim 3 the slice x_2 = 0 (the first n^2 points)."""
    if spec.dim == 3:
        return values[: spec.n ** 2].reshape(spec.n, spec.n)
    return values.reshape((spec.n,) * spec.dim)


def _complexity(spec, values, names=NETWORK_MEASURES) -> dict:
    from .. import measures  # imported late: lives in redshift_jax/measures

    img = _image(spec, values)
    return {name: measures.MEASURES[name](img) for name in names}


def target_complexity(spec: "ModularSum | None" = None, measures=TARGET_MEASURES):
    """The complexity of the modular-sum targets, each modulus's label function ``1[(sum_i x_i) mod M < M/2]``
    on the same lattice image the networks' functions are measured on (``spec.n``, ``spec.dim``; with dim 3
    the slice x_2 = 0), under each measure of ``measures`` (names of ``redshift_jax.measures.MEASURES`` with
    their default arguments, e.g. ``fourier`` = ``nrs``, ``lz`` = lz78 on 2 levels, normalized).

    Args:
      spec: a ``ModularSum`` (its ``moduli``, ``n`` and ``dim``); default ``ModularSum()`` (16 x 16, M = 10, 7, 4).
      measures: measure names.

    Returns:
      ``xarray.DataArray`` of float64 with dims (measure, modulus), e.g.
      ``target_complexity().sel(measure="fourier_dct", modulus=4)``.

    Raises:
      ConfigError: ``spec`` is not a ``ModularSum``, or a measure name is unknown.
    """
    import xarray as xr

    from .. import measures as M

    spec = ModularSum() if spec is None else spec
    if not isinstance(spec, ModularSum):
        raise ConfigError(f"target_complexity: spec is a {type(spec).__name__}; allowed: a ModularSum")
    names = _tuple("target_complexity", "measures", measures)
    for name in names:
        if name not in M.MEASURES:
            raise ConfigError(f"target_complexity: measure {name!r} is unknown; allowed: {', '.join(M.MEASURES)}")
    pts, _ = modsum_inputs(spec.n, spec.dim)
    values = np.empty((len(names), len(spec.moduli)))
    for j, m in enumerate(spec.moduli):
        img = _image(spec, modsum_labels(pts, m))
        for i, name in enumerate(names):
            values[i, j] = float(M.MEASURES[name](jnp.asarray(img)))
    return xr.DataArray(values, dims=("measure", "modulus"),
                        coords={"measure": list(names), "modulus": list(spec.moduli)},
                        attrs={"n": spec.n, "dim": spec.dim})


class ModsumProgram:
    """Pure per-network functions of one activation's modular-sum training (vmapped by the runner).

    The training state is ``(params, opt_state, finite)``: ``finite`` stays True while every step's training
    loss is finite; ``finish`` combines it with the final loss, parameters and optimizer state into
    ``diverged``.
    """

    network_chunk = 36  # networks vmapped together inside one lax.map step (see runner._batched_fns)

    def __init__(self, spec: ModularSum, activation: str):
        self.spec = spec
        self.activation = activation
        self.model = spec.model(activation)
        self.optimizer = optax.adam(spec.learning_rate)
        pts, x = modsum_inputs(spec.n, spec.dim)
        self.shared = {"points": jnp.asarray(pts), "x": jnp.asarray(x)}
        self.cache_key = spec.compile_key(activation)  # what the compiled code depends on besides shapes

    def net_inputs(self, grid: dict) -> dict:
        base = jax.random.key(self.spec.base_seed)
        seeds = jnp.asarray(grid["seed"], jnp.uint32)
        return {"key": jax.vmap(jax.random.fold_in, (None, 0))(base, seeds),
                "modulus": jnp.asarray(grid["modulus"], jnp.int32),
                "prefactor": jnp.asarray(grid["prefactor"], jnp.float32)}

    def loss(self, params, net, ctx, shared):
        logits = self.model.apply(params, ctx["x_train"], net["prefactor"])
        return optax.sigmoid_binary_cross_entropy(logits, ctx["y_train"]).mean()

    def data(self, net, shared) -> dict:
        """This network's split and labels: train/test indices, all labels, training inputs and labels."""
        train_idx, test_idx = modsum_split(net["key"], self.spec.n_points, self.spec.n_train)
        y = modsum_labels(shared["points"], net["modulus"])
        return {"train_idx": train_idx, "test_idx": test_idx, "y": y,
                "x_train": shared["x"][train_idx], "y_train": y[train_idx]}

    def setup(self, net, shared):
        spec = self.spec
        params = self.model.init(jax.random.fold_in(net["key"], INIT_TAG), spec.weight_scale, spec.bias_scale)
        ctx = self.data(net, shared)
        at_init = _complexity(spec, self.model.apply(params, shared["x"], net["prefactor"]))
        state = (params, self.optimizer.init(params), jnp.array(True))
        out = {f"{name}_init": value for name, value in at_init.items()}
        if spec.volume is not None:
            out["log_volume_init"] = self.log_volume(params, net, shared)
        return state, ctx, out

    def log_volume(self, params, net, shared):
        """The network's log local volume: Bernoulli KL over the whole lattice (``ModularSum.volume``)."""
        from ..measures.volume import network_log_volume

        key = jax.random.fold_in(net["key"], VOLUME_TAG)
        return network_log_volume(self.model, params, shared["x"], key, cost="kl", prefactor=net["prefactor"],
                                  **self.spec.volume).log_volume

    def step(self, state, net, ctx, shared, step_index):
        del step_index  # full batch: nothing random per step
        params, opt_state, finite = state
        loss, grads = jax.value_and_grad(self.loss)(params, net, ctx, shared)
        updates, opt_state = self.optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, finite & jnp.isfinite(loss)

    def finish(self, state, net, ctx, shared):
        params, opt_state, finite = state
        logits = self.model.apply(params, shared["x"], net["prefactor"])
        correct = ((logits > 0).astype(jnp.float32) == ctx["y"]).astype(jnp.float32)
        final = _complexity(self.spec, logits)
        final_loss = optax.sigmoid_binary_cross_entropy(logits[ctx["train_idx"]], ctx["y_train"]).mean()
        diverged = ~(finite & jnp.isfinite(final_loss) & tree_finite((params, opt_state)))
        out = {"train_accuracy": correct[ctx["train_idx"]].mean(), "test_accuracy": correct[ctx["test_idx"]].mean(),
               **{f"{name}_final": value for name, value in final.items()}}
        if self.spec.volume is not None:
            out["log_volume_final"] = self.log_volume(params, net, shared)
        return {**{k: nan_where(diverged, v) for k, v in out.items()}, "diverged": diverged}



# ----------------------------------------------------------------------------------------------------------
# The best prefactor: a quadratic in log2(prefactor)
# ----------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class QuadraticPeak:
    """The fitted best prefactor of an accuracy curve.

    Attributes:
      peak: ``2 ** (-b / (2 a))`` for the least-squares fit ``acc = a t^2 + b t + c``, ``t = log2(prefactor)``,
        when ``a < 0``; NaN when the fit is not concave (no interior maximum). It may lie outside the
        prefactors tried (an extrapolated vertex); ``in_range`` says whether it does not.
      low, high: the 2.5 and 97.5 percentiles of the peak over bootstrap resamples of the seeds (resamples
        whose fit is not concave are left out; ``concave_fraction`` says how many were kept). NaN when no
        seed axis or no concave resample.
      a, b, c: the fit's coefficients.
      concave_fraction: share of bootstrap resamples with a < 0.
      in_range: whether ``peak`` lies within [min, max] of the prefactors.
    """

    peak: float
    low: float
    high: float
    a: float
    b: float
    c: float
    concave_fraction: float
    in_range: bool

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _fit(t: np.ndarray, acc: np.ndarray) -> tuple[float, float, float]:
    ok = np.isfinite(acc)
    t, acc = t[ok], acc[ok]
    if len(np.unique(t)) < 3:
        return float("nan"), float("nan"), float("nan")
    a, b, c = np.polyfit(t, acc, 2)
    return float(a), float(b), float(c)


def _vertex(a: float, b: float) -> float:
    """log2 of the peak prefactor (the vertex in t = log2(prefactor)); NaN when the fit is not concave."""
    if not np.isfinite(a) or a >= 0:
        return float("nan")
    return float(-b / (2 * a))


def _exp2(t: float) -> float:
    with np.errstate(over="ignore"):
        return float(np.exp2(t))


def quadratic_peak(da, n_boot: int = 1000, seed: int = 0) -> QuadraticPeak:
    """The prefactor at the peak of a least-squares quadratic of accuracy against log2(prefactor).

    Every (seed, prefactor) value of ``da`` is one point of the fit (NaNs dropped: e.g. diverged networks). The
    interval comes from ``n_boot`` bootstrap resamples of the seeds (with replacement) with
    ``numpy.random.default_rng(seed)``. With fewer than 3 distinct prefactors holding a finite value (e.g. every
    network diverged, all NaN) there is no fit: every number of the result is NaN (``concave_fraction`` 0 when
    resampled) and ``in_range`` is False.

    Args:
      da: an ``xarray.DataArray`` with dim ``prefactor`` and optionally ``seed``, nothing else (select the
        activation and modulus first), e.g. ``ds.test_accuracy.sel(activation="sin", modulus=4)``.
      n_boot: bootstrap resamples (0: no interval).
      seed: the bootstrap's generator seed.

    Returns:
      ``QuadraticPeak`` (``peak``, ``low``, ``high``, coefficients, ...).

    Raises:
      ConfigError: ``da`` is not an ``xarray.DataArray`` with a 'prefactor' dimension (and optionally 'seed'),
        its values or prefactor coordinates are not numbers, a prefactor is not finite and > 0, or ``n_boot``
        or ``seed`` is not an integer >= 0.
    """
    import xarray as xr

    if not isinstance(da, xr.DataArray):
        what = type(da).__name__ + (f" of shape {da.shape}" if hasattr(da, "shape") else "")
        raise ConfigError(f"quadratic_peak: da is a {what}; allowed: an xarray.DataArray with a 'prefactor' "
                          "dimension (and optionally 'seed'), e.g. ds.test_accuracy.sel(activation=..., modulus=...)")
    _check_int("quadratic_peak", "n_boot", n_boot, 0)
    _check_int("quadratic_peak", "seed", seed, 0)
    extra = [d for d in da.dims if d not in ("prefactor", "seed")]
    if "prefactor" not in da.dims or extra:
        raise ConfigError(f"quadratic_peak: da has dims {tuple(da.dims)}; allowed: 'prefactor' and optionally "
                          "'seed' (select the other dims first, e.g. .sel(activation=..., modulus=...))")
    da = da.transpose(*[d for d in ("seed", "prefactor") if d in da.dims])
    try:
        values = np.asarray(da.values, np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"quadratic_peak: da holds {da.dtype} values; allowed: numbers (accuracies)") from None
    if values.ndim == 1:
        values = values[None]
    try:
        pref = np.asarray(da["prefactor"].values, np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"quadratic_peak: the prefactor coordinates are {da['prefactor'].dtype}; allowed: "
                          "finite numbers > 0 (a log2 axis)") from None
    if not (np.isfinite(pref) & (pref > 0)).all():
        raise ConfigError(f"quadratic_peak: prefactor coordinates {pref.tolist()} must be finite and > 0 "
                          "(a log2 axis)")
    t = np.log2(pref)
    tt = np.broadcast_to(t, values.shape)
    a, b, c = _fit(tt.ravel(), values.ravel())
    peak = _exp2(_vertex(a, b))
    low = high = float("nan")
    concave = float("nan")
    n_seeds = values.shape[0]
    if n_boot > 0 and n_seeds > 1:
        rng = np.random.default_rng(seed)
        peaks = np.empty(n_boot)  # log2 of the peak
        for i in range(n_boot):
            pick = rng.integers(0, n_seeds, n_seeds)
            ab = _fit(tt[pick].ravel(), values[pick].ravel())
            peaks[i] = _vertex(ab[0], ab[1])
        ok = np.isfinite(peaks)
        concave = float(ok.mean())
        if ok.any():
            low, high = (_exp2(v) for v in np.percentile(peaks[ok], [2.5, 97.5]))
    in_range = bool(np.isfinite(peak) and pref.min() <= peak <= pref.max())
    return QuadraticPeak(peak=peak, low=low, high=high, a=a, b=b, c=c, concave_fraction=concave,
                         in_range=in_range)
