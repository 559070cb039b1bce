"""``redshift-jax``: run the sweeps in ``sweeps/``, plot their results, list them.

    redshift-jax sweep sweeps/fig4_heatmaps.py [--out PATH] [--quick | --laptop] [--resume | --overwrite]
                       [--set AXIS=VALUES ...] [--chunk-size N] [--figures DIR] [--no-progress] [--yes]
    redshift-jax plot PATH [--out DIR]
    redshift-jax list [DIR]

A sweep file defines ``SWEEP`` (paper scale), ``QUICK`` (smoke size, under a minute on 2 CPU cores) and
usually ``LAPTOP`` (a few minutes); each is a ``Sweep``, a dict of named ``Sweep`` parts, or a training
experiment (``redshift_jax.train``). ``FIGURE`` names the plot and ``CLAIMS`` (Table 1) the paper's claims.

Every refused input or store problem is one line ``redshift-jax: error: ...`` and exit code 2; Ctrl-C keeps
the partial store and prints the command that resumes it (exit code 130).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

import numpy as np

from .errors import ConfigError, StoreError
from .sweep.files import SIZES, _is_experiment, _is_target, _run_file, load_result, load_sweep_file, run_target  # noqa: F401 (cli's API)


def plot_path(path, out_dir=None):
    """``redshift_jax.studies.plot_path``, imported when a figure is drawn (the CLI starts without the studies)."""
    from .studies import plot_path as plot

    return plot(path, out_dir)


MAX_AXIS_VALUES = 10_000_000  # per --set axis; more is a typo, or a sweep to split into several runs


def _number(text: str, what: str, kind=float):
    try:
        value = kind(text)
    except ValueError:
        raise ConfigError(f"{what}: {text!r} is not {'an integer' if kind is int else 'a number'}") from None
    return value


def parse_values(text: str) -> list:
    """``1,2,3`` | ``1:10`` (integers, inclusive) | ``geom:1:50:15`` | ``lin:0:1:5`` | ``relu,tanh`` | ``true,false``.

    Numbers keep their full (float64) precision. A malformed range is a ``ConfigError`` naming it.
    """
    text = text.strip()
    if not text:
        raise ConfigError("--set: empty value list; use e.g. 1,2,3 | 1:10 | geom:1:50:15 | lin:0:1:5 | relu,tanh")
    if text.startswith(("geom:", "lin:")):
        parts = text.split(":")
        if len(parts) != 4:
            raise ConfigError(f"--set range {text!r} is not allowed; use {parts[0]}:LO:HI:COUNT, e.g. "
                              f"{parts[0]}:1:50:15")
        kind = parts[0]
        lo, hi = (_number(p, f"--set range {text!r}") for p in parts[1:3])
        n = _number(parts[3], f"--set range {text!r} (COUNT)", int)
        if not 1 <= n <= MAX_AXIS_VALUES:
            raise ConfigError(f"--set range {text!r}: COUNT={n} is not allowed; use an integer in 1 .. "
                              f"{MAX_AXIS_VALUES:,}")
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ConfigError(f"--set range {text!r}: LO and HI must be finite numbers")
        if kind == "geom" and not (lo > 0 and hi > 0):
            raise ConfigError(f"--set range {text!r}: geom needs LO > 0 and HI > 0 (a geometric range)")
        if n > 1 and not lo < hi:
            raise ConfigError(f"--set range {text!r}: need LO < HI")
        space = np.geomspace if kind == "geom" else np.linspace
        return [float(v) for v in space(lo, hi, n)]
    if ":" in text and "," not in text:
        parts = text.split(":")
        if len(parts) != 2:
            raise ConfigError(f"--set range {text!r} is not allowed; use LO:HI (integers, inclusive), e.g. 0:7")
        lo, hi = (_number(p, f"--set range {text!r}", int) for p in parts)
        if hi < lo:
            raise ConfigError(f"--set range {text!r}: need LO <= HI")
        if hi - lo + 1 > MAX_AXIS_VALUES:
            raise ConfigError(f"--set range {text!r} has {hi - lo + 1:,} values; at most {MAX_AXIS_VALUES:,} per "
                              "axis (a sweep's axes multiply: split it into several runs)")
        return list(range(lo, hi + 1))
    out = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            raise ConfigError(f"--set {text!r} has an empty item; separate values with single commas")
        low = item.lower()
        if low in ("true", "false"):
            out.append(low == "true")
            continue
        try:
            out.append(int(item))
            continue
        except ValueError:
            pass
        try:
            out.append(float(item))
        except ValueError:
            out.append(item)
    return out


def apply_overrides(target, overrides: list[str]):
    from .sweep.spec import Sweep

    if not overrides:
        return target
    parts = target if isinstance(target, dict) else {"": target}
    changes = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r} is not allowed; use AXIS=VALUES, e.g. --set seed=0:7")
        axis, values = item.split("=", 1)
        changes[axis.strip()] = parse_values(values)
    new = {}
    for key, sweep in parts.items():
        if not isinstance(sweep, Sweep):
            raise ConfigError("--set works on sweeps of random networks, not on training experiments")
        for axis, values in changes.items():
            sweep = sweep.with_axis(axis, values)
        new[key] = sweep
    return new if isinstance(target, dict) else new[""]


def default_out(file: Path, size: str, suite: bool) -> Path:
    stem = file.stem + ("" if size == "full" else f"-{size}")
    return Path("results") / (stem if suite else stem + ".zarr")


def _launch_local(args) -> int:
    """``--processes N``: run this same command as N local processes under jax.distributed (one host's
    stand-in for a pod), each with ``cores // N`` CPU devices; wait for all; stop the rest when one fails."""
    import re
    import signal
    import socket
    import subprocess
    import time

    from .devices import device_count_set_here
    from .multihost import HEARTBEAT_SECONDS

    n = args.processes
    argv, skip = [], False
    for a in args.argv:
        if skip:
            skip = False
        elif a == "--processes":
            skip = True
        elif not a.startswith("--processes="):
            argv.append(a)
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        port = sock.getsockname()[1]
    flag = "--xla_force_host_platform_device_count"
    children = []
    for i in range(n):
        env = dict(os.environ, REDSHIFT_COORDINATOR=f"localhost:{port}", REDSHIFT_NUM_PROCESSES=str(n),
                   REDSHIFT_PROCESS_ID=str(i))
        if device_count_set_here() or flag not in env.get("XLA_FLAGS", ""):  # the user's own count is kept
            per = max(1, (os.cpu_count() or 1) // n)
            flags = re.sub(rf"{flag}=\S*", "", env.get("XLA_FLAGS", "")).strip()
            env["XLA_FLAGS"] = f"{flags} {flag}={per}".strip()
        extra = ["--distributed"] + (["--no-progress"] if i else [])
        # each child is a light watcher (no jax import) of the process that runs the work: see _supervisor.py
        supervisor = str(Path(__file__).with_name("_supervisor.py"))
        children.append(subprocess.Popen([sys.executable, supervisor, str(i), *argv, *extra], env=env))

    def forward(signum, frame):
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    failed = None
    try:
        deadline = None
        while any(c.poll() is None for c in children):
            for i, child in enumerate(children):
                if failed is None and child.poll() not in (None, 0):
                    failed = (i, child.returncode)
                    deadline = time.monotonic() + HEARTBEAT_SECONDS + 20  # the others notice the dead peer
            if deadline is not None and time.monotonic() > deadline:
                for child in children:
                    if child.poll() is None:
                        child.kill()
            time.sleep(0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failed is None:
        failed = next(((i, c.returncode) for i, c in enumerate(children) if c.returncode), None)
    if failed is None:
        return 0
    i, code = failed
    how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
    again = "redshift-jax " + " ".join(shlex.quote(a) for a in args.argv)
    if "--resume" not in args.argv:
        again += " --resume"
    print(f"redshift-jax: error: process {i} of {n} {how}; the others were stopped. Finished chunks are kept; "
          f"continue (with any --processes) with: {again}", file=sys.stderr)
    return code if 0 < code < 128 else 1


def cmd_sweep(args) -> int:
    from . import multihost

    if args.processes is not None and args.processes < 1:
        raise ConfigError(f"--processes {args.processes} is not allowed; allowed: 1 or more")
    if args.processes and args.processes > 1:
        if args.distributed:
            raise ConfigError("--processes and --distributed together are not allowed; --processes starts the "
                              "local processes itself")
        return _launch_local(args)
    size = "quick" if args.quick else "laptop" if args.laptop else "full"
    file = Path(args.file)
    target, figure, claims = load_sweep_file(file, size)
    target = apply_overrides(target, args.set or [])
    out = Path(args.out) if args.out else default_out(file, size, isinstance(target, dict))
    if args.resume and args.overwrite:
        raise ConfigError("--resume and --overwrite together are not allowed; pick one")
    multihost.install_sigterm_handler()  # a preemption notice: finish the current chunk, keep it, stop
    try:
        run_target(target, out, args.resume, not args.no_progress, figure, claims, args.chunk_size,
                   overwrite=args.overwrite, confirm=args.yes)
    except KeyboardInterrupt as err:
        argv = [a for a in args.argv if a not in ("--overwrite", "--distributed")]
        again = "redshift-jax " + " ".join(shlex.quote(a) for a in argv)
        if "--resume" not in argv:
            again += " --resume"
        what = "stopped on SIGTERM after writing its current chunk" if isinstance(err, multihost.Preempted) \
            else "interrupted"
        print(f"\nredshift-jax: {what}; finished chunks are kept beside {out}. Continue with:\n  {again}",
              file=sys.stderr)
        return 143 if isinstance(err, multihost.Preempted) else 130
    if multihost.process_index() != 0:
        return 0
    print(f"results: {out}")
    if args.figures:
        for p in plot_path(out, args.figures):
            print(f"figure: {p}")
    return 0


def cmd_plot(args) -> int:
    for p in plot_path(args.path, args.out):
        print(f"figure: {p}")
    return 0


def cmd_figures(args) -> int:
    from .studies import record

    if args.list:
        for entry in record.ENTRIES:
            print(f"{entry.name:20s} {entry.what}")
        return 0
    size = "quick" if args.quick else "laptop" if args.laptop else "full"
    results = args.results or ("results/record" + ("" if size == "full" else f"-{size}"))
    only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    state = record.run_record(args.figures, results, size=size, only=only, sweeps_dir=args.sweeps,
                              progress=not args.no_progress, overwrite=args.overwrite,
                              log=lambda text: print(text, file=sys.stderr, flush=True))
    print(f"record: {results}/record.json ({state['total_seconds']:.0f} s of work)")
    return 0


def cmd_list(args) -> int:
    directory = Path(args.dir)
    if not directory.is_dir():
        raise ConfigError(f"{str(directory)!r} is not a folder of sweep files")
    files = sorted(directory.glob("*.py"))
    if not files:
        print(f"no sweep files in {directory}/", file=sys.stderr)
        return 1
    broken = 0
    for file in files:
        try:
            module = _run_file(file)
        except ConfigError as err:
            print(f"{str(file):34s} (cannot be loaded: {err})")
            broken += 1
            continue
        doc = (module.get("__doc__") or "").strip().splitlines()
        sizes = []
        for size, var in SIZES.items():
            target = module.get(var)
            if target is None:
                continue
            if not _is_target(target):
                sizes.append(f"{size}: not a sweep")
            elif _is_experiment(target):
                sizes.append(f"{size}: training")
            else:
                parts = target.values() if isinstance(target, dict) else [target]
                sizes.append(f"{size}: {sum(p.num_networks for p in parts):,} networks")
        print(f"{str(file):34s} {doc[0] if doc else ''}\n{'':34s} ({'; '.join(sizes)})")
    return 1 if broken else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="redshift-jax", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("sweep", help="run a sweep file")
    p.add_argument("file")
    p.add_argument("--out", help="result path (default results/<name>[-size].zarr, or a directory for suites)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="the file's QUICK size (smoke test, < 1 min)")
    group.add_argument("--laptop", action="store_true", help="the file's LAPTOP size (a few minutes)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run (finished chunks are checked and kept), or load a finished one")
    p.add_argument("--overwrite", action="store_true",
                   help="discard an unfinished run at --out and replace a finished result of another sweep there "
                        "(never anything that is not a redshift-jax result)")
    p.add_argument("--yes", action="store_true",
                   help="run even when the estimated time or size is far beyond this machine")
    p.add_argument("--set", action="append", metavar="AXIS=VALUES",
                   help="override an axis: 1,2,3 | 1:10 | geom:1:50:15 | lin:0:1:5 | relu,tanh")
    p.add_argument("--chunk-size", type=int, default=None, help="networks per jitted call (default: automatic)")
    p.add_argument("--figures", help="also draw the figures into this directory")
    p.add_argument("--no-progress", action="store_true")
    many = p.add_argument_group("many processes (jax.distributed)")
    many.add_argument("--processes", type=int, default=None, metavar="N",
                      help="run as N local processes under jax.distributed, each with cores/N CPU devices")
    many.add_argument("--distributed", action="store_true",
                      help="this is one process of a distributed run (every host of a pod or cluster runs it)")
    many.add_argument("--coordinator", help="host:port of process 0 (else REDSHIFT_COORDINATOR, else JAX's "
                                            "detection on TPU pods and SLURM)")
    many.add_argument("--num-processes", type=int, help="processes in the run (else REDSHIFT_NUM_PROCESSES)")
    many.add_argument("--process-id", type=int, help="this process's index (else REDSHIFT_PROCESS_ID)")
    p.set_defaults(func=cmd_sweep)
    p = sub.add_parser("plot", help="draw the figures of a result")
    p.add_argument("path")
    p.add_argument("--out", help="figure directory (default figures/<name>)")
    p.set_defaults(func=cmd_plot)
    p = sub.add_parser("figures", help="remake every figure and table of the record (docs/figures), resumably")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="every sweep file's QUICK size (a smoke test)")
    group.add_argument("--laptop", action="store_true", help="every sweep file's LAPTOP size")
    p.add_argument("--figures", default="figures/record", help="figure folder, one subfolder per entry")
    p.add_argument("--results", default=None, help="result folder (default results/record[-size])")
    p.add_argument("--only", default=None, help="comma-separated entries (see --list)")
    p.add_argument("--sweeps", default="sweeps", help="folder of the sweep files")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an entry's stored result that belongs to an older version of its sweep file")
    p.add_argument("--list", action="store_true", help="list the entries and exit")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_figures)
    p = sub.add_parser("list", help="list the sweep files")
    p.add_argument("dir", nargs="?", default="sweeps")
    p.set_defaults(func=cmd_list)
    return parser


def _supervise(args) -> int:
    """``--distributed``: this process only watches a child that runs the work (see ``_supervisor``)."""
    from ._supervisor import supervise

    which = args.process_id if args.process_id is not None else os.environ.get("REDSHIFT_PROCESS_ID", "?")
    return supervise(args.argv, which)


def main(argv: list[str] | None = None) -> int:
    from .devices import use_all_cpu_cores

    use_all_cpu_cores()  # a CPU-only sweep then runs on every core (same results, bitwise)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    if getattr(args, "distributed", False) and not args.processes and os.environ.get("REDSHIFT_SUPERVISED") != "1":
        return _supervise(args)
    from . import multihost

    try:
        code = _main(args)
    except Exception:
        if multihost.process_count() == 1:
            raise
        import traceback

        traceback.print_exc()
        code = 1
    if multihost.process_count() > 1 and code != 0:
        # a failed process of a distributed run exits at once: its peers notice the missing heartbeat and stop,
        # instead of everyone waiting at JAX's shutdown barrier
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _main(args) -> int:
    try:
        if getattr(args, "distributed", False):
            from . import multihost

            if args.processes:
                raise ConfigError("--processes and --distributed together are not allowed; --processes starts the "
                                  "local processes itself")

            multihost.initialize(args.coordinator, args.num_processes, args.process_id)
        return args.func(args)
    except (ConfigError, StoreError) as err:
        print(f"redshift-jax: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except OSError as err:  # e.g. a full disk or a read-only folder outside the store's own handling
        where = f" ({err.filename})" if getattr(err, "filename", None) else ""
        print(f"redshift-jax: error: {err.strerror or err}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nredshift-jax: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # running out of memory anyway (the guard's estimate was confirmed or too low)
        if not (isinstance(err, MemoryError) or "RESOURCE_EXHAUSTED" in str(err)[:200]):
            raise
        detail = " ".join(str(err).split())[:160]
        print(f"redshift-jax: error: out of memory ({type(err).__name__}: {detail}); finished chunks are kept: "
              "lower --chunk-size or the sweep's size, then rerun with --resume", file=sys.stderr)
        return 2


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())


if __name__ == "__main__":
    sys.exit(main())
