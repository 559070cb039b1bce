"""Colored-MNIST (the paper's Figure 9): is the digit or the colour learned, as the prefactor grows?

Each image is MNIST's 28 x 28 (pixels / 255) plus one extra column on the right, 28 pixels of value ``c / 9``
for a colour level ``c`` in 0..9: a 28 x 29 image flattened row-major to 812 inputs. In training the colour is
the digit (a shortcut); the target is ``digit / 9``. The test set is the first ``n_test`` MNIST test images,
each with an independent uniformly random colour (``numpy.random.default_rng(test_color_seed)``), scored against
the digit (``digit_accuracy``) and against the colour (``color_accuracy``). Accuracy is
``clip(round(9 * prediction), 0, 9) == level`` (round half to even), chance 0.1.

LZ at init: untrained networks (``init_seeds``; init seed ``s`` is exactly the initial network of training seed
``s``) evaluated on the test inputs in the order of a greedy nearest-neighbour tour (starting at input 0,
Euclidean distance on the 812 inputs, ties to the lowest index), binarized at their median and LZ78-parsed
(unnormalized phrase count).

Diverged networks: a network whose minibatch loss turned non-finite at any step, or whose final training loss
(the MSE on all training images), parameters or optimizer state are non-finite, has ``diverged = True`` (a
boolean with dims (activation, prefactor, seed), like the accuracies) and NaN ``train_accuracy``,
``digit_accuracy`` and ``color_accuracy`` instead of the chance-level numbers its broken function would score.
Means with ``skipna`` (xarray's default) leave such networks out; count them with ``ds.diverged.sum()``.
Networks that did not diverge get exactly the numbers they would without this check. ``lz_init`` (untrained
networks) is unaffected.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..errors import ConfigError
from ..models import MLP
from .modsum import (
    BATCH_TAG,
    INIT_TAG,
    ExperimentSpec,
    _check_activations,
    _check_int,
    _check_ints,
    _check_positive,
    _check_prefactors,
    _check_prior,
    nan_where,
    tree_finite,
)

__all__ = ["ColoredMNIST", "colorize", "level_accuracy", "nn_tour", "colored_mnist_arrays", "N_TRAIN_MNIST",
           "N_TEST_MNIST"]

N_TRAIN_MNIST, N_TEST_MNIST = 60000, 10000


@dataclasses.dataclass(frozen=True)
class ColoredMNIST(ExperimentSpec):
    """Train MLPs on Colored-MNIST over (activation, prefactor, seed); DESIGN.md section 10.

    Defaults are the recipe: all 60,000 training images (colour = digit), the first 2,000 test images with
    random colours, ``MLP(depth=2, width=128, in_dim=812, prior="paper")``, MSE against ``digit / 9``,
    ``optax.adam(1e-3)``, minibatches of 256 drawn with replacement, 2000 steps, prefactors 2^-2 .. 2^5,
    seeds 0, 1, 2, and LZ at init for 10 init seeds.

    ``run`` returns dims (activation, prefactor, seed) with ``train_accuracy`` (on all training images),
    ``digit_accuracy`` and ``color_accuracy`` (test), the boolean ``diverged`` (non-finite loss at any step, or
    non-finite final training loss, parameters or optimizer state; its accuracies are NaN, not chance), and
    ``lz_init`` with dims (activation, prefactor, init_seed).

    Attributes:
      activations, prefactors, seeds: the grid (prefactor traced, never recompiled per value).
      init_seeds: seeds of the untrained networks whose LZ complexity is measured.
      n_train: training images used (the first ``n_train``; 60000 = all); n_test: test images (the first).
      batch_size: minibatch size (draws with replacement, keys ``fold_in(seed key, 2)`` then the step index).
      steps, learning_rate: adam.
      depth, width, prior, weight_scale, bias_scale: the network.
      test_color_seed: the generator of the test colours.
      base_seed: the base PRNG key ``jax.random.key(base_seed)``.
      name: a label.
    """

    activations: tuple = ("relu", "gelu", "swish", "tanh", "gaussian", "sin")
    prefactors: tuple = tuple(2.0 ** k for k in range(-2, 6))
    seeds: tuple = (0, 1, 2)
    init_seeds: tuple = tuple(range(10))
    n_train: int = N_TRAIN_MNIST
    n_test: int = 2000
    batch_size: int = 256
    steps: int = 2000
    learning_rate: float = 1e-3
    depth: int = 2
    width: int = 128
    prior: str = "paper"
    weight_scale: float = 1.0
    bias_scale: float = 1.0
    test_color_seed: int = 0
    base_seed: int = 0
    name: str = "cmnist"

    kind = "train_cmnist"
    grid_dims = ("prefactor", "seed")
    in_dim = 28 * 29

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Check every field; raise ConfigError naming the field, the value and what is allowed."""
        o = "ColoredMNIST"
        s = object.__setattr__
        s(self, "activations", _check_activations(o, self.activations))
        s(self, "prefactors", _check_prefactors(o, self.prefactors))
        s(self, "seeds", _check_ints(o, "seeds", self.seeds, 0))
        s(self, "init_seeds", _check_ints(o, "init_seeds", self.init_seeds, 0))
        _check_int(o, "n_train", self.n_train, 1, N_TRAIN_MNIST)
        _check_int(o, "n_test", self.n_test, 2, N_TEST_MNIST)
        _check_int(o, "batch_size", self.batch_size, 1, self.n_train)  # at most the training images
        _check_int(o, "steps", self.steps, 1)
        s(self, "learning_rate", _check_positive(o, "learning_rate", self.learning_rate))
        _check_int(o, "depth", self.depth, 1)
        _check_int(o, "width", self.width, 1)
        _check_prior(o, self.prior)
        s(self, "weight_scale", _check_positive(o, "weight_scale", self.weight_scale, allow_zero=True))
        s(self, "bias_scale", _check_positive(o, "bias_scale", self.bias_scale, allow_zero=True))
        _check_int(o, "test_color_seed", self.test_color_seed, 0)
        _check_int(o, "base_seed", self.base_seed, 0, 2 ** 31 - 1)
        if not isinstance(self.name, str):
            raise ConfigError(f"{o}.name={self.name!r} is not allowed; allowed: a string")

    def model(self, activation: str) -> MLP:
        return MLP(activation=activation, depth=self.depth, width=self.width, in_dim=self.in_dim,
                   prior=self.prior)

    def coords(self) -> dict:
        return {"prefactor": list(self.prefactors), "seed": list(self.seeds)}

    def flat_grid(self) -> dict:
        p, s = np.meshgrid(np.array(self.prefactors, np.float32), np.array(self.seeds, np.uint32), indexing="ij")
        return {"prefactor": p.ravel(), "seed": s.ravel()}

    def program(self, activation: str) -> "CMNISTProgram":
        return CMNISTProgram(self, activation)

    def extra_outputs(self, program: "CMNISTProgram") -> dict:
        """``lz_init`` (prefactor, init_seed): LZ78 phrase count of untrained networks on the toured test set."""
        lz = lz_at_init(program, self.prefactors, self.init_seeds)
        return {"lz_init": (("prefactor", "init_seed"), lz, {"init_seed": list(self.init_seeds)})}


