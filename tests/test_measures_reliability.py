"""Measures under the reliability contract (DESIGN.md section 12).

- Every measure returns NaN for any input containing NaN, +inf or -inf (one bad entry at the first, last or a
  middle position, 1-D and 2-D, eager, jitted and vmapped). XLA:CPU's min/max reductions do not propagate NaN,
  so a NaN can vanish from them: a NaN must not score 0.0.
- Finite inputs keep their values bit for bit (the published sweep numbers were computed before the NaN guard
  and the quantization rewrite): golden float32 bit patterns from the earlier code, CPU backend.
- ``lz(levels=...)``: symbols equal numpy's quantile quantization for every quantization path, counts equal
  plain-Python references, levels above ``MAX_LEVELS`` are a ConfigError, and ``levels=1000`` finishes (it used
  to compile for minutes and abort the process with ``std::bad_alloc``).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_measures_lz import ref_lz76, ref_lz78, ref_lzw  # the LZ tests' independent plain-Python parses

from redshift_jax import measures
from redshift_jax.errors import ConfigError
from redshift_jax.measures import MEASURES, lz, quantize

lz_module = importlib.import_module("redshift_jax.measures.lz")


# ------------------------------------------------------------------------------------------------------
# 1. NaN / inf in -> NaN out.

CONTRACT_MEASURES = dict(MEASURES)
for _levels in (3, 100):  # the vmapped counting search and the sort path of the quantization
    for _variant in ("lz76", "lz78", "lzw"):
        CONTRACT_MEASURES[f"{_variant}_levels{_levels}"] = (
            lambda v, _l=_levels, _v=_variant: lz(v, _v, levels=_l, normalize=False))


def _bad_cases(shape):
    """(one finite image, a batch of copies each with one NaN / inf / -inf at the first, middle, last entry)."""
    rng = np.random.default_rng(11)
    clean = rng.normal(size=shape).astype(np.float32)
    n = clean.size
    cases = []
    for bad in (np.nan, np.inf, -np.inf):
        for pos in (0, n // 2 + 3, n - 1):
            x = clean.copy().reshape(-1)
            x[pos] = bad
            cases.append(x.reshape(shape))
    return clean, np.stack(cases)


def _every_measure(v):
    """All contract measures of one input, in one program when jitted (sorted by name)."""
    return jnp.stack([CONTRACT_MEASURES[name](v) for name in sorted(CONTRACT_MEASURES)])


@pytest.mark.parametrize("shape", [(64, 64), (200,)], ids=["2d", "1d"])
def test_non_finite_input_gives_nan(shape):
    """Every contract measure: each bad input one at a time and all of them batched (``jit(vmap)``, as a sweep
    compiles its measures), each way in one program of all the measures (each distinct program costs seconds of
    compile: 17 measures x 2 shapes x 3 ways were 102 programs until 2026-12-07; a measure vmapped alone runs the
    same batched code as inside the program of all)."""
    names = sorted(CONTRACT_MEASURES)
    clean, bad = _bad_cases(shape)
    batch = np.concatenate([bad, clean[None]])
    every = jax.jit(_every_measure)
    for x in bad:  # one at a time
        out = np.asarray(every(x))
        for name, value in zip(names, out):
            assert np.isnan(value), (name, x.reshape(-1)[[0, x.size // 2 + 3, -1]])
    out = np.asarray(jax.jit(jax.vmap(_every_measure))(batch))  # (inputs, measures)
    assert out.shape == (len(batch), len(names))
    for name, column in zip(names, out.T):
        assert np.isnan(column[:-1]).all(), (name, column)
        assert np.isfinite(column[-1]), (name, column)


# compiles as users do: the 4,096 lz76 parses run 13x slower at the cheaper level (47 s against 3.6 s of CPU)
@pytest.mark.product_compile
def test_single_nan_in_every_position():
    """A NaN anywhere: every one of the 4,096 positions of a 64 x 64 image (the sweeps' shape; XLA:CPU lost
    most of them in min/max), every position of a 13-point curve, vmapped and jitted."""
    for shape in ((64, 64), (13,)):
        clean = np.random.default_rng(1).normal(size=shape).astype(np.float32)
        batch = np.repeat(clean.reshape(1, -1), clean.size, axis=0)
        batch[np.arange(clean.size), np.arange(clean.size)] = np.nan
        batch = batch.reshape((clean.size,) + shape)
        # every measure in one program (eleven programs per shape cost ~4 s more to compile)
        out = np.asarray(jax.jit(jax.vmap(lambda v: jnp.stack([f(v) for f in MEASURES.values()])))(batch))
        assert out.shape == (clean.size, len(MEASURES))
        for name, column in zip(MEASURES, out.T):
            assert np.isnan(column).all(), (name, shape, column)


def test_measures_docstring_promises_nan():
    assert "NaN" in measures.__doc__


# ------------------------------------------------------------------------------------------------------
# 2. Finite input: values unchanged, bit for bit.

def _golden_images():
    rng = np.random.default_rng(20240611)
    x = np.linspace(-1, 1, 64)
    xx, yy = np.meshgrid(x, x)
    out = [rng.normal(size=(64, 64)), rng.normal(size=(64, 64)) * 1e-3, rng.normal(size=(64, 64)) * 1e4 + 3.0]
    for _ in range(2):
        out.append(sum(np.tanh(rng.normal() * 3 * xx + rng.normal() * 3 * yy + rng.normal()) for _ in range(4)))
    out.append(np.round(rng.normal(size=(64, 64)) * 2))
    return np.stack(out).astype(np.float32)


# float32 values computed with the code before the NaN guard, as bit patterns: (jit(vmap) over the batch, one by
# one). (Vmapped and single calls differ in the last bits for the float measures: different reduction orders.)
# The float measures are compared within FLOAT_RTOL, never bit for bit: another CPU (AMD EPYC against the Intel
# Xeon that recorded these) rounds the FFT and pseudo-inverse products differently in the last bit. The LZ
# measures count phrases of integer symbols, so theirs stay exact. See tests/README.md.
GOLDEN_BITS = {
    "fourier": ((0x3f0aee3c, 0x3f0cdfa8, 0x3f0ba333, 0x3e432e27, 0x3e4bc7ec, 0x3f0d59bd),
                (0x3f0aee3b, 0x3f0cdfab, 0x3f0ba334, 0x3e432e21, 0x3e4bc7ec, 0x3f0d59bd)),
    "fourier_noise": ((0x3f7e2621, 0x3f80da09, 0x3f7f712c, 0x3eb2861d, 0x3eba63fd, 0x3f8149b3),
                      (0x3f7e261f, 0x3f80da0c, 0x3f7f712e, 0x3eb28618, 0x3eba63fd, 0x3f8149b3)),
    "chebyshev": ((0x3ed69e5f, 0x3ed12476, 0x3ed0f429, 0x3d827950, 0x3d858d3a, 0x3ed1941c),
                  (0x3ed69e61, 0x3ed1247e, 0x3ed0f42c, 0x3d827948, 0x3d858d39, 0x3ed19424)),
    "legendre": ((0x3f09e823, 0x3f04aaad, 0x3f04cbbf, 0x3dde634f, 0x3ddea265, 0x3f04d1a1),
                 (0x3f09e823, 0x3f04aaaf, 0x3f04cbbe, 0x3dde6351, 0x3ddea26c, 0x3f04d1a4)),
    "lz": ((0x3fcf0000, 0x3fcf0000, 0x3fcf6000, 0x3ee40000, 0x3f148000, 0x3fcae000),) * 2,
    "lz76": ((0x3f846000, 0x3f83a000, 0x3f84c000, 0x3db40000, 0x3e3a0000, 0x3f828000),) * 2,
    "lzw": ((0x3fe9a000, 0x3fe94000, 0x3fe88000, 0x3eed0000, 0x3f208000, 0x3fe4c000),) * 2,
}
EXACT = {"lz", "lz76", "lzw"}  # integer phrase counts: the same on every CPU
# 1e-5 is ~80 float32 ulps: the widest gap seen between machines or reduction orders is 8 ulps (chebyshev),
# while the guard bugs this test exists for (a changed value, a NaN) are orders of magnitude larger.
FLOAT_RTOL = 1e-5

# Unnormalized counts from the code before the quantization rewrite (per-level threshold searches).
GOLDEN_LZ_COUNTS = {
    (3, "lz76"): (539, 548, 544, 63, 73, 527),
    (3, "lz78"): (747, 747, 752, 210, 249, 736),
    (3, "lzw"): (884, 884, 888, 219, 268, 867),
    (8, "lz76"): (967, 975, 971, 163, 175, 849),
    (8, "lz78"): (1164, 1157, 1160, 428, 476, 1031),
    (8, "lzw"): (1534, 1534, 1542, 460, 523, 1323),
    (16, "lz76"): (1245, 1252, 1256, 255, 255, 932),
    (16, "lz78"): (1412, 1412, 1409, 652, 667, 1121),
    (16, "lzw"): (2039, 2032, 2020, 725, 755, 1482),
}


@pytest.mark.product_compile
def test_finite_values_are_unchanged():
    """Every golden measure one by one (its own program) and all of them in one jit(vmap) program (a program per
    measure costs ~0.5-1 s more to compile each)."""
    names = sorted(GOLDEN_BITS)
    batch = _golden_images()
    vmapped = np.asarray(jax.jit(jax.vmap(lambda v: jnp.stack([MEASURES[name](v) for name in names])))(batch),
                         np.float32)  # (images, measures)
    for k, name in enumerate(names):
        f = MEASURES[name]
        for how, got in (("jit(vmap)", vmapped[:, k]),
                         ("one by one", np.array([np.asarray(f(x), np.float32) for x in batch]))):
            want = np.asarray(GOLDEN_BITS[name][how == "one by one"], np.uint32).view(np.float32)
            if name in EXACT:
                np.testing.assert_array_equal(got, want, err_msg=f"{name} {how}")
            else:
                np.testing.assert_allclose(got, want, rtol=FLOAT_RTOL, atol=0, err_msg=f"{name} {how}")


@pytest.mark.product_compile
def test_lz_counts_with_more_levels_are_unchanged():
    """All nine (levels, variant) counts in one jit(vmap) program (nine programs cost ~3 s more to compile)."""
    batch = _golden_images()
    cases = list(GOLDEN_LZ_COUNTS)
    counts = jax.jit(jax.vmap(lambda v: jnp.stack([lz(v, variant, levels=levels, normalize=False)
                                                   for levels, variant in cases])))
    got = np.asarray(counts(batch))  # (images, cases)
    for (levels, variant), column in zip(cases, got.T):
        np.testing.assert_array_equal(column, np.asarray(GOLDEN_LZ_COUNTS[levels, variant], np.float32),
                                      err_msg=f"{variant} levels={levels}")


# ------------------------------------------------------------------------------------------------------
# 3. lz(levels=...): exact symbols on every path, bounded levels, no abort.

def ref_symbols(values, levels):
    """#{j : v > np.quantile(values, j / levels)} (numpy's linear method, float64)."""
    v = np.asarray(values, np.float64).ravel()
    q = np.quantile(v, np.arange(1, levels) / levels)
    return np.searchsorted(q, v, side="left")  # q is sorted: the count of quantiles below v


