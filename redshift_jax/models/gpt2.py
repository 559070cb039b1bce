"""An untrained GPT-2 that decodes greedily (DESIGN.md section 13), written with flax, a pure function of a key.

    spec = GPT2(activation="gelu", depth=12, d_model=256, n_heads=4)
    params = spec.init(key)                          # GPT-2 small's initialization, HF-named pytree
    prompt = spec.prompt(key)                        # one token, uniform in [0, vocab)
    tokens = spec.generate(params, prompt, ln_gain=1.0, n_new=100)     # int32 (101,), prompt first
    logits = spec.apply(params, tokens, ln_gain=1.0)                   # (101, vocab), causal

The network is GPT-2's: token and position embeddings, ``depth`` pre-LN blocks
``x + attn(ln_1(x))``, ``x + mlp(ln_2(x))`` (causal multi-head attention scaled by ``1 / sqrt(d_model / n_heads)``,
an MLP ``d -> 4d -> d``), a final ``ln_f`` and the LM head tied to ``wte``. LayerNorm eps is 1e-5. The numeric
axis ``ln_gain`` multiplies the gain of ``ln_1`` and ``ln_2`` in every block (``ln_f`` keeps gain 1).

Initialization (GPT-2 small's): ``wte``, ``wpe``, ``c_attn`` and ``c_fc`` ~ N(0, 0.02^2); the attention and
MLP ``c_proj`` ~ N(0, (0.02 / sqrt(24))^2) **at every depth** (24 = 2 x GPT-2 small's 12 layers); biases and
LayerNorm betas 0, LayerNorm gains 1. No width rescaling: the stds are the same for every ``d_model``.

Depth rule: block ``l`` is drawn from ``fold_in(key, l)``, the embeddings and the prompt from fixed tags no
block index reaches, so ``GPT2(depth=L).init(key)`` is bit for bit the first ``L`` blocks of
``GPT2(depth=12).init(key)`` (with the same embeddings): a depth-L model is a pruned 12-block sample, as in
the co-author's study (a fresh ``n_layer = L`` GPT-2 config would use 0.02 / sqrt(2L) and erase most of the
depth effect). ``spec.at_depth(params, L)`` cuts a deeper sample. The values are the same bits whether
``init`` runs eagerly, under jit or vmapped over any number of keys.

Parameters are a plain pytree in flax's layout with HuggingFace's module names::

    {"wte": {"embedding": (vocab, d)}, "wpe": {"embedding": (n_positions, d)},
     "h": {"ln_1": {"scale", "bias"}, "attn": {"c_attn": {"kernel": (d, 3d), "bias"},
                                              "c_proj": {"kernel": (d, d), "bias"}},
           "ln_2": {...}, "mlp": {"c_fc": {"kernel": (d, 4d), ...}, "c_proj": {"kernel": (4d, d), ...}}},
     "ln_f": {"scale", "bias"}}

with a leading ``depth`` axis on every leaf under ``"h"`` (the blocks run in a ``lax.scan``, so compile time
does not grow with depth). ``to_hf_state_dict`` / ``from_hf_state_dict`` convert to and from
``GPT2LMHeadModel``'s state dict (``transformer.h.{l}.attn.c_attn.weight`` as (in, out), ...), exactly.

Decoding: greedy argmax (lowest index on ties), a key/value cache of fixed shape, no EOS stop; ``generate`` is
jittable and vmappable over parameters, prompts and gains. Parameters shared by a vmapped batch (common random
numbers: one weight sample, many gains) decode as one batch of matmuls.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..errors import ConfigError
from ..validate import check_int, check_scale
from .activations import ACTIVATIONS, Activation
from .base import TOKENS, NumericAxis

__all__ = ["GPT2", "GPT2_ACTIVATIONS", "PROMPT", "from_hf_state_dict", "gelu_tanh", "to_hf_state_dict"]

Array = jax.Array
PROMPT = "prompt"
LAYERNORM_EPS = 1e-5
INIT_STD = 0.02
# GPT-2 small's residual-projection std, 0.02 / sqrt(2 * n_layer) with n_layer = 12, at every depth.
PROJ_STD = INIT_STD / math.sqrt(24.0)

# fold_in tags: block l uses fold_in(key, l); these are beyond any block index (depth is at most _MAX_DEPTH).
_WTE_TAG, _WPE_TAG, _PROMPT_TAG = 0x7FFFFFF0, 0x7FFFFFF1, 0x7FFFFFF2
_MAX_DEPTH = 1 << 16
# a block's weights are one normal draw from fold_in(block_key, _BLOCK_TAG) (one sampler compiles ~3x faster
# than four)
_BLOCK_TAG = 0


def gelu_tanh(x):
    """GPT-2's GELU (HF ``gelu_new``): ``0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))``."""
    return 0.5 * x * (1.0 + jnp.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * (x * x * x))))


