"""Sweep files (``sweeps/NAME.py``): load one at a size, run its target into a result, read a stored result back.

A sweep file defines ``SWEEP`` (paper scale), ``QUICK`` (smoke size) and usually ``LAPTOP``; each is a ``Sweep``, a
dict of named ``Sweep`` parts (a suite), or a training experiment (``redshift_jax.train``). ``FIGURE`` names its
plot and ``CLAIMS`` (Table 1) the paper's claims. The CLI (``redshift-jax sweep``) and the record
(``redshift_jax.studies.record``) both go through these functions.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

from ..errors import ConfigError, StoreError

SIZES = {"full": "SWEEP", "laptop": "LAPTOP", "quick": "QUICK"}


def _is_target(target) -> bool:
    from .spec import Sweep

    if isinstance(target, Sweep) or _is_experiment(target):
        return True
    return isinstance(target, dict) and len(target) > 0 and all(
        isinstance(k, str) and isinstance(v, Sweep) for k, v in target.items())


def _run_file(path: Path) -> dict:
    """Execute a sweep file; any failure becomes a one-line ConfigError naming the file."""
    if not path.exists():
        raise ConfigError(f"sweep file {str(path)!r} does not exist; see `redshift-jax list`")
    if not path.is_file():
        raise ConfigError(f"sweep file {str(path)!r} is not a file; pass a sweeps/NAME.py file")
    try:
        return runpy.run_path(str(path))
    except SyntaxError as err:
        raise ConfigError(f"sweep file {str(path)!r} has a syntax error at line {err.lineno}: {err.msg}") from None
    except ConfigError as err:
        raise ConfigError(f"sweep file {str(path)!r}: {err}") from None
    except Exception as err:  # the file is user code: report what it raised, in one line
        where = ""
        tb = err.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == str(path):
                where = f" at line {tb.tb_lineno}"
            tb = tb.tb_next
        raise ConfigError(f"sweep file {str(path)!r} failed{where}: {type(err).__name__}: {err}") from None


def load_sweep_file(path: str | Path, size: str = "full"):
    """(target, figure, claims) from a sweep file; target is a Sweep, a dict of parts or an experiment."""
    path = Path(path)
    module = _run_file(path)
    name = SIZES[size]
    if name not in module:
        if size == "laptop" and "SWEEP" in module:
            print(f"{path.name} defines no LAPTOP size; running SWEEP", file=sys.stderr)
            name = "SWEEP"
        else:
            raise ConfigError(f"{path.name} defines no {name}; allowed sizes here: "
                              + (", ".join(k for k, v in SIZES.items() if v in module) or "none"))
    target = module[name]
    if not _is_target(target):
        raise ConfigError(f"{path.name}: {name} = {target!r:.60} is not allowed; it must be a redshift_jax.Sweep, "
                          "a dict of named Sweeps, or a training experiment")
    return target, module.get("FIGURE", "auto"), module.get("CLAIMS", {})


def _is_experiment(target) -> bool:
    return type(target).__module__.startswith("redshift_jax.train")


def run_target(target, out: Path, resume: bool, progress: bool, figure: str, claims: dict,
               chunk_size: int | None = None, overwrite: bool = False, confirm: bool = False):
    """Run a Sweep / dict of parts / experiment into ``out``; return what ``load_result`` would."""
    from .engine import run_sweep

    if _is_experiment(target):
        from .. import train

        return train.run(target, out=str(out), resume=resume, progress=progress, overwrite=overwrite)
    if isinstance(target, dict):
        from .suite import run_suite

        return run_suite(target, out, resume=resume, progress=progress, figure=figure, claims=claims,
                         chunk_size=chunk_size, overwrite=overwrite, confirm=confirm)
    return run_sweep(target, out=out, resume=resume, progress=progress, chunk_size=chunk_size,
                     attrs={"figure": figure}, overwrite=overwrite, confirm=confirm)


def load_result(path: str | Path):
    """(result, figure, claims): a Dataset, or a dict of part Datasets for a suite directory (checked)."""
    from ..store import load_dataset

    path = Path(path)
    if (path / "suite.json").exists():
        from .suite import read_suite

        return read_suite(path)
    if path.is_file():
        raise StoreError(f"{path} is a file, not a redshift-jax result (a .zarr folder or a suite folder)")
    ds = load_dataset(path)
    return ds, ds.attrs.get("figure", "auto"), {}
