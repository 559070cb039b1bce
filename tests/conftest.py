"""Test configuration shared by the whole suite.

The environment is set here, at import time, because pytest imports ``conftest.py`` before any test module
and XLA reads ``XLA_FLAGS`` / ``JAX_PLATFORMS`` only once, when jax initializes its backends:

- ``JAX_PLATFORMS=cpu``: the suite's bitwise and timing expectations are about the CPU backend.
- ``--xla_force_host_platform_device_count=4``: the CPU backend exposes 4 devices, so sharding tests see a
  multi-device mesh on any machine (appended to, not replacing, flags the user already set).

Float results are never compared with values or bit patterns recorded on one machine (another CPU rounds the
last bit differently): use a float32 tolerance, or compare bit for bit only with a reference computed in the
same run. See ``tests/README.md``.
"""

from __future__ import annotations

import os
import re

_DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"
_N_TEST_DEVICES = 4

os.environ["JAX_PLATFORMS"] = "cpu"
# One OpenBLAS thread (numpy's and scipy's linear algebra) in the test processes and the subprocesses they start,
# which inherit it: the suite already keeps both cores busy, and OpenBLAS's spinning threads on a loaded machine
# cost ~12x the CPU of one thread (200 ball closed forms, whose Gauss-Legendre nodes are an eigvalsh each: 13.9 s
# of CPU against 1.1 s; the kinks notebook spent most of its time there). A count the user set is kept.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
_flags = os.environ.get("XLA_FLAGS", "")
_flags = re.sub(rf"{_DEVICE_COUNT_FLAG}=\S*", "", _flags).strip()
os.environ["XLA_FLAGS"] = f"{_flags} {_DEVICE_COUNT_FLAG}={_N_TEST_DEVICES}".strip()

# One persistent compilation cache for the whole run: many tests (and the CLI, notebook and multi-process tests'
# subprocesses, which inherit the environment) compile the same programs from fresh closures, which jax's
# in-memory cache cannot share. The controller makes the folder before the xdist workers start, and they inherit
# it; a folder the user set is kept. CompileCounter still sees a persistent-cache hit: jax records the backend
# compile event around the cache look-up (jax/_src/interpreters/pxla.py), so "no recompilation" stays tested.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    import tempfile

    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="redshift-jax-tests-xla-cache-")
    os.environ["REDSHIFT_TESTS_OWN_XLA_CACHE"] = "1"
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

# Two compile levels. Nearly all of the suite's CPU is XLA compiling (2026-12-07: 1,618 s of backend compile in
# 1,579 s of test CPU, from jax.monitoring's compile events), and most tests check numbers against tolerances,
# which do not depend on how hard LLVM optimizes the kernels. So tests compile with jax's
# ``jax_disable_most_optimizations`` (LLVM at level 0 without its expensive passes; every HLO pass still runs).
# The level changes the last bits of float results, so whatever compares bits compiles as users do:
# - a test marked ``product_compile``: every test that compares bits (``array_equal``, "bitwise", directly or
#   through a helper of its module: chunk, device and process invariance, a cell against the network alone);
# - every fixture wider than one test (a module's reference result), whichever test asks for it first;
# - a test that runs more than it compiles (unoptimized kernels run several times slower), also marked
#   ``product_compile``.
# The level is set before each test's fixtures (``pytest_runtest_setup``); a change clears every compiled program
# held in memory (jax's caches and the package's own), so no test runs a program of the other level; the
# persistent cache above keeps the levels apart (XLA's debug options are part of its key). Subprocesses inherit
# their test's level. ``REDSHIFT_TESTS_PRODUCT_COMPILE=1`` compiles everything as users do.
_ALL_PRODUCT_COMPILE = os.environ.get("REDSHIFT_TESTS_PRODUCT_COMPILE", "0") == "1"
os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] = "0" if _ALL_PRODUCT_COMPILE else "1"

from pathlib import Path  # noqa: E402

import jax  # noqa: E402  (must come after the environment is set)
import pytest  # noqa: E402

# jax.monitoring event XLA compilation reports once per backend compile (jax/_src/dispatch.py).
BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


class CompileCounter:
    """Counts backend (XLA) compilations, optionally only those of functions with a given name.

    Listens to jax.monitoring's ``/jax/core/compile/backend_compile_duration`` event, which jax records once
    per XLA compilation with the jitted function's name as ``fun_name``. A cache hit records nothing, so a
    jitted function re-called with new values of the same shapes adds 0.
    """

    def __init__(self):
        self.names: list[str] = []

    def __call__(self, event: str, duration_secs: float, **kwargs) -> None:
        if event == BACKEND_COMPILE_EVENT:
            self.names.append(str(kwargs.get("fun_name", "")))

    def __enter__(self) -> "CompileCounter":
        jax.monitoring.register_event_duration_secs_listener(self)
        return self

    def __exit__(self, *exc) -> None:
        jax.monitoring.unregister_event_duration_listener(self)

    def count(self, name: str | None = None) -> int:
        """Compilations so far; with ``name``, only those whose function name contains it."""
        if name is None:
            return len(self.names)
        return sum(name in n for n in self.names)