# ----------------------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------------------


def colorize(images: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """28 x 28 uint8 images and colour levels 0..9 -> (N, 812) float32: pixels / 255 with a right-hand column
    of ``color / 9`` (a 28 x 29 image flattened row-major)."""
    images = np.asarray(images)
    n, rows, cols = images.shape
    band = np.broadcast_to((np.asarray(colors, np.float32) / 9.0)[:, None, None], (n, rows, 1))
    return np.concatenate([images.astype(np.float32) / 255.0, band], axis=2).reshape(n, rows * (cols + 1))


def level_accuracy(prediction, level):
    """Share of ``clip(round(9 * prediction), 0, 9) == level`` (numpy or jax)."""
    xp = jnp if isinstance(prediction, jax.Array) else np
    return (xp.clip(xp.round(9 * prediction), 0, 9) == level).astype(xp.float32).mean()


@functools.lru_cache(maxsize=2)
def colored_mnist_arrays(n_train: int = N_TRAIN_MNIST, n_test: int = 2000, test_color_seed: int = 0) -> dict:
    """The Colored-MNIST arrays (cached): train ``x`` (n_train, 812), ``digit``; test ``x`` (n_test, 812) with
    random colours, ``digit``, ``color``, and ``tour`` (the nearest-neighbour order of the test inputs)."""
    from .data import load_mnist

    m = load_mnist()
    train_digit = m["train_labels"][:n_train].astype(np.int32)
    test_digit = m["test_labels"][:n_test].astype(np.int32)
    test_color = np.random.default_rng(test_color_seed).integers(0, 10, n_test).astype(np.int32)
    x_test = colorize(m["test_images"][:n_test], test_color)
    return {"x_train": colorize(m["train_images"][:n_train], train_digit), "digit_train": train_digit,
            "x_test": x_test, "digit_test": test_digit, "color_test": test_color, "tour": nn_tour(x_test)}


def nn_tour(x: np.ndarray, start: int = 0, block: int = 1024) -> np.ndarray:
    """Greedy nearest-neighbour tour of the rows of ``x`` from row ``start`` (Euclidean; ties: lowest index).

    The squared-distance matrix is computed in float64 in row blocks of ``block`` (bounded temporaries).
    """
    x = np.asarray(x, np.float64)
    n = len(x)
    sq = np.einsum("ij,ij->i", x, x)
    d2 = np.empty((n, n), np.float64)
    for i in range(0, n, block):
        d2[i:i + block] = sq[i:i + block, None] + sq[None, :] - 2.0 * (x[i:i + block] @ x.T)
    np.maximum(d2, 0.0, out=d2)
    visited = np.zeros(n, bool)
    order = np.empty(n, np.int64)
    cur = start
    for k in range(n):
        order[k] = cur
        visited[cur] = True
        if k == n - 1:
            break
        row = np.where(visited, np.inf, d2[cur])
        cur = int(np.argmin(row))
    return order


# ----------------------------------------------------------------------------------------------------------
# The per-network program (vmapped over prefactor x seed by the runner)
# ----------------------------------------------------------------------------------------------------------

_EVAL_BLOCK = 4096


class CMNISTProgram:
    """Pure per-network functions of one activation's Colored-MNIST training.

    The training state is ``(params, opt_state, finite)``: ``finite`` stays True while every step's minibatch
    loss is finite; ``finish`` combines it with the final training loss, parameters and optimizer state into
    ``diverged``.
    """

    network_chunk = 8  # networks vmapped together inside one lax.map step (see runner._batched_fns)

    def __init__(self, spec: ColoredMNIST, activation: str):
        self.spec = spec
        self.activation = activation
        self.model = spec.model(activation)
        self.optimizer = optax.adam(spec.learning_rate)
        arrays = colored_mnist_arrays(spec.n_train, spec.n_test, spec.test_color_seed)
        self.arrays = arrays
        n_blocks = -(-spec.n_train // _EVAL_BLOCK)
        pad = n_blocks * _EVAL_BLOCK - spec.n_train
        # training images padded to whole evaluation blocks (padding masked out of train_accuracy)
        x_blocks = np.concatenate([arrays["x_train"], np.zeros((pad, spec.in_dim), np.float32)])
        d_blocks = np.concatenate([arrays["digit_train"], np.full(pad, -1, np.int32)])
        self.shared = {
            "x_train": jnp.asarray(arrays["x_train"]),
            "target_train": jnp.asarray(arrays["digit_train"].astype(np.float32) / 9.0),
            "x_blocks": jnp.asarray(x_blocks).reshape(n_blocks, _EVAL_BLOCK, spec.in_dim),
            "digit_blocks": jnp.asarray(d_blocks).reshape(n_blocks, _EVAL_BLOCK),
            "x_test": jnp.asarray(arrays["x_test"]),
            "digit_test": jnp.asarray(arrays["digit_test"]),
            "color_test": jnp.asarray(arrays["color_test"]),
        }
        self.cache_key = spec.compile_key(activation)  # what the compiled code depends on besides shapes

    def net_inputs(self, grid: dict) -> dict:
        base = jax.random.key(self.spec.base_seed)
        seeds = jnp.asarray(grid["seed"], jnp.uint32)
        return {"key": jax.vmap(jax.random.fold_in, (None, 0))(base, seeds),
                "prefactor": jnp.asarray(grid["prefactor"], jnp.float32)}

    def setup(self, net, shared):
        spec = self.spec
        params = self.model.init(jax.random.fold_in(net["key"], INIT_TAG), spec.weight_scale, spec.bias_scale)
        ctx = {"batch_key": jax.random.fold_in(net["key"], BATCH_TAG)}
        return (params, self.optimizer.init(params), jnp.array(True)), ctx, {}

    def loss(self, params, net, xb, yb):
        pred = self.model.apply(params, xb, net["prefactor"])
        return jnp.mean(jnp.square(pred - yb))

    def step(self, state, net, ctx, shared, step_index):
        params, opt_state, finite = state
        idx = jax.random.randint(jax.random.fold_in(ctx["batch_key"], step_index), (self.spec.batch_size,), 0,
                                 self.spec.n_train)
        loss, grads = jax.value_and_grad(self.loss)(params, net, shared["x_train"][idx], shared["target_train"][idx])
        updates, opt_state = self.optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, finite & jnp.isfinite(loss)

    def finish(self, state, net, ctx, shared):
        params, opt_state, finite = state

        def block_correct(args):
            xb, db = args
            pred = self.model.apply(params, xb, net["prefactor"])
            level = jnp.clip(jnp.round(9 * pred), 0, 9)
            sq_error = jnp.where(db >= 0, jnp.square(pred - db.astype(pred.dtype) / 9.0), 0.0)
            return jnp.sum((level == db) & (db >= 0)), jnp.sum(sq_error)

        correct, sq_error = jax.lax.map(block_correct, (shared["x_blocks"], shared["digit_blocks"]))
        correct = correct.sum()
        final_loss = sq_error.sum() / self.spec.n_train  # the MSE on all training images
        diverged = ~(finite & jnp.isfinite(final_loss) & tree_finite((params, opt_state)))
        pred = self.model.apply(params, shared["x_test"], net["prefactor"])
        out = {"train_accuracy": correct / self.spec.n_train,
               "digit_accuracy": level_accuracy(pred, shared["digit_test"]),
               "color_accuracy": level_accuracy(pred, shared["color_test"])}
        return {**{k: nan_where(diverged, v) for k, v in out.items()}, "diverged": diverged}


def lz_at_init(program: CMNISTProgram, prefactors, init_seeds) -> np.ndarray:
    """(prefactor, init_seed) LZ78 phrase counts of untrained networks on the toured test inputs."""
    from .. import measures
    from .runner import _compile

    spec = program.spec
    x_tour = jnp.asarray(program.arrays["x_test"][program.arrays["tour"]])
    p, s = np.meshgrid(np.asarray(prefactors, np.float32), np.asarray(init_seeds, np.uint32), indexing="ij")
    base = jax.random.key(spec.base_seed)
    keys = jax.vmap(jax.random.fold_in, (None, 0))(base, jnp.asarray(s.ravel()))

    def one(key, prefactor, x):
        params = program.model.init(jax.random.fold_in(key, INIT_TAG), spec.weight_scale, spec.bias_scale)
        values = program.model.apply(params, x, prefactor)
        return measures.lz(values, variant="lz78", levels=2, normalize=False)

    def batched(keys, prefs, x):
        return jax.vmap(one, in_axes=(0, 0, None))(keys, prefs, x)

    args = (keys, jnp.asarray(p.ravel()), x_tour)
    exe = _compile(program, "lz_init", batched, args)
    return np.asarray(exe(*args), np.float32).reshape(p.shape)