# "gelu" is GPT-2's tanh approximation here (unlike the MLP, whose "gelu" is the exact erf form).
GPT2_ACTIVATIONS: dict[str, Activation] = {
    "gelu": Activation("gelu", gelu_tanh, hf_name="gelu_new"),
    "gelu_exact": dataclasses.replace(ACTIVATIONS["gelu"], name="gelu_exact"),
    **{name: ACTIVATIONS[name] for name in ("relu", "selu", "tanh", "sin", "gaussian", "swish", "sigmoid")},
}


# ---- flax modules: one block, its parts, and the layer norm ---------------------------------------------------

class _LayerNorm(nn.Module):
    """LayerNorm over the last axis, eps 1e-5, with its gain multiplied by ``gain`` (the ``ln_gain`` axis)."""

    @nn.compact
    def __call__(self, x, gain=1.0):
        d = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (d,), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (d,), jnp.float32)
        mean = jnp.mean(x, axis=-1, keepdims=True)
        centered = x - mean
        var = jnp.mean(centered * centered, axis=-1, keepdims=True)
        return centered * lax.rsqrt(var + LAYERNORM_EPS) * (scale * gain) + bias


def _dense(features, name, precision):
    return nn.Dense(features, name=name, precision=precision, param_dtype=jnp.float32)


class _Attention(nn.Module):
    """Causal multi-head self-attention over a key/value cache plus the new tokens.

    ``x`` (T, d) are the tokens at positions ``pos .. pos + T - 1``; ``cache_k``, ``cache_v`` (heads, d / heads,
    S) hold the keys and values of positions ``0 .. pos - 1`` in their first columns (later ones are ignored),
    or are None (nothing before ``pos``). Positions are the minor axis because that is the layout both
    attention products read (XLA would otherwise transpose this layer's cache at every token). Returns the
    output and this call's keys and values (T, d), for the caller to write into its cache at ``pos``.
    """

    n_heads: int
    precision: Any = "highest"

    @nn.compact
    def __call__(self, x, cache_k=None, cache_v=None, pos=0):
        t, d = x.shape
        heads, hd = self.n_heads, d // self.n_heads
        qkv = _dense(3 * d, "c_attn", self.precision)(x)
        q, k, v = qkv[:, :d], qkv[:, d:2 * d], qkv[:, 2 * d:]
        qh, kh, vh = (a.reshape(t, heads, hd) for a in (q, k, v))
        scale = jnp.float32(math.sqrt(hd))
        scores = jnp.einsum("thd,shd->hts", qh, kh, precision=self.precision) / scale
        causal = jnp.arange(t)[None, :] <= jnp.arange(t)[:, None]
        scores = jnp.where(causal[None], scores, -jnp.inf)
        if cache_k is None:
            weights = jax.nn.softmax(scores, axis=-1)
            out = jnp.einsum("hts,shd->thd", weights, vh, precision=self.precision)
        else:
            # This layer's cache rows (positions < pos are valid) and the new tokens' own keys, one softmax.
            s = cache_k.shape[-1]
            past = jnp.einsum("thd,hds->hts", qh, cache_k, precision=self.precision) / scale
            past = jnp.where((jnp.arange(s) < pos)[None, None, :], past, -jnp.inf)
            weights = jax.nn.softmax(jnp.concatenate([past, scores], axis=-1), axis=-1)
            past_out = jnp.einsum("hts,hds->thd", weights[..., :s], cache_v, precision=self.precision)
            out = past_out + jnp.einsum("hts,shd->thd", weights[..., s:], vh, precision=self.precision)
        out = _dense(d, "c_proj", self.precision)(out.reshape(t, d))
        return out, k, v


class _MLP(nn.Module):
    activation_fn: Callable
    precision: Any = "highest"

    @nn.compact
    def __call__(self, x):
        d = x.shape[-1]
        h = self.activation_fn(_dense(4 * d, "c_fc", self.precision)(x))
        return _dense(d, "c_proj", self.precision)(h)