REFS = {"lz76": ref_lz76, "lz78": ref_lz78, "lzw": ref_lzw}


def test_references_on_the_documented_strings():
    s = [int(c) for c in "1001111011000010"]
    assert (ref_lz76(s), ref_lz78(s)) == (6, 8)
    assert ref_lzw([1, 2, 3, 1, 2, 4, 5, 1, 2, 3, 4, 5]) == 13


# n such that numpy's float64 positions (n - 1) * (j / levels) are exact or far from an integer (a position like
# 99.99999999999999 would make np.quantile's q fall a rounding error short of x_(100)): each n with the levels it
# serves, which share one program (a program per level costs ~1.5 s of compile each).
QUANTIZE_CASES = {101: (2, 3, 7, 16, 17), 102: (100,), 257: (lz_module.MAX_LEVELS,)}


@pytest.mark.product_compile
@pytest.mark.parametrize("n", sorted(QUANTIZE_CASES), ids=lambda n: f"n{n}")
def test_quantize_matches_numpy_quantiles(n):
    """Both paths (counting search up to SEARCH_MAX_LEVELS, sort above), with ties, vmapped and alone."""
    assert lz_module.SEARCH_MAX_LEVELS == 16
    levels_list = QUANTIZE_CASES[n]
    rows = []
    for levels in levels_list:  # four rows seeded by each level; every row is checked at every level
        rng = np.random.default_rng(levels)
        rows += [rng.normal(size=n), np.round(rng.normal(size=n) * 2), rng.normal(size=n) * 1e-30,
                 np.r_[np.zeros(n - 3), 1.0, -1.0, 5.0]]
    batch = np.stack(rows).astype(np.float32)

    def every_level(v):
        return jnp.stack([quantize(v, levels) for levels in levels_list])

    got = np.asarray(jax.jit(jax.vmap(every_level))(batch))  # (rows, levels, n)
    alone = np.asarray(jax.jit(every_level)(batch[0]))
    for k, levels in enumerate(levels_list):
        for row, values in zip(got[:, k], batch):
            np.testing.assert_array_equal(row, ref_symbols(values, levels), err_msg=f"levels={levels} {values!r}")
        np.testing.assert_array_equal(alone[k], ref_symbols(batch[0], levels), err_msg=f"levels={levels}")
        assert got[:, k].min() >= 0 and got[:, k].max() <= levels - 1
    assert got.dtype == np.int32


