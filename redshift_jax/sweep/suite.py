"""Suites: several sweeps ("parts") run into one folder, resumable, as the CLI runs a sweep file's dict of parts.

    parts = {"relu": rj.Sweep(...), "tanh": rj.Sweep(...)}
    results = rj.run_suite(parts, out="results/my_suite", resume=True)   # {name: Dataset}
    results = rj.load_suite("results/my_suite")                           # the same, read back

The folder holds ``suite.json`` (the figure, the parts in order, the claims) and one ``<part>.zarr`` store per
part. ``suite.json`` is written before the first part starts, so a suite killed in its first part is still this
tool's folder: rerunning with ``resume=True`` continues it, ``overwrite=True`` replaces parts of an older
spec. A folder holding anything else is left untouched (``StoreError``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Mapping

from .. import multihost
from ..errors import ConfigError, StoreError
from .engine import run_sweep

__all__ = ["run_suite", "load_suite", "MANIFEST"]

MANIFEST = "suite.json"


def _suite_dir(out: Path) -> None:
    """Check (or create) a suite's folder: empty, new, or a suite this tool wrote; never anything else."""
    manifest = out / MANIFEST
    if out.exists() and not out.is_dir():
        raise StoreError(f"{out} exists and is a file, not a suite folder; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        try:
            json.loads(manifest.read_text())["parts"]
        except (OSError, ValueError, KeyError, TypeError):
            raise StoreError(f"{out} is a folder with other files (no suite.json of redshift-jax); it is left "
                             "untouched: choose another --out") from None
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise StoreError(f"cannot create {out}: {err.strerror}") from None


def _write_manifest(out: Path, manifest: dict) -> None:
    """``suite.json``, written whole or not at all (a full disk leaves the previous one)."""
    from ..store import _write_text_atomic, store_error

    try:
        _write_text_atomic(out / MANIFEST, json.dumps(manifest, indent=1))
    except OSError as err:
        raise store_error(err, out / MANIFEST, "writing", None) from None


def run_suite(parts: Mapping, out=None, resume: bool = False, progress: bool = True, figure: str = "auto",
              claims: dict | None = None, chunk_size: int | None = None, overwrite: bool = False,
              confirm: bool = False) -> dict:
    """Run every part into ``out/<name>.zarr``, one after another; return ``{name: Dataset}``.

    Args:
      parts: ``{name: Sweep}``, in the order to run (each name is a file name: ``<name>.zarr``).
      out: the suite's folder (new, empty, or a suite this tool wrote); ``None`` keeps every part in memory.
      resume: continue an interrupted suite (finished parts are read back, a part's finished chunks kept).
      progress: a line per part and the sweep's progress bar, on stderr.
      figure: the plot ``redshift-jax plot`` draws for the folder (``"auto"``: chosen from the parts).
      claims: stored in ``suite.json`` for the plot's verdicts (Table 1's expected directions).
      chunk_size: networks per call (as ``run_sweep``).
      overwrite: replace a part stored by an older spec (as ``run_sweep``).
      confirm: as ``run_sweep``'s ``confirm``.
    """
    if not isinstance(parts, Mapping) or not parts:
        raise ConfigError(f"run_suite: parts={parts!r} is not allowed; allowed: a non-empty mapping name -> Sweep")
    for name in parts:
        if not isinstance(name, str) or not name.strip() or name.startswith(".") or any(c in name for c in "/\\\0"):
            raise ConfigError(f"run_suite: part name {name!r} is not allowed; allowed: a file name (no '/', '\\', "
                              "leading '.')")
    if out is None:
        if resume:
            raise ConfigError("run_suite: resume=True needs an out folder; allowed: out=<folder>, or resume=False")
        return {name: run_sweep(sweep, progress=progress, chunk_size=chunk_size, attrs={"figure": figure})
                for name, sweep in parts.items()}
    out = Path(out)
    manifest = {"figure": figure, "parts": list(parts), "claims": dict(claims or {})}
    if multihost.process_index() == 0:   # process 0 checks the folder (the others would see its parts appear)
        try:
            _suite_dir(out)
            # the manifest marks the folder as ours before any part starts: a suite killed in its first part
            # (SIGKILL, full disk) is then resumed or overwritten like any other
            _write_manifest(out, manifest)
        except BaseException as err:
            multihost.publish("suite folder", str(err))
            raise
        multihost.publish("suite folder")
    else:
        multihost.wait_for("suite folder")
    results = {}
    for name, sweep in parts.items():
        if progress:
            print(f"[{name}] {sweep.num_networks} networks", file=sys.stderr)
        results[name] = run_sweep(sweep, out=out / f"{name}.zarr", resume=resume, progress=progress,
                                  chunk_size=chunk_size, attrs={"figure": figure}, overwrite=overwrite,
                                  confirm=confirm)
    return results


def load_suite(path) -> dict:
    """``{name: Dataset}`` of a suite folder, in its parts' order (each store's checksums checked)."""
    return read_suite(path)[0]


def read_suite(path) -> tuple[dict, str, dict]:
    """``(parts, figure, claims)`` of a suite folder."""
    from ..store import load_dataset

    path = Path(path)
    manifest = path / MANIFEST
    if not manifest.exists():
        raise StoreError(f"{path} is not a suite folder (no {MANIFEST})")
    try:
        meta = json.loads(manifest.read_text())
        names = list(meta["parts"])
    except (OSError, ValueError, KeyError, TypeError):
        raise StoreError(f"{manifest} is damaged; rerun the sweep to rewrite it") from None
    parts = {name: load_dataset(path / f"{name}.zarr") for name in names}
    return parts, meta.get("figure", "auto"), meta.get("claims", {})
