"""Where results live: one resumable store for sweeps and training runs, and the rules that keep results safe.

The contract (DESIGN.md section 12):

- ``out`` is only ever replaced by a finished result of the same spec, or of another spec with
  ``overwrite=True``; anything else already there (a folder or file this tool did not write as a result) is
  refused and left untouched. Temporary files live inside the run's own ``<out>.partial/`` folder and are
  removed on every failure this process survives (a full disk included).
- One writer per store: ``<out>.partial/lock`` is held with ``flock`` for the whole run (released by the
  kernel when the process dies, so a killed run never blocks its own resume); a second process gets an error
  naming the holder.
- The partial store records a fingerprint of everything that defines the numbers (``meta.json``, with a
  copy in ``meta.copy.json``); resuming with any difference (axes order included) is refused with a message
  that says what differs.
- A unit of work (a sweep chunk, a training activation) counts as done only when its marker holds the CRC-32
  of every array as written and read back. On resume and again before the result is assembled, every unit is
  read back and checked; a missing, truncated or altered unit is recomputed, never read as NaN or garbage.
- The final store is written beside the partial store, read back and compared with its checksums (recorded
  in its attrs as ``checksums``), then moved into place; ``load_result`` checks them again.

Layout of ``<out>.partial/``: ``lock``, ``meta.json``, ``meta.copy.json``, ``done/<unit>.json`` markers,
``arrays/`` (a zarr group, sweeps) or ``pieces/<unit>.zarr`` (training), and transiently ``final.zarr``.
"""

from __future__ import annotations

import datetime
import errno
import json
import os
import shutil
import socket
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .errors import StoreError

__all__ = ["RunStore", "MemoryStore", "checksum", "checksums_of", "describe_difference", "load_dataset",
           "is_result", "result_fingerprint", "store_error", "check_target", "write_final", "PARTIAL_SUFFIX"]

PARTIAL_SUFFIX = ".partial"
FORMAT = 2  # of the partial store; format 1 (sweep_meta.json, empty markers) could not be verified
_OURS = ("lock", "meta.json", "meta.copy.json")


# --------------------------------------------------------------------------------------------------------
# Checksums and errors

def checksum(values) -> str:
    """CRC-32 of an array's dtype, shape and bytes (C order), as ``"dtype shape crc"``."""
    a = np.ascontiguousarray(values)
    return f"{a.dtype.str} {'x'.join(map(str, a.shape))} {zlib.crc32(a.view(np.uint8).reshape(-1)):08x}"


def checksums_of(ds) -> dict[str, str]:
    """Checksums of every data variable and coordinate of an xarray Dataset."""
    names = list(ds.data_vars) + list(ds.coords)
    return {name: checksum(np.asarray(ds[name].values)) for name in sorted(names)}


def store_error(err: OSError, path: Path, action: str, resume_hint: str | None) -> StoreError:
    """A one-line StoreError for an OS error while writing ``path``."""
    if err.errno == errno.ENOSPC or err.errno == errno.EDQUOT:
        what = f"disk full while {action} {path}"
    else:
        what = f"{err.strerror or err} while {action} {path}"
    hint = f"; {resume_hint}" if resume_hint else ""
    return StoreError(what + hint)


def _remove_tree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        try:
            path.unlink()
        except OSError:
            pass


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        _remove_tree(tmp)
        raise


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit - 3] + "..."


def describe_difference(stored: Any, now: Any, path: str = "") -> str | None:
    """The first difference between two fingerprints, in words (None when equal, key order included).

    Example:
      >>> describe_difference({"axes": {"seed": [0, 1], "depth": [1]}}, {"axes": {"depth": [1], "seed": [0, 1]}})
      'axes order: stored (seed, depth), this run (depth, seed)'
      >>> describe_difference({"resolution": 64}, {"resolution": 32})
      'resolution: stored 64, this run 32'
    """
    if isinstance(stored, dict) and isinstance(now, dict):
        if list(stored) != list(now):
            if set(stored) == set(now):
                return f"{path or 'keys'} order: stored ({', '.join(stored)}), this run ({', '.join(now)})"
            extra, missing = set(now) - set(stored), set(stored) - set(now)
            parts = []
            if extra:
                parts.append(f"this run adds {', '.join(sorted(extra))}")
            if missing:
                parts.append(f"the stored run has {', '.join(sorted(missing))}")
            return f"{path or 'spec'}: " + " and ".join(parts)
        for key in stored:
            diff = describe_difference(stored[key], now[key], f"{path}.{key}" if path else key)
            if diff:
                return diff
        return None
    if stored != now or type(stored) is not type(now):
        return f"{path}: stored {_short(stored)}, this run {_short(now)}"
    return None


