"""Lempel–Ziv measures against independent plain-Python references (DESIGN.md section 5).

The references below are literal ports of the definitions (phrase sets of tuples, the Kaspar–Schuster
loop, numpy's median/quantile) and share no code with ``redshift_jax.measures.lz``. Random sequences are
evaluated in vmapped batches (one compile per length and dtype) and compared exactly.
"""

from __future__ import annotations

import importlib
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from redshift_jax.errors import ConfigError
from redshift_jax.measures import MEASURES, lz, quantize

# ``redshift_jax.measures.lz`` is the function; the module of the same name is reached through importlib.
lz_module = importlib.import_module("redshift_jax.measures.lz")

VARIANTS = ("lz76", "lz78", "lzw")


# ------------------------------------------------------------------------------------------------------
# Independent references.

def ref_lz76(s) -> int:
    """Kaspar & Schuster (1987), the standard i / k / l / k_max loop (n >= 2)."""
    n = len(s)
    i, k, start = 0, 1, 1
    c, k_max = 1, 1
    while True:
        if s[i + k - 1] == s[start + k - 1]:
            k += 1
            if start + k > n:
                c += 1
                break
        else:
            k_max = max(k_max, k)
            i += 1
            if i == start:
                c += 1
                start += k_max
                if start + 1 > n:
                    break
                i, k, k_max = 0, 1, 1
            else:
                k = 1
    return c


def ref_lz78(s) -> int:
    """Distinct phrases of the greedy LZ78 parse; a trailing phrase equal to an existing one is not counted."""
    phrases = set()
    w = ()
    for x in s:
        w = w + (x,)
        if w not in phrases:
            phrases.add(w)
            w = ()
    return len(phrases)


def ref_lz78_trie(s) -> int:
    """The same count with a dict trie (O(1) per symbol, for long sequences)."""
    children = {}
    node = 0
    for x in s:
        nxt = children.get((node, x))
        if nxt is None:
            children[(node, x)] = len(children) + 1
            node = 0
        else:
            node = nxt
    return len(children)


def ref_lzw(s) -> int:
    """LZW dictionary size: the distinct symbols plus every phrase added while encoding."""
    if len(s) == 0:
        return 0
    dictionary = {(x,) for x in s}
    size0 = len(dictionary)
    w = (s[0],)
    added = 0
    for x in s[1:]:
        wx = w + (x,)
        if wx in dictionary:
            w = wx
        else:
            dictionary.add(wx)
            added += 1
            w = (x,)
    return size0 + added


def ref_lzw_trie(s) -> int:
    children = {}
    symbols = sorted(set(s))
    if not symbols:
        return 0
    ids = {x: -1 - i for i, x in enumerate(symbols)}
    node = ids[s[0]]
    for x in s[1:]:
        nxt = children.get((node, x))
        if nxt is None:
            children[(node, x)] = len(children) + 1
            node = ids[x]
        else:
            node = nxt
    return len(symbols) + len(children)


REF_COUNT = {"lz76": ref_lz76, "lz78": ref_lz78, "lzw": ref_lzw}


def ref_symbols(values, levels: int):
    """numpy quantization: levels=2 -> value > median; else #{j : value > quantile(j / levels)}."""
    v = np.asarray(values, np.float64).ravel()
    if levels == 2:
        return (v > np.median(v)).astype(np.int64)
    return sum((v > np.quantile(v, j / levels)).astype(np.int64) for j in range(1, levels))


def ref_lz(values, variant: str, levels: int = 2, normalize: bool = True) -> float:
    arr = np.asarray(values)
    if arr.dtype.kind in "biu":
        s = [int(x) for x in arr.ravel()]
        alphabet = len(set(s))
    else:
        if not np.all(np.isfinite(arr)):
            return float("nan")
        s = [int(x) for x in ref_symbols(arr, levels)] if arr.size else []
        alphabet = levels
    n = len(s)
    if n == 0:  # DESIGN section 5: only an empty sequence scores 0; constant sequences are parsed
        return 0.0
    if n == 1:  # one phrase; n / log_k(n) normalizes it to 0
        return 0.0 if normalize else 1.0
    count = REF_COUNT[variant](s)
    if normalize:
        return count / (n / (math.log(n) / math.log(max(2, alphabet))))
    return float(count)


# ------------------------------------------------------------------------------------------------------
# Helpers.

def _all_variants(levels=2):
    """jit(vmap(values -> the 3 normalized values)): one compile per length and dtype."""
    return jax.jit(jax.vmap(lambda v: jnp.stack([lz(v, var, levels=levels) for var in VARIANTS])))