class _Block(nn.Module):
    """A pre-LN GPT-2 block: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``; the LN gains times ``ln_gain``."""

    n_heads: int
    activation_fn: Callable
    precision: Any = "highest"

    @nn.compact
    def __call__(self, x, cache_k=None, cache_v=None, pos=0, ln_gain=1.0):
        a, k, v = _Attention(self.n_heads, self.precision, name="attn")(
            _LayerNorm(name="ln_1")(x, ln_gain), cache_k, cache_v, pos)
        x = x + a
        x = x + _MLP(self.activation_fn, self.precision, name="mlp")(_LayerNorm(name="ln_2")(x, ln_gain))
        return x, k, v


def _normal(key, tag, shape, std):
    # The barrier keeps the two roundings (sqrt(2) * erfinv(u) inside ``normal``, then * std) in every context:
    # under jit XLA would otherwise fold the two constants into one product, and a jitted init would differ in
    # the last bit from an eager one.
    z = lax.optimization_barrier(jax.random.normal(jax.random.fold_in(key, tag), shape, jnp.float32))
    return z if std == 1.0 else std * z


# ---- the model spec -------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class GPT2:
    """A randomly initialized GPT-2 (DESIGN.md section 13): pure in its key, greedy decoding with a KV cache.

    Attributes:
      activation: the MLP's activation, one of ``GPT2_ACTIVATIONS`` (``"gelu"`` is GPT-2's tanh
        approximation, ``"gelu_exact"`` the erf form).
      depth: number of blocks (>= 1); a depth-L model is the first L blocks of a 12-block sample (module doc).
      d_model: embedding width, a multiple of ``n_heads``.
      n_heads: attention heads.
      vocab: vocabulary size (>= 2).
      n_positions: positions of ``wpe`` (the longest sequence ``apply`` reads; ``generate`` feeds
        ``len(prompt) + n_new - 1`` tokens).

    Example:
      >>> import jax
      >>> spec = GPT2(depth=2, d_model=32, n_heads=2, vocab=64, n_positions=16)
      >>> key = jax.random.key(0)
      >>> spec.generate(spec.init(key), spec.prompt(key), n_new=10).shape
      (11,)
    """

    activation: str = "gelu"
    depth: int = 12
    d_model: int = 768
    n_heads: int = 12
    vocab: int = 50257
    n_positions: int = 128

    # What the sweep engine reads (redshift_jax/models/base.py).
    structural_axes = ("activation", "depth", "d_model", "n_heads", "vocab", "n_positions")
    numeric_axes = {"ln_gain": NumericAxis(1.0, minimum=0.0, stage="apply")}
    inputs = PROMPT
    output = TOKENS
    switch_axis = "activation"
    # a sweep's depths are cut out of one weight sample at the largest depth (``at_shared``), as in the paper
    shared_axis = "depth"

    def __post_init__(self):
        if not isinstance(self.activation, str) or self.activation not in GPT2_ACTIVATIONS:
            raise ConfigError(f"GPT2.activation={self.activation!r} is unknown; allowed: "
                              f"{', '.join(GPT2_ACTIVATIONS)}")
        check_int("GPT2.depth", self.depth, minimum=1, maximum=_MAX_DEPTH)
        check_int("GPT2.d_model", self.d_model, minimum=1)
        check_int("GPT2.n_heads", self.n_heads, minimum=1)
        check_int("GPT2.vocab", self.vocab, minimum=2, maximum=2 ** 31 - 1)
        check_int("GPT2.n_positions", self.n_positions, minimum=1)
        if self.d_model % self.n_heads:
            raise ConfigError(f"GPT2.d_model={self.d_model!r} is not allowed with n_heads={self.n_heads}; "
                              f"allowed: a multiple of n_heads")
        for name in ("depth", "d_model", "n_heads", "vocab", "n_positions"):
            object.__setattr__(self, name, int(getattr(self, name)))

    def replace(self, **changes) -> "GPT2":
        return dataclasses.replace(self, **changes)

    # ---- parameters -------------------------------------------------------------------------------

    def _block_params(self, key):
        """One block from its key: the four weight matrices are consecutive pieces of one standard normal draw
        of 12 d^2 values (c_attn, attn.c_proj, c_fc, mlp.c_proj, each row-major), scaled by their stds."""
        d = self.d_model
        shapes = {"c_attn": (d, 3 * d), "attn_proj": (d, d), "c_fc": (d, 4 * d), "mlp_proj": (4 * d, d)}
        z = _normal(key, _BLOCK_TAG, (12 * d * d,), 1.0)
        w, start = {}, 0
        for name, (rows, cols) in shapes.items():
            w[name] = z[start:start + rows * cols].reshape(rows, cols)
            start += rows * cols
        zeros, ones = (lambda n: jnp.zeros((n,), jnp.float32)), (lambda n: jnp.ones((n,), jnp.float32))
        return {
            "ln_1": {"scale": ones(d), "bias": zeros(d)},
            "attn": {"c_attn": {"kernel": INIT_STD * w["c_attn"], "bias": zeros(3 * d)},
                     "c_proj": {"kernel": PROJ_STD * w["attn_proj"], "bias": zeros(d)}},
            "ln_2": {"scale": ones(d), "bias": zeros(d)},
            "mlp": {"c_fc": {"kernel": INIT_STD * w["c_fc"], "bias": zeros(4 * d)},
                    "c_proj": {"kernel": PROJ_STD * w["mlp_proj"], "bias": zeros(d)}},
        }

    def init(self, key) -> dict:
        """Sample GPT-2 small's initialization. Pure in ``key``; jit- and vmap-safe (vmap over keys).

        Args:
          key: a JAX PRNG key (``jax.random.key`` or legacy ``PRNGKey``).

        Returns:
          The parameter pytree (module doc): ``wte``, ``wpe``, ``h`` (every leaf with a leading ``depth`` axis,
          block ``l`` drawn from ``fold_in(key, l)``), ``ln_f``.
        """
        d = self.d_model
        block_keys = jax.vmap(jax.random.fold_in, (None, 0))(key, jnp.arange(self.depth, dtype=jnp.uint32))
        return {
            "wte": {"embedding": _normal(key, _WTE_TAG, (self.vocab, d), INIT_STD)},
            "wpe": {"embedding": _normal(key, _WPE_TAG, (self.n_positions, d), INIT_STD)},
            "h": jax.vmap(self._block_params)(block_keys),
            "ln_f": {"scale": jnp.ones((d,), jnp.float32), "bias": jnp.zeros((d,), jnp.float32)},
        }

    def prompt(self, key, length: int = 1) -> Array:
        """The seed's prompt: ``length`` tokens uniform in ``[0, vocab)`` from ``fold_in(key, tag)``, int32.

        Uses the same key as ``init`` (a seed's weights and prompt both come from its key; the tags keep them
        independent).
        """
        length = check_int("GPT2.prompt length", length, minimum=1)
        return jax.random.randint(jax.random.fold_in(key, _PROMPT_TAG), (length,), 0, self.vocab, jnp.int32)

    def at_depth(self, params, depth: int):
        """The depth-``depth`` model cut out of a deeper sample: ``(GPT2(depth=depth, ...), its parameters)``.

        ``at_depth(GPT2(depth=12).init(key), L)`` equals ``(GPT2(depth=L), GPT2(depth=L).init(key))`` bit for bit.
        """
        depth = check_int("GPT2.depth", depth, minimum=1, maximum=self.depth)
        sub = dict(params, h=jax.tree.map(lambda a: a[:depth], params["h"]))
        return self.replace(depth=depth), sub

    def flops(self, points: int) -> float:
        """Rough flops of decoding a sequence of ``points`` tokens (the size guard's estimate): per token the
        blocks' matmuls (12 d^2 per block), attention over the sequence and the LM head (d x vocab)."""
        d = self.d_model
        return 2.0 * points * (self.depth * (12 * d * d + points * d) + d * self.vocab)

    def at_shared(self, params, depth: int):
        """``at_depth`` under the name the sweep engine reads (the model's ``shared_axis``)."""
        return self.at_depth(params, depth)

    def switched(self, activations):
        """One model for every activation in ``activations``, chosen by a traced index at apply time.

        Returns ``(model, branch)``: ``branch(index)`` gives ``{"activation_fn": f}`` for ``apply`` and
        ``generate``, ``f`` a ``lax.switch`` over the activations (a real conditional when the index is one
        scalar per call; a select over all of them when the index itself is vmapped).
        """
        for name in activations:
            if name not in GPT2_ACTIVATIONS:
                raise ConfigError(f"GPT2.activation={name!r} is unknown; allowed: {', '.join(GPT2_ACTIVATIONS)}")
        branches = [GPT2_ACTIVATIONS[name] for name in activations]

        def branch(index):
            return {"activation_fn": lambda z: lax.switch(index, branches, z)}

        return self.replace(activation=activations[0]), branch

    def hf_config(self) -> dict:
        """Keyword arguments of ``transformers.GPT2Config`` for this model (dropout off, tied head).

        Raises ConfigError for activations transformers does not implement (sin, gaussian, selu): load the
        weights into a model whose ``mlp.act`` modules are replaced instead.
        """
        hf_name = GPT2_ACTIVATIONS[self.activation].require("hf_name", "GPT2.hf_config (transformers)",
                                                            GPT2_ACTIVATIONS)
        return dict(vocab_size=self.vocab, n_positions=self.n_positions, n_embd=self.d_model, n_layer=self.depth,
                    n_head=self.n_heads, n_inner=None, activation_function=hf_name,
                    resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=LAYERNORM_EPS,
                    initializer_range=INIT_STD, tie_word_embeddings=True, scale_attn_weights=True)

    # ---- forward ------------------------------------------------------------------------------------

    def _block(self, activation_fn, precision):
        return _Block(self.n_heads, activation_fn or GPT2_ACTIVATIONS[self.activation], precision)

    def _forward(self, params, tokens, pos, cache, ln_gain, precision, activation_fn, last_only):
        """Hidden states -> logits for ``tokens`` at positions ``pos ..``; returns (logits, keys, values).

        ``cache``: None (nothing before ``pos``) or ``(cache_k, cache_v)``, each (depth, heads, d / heads, S).
        ``keys`` and ``values`` are this call's, (depth, T, d).
        """
        t = tokens.shape[0]
        wte = params["wte"]["embedding"]
        positions = pos + jnp.arange(t, dtype=jnp.int32)
        x = jnp.take(wte, tokens, axis=0) + jnp.take(params["wpe"]["embedding"], positions, axis=0)
        ln_gain = jnp.asarray(ln_gain, jnp.float32)
        block = self._block(activation_fn, precision)

        def layer(x, xs):
            p, index = xs
            if cache is None:
                x, k, v = block.apply({"params": p}, x, None, None, pos, ln_gain)
            else:  # index this layer's rows here: as scan inputs, vmap would transpose the whole cache per token
                ck, cv = (lax.dynamic_index_in_dim(c, index, 0, keepdims=False) for c in cache)
                x, k, v = block.apply({"params": p}, x, ck, cv, pos, ln_gain)
            return x, (k, v)

        x, (keys, values) = lax.scan(layer, x, (params["h"], jnp.arange(self.depth, dtype=jnp.int32)))
        if last_only:
            x = x[-1:]
        h = _LayerNorm().apply({"params": params["ln_f"]}, x)
        logits = lax.dot_general(h, wte, (((1,), (1,)), ((), ())), precision=precision)  # tied head: h @ wte.T
        return logits, keys, values

    def _check_tokens(self, tokens, what, max_len):
        tokens = jnp.asarray(tokens)
        if tokens.ndim != 1 or tokens.shape[0] < 1 or not jnp.issubdtype(tokens.dtype, jnp.integer):
            raise ConfigError(f"GPT2 {what} has shape {tokens.shape} and dtype {tokens.dtype}; allowed: a 1-D "
                              f"integer array of length >= 1 (vmap for batches)")
        if tokens.shape[0] > max_len:
            raise ConfigError(f"GPT2 {what} length {tokens.shape[0]} is not allowed; allowed: at most {max_len} "
                              f"(n_positions={self.n_positions})")
        if not isinstance(tokens, jax.core.Tracer):
            arr = np.asarray(tokens)
            if arr.min() < 0 or arr.max() >= self.vocab:
                raise ConfigError(f"GPT2 {what} has token ids in {arr.min()} .. {arr.max()}; allowed: "
                                  f"0 .. {self.vocab - 1}")
        return tokens.astype(jnp.int32)

    def _check_params(self, params):
        got = tuple(params["wte"]["embedding"].shape), tuple(params["h"]["ln_1"]["scale"].shape)
        want = (self.vocab, self.d_model), (self.depth, self.d_model)
        if got != want:
            raise ConfigError(f"GPT2 params have wte {got[0]} and {got[1][0] if got[1] else '?'} blocks; this "
                              f"spec needs wte {want[0]} and {self.depth} blocks (vmap for batches; "
                              f"at_depth cuts a deeper sample)")

    def apply(self, params, tokens, ln_gain=1.0, precision="highest", activation_fn=None) -> Array:
        """The full causal forward pass: ``tokens`` (T,) int -> logits (T, vocab), float32.

        Args:
          params: from ``init`` (one model; vmap for batches).
          tokens: token ids, shape (T,), ``T <= n_positions``.
          ln_gain: multiplies the gains of ``ln_1`` and ``ln_2`` in every block (may be traced), >= 0.
          precision: matmul precision, "highest" so accelerators do not drop to bf16 passes.
          activation_fn: a callable used instead of ``self.activation`` (see ``switched``).
        """
        self._check_params(params)
        check_scale("ln_gain", ln_gain)
        tokens = self._check_tokens(tokens, "tokens", self.n_positions)
        logits, _, _ = self._forward(params, tokens, 0, None, ln_gain, precision, activation_fn, last_only=False)
        return logits

    def generate(self, params, prompt, ln_gain=1.0, n_new: int = 100, precision="highest",
                 activation_fn=None, return_finite: bool = False):
        """Greedy decoding: the prompt followed by ``n_new`` tokens, int32 ``(len(prompt) + n_new,)``.

        Each new token is the argmax of the logits (the lowest id on ties); no EOS stop. Keys and values
        are cached in fixed-shape arrays, so the whole loop is one ``lax.scan``: jittable, and vmappable over
        ``params``, ``prompt`` and ``ln_gain`` (unbatched parameters are shared by the batch's sequences).

        Args:
          params: from ``init``.
          prompt: token ids (P,), P >= 1; ``spec.prompt(key)`` gives a seed's one-token prompt.
          ln_gain: as in ``apply``.
          n_new: tokens to generate (static), with ``P + n_new - 1 <= n_positions`` (the last token is
            never fed back).
          precision: as in ``apply``.
          activation_fn: as in ``apply``.
          return_finite: also return a bool scalar, False when some step's logits were not finite (the
            chosen logit was NaN or inf: an overflowing gain), so its tokens are not the model's.

        Returns:
          int32 tokens ``(P + n_new,)``, the prompt first; with ``return_finite``, ``(tokens, finite)``.
        """
        self._check_params(params)
        check_scale("ln_gain", ln_gain)
        n_new = check_int("GPT2.generate n_new", n_new, minimum=0)
        prompt = self._check_tokens(prompt, "prompt", self.n_positions)
        p = prompt.shape[0]
        if p + n_new - 1 > self.n_positions:
            raise ConfigError(f"GPT2.generate n_new={n_new} is not allowed with a prompt of {p} tokens; allowed: "
                              f"len(prompt) + n_new - 1 <= n_positions={self.n_positions}")
        if n_new == 0:
            return (prompt, jnp.bool_(True)) if return_finite else prompt
        s = p + n_new - 1  # positions ever fed: 0 .. s - 1
        heads, hd = self.n_heads, self.d_model // self.n_heads

        def write(cache, new, pos):  # new (depth, 1, d) -> column pos of (depth, heads, hd, S)
            return lax.dynamic_update_slice(cache, new.reshape(self.depth, heads, hd, 1), (0, 0, 0, pos))

        # One token per step, the prompt's first (read in, not predicted), then the model's own: a single
        # compiled forward serves the prompt and the decoding (the sweeps' prompts are one token long).
        def step(carry, pos):
            previous, cache_k, cache_v, finite = carry
            token = jnp.where(pos < p, prompt[jnp.minimum(pos, p - 1)], previous)
            logits, keys, values = self._forward(params, token[None], pos, (cache_k, cache_v), ln_gain, precision,
                                                 activation_fn, last_only=True)
            # the first maximum: the lowest id on ties (and a NaN's id if there is one)
            chosen = jnp.argmax(logits[0]).astype(jnp.int32)
            finite = finite & jnp.isfinite(logits[0, chosen])
            return (chosen, write(cache_k, keys, pos), write(cache_v, values, pos), finite), chosen

        empty = jnp.zeros((self.depth, heads, hd, s), jnp.float32)
        init = (jnp.int32(0), empty, empty, jnp.bool_(True))
        (_, _, _, finite), chosen = lax.scan(step, init, jnp.arange(s, dtype=jnp.int32))
        tokens = jnp.concatenate([prompt, chosen[p - 1:]])
        return (tokens, finite) if return_finite else tokens