# --------------------------------------------------------------------------------------------------------
# Finished results

_SIGNATURE = '"package": "redshift_jax'  # how our attrs begin to name us, in .zattrs and in .zmetadata


def _zattrs(path: Path) -> dict | None:
    """A result's attrs: from ``.zattrs``, else from the consolidated ``.zmetadata`` (which holds a copy)."""
    try:
        attrs = json.loads((path / ".zattrs").read_text())
        if isinstance(attrs, dict) and attrs:
            return attrs
    except (OSError, ValueError):
        pass
    try:
        attrs = json.loads((path / ".zmetadata").read_text())["metadata"][".zattrs"]
        return attrs if isinstance(attrs, dict) and attrs else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _is_ours(attrs: dict | None) -> bool:
    return bool(attrs) and str(attrs.get("package", "")).startswith("redshift_jax") and "kind" in attrs


def _damaged_result(path: Path) -> bool:
    """A zarr store whose attrs cannot be read but whose metadata still names us: a result of ours with damaged
    metadata (both .zattrs and .zmetadata carry the attrs, so one damaged file leaves the other)."""
    if not (path / ".zgroup").is_file() and not (path / ".zmetadata").is_file():
        return False
    for name in (".zattrs", ".zmetadata"):
        try:
            if _SIGNATURE in (path / name).read_text(errors="replace"):
                return True
        except OSError:
            pass
    return False


def is_result(path: Path) -> bool:
    """Whether ``path`` is a finished result written by redshift_jax (a zarr store with our attrs), perhaps
    with damaged metadata (``load_dataset`` then refuses it naming ``--overwrite``, which may replace it)."""
    path = Path(path)
    if not path.is_dir():
        return False
    return _is_ours(_zattrs(path)) or _damaged_result(path)


def result_fingerprint(path: Path) -> dict | None:
    """The fingerprint recorded in a finished result (None for results of versions that did not record one)."""
    attrs = _zattrs(Path(path)) or {}
    try:
        return json.loads(attrs["fingerprint"])
    except (KeyError, TypeError, ValueError):
        return None


def load_dataset(path: str | os.PathLike):
    """Open a finished result, load it and check it against its recorded checksums.

    Raises:
      StoreError: when ``path`` is not a finished result, cannot be read, or does not match its checksums.
    """
    import xarray as xr

    path = Path(path)
    if path.name.endswith(PARTIAL_SUFFIX) or (path / "meta.json").exists():
        raise StoreError(f"{path} is the partial store of an unfinished run, not a result; finish it with "
                         "`redshift-jax sweep ... --resume`")
    if not path.exists():
        raise StoreError(f"result {path} does not exist; run `redshift-jax sweep` first")
    if not is_result(path):
        raise StoreError(f"{path} is not a redshift-jax result (no zarr store with redshift_jax attrs there)")
    try:
        ds = xr.open_zarr(path, consolidated=True).load()
    except Exception as err:  # zarr/numcodecs raise many kinds; the message names the file
        raise StoreError(f"{path} cannot be read ({type(err).__name__}: {_short(str(err), 120)}); it is "
                         "damaged: rerun the sweep with --overwrite") from None
    recorded = ds.attrs.get("checksums")
    if recorded:
        found = checksums_of(ds)
        for name, value in json.loads(recorded).items():
            if found.get(name) != value:
                raise StoreError(f"{path} is damaged: {name!r} does not match its recorded checksum; rerun the "
                                 "sweep with --overwrite")
    return ds


# --------------------------------------------------------------------------------------------------------
# In memory (out=None)

class MemoryStore:
    """The sweep store's interface in memory (``out=None``): nothing to verify, nothing to resume."""

    def __init__(self, layout: dict[str, tuple[tuple, Any]], chunk: int):
        self.chunk = chunk
        self.arrays = {name: np.full(shape, np.nan if np.dtype(dt).kind == "f" else 0, dtype=dt)
                       for name, (shape, dt) in layout.items()}
        self._done: set[str] = set()

    def is_done(self, unit: str) -> bool:
        return unit in self._done

    def write_region(self, unit: str, variant: int, start: int, outputs: dict[str, np.ndarray]) -> None:
        for name, values in outputs.items():
            self.arrays[name][variant, start:start + values.shape[0]] = values
        self._done.add(unit)

    def verify(self, regions: dict[str, tuple[int, int, int]]) -> tuple[list[str], dict[str, np.ndarray]]:
        return [], self.arrays

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------------------------------------
# On disk