def _check_batch(batch, levels=2):
    """Normalized values equal the reference count times log_k(n) / n to 1e-6 relative, which pins the
    count exactly (counts here are < 10^4); NaN where the reference is NaN."""
    got = np.asarray(_all_variants(levels)(batch))
    n = batch.shape[1]
    for row, values in enumerate(batch):
        alphabet = len(set(values.tolist())) if batch.dtype.kind in "biu" else levels
        scale = math.log(n) / (n * math.log(max(2, alphabet))) if n >= 2 else 0.0
        for col, var in enumerate(VARIANTS):
            count = ref_lz(values, var, levels=levels, normalize=False)
            if np.isnan(count):
                assert np.isnan(got[row, col]), (var, row)
                continue
            assert round(float(got[row, col]) / scale) == count if count else got[row, col] == 0, (var, row)
            np.testing.assert_allclose(got[row, col], count * scale, rtol=1e-6, err_msg=f"{var} {list(values)!r}")
    return len(batch)


def _int_batch(rng, n: int, size: int) -> np.ndarray:
    """Mixed integer sequences of length n: binary, small alphabets, huge ids, constant, alternating, runs."""
    rows = []
    for r in range(size):
        kind = r % 8
        if kind == 0:
            rows.append(rng.random(n) < rng.uniform(0.05, 0.95))
        elif kind == 1:
            rows.append(rng.integers(0, rng.integers(2, 7), n))
        elif kind == 2:  # token ids near 2**31 - 1
            rows.append(2 ** 31 - 1 - rng.integers(0, rng.integers(1, 60), n))
        elif kind == 3:
            rows.append(rng.integers(0, 2 ** 31 - 1, n))
        elif kind == 4:
            rows.append(np.full(n, rng.integers(-5, 2 ** 31 - 1)))
        elif kind == 5:
            rows.append(np.arange(n) % rng.integers(2, 4))
        elif kind == 6:  # long runs
            rows.append(np.repeat(rng.integers(0, 3, n), rng.integers(1, 9))[:n])
        else:  # negative and mixed-sign symbols
            rows.append(rng.integers(-3, 3, n))
    return np.stack([np.asarray(x, np.int64) for x in rows]).astype(np.int32)