# ---- HuggingFace state dicts ----------------------------------------------------------------------------

# (our path under a block, HF name under transformer.h.{l}.)
_BLOCK_NAMES = (
    (("ln_1", "scale"), "ln_1.weight"), (("ln_1", "bias"), "ln_1.bias"),
    (("attn", "c_attn", "kernel"), "attn.c_attn.weight"), (("attn", "c_attn", "bias"), "attn.c_attn.bias"),
    (("attn", "c_proj", "kernel"), "attn.c_proj.weight"), (("attn", "c_proj", "bias"), "attn.c_proj.bias"),
    (("ln_2", "scale"), "ln_2.weight"), (("ln_2", "bias"), "ln_2.bias"),
    (("mlp", "c_fc", "kernel"), "mlp.c_fc.weight"), (("mlp", "c_fc", "bias"), "mlp.c_fc.bias"),
    (("mlp", "c_proj", "kernel"), "mlp.c_proj.weight"), (("mlp", "c_proj", "bias"), "mlp.c_proj.bias"),
)
_TOP_NAMES = ((("wte", "embedding"), "wte.weight"), (("wpe", "embedding"), "wpe.weight"),
              (("ln_f", "scale"), "ln_f.weight"), (("ln_f", "bias"), "ln_f.bias"))


def _get(tree, path):
    for name in path:
        tree = tree[name]
    return tree