class RunStore:
    """The resumable store of one run at ``<out>.partial/`` (see the module docstring for the rules).

    Args:
      out: the final result's path.
      fingerprint: everything that defines the numbers (JSON-able, key order significant).
      kind: ``"sweep"`` or a training kind, recorded in the meta file.
      resume: continue a partial run with the same fingerprint (otherwise an existing partial run is refused).
      overwrite: discard a partial run and replace a finished result of another spec at the end.
      layout: for sweeps, ``{name: (shape, dtype)}`` of the zarr arrays; ``chunk`` their chunk length along
        axis 1 (a resumed store keeps the chunk length it was created with).
    """

    def __init__(self, out: str | os.PathLike, fingerprint: dict, kind: str, resume: bool = False,
                 overwrite: bool = False, layout: dict | None = None, chunk: int | None = None):
        self.out = Path(out)
        self.root = self.out.with_name(self.out.name + PARTIAL_SUFFIX)
        self.fingerprint = json.loads(json.dumps(fingerprint))
        self.kind = kind
        self.overwrite = overwrite
        self.hint = f"finished parts are kept in {self.root}; rerun with --resume"
        self._lock_fd: int | None = None
        self._owner = True  # this process created or holds the store (not attached to process 0's)
        check_target(self.out, self.fingerprint, overwrite)
        self._check_partial_is_ours()
        created_root = not self.root.exists()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._lock()
        except OSError as err:
            if created_root:
                _remove_tree(self.root)
            raise store_error(err, self.root, "creating", None) from None
        try:
            self._open(resume, layout, chunk)
        except BaseException:
            self.close()
            if created_root:
                _remove_tree(self.root)
            raise

    @classmethod
    def attach(cls, out: str | os.PathLike, fingerprint: dict, layout: dict | None = None) -> "RunStore":
        """The store another process (process 0 of a distributed run) created and holds the lock of: this
        process only writes its own chunks or pieces into it. Refused when its spec differs."""
        self = cls.__new__(cls)
        self.out = Path(out)
        self.root = self.out.with_name(self.out.name + PARTIAL_SUFFIX)
        self.fingerprint = json.loads(json.dumps(fingerprint))
        self.kind, self.overwrite, self._lock_fd = None, False, None
        self.hint = f"finished parts are kept in {self.root}; rerun with --resume"
        meta = self._read_meta()
        diff = None if meta is None else describe_difference(meta["fingerprint"], self.fingerprint)
        if meta is None or diff:
            raise StoreError(f"{self.root} does not hold this run ({diff or 'no meta.json'}); every process of a "
                             "distributed run must run the same spec")
        self.kind, self.chunk = meta.get("kind"), meta.get("chunk")
        if layout is not None:
            import zarr

            self.group = zarr.open_group(str(self.root / "arrays"), mode="a")
        return self

    # -- ownership and locking ------------------------------------------------------------------------
    def _check_partial_is_ours(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"{self.root} exists and is not a folder written by redshift-jax; move it away or "
                             "choose another --out")
        if self.root.is_dir():
            entries = {p.name for p in self.root.iterdir()}
            if entries and not entries & set(_OURS) and "sweep_meta.json" not in entries \
                    and "fingerprint.json" not in entries:
                raise StoreError(f"{self.root} exists and was not written by redshift-jax; move it away or "
                                 "choose another --out")

    def _lock(self) -> None:
        import fcntl

        path = self.root / "lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = ""
            try:
                holder = path.read_text().strip()
            except OSError:
                pass
            os.close(fd)
            raise StoreError(f"{self.out} is being written by another process ({holder or 'holder unknown'}); "
                             "wait for it to finish or choose another --out") from None
        info = (f"pid {os.getpid()} on {socket.gethostname()} since "
                f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}")
        os.ftruncate(fd, 0)
        os.write(fd, info.encode())
        self._lock_fd = fd

    def close(self) -> None:
        """Release the lock (the partial store stays for a later resume)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def discard_if_empty(self) -> None:
        """Remove the partial store when it holds no finished unit (a run refused before its first chunk)."""
        done = self.root / "done"
        if getattr(self, "_owner", False) and self._lock_fd is None and not any(done.glob("*.json")):
            _remove_tree(self.root)

    # -- meta -----------------------------------------------------------------------------------------
    def _read_meta(self) -> dict | None:
        """The recorded meta, from ``meta.json`` or its copy; None when the store holds no run yet."""
        found = []
        for name in ("meta.json", "meta.copy.json"):
            try:
                meta = json.loads((self.root / name).read_text())
                if isinstance(meta, dict) and meta.get("format") == FORMAT and "fingerprint" in meta:
                    found.append(meta)
            except (OSError, ValueError):
                pass
        if len(found) == 2 and found[0] != found[1]:
            raise StoreError(f"{self.root}: meta.json and meta.copy.json disagree, so its unfinished run cannot "
                             "be trusted; rerun with --overwrite to discard it")
        if found:
            return found[0]
        entries = {p.name for p in self.root.iterdir()} - {"lock"}
        if not entries:
            return None
        if "sweep_meta.json" in entries or "fingerprint.json" in entries:
            reason = "was written by an older redshift_jax whose chunks cannot be verified"
        else:
            reason = "has no readable meta.json (nor its copy)"
        raise StoreError(f"{self.root} holds an unfinished run that {reason}; rerun with --overwrite to "
                         "discard it and start again")

    def _write_meta(self, meta: dict) -> None:
        text = json.dumps(meta)
        for name in ("meta.json", "meta.copy.json"):
            _write_text_atomic(self.root / name, text)

    def _discard_contents(self) -> None:
        for entry in self.root.iterdir():
            if entry.name != "lock":
                _remove_tree(entry)

    def _open(self, resume: bool, layout: dict | None, chunk: int | None) -> None:
        try:
            meta = self._read_meta()
        except StoreError:
            if not self.overwrite:
                raise
            meta = None
            self._discard_contents()
        if meta is not None:
            diff = describe_difference(meta["fingerprint"], self.fingerprint)
            if self.overwrite:
                meta = None
                self._discard_contents()
            elif not resume:
                what = f"another run ({diff})" if diff else "this same run"
                raise StoreError(f"{self.root} holds an unfinished run of {what}; rerun with --resume to continue "
                                 "it, or with --overwrite to discard it")
            elif diff:
                raise StoreError(f"--resume: {self.root} holds an unfinished run of another spec ({diff}); "
                                 "rerun without changing it, or with --overwrite to discard it")
        try:
            if meta is None:
                meta = {"format": FORMAT, "kind": self.kind, "fingerprint": self.fingerprint, "chunk": chunk}
                (self.root / "done").mkdir(exist_ok=True)
                if layout is not None:
                    self._create_arrays(layout, chunk)
                self._write_meta(meta)
            else:
                # a single damaged copy of the meta file is repaired from the other one
                self._write_meta(meta)
                (self.root / "done").mkdir(exist_ok=True)
                if layout is not None:
                    self._rebuild_array_metadata(layout, meta.get("chunk"))
        except OSError as err:
            raise store_error(err, self.root, "creating", None) from None
        self.chunk = meta.get("chunk")
        if layout is not None:
            import zarr

            self.group = zarr.open_group(str(self.root / "arrays"), mode="a")
            missing = [name for name in layout if name not in self.group]
            if missing:
                raise StoreError(f"{self.root} lacks the arrays {', '.join(missing)}; rerun with --overwrite to "
                                 "discard its unfinished run")

    def _create_arrays(self, layout: dict, chunk: int, where: Path | None = None) -> None:
        import zarr

        group = zarr.open_group(str(where or self.root / "arrays"), mode="w", zarr_format=2)
        for name, (shape, dtype) in layout.items():
            dtype = np.dtype(dtype)
            fill = np.nan if dtype.kind == "f" else False
            group.create_array(name=name, shape=shape, chunks=(1, chunk) + tuple(shape[2:]), dtype=dtype,
                               fill_value=fill)

    def _rebuild_array_metadata(self, layout: dict, chunk: int) -> None:
        """Make every metadata file of ``arrays/`` what the spec says it is (on resume).

        The zarr metadata (``.zgroup``, ``.zattrs``, each array's ``.zarray`` / ``.zattrs``) is fully determined
        by the layout and the chunk length, so it is written again from them wherever it differs: a truncated,
        altered or deleted file is repaired, never read. Metadata the store never writes (consolidated
        ``.zmetadata``, zarr v3 ``zarr.json``, which zarr would prefer) is removed. The chunk files are left
        alone: ``verify`` checks them against their markers.
        """
        arrays = self.root / "arrays"
        spec = self.root / "arrays.spec.tmp"
        _remove_tree(spec)
        try:
            self._create_arrays(layout, chunk, where=spec)
            wanted = {p.relative_to(spec): p.read_bytes() for p in spec.rglob("*") if p.is_file()}
        finally:
            _remove_tree(spec)
        arrays.mkdir(exist_ok=True)
        for path in [arrays, *(p for p in arrays.iterdir() if p.is_dir() and not p.is_symlink())]:
            for entry in path.iterdir():
                metadata = entry.name.startswith(".z") or entry.name == "zarr.json"
                if metadata and entry.relative_to(arrays) not in wanted:
                    _remove_tree(entry)
        for rel, data in wanted.items():
            path = arrays / rel
            try:
                same = path.is_file() and not path.is_symlink() and path.read_bytes() == data
            except OSError:
                same = False
            if not same:
                if path.is_dir() or path.is_symlink():
                    _remove_tree(path)
                path.parent.mkdir(parents=True, exist_ok=True)
                _write_text_atomic(path, data.decode())

    # -- markers --------------------------------------------------------------------------------------
    def _marker(self, unit: str) -> Path:
        return self.root / "done" / f"{unit}.json"

    def _read_marker(self, unit: str) -> dict | None:
        try:
            marker = json.loads(self._marker(unit).read_text())
        except (OSError, ValueError):
            return None
        return marker if isinstance(marker, dict) and marker else None

    def is_done(self, unit: str) -> bool:
        """Whether ``unit`` has a readable marker (its data is checked by ``verify`` / ``read_piece``)."""
        return self._read_marker(unit) is not None

    def _mark(self, unit: str, sums: dict[str, str]) -> None:
        _write_text_atomic(self._marker(unit), json.dumps(sums))

    def _unmark(self, unit: str) -> None:
        _remove_tree(self._marker(unit))

    # -- sweeps: regions of zarr arrays ---------------------------------------------------------------
    def write_region(self, unit: str, variant: int, start: int, outputs: dict[str, np.ndarray]) -> None:
        """Write one chunk's outputs at ``[variant, start:...]``, read them back, then mark the chunk done."""
        sums = {}
        try:
            for name, values in outputs.items():
                region = (variant, slice(start, start + values.shape[0]))
                self.group[name][region] = values
                back = np.asarray(self.group[name][region])
                sums[name] = checksum(values)
                if checksum(back) != sums[name]:
                    raise StoreError(f"{self.root}: {name!r} read back differently from what was written (chunk "
                                     f"{unit}); the disk or filesystem is corrupting data")
            self._mark(unit, sums)
        except OSError as err:
            raise store_error(err, self.root, "writing", self.hint) from None

    def verify(self, regions: dict[str, tuple[int, int, int]]) -> tuple[list[str], dict[str, np.ndarray]]:
        """Check every marked unit ``{unit: (variant, start, stop)}`` against its marker.

        Returns the units that failed (their markers removed, so they are recomputed) and every array, read
        whole. A chunk file that cannot be decoded (truncated, say) fails only its own unit.
        """
        arrays, unreadable = {}, set()
        for name in self.group.array_keys():
            try:
                arrays[name] = np.asarray(self.group[name][...])
            except Exception:  # a damaged chunk file: read chunk by chunk, fill what cannot be read
                arr = self.group[name]
                full = np.full(arr.shape, np.nan if arr.dtype.kind == "f" else False, dtype=arr.dtype)
                for unit, (v, start, stop) in regions.items():
                    try:
                        full[v, start:stop] = arr[v, start:stop]
                    except Exception:
                        unreadable.add(unit)
                arrays[name] = full
        bad = []
        for unit, (v, start, stop) in regions.items():
            marker = self._read_marker(unit)
            if marker is None:
                continue
            ok = unit not in unreadable and set(marker) == set(arrays) and all(
                checksum(arrays[name][v, start:stop]) == value for name, value in marker.items())
            if not ok:
                self._unmark(unit)
                bad.append(unit)
        return bad, arrays

    # -- training: whole pieces -----------------------------------------------------------------------
    def _piece(self, unit: str) -> Path:
        return self.root / "pieces" / f"{unit}.zarr"

    def write_piece(self, unit: str, ds) -> None:
        """Write a finished piece (an xarray Dataset), read it back, then mark it done."""
        path = self._piece(unit)
        tmp = path.with_name(path.name + ".tmp")
        try:
            path.parent.mkdir(exist_ok=True)
            _remove_tree(tmp)
            _remove_tree(path)
            ds.to_zarr(tmp, mode="w", consolidated=True, zarr_format=2)
            os.replace(tmp, path)
            sums = checksums_of(ds)
            if self._read_piece_checked(unit, sums) is None:
                raise StoreError(f"{path} read back differently from what was written; the disk or filesystem "
                                 "is corrupting data")
            self._mark(unit, sums)
        except OSError as err:
            _remove_tree(tmp)
            raise store_error(err, path, "writing", self.hint) from None
        except BaseException:
            _remove_tree(tmp)
            raise

    def _read_piece_checked(self, unit: str, sums: dict[str, str]):
        import xarray as xr

        try:
            ds = xr.open_zarr(self._piece(unit), consolidated=True).load()
        except Exception:
            return None
        return ds if checksums_of(ds) == sums else None

    def read_piece(self, unit: str):
        """The piece ``unit`` if it is marked done and matches its marker; else None (its marker dropped)."""
        marker = self._read_marker(unit)
        if marker is None:
            return None
        ds = self._read_piece_checked(unit, marker)
        if ds is None:
            self._unmark(unit)
        return ds

    # -- the final result -----------------------------------------------------------------------------
    def finish(self, ds) -> Path:
        """Write ``ds`` as the finished result at ``out`` (checked, atomic), then remove the partial store."""
        ds.attrs["fingerprint"] = json.dumps(self.fingerprint)
        ds.attrs["checksums"] = json.dumps(checksums_of(ds))
        write_final(ds, self.out, self.root, self.fingerprint, self.overwrite, self.hint)
        _remove_tree(self.root)  # its lock goes with it; the descriptor is closed next
        self.close()
        return self.out


def check_target(out: Path, fingerprint: dict, overwrite: bool) -> None:
    """Refuse an ``out`` that this run may not replace (see the module docstring)."""
    if not out.exists() and not out.is_symlink():
        return
    if not is_result(out):
        kind = "file" if out.is_file() else "folder" if out.is_dir() else "path"
        raise StoreError(f"{out} exists and is a {kind} that is not a redshift-jax result; it is left untouched: "
                         "choose another --out, or move it away")
    recorded = result_fingerprint(out)
    if recorded is not None:
        diff = describe_difference(recorded, fingerprint)
    elif not _is_ours(_zattrs(out)):
        if not overwrite:
            raise StoreError(f"{out} holds a redshift-jax result whose metadata is damaged; pass --overwrite to "
                             "replace it, or choose another --out")
        return
    else:
        diff = "it was written without a fingerprint (an older redshift_jax)"
    if diff and not overwrite:
        raise StoreError(f"{out} holds a finished result of another run ({diff}); choose another --out, or pass "
                         "--overwrite to replace it")


def write_final(ds, out: Path, workdir: Path, fingerprint: dict, overwrite: bool, hint: str | None) -> None:
    """Write ``ds`` into ``workdir/final.zarr``, read it back against its checksums, move it to ``out``."""
    import xarray as xr

    tmp = workdir / "final.zarr"
    aside = workdir / "replaced.zarr"
    _remove_tree(tmp)
    try:
        ds.to_zarr(tmp, mode="w", consolidated=True, zarr_format=2)
        back = xr.open_zarr(tmp, consolidated=True).load()
        if checksums_of(back) != json.loads(ds.attrs["checksums"]):
            raise StoreError(f"{tmp} read back differently from what was written; the disk or filesystem is "
                             "corrupting data")
        check_target(out, fingerprint, overwrite)  # again: something may have appeared meanwhile
        if out.exists():
            _remove_tree(aside)
            os.replace(out, aside)
        os.replace(tmp, out)
    except OSError as err:
        _remove_tree(tmp)
        raise store_error(err, out, "writing", hint) from None
    except BaseException:
        _remove_tree(tmp)
        raise
    _remove_tree(aside)