def _float_batch(rng, n: int, size: int, degenerate: bool = False) -> np.ndarray:
    rows = []
    if degenerate:  # constant, > half at the maximum (all symbols 0), NaN, +-inf
        rows += [np.full(n, 3.5), np.r_[np.ones(n - n // 3), np.zeros(n // 3)], np.full(n, np.nan)]
        rows += [np.where(np.arange(n) == 1, bad, np.linspace(0, 1, n)) for bad in (np.nan, np.inf, -np.inf)]
    for r in range(size - len(rows)):
        kind = r % 5
        if kind == 0:
            rows.append(rng.normal(size=n))
        elif kind == 1:  # ties
            rows.append(np.round(rng.normal(size=n) * 2))
        elif kind == 2:  # smooth
            t = np.linspace(0, rng.uniform(1, 20), n)
            rows.append(np.sin(t) + 0.1 * t)
        elif kind == 3:  # many values at the maximum
            rows.append(np.minimum(rng.normal(size=n), rng.uniform(-1, 1)))
        else:
            rows.append(np.exp(rng.normal(size=n) * 4))
    return np.stack(rows).astype(np.float32)


# ------------------------------------------------------------------------------------------------------
# Reference strings and definitions.

def test_reference_strings():
    s = np.array([int(c) for c in "1001111011000010"], np.int32)
    assert float(lz(s, "lz76", normalize=False)) == 6
    assert float(lz(s, "lz78", normalize=False)) == 8
    assert ref_lz76(list(s)) == 6 and ref_lz78(list(s)) == 8
    # The same string as real values binarizes to itself (median 0: value > 0).
    assert float(lz(s.astype(np.float32), "lz76", normalize=False)) == 6
    assert float(lz(s.astype(np.float32), "lz78", normalize=False)) == 8
    w = np.array([1, 2, 3, 1, 2, 4, 5, 1, 2, 3, 4, 5], np.int32)
    assert float(lz(w, "lzw", normalize=False)) == 13
    assert ref_lzw(list(w)) == 13


def test_random_sequences_match_reference():
    """Over 1,000 sequences per variant, every length class, exact counts and normalized values; the batches
    include the degenerate cases (constant, all symbols equal, NaN, inf) and huge token ids."""
    rng = np.random.default_rng(0)
    total = 0
    for n, size in ((2, 64), (17, 320), (300, 320)):
        total += _check_batch(_int_batch(rng, n, size))
    for n, size in ((3, 100), (300, 200)):
        total += _check_batch(_float_batch(rng, n, size, degenerate=True))
    assert total >= 1000


@pytest.mark.product_compile
def test_levels_match_numpy_quantiles():
    rng = np.random.default_rng(3)
    batch = _float_batch(rng, 101, 40)
    sym = np.asarray(jax.jit(jax.vmap(lambda v: quantize(v, 3)))(batch))
    for row, values in zip(sym, batch):
        np.testing.assert_array_equal(row, ref_symbols(values, 3))
    _check_batch(_float_batch(rng, 100, 40), levels=4)  # np.quantile symbols; a 4-symbol children table


@pytest.mark.product_compile
def test_quantize_median_with_ties_and_signs():
    rng = np.random.default_rng(5)
    cases = [rng.normal(size=10), np.round(rng.normal(size=10)), np.zeros(10), np.r_[np.zeros(6), -np.ones(4)],
             np.r_[-0.0, 0.0, 0.0, 1.0, -0.0, 2.0, -1.0, 0.0, 0.0, 3.0], np.r_[3e38, -3e38, 1.0, 2.0, np.zeros(6)],
             np.r_[1e-30, -1e-30, 0.0, 5.0, 1e-30, -1e-30, 2e-30, 0.0, 1.0, -1.0], rng.normal(size=10) * 1e-20,
             1000 + rng.normal(size=10) * 1e-3, np.r_[-3e38, -3e38, -3e38, 3e38, 3e38, np.ones(5)]]
    batch = np.stack(cases).astype(np.float32)
    sym = np.asarray(jax.jit(jax.vmap(lambda v: quantize(v, 2)))(batch))
    for row, values in zip(sym, batch):
        np.testing.assert_array_equal(row, ref_symbols(values, 2), err_msg=repr(values))
    odd = rng.normal(size=(3, 11)).astype(np.float32)
    for row, values in zip(np.asarray(jax.vmap(lambda v: quantize(v, 2))(odd)), odd):
        np.testing.assert_array_equal(row, ref_symbols(values, 2))


def test_degenerate_sequences():
    """Length 0 scores 0.0; length 1 counts one phrase (0.0 normalized); NaN stays NaN."""
    for values in (np.zeros(0, np.float32), np.zeros(0, np.int32)):
        for variant in VARIANTS:
            assert float(lz(values, variant)) == 0.0
            assert float(lz(values, variant, normalize=False)) == 0.0
    for values in (np.zeros(1, np.float32), np.array([7], np.int32)):
        for variant in VARIANTS:
            assert float(lz(values, variant)) == 0.0
            assert float(lz(values, variant, normalize=False)) == 1.0
    assert np.isnan(float(lz(np.full(1, np.nan, np.float32), "lz78")))


def test_constant_sequences_are_counted_like_any_other():
    """DESIGN section 5: 101 equal tokens give lz76 2, lz78 13, lzw 14 (the co-author's and the literature's)."""
    for tokens in (np.zeros(101, np.int32), np.full(101, 50256, np.int32)):
        got = [float(lz(tokens, v, normalize=False)) for v in VARIANTS]
        assert got == [2.0, 13.0, 14.0]
        assert got == [ref_lz(tokens, v, normalize=False) for v in VARIANTS]
    # a constant real function is one symbol too: counted, not 0 (normalized with k = levels = 2)
    img = np.full((64, 64), 3.0, np.float32)
    n = img.size
    for v in VARIANTS:
        want = ref_lz(np.zeros(n, np.int32), v, normalize=False) * math.log2(n) / n
        np.testing.assert_allclose(float(lz(img, v)), want, rtol=1e-6)
        assert float(lz(img, v)) > 0


def test_bad_arguments():
    with pytest.raises(ConfigError, match="lz99"):
        lz(np.zeros(4), "lz99")
    with pytest.raises(ConfigError, match="levels"):
        lz(np.zeros(4), "lz78", levels=1)


# ------------------------------------------------------------------------------------------------------
# Long sequences, the trie bound, both data structures.

def _smooth_image(res, seed):
    rng = np.random.default_rng(seed)
    x = np.linspace(-1, 1, res)
    xx, yy = np.meshgrid(x, x)
    img = sum(np.tanh(rng.normal() * 3 * xx + rng.normal() * 3 * yy + rng.normal()) for _ in range(4))
    return img.astype(np.float32)


def test_300x300_images_vmapped():
    """lz78 and lzw on 90,000-symbol sequences, vmapped, exact."""
    rng = np.random.default_rng(2)
    batch = np.stack([rng.normal(size=(300, 300)).astype(np.float32), _smooth_image(300, 3)])
    f = jax.jit(jax.vmap(lambda v: jnp.stack([lz(v, "lz78", normalize=False), lz(v, "lzw", normalize=False)])))
    got = np.asarray(f(batch))
    for row, img in zip(got, batch):
        s = list(ref_symbols(img, 2))
        assert row[0] == ref_lz78_trie(s)
        assert row[1] == ref_lzw_trie(s)


def test_long_token_sequences_hash_table():
    """90,000 integer tokens (large alphabet: the hash-table trie), vmapped, exact."""
    rng = np.random.default_rng(4)
    batch = np.stack([rng.integers(0, 50_000, 90_000), 2 ** 31 - 1 - rng.integers(0, 3, 90_000)]).astype(np.int32)
    f = jax.jit(jax.vmap(lambda v: jnp.stack([lz(v, "lz78", normalize=False), lz(v, "lzw", normalize=False)])))
    got = np.asarray(f(batch))
    for row, s in zip(got, batch):
        s = [int(x) for x in s]
        assert row[0] == ref_lz78_trie(s)
        assert row[1] == ref_lzw_trie(s)


def test_lz76_4096():
    rng = np.random.default_rng(6)
    batch = np.stack([rng.normal(size=(64, 64)), _smooth_image(64, 7)]).astype(np.float32)
    got = np.asarray(jax.jit(jax.vmap(lambda v: lz(v, "lz76", normalize=False)))(batch))
    for value, img in zip(got, batch):
        assert value == ref_lz76(list(ref_symbols(img, 2)))


def test_worst_case_trie_is_exactly_the_bound():
    """All binary strings by increasing length: every phrase is new, the table fills to its static bound."""
    s = []
    length = 1
    while len(s) < 3000:
        for code in range(2 ** length):
            s.extend(int(b) for b in format(code, f"0{length}b"))
        length += 1
    s = np.array(s[:3000], np.float32)  # real values 0/1 -> the children-table path, levels 2
    ref = ref_lz78_trie(list(ref_symbols(s, 2)))
    assert ref == lz_module.max_new_phrases(3000, 2, lzw=False)
    assert float(lz(s, "lz78", normalize=False)) == ref
    assert float(lz(s, "lzw", normalize=False)) == ref_lzw_trie(list(ref_symbols(s, 2)))


def test_hash_and_chunked_table_paths(monkeypatch):
    """Force the hash table for real input, and the chunked children table, and compare with the reference."""
    rng = np.random.default_rng(8)
    batch = _float_batch(rng, 257, 12)
    want = [[ref_lz(v, var, normalize=False) for var in ("lz78", "lzw")] for v in batch]

    def run():
        f = jax.vmap(lambda v: jnp.stack([lz(v, "lz78", normalize=False), lz(v, "lzw", normalize=False)]))
        return np.asarray(jax.jit(f)(batch)).tolist()

    monkeypatch.setattr(lz_module, "_TABLE_MAX_ENTRIES", 0)
    assert run() == want
    monkeypatch.setattr(lz_module, "_TABLE_MAX_ENTRIES", 1 << 20)
    monkeypatch.setattr(lz_module, "_TABLE_CHUNK_BYTES", 2000)  # a few sequences per chunk -> lax.map
    assert run() == want


# ------------------------------------------------------------------------------------------------------
# jit / vmap behaviour.

@pytest.mark.product_compile
def test_vmap_equals_one_by_one_and_nested_vmap():
    rng = np.random.default_rng(9)
    imgs = rng.normal(size=(6, 16, 16)).astype(np.float32)
    imgs[1] = 2.0
    imgs[2, 3, 3] = np.nan
    imgs[3] = _smooth_image(16, 1)
    names = ("lz", "lz76", "lzw")

    def three(img):
        return jnp.stack([MEASURES[name](img) for name in names])

    batched = np.asarray(jax.jit(jax.vmap(three))(imgs))
    one = jax.jit(three)
    single = np.stack([np.asarray(one(img)) for img in imgs])
    np.testing.assert_array_equal(batched, single)
    nested = np.asarray(jax.jit(jax.vmap(jax.vmap(three)))(imgs.reshape(2, 3, 16, 16)))
    np.testing.assert_array_equal(nested.reshape(6, 3), single)
    constant = [ref_lz(np.zeros(256, np.int32), v) for v in ("lz78", "lz76", "lzw")]  # counted, not 0
    np.testing.assert_allclose(single[1], constant, rtol=1e-6)
    assert np.isnan(single[2]).all()


@pytest.mark.product_compile
def test_jit_twice_does_not_recompile(compile_counter):
    rng = np.random.default_rng(10)

    def lz_measure_under_test(v):
        return lz(v, "lz78")

    f = jax.jit(jax.vmap(lz_measure_under_test))
    a = f(rng.normal(size=(4, 32, 32)).astype(np.float32))
    b = f(rng.normal(size=(4, 32, 32)).astype(np.float32))
    jax.block_until_ready((a, b))
    assert compile_counter.count("lz_measure_under_test") == 1
    assert not np.array_equal(np.asarray(a), np.asarray(b))