def to_hf_state_dict(params, ln_gain: float = 1.0) -> dict[str, np.ndarray]:
    """``GPT2LMHeadModel``'s state dict for one model's parameters: numpy float32 arrays keyed by HF names.

    Names and layouts are transformers': ``transformer.wte.weight`` (vocab, d), ``transformer.wpe.weight``,
    ``transformer.h.{l}.ln_1.weight``, ``transformer.h.{l}.attn.c_attn.weight`` (d, 3d) as (in, out) (HF's
    ``Conv1D``), ..., ``transformer.ln_f.weight``, and ``lm_head.weight`` (a copy of ``wte``: the head is tied).
    ``model.load_state_dict(to_hf_state_dict(params))`` (as torch tensors) loads our model into transformers.

    Args:
      params: from ``GPT2.init`` (one model, not a vmapped batch).
      ln_gain: baked into the ``ln_1`` / ``ln_2`` weights, so the HF model computes ``apply(..., ln_gain)``.
        The default 1 keeps the round trip with ``from_hf_state_dict`` exact.
    """
    check_scale("ln_gain", ln_gain)
    wte = np.asarray(params["wte"]["embedding"])
    if wte.ndim != 2:
        raise ConfigError(f"to_hf_state_dict: wte has shape {wte.shape}; allowed: one model's parameters "
                          "(vocab, d), not a vmapped batch")
    out = {f"transformer.{hf}": np.array(_get(params, path), np.float32) for path, hf in _TOP_NAMES}
    depth = int(np.shape(params["h"]["ln_1"]["scale"])[0])
    blocks = {path: np.asarray(_get(params["h"], path)) for path, _ in _BLOCK_NAMES}
    for layer in range(depth):
        for path, hf in _BLOCK_NAMES:
            value = np.array(blocks[path][layer], np.float32)
            if hf in ("ln_1.weight", "ln_2.weight") and ln_gain != 1.0:
                value = value * np.float32(ln_gain)
            out[f"transformer.h.{layer}.{hf}"] = value
    out["lm_head.weight"] = out["transformer.wte.weight"].copy()
    return out