def test_quantize_symbols_stay_in_range_on_non_finite_input():
    """Garbage in is NaN out, but the symbols (trie indices) must stay in 0 .. levels-1 on any input."""
    x = np.random.default_rng(0).normal(size=300).astype(np.float32)
    x[[0, 10, 299]] = [np.nan, np.inf, -np.inf]
    for levels in (2, 5, 40):
        s = np.asarray(quantize(x, levels))
        assert s.min() >= 0 and s.max() <= levels - 1


@pytest.mark.parametrize("levels", [17, 64, 1009, 1031])
def test_lz_counts_with_many_levels_match_references(levels):
    """Sort-path symbols through every trie: children table (17, 64), hash table (1009, 1031); LZ76 bitsets
    (<= 1020 levels on 4,096 symbols) and the direct comparison (1031). Levels coprime to n - 1 = 4095 or a
    power of two, so np.quantile's float64 positions are never a rounding error off an integer."""
    img = np.random.default_rng(levels).normal(size=(64, 64)).astype(np.float32)
    sym = [int(s) for s in ref_symbols(img, levels)]
    # the three variants in one program (three programs cost ~1.5 s more to compile)
    got = np.asarray(jax.jit(lambda v: jnp.stack([lz(v, variant, levels=levels, normalize=False)
                                                  for variant in REFS]))(img))
    for variant, ref, count in zip(REFS, REFS.values(), got):
        assert float(count) == ref(sym), (variant, levels)


def test_levels_bound_is_a_config_error():
    bound = lz_module.MAX_LEVELS
    img = np.zeros((4, 4), np.float32)
    for bad in (bound + 1, 10 ** 9):
        with pytest.raises(ConfigError, match=rf"levels={bad}\b.*2 \.\. {bound}"):
            lz(img, "lz78", levels=bad)
        with pytest.raises(ConfigError, match=rf"levels={bad}\b.*2 \.\. {bound}"):
            quantize(img, bad)
    assert bound == 65536 and "65,536" in lz.__doc__ and "65,536" in quantize.__doc__


def test_levels_1000_does_not_abort_the_process():
    """In a subprocess: it used to compile for minutes and die with std::bad_alloc."""
    code = textwrap.dedent("""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))  # an allocation failure stays in the child
        import numpy as np
        from redshift_jax import measures
        img = np.random.default_rng(0).normal(size=(64, 64)).astype(np.float32)
        for variant in ("lz76", "lz78", "lzw"):
            print(variant, float(measures.lz(img, variant, levels=1000)))
    """)
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    values = [float(line.split()[1]) for line in proc.stdout.split("\n") if line.strip()]
    assert len(values) == 3 and all(np.isfinite(values) & (np.asarray(values) > 0))