@pytest.fixture
def compile_counter():
    """A :class:`CompileCounter` registered for the duration of one test."""
    with CompileCounter() as counter:
        yield counter


@pytest.fixture(scope="session")
def make_compile_counter():
    """The :class:`CompileCounter` class, for fixtures of wider scope: ``with make_compile_counter() as c:``."""
    return CompileCounter


def _compile_level(product: bool) -> bool:
    """Compile what follows as users do (``product``) or at the tests' cheaper level (see the top of this file);
    return whether it was compiling as users do before."""
    fast = not (product or _ALL_PRODUCT_COMPILE)
    os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] = "1" if fast else "0"
    was_fast = jax.config.read("jax_disable_most_optimizations")
    if was_fast != fast:
        from redshift_jax.sweep import network
        from redshift_jax.train import runner

        jax.config.update("jax_disable_most_optimizations", fast)
        jax.clear_caches()
        network._COMPILED.clear()
        runner._COMPILED.clear()
    return not was_fast


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    # the record's entries (make test-record) make figures and tables as users do
    _compile_level(any(item.get_closest_marker(m) is not None for m in ("product_compile", "record")))


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef, request):
    """A fixture wider than one test (a module's reference result) is computed as users do, whichever test asks
    first, so every test that compares bits with it compares programs of the same level."""
    if fixturedef.scope == "function":
        yield
        return
    was_product = _compile_level(True)
    try:
        yield
    finally:
        _compile_level(was_product)


def pytest_report_header(config):
    return f"jax {jax.__version__}, devices: {jax.device_count()} x {jax.devices()[0].platform}"


@pytest.fixture
def run_notebook(tmp_path):
    """Run ``notebooks/<name>`` as a script at smoke size (``REDSHIFT_SMOKE=1``, one CPU device, figures into
    ``tmp_path``); fail with its stderr unless it exits 0; return the finished process."""
    import subprocess
    import sys
    from pathlib import Path

    def run(name: str):
        env = dict(os.environ, REDSHIFT_SMOKE="1", REDSHIFT_NOTEBOOK_OUT=str(tmp_path), MPLBACKEND="Agg",
                   XLA_FLAGS="--xla_force_host_platform_device_count=1")
        notebook = Path(__file__).resolve().parents[1] / "notebooks" / name
        proc = subprocess.run([sys.executable, str(notebook)], env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc

    return run


_SLOW_LIST = Path(__file__).with_name("slow_tests.txt")


def pytest_addoption(parser):
    parser.addoption("--cpu-times", metavar="DIR", default=None,
                     help="write each test's CPU seconds (this process, and its subprocesses that ended) to "
                          "DIR/<worker>.tsv: which tests cost the most on a loaded machine, where wall times mislead")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """With ``--cpu-times DIR``: one line per test, ``node id, own CPU s, subprocesses' CPU s, wall s`` (setup,
    call and teardown: a module fixture counts in the first test that uses it)."""
    folder = item.config.getoption("--cpu-times")
    if not folder:
        yield
        return
    import resource
    import time

    def cpu():
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime

    (own0, kids0), t0 = cpu(), time.monotonic()
    yield
    (own1, kids1), wall = cpu(), time.monotonic() - t0
    Path(folder).mkdir(parents=True, exist_ok=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(Path(folder) / f"{worker}.tsv", "a") as f:
        f.write(f"{item.nodeid}\t{own1 - own0:.2f}\t{kids1 - kids0:.2f}\t{wall:.2f}\n")


def pytest_collection_modifyitems(config, items):
    """Mark the tests listed in tests/slow_tests.txt as ``slow`` (``make test-fast`` runs ``-m "not slow"``), and
    run them first: xdist hands out tests in collection order, so a long test collected last kept one worker
    busy while the other had nothing left (the short tests now fill both workers' ends). The sort is stable:
    each module's tests keep their order, and a module fixture shared by slow tests is still set up once."""
    ids = {line.strip() for line in _SLOW_LIST.read_text().splitlines() if line.strip() and not line.startswith("#")}
    for item in items:
        if item.nodeid in ids or item.nodeid.split("[")[0] in ids:
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_unconfigure(config):
    """Remove the run's compilation cache (made at import above) when the session that made it ends: the
    controller under xdist, whose workers inherit the folder, or the only process without it."""
    if os.environ.get("REDSHIFT_TESTS_OWN_XLA_CACHE") == "1" and not hasattr(config, "workerinput"):
        import shutil

        shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