def from_hf_state_dict(state_dict) -> dict:
    """The parameter pytree of a GPT-2 state dict (the inverse of ``to_hf_state_dict``, exact).

    Accepts ``GPT2LMHeadModel`` names (``transformer.`` prefix) or ``GPT2Model`` names (none), values as numpy
    arrays or CPU torch tensors. ``lm_head.weight``, when present, must equal ``wte`` (the head is tied);
    the attention-mask buffers (``attn.bias``, ``attn.masked_bias``) of older transformers are ignored.
    The model's sizes follow from the shapes (``GPT2(depth=..., d_model=..., vocab=..., n_positions=...)``).

    Raises:
      ConfigError: for missing, unexpected or inconsistent entries.
    """
    arrays = {}
    for name, value in state_dict.items():
        if name.endswith((".attn.bias", ".attn.masked_bias")) and ".c_" not in name:
            continue
        arrays[name[len("transformer."):] if name.startswith("transformer.") else name] = value
    head = arrays.pop("lm_head.weight", None)
    bad = [name for name in arrays if name.startswith("h.") and not name.split(".")[1].isdigit()]
    if bad:
        raise ConfigError(f"from_hf_state_dict: {'transformer.' + bad[0]!r} is not allowed; allowed: blocks named "
                          "h.0 .. h.(depth - 1)")
    layers = sorted({int(name.split(".")[1]) for name in arrays if name.startswith("h.")})
    depth = len(layers)
    if depth == 0 or layers != list(range(depth)):
        raise ConfigError(f"from_hf_state_dict: blocks {layers} are not allowed; allowed: h.0 .. h.(depth - 1), "
                          "depth >= 1")
    expected = [hf for _, hf in _TOP_NAMES] + [f"h.{layer}.{hf}" for layer in range(depth) for _, hf in _BLOCK_NAMES]
    missing = [name for name in expected if name not in arrays]
    extra = sorted(set(arrays) - set(expected))
    if missing or extra:
        raise ConfigError(f"from_hf_state_dict: missing {missing[:5]}, unexpected {extra[:5]}; allowed: exactly "
                          "GPT-2's parameters")
    as_np = {}
    for name in expected:
        try:
            as_np[name] = np.asarray(arrays[name], np.float32)
        except (TypeError, ValueError):
            raise ConfigError(f"from_hf_state_dict: {name} is not a float array ({type(arrays[name]).__name__}); "
                              "allowed: numpy arrays or CPU torch tensors") from None
    # every entry's shape, from d_model, vocab and n_positions (before stacking the blocks: np.stack would
    # raise a bare ValueError, and a wrong top-level shape would surface only inside generate)
    if as_np["wte.weight"].ndim != 2 or as_np["wpe.weight"].ndim != 2:
        raise ConfigError(f"from_hf_state_dict: wte.weight {as_np['wte.weight'].shape} and wpe.weight "
                          f"{as_np['wpe.weight'].shape} are not allowed; allowed: (vocab, d_model), (n_positions, "
                          "d_model)")
    vocab, d = as_np["wte.weight"].shape
    shapes = {"wpe.weight": (as_np["wpe.weight"].shape[0], d), "ln_f.weight": (d,), "ln_f.bias": (d,)}
    block_shapes = {"ln_1.weight": (d,), "ln_1.bias": (d,), "attn.c_attn.weight": (d, 3 * d),
                    "attn.c_attn.bias": (3 * d,), "attn.c_proj.weight": (d, d), "attn.c_proj.bias": (d,),
                    "ln_2.weight": (d,), "ln_2.bias": (d,), "mlp.c_fc.weight": (d, 4 * d), "mlp.c_fc.bias": (4 * d,),
                    "mlp.c_proj.weight": (4 * d, d), "mlp.c_proj.bias": (d,)}
    shapes.update({f"h.{layer}.{hf}": shape for layer in range(depth) for hf, shape in block_shapes.items()})
    for name, shape in shapes.items():
        if as_np[name].shape != shape:
            raise ConfigError(f"from_hf_state_dict: {name} has shape {as_np[name].shape}; allowed: {shape} "
                              f"(d_model={d}, vocab={vocab})")
    if head is not None and not np.array_equal(np.asarray(head, np.float32), as_np["wte.weight"]):
        raise ConfigError("from_hf_state_dict: lm_head.weight differs from transformer.wte.weight; allowed: a "
                          "tied head (this GPT2 has no separate output embedding)")
    params: dict = {}
    for path, hf in _TOP_NAMES:
        params.setdefault(path[0], {})[path[1]] = jnp.asarray(as_np[hf])
    h: dict = {}
    for path, hf in _BLOCK_NAMES:
        node = h
        for name in path[:-1]:
            node = node.setdefault(name, {})
        node[path[-1]] = jnp.asarray(np.stack([as_np[f"h.{layer}.{hf}"] for layer in range(depth)]))
    params["h"] = h
    return {"wte": params["wte"], "wpe": params["wpe"], "h": h, "ln_f": params["ln_f"]}
