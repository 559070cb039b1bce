"""Many processes, one sweep: ``jax.distributed`` for TPU pods, GPU clusters and local tests (DESIGN.md section 17).

Every process runs the same sweep (or training grid) with its own local devices. The plan assigns each chunk to
one process (``Plan.process_of``: contiguous blocks of units), process 0 creates (or, on ``--resume``, checks)
the store and tells the others it is ready, every process writes its chunks into the shared store (chunk-aligned
zarr regions, markers last), a barrier waits for all of them, and process 0 alone verifies, computes whatever is
still missing, and writes the final result; the others then read it. Results are bitwise those of one process:
a network's numbers do not depend on the chunking or the device count.

Faults: a process that dies stops sending heartbeats and the others are stopped by JAX within
``HEARTBEAT_SECONDS`` (at once when the coordinator, process 0, is the one that died). JAX does that by
aborting them from a C++ thread, so each ``--distributed`` process runs under a small watcher
(``_supervisor.py``) that turns the abort into one line naming ``--resume``; a barrier or key-value wait that
fails instead raises ``PeerLost`` (one line too). The store keeps every finished chunk, and a rerun with
``--resume``, with any number of processes, completes the run bitwise. SIGTERM (a preemption notice) lets
the current chunk finish and be written, then stops with the resume hint (``request_stop`` / ``Preempted``).

Launch (the command line): ``redshift-jax sweep FILE --processes N`` starts N local processes (a tested stand-in
for hosts); ``redshift-jax sweep FILE --distributed`` on each host of a pod or cluster calls
``jax.distributed.initialize()`` with the coordinator address, process count and id from ``--coordinator``,
``--num-processes``, ``--process-id`` or ``REDSHIFT_COORDINATOR`` / ``REDSHIFT_NUM_PROCESSES`` /
``REDSHIFT_PROCESS_ID``, or, with none of them, JAX's own detection (TPU VMs, SLURM, ...).
"""

from __future__ import annotations

import os
import signal

from .errors import ConfigError, StoreError

__all__ = ["initialize", "process_index", "process_count", "barrier", "publish", "wait_for", "Preempted", "PeerLost",
           "request_stop", "check_stop", "install_sigterm_handler", "HEARTBEAT_SECONDS"]

HEARTBEAT_SECONDS = 10
_WAIT_MS = 7 * 24 * 3600 * 1000  # process 0 may assemble for a long time; a dead peer ends the wait sooner
_STATE = {"stop": None, "counter": 0}


class Preempted(KeyboardInterrupt):
    """The run was asked to stop (SIGTERM) and stopped after writing its current chunk."""


def initialize(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None,
               heartbeat_seconds: int = HEARTBEAT_SECONDS) -> None:
    """Join the distributed run (before any JAX computation).

    Values left out come from ``REDSHIFT_COORDINATOR``, ``REDSHIFT_NUM_PROCESSES`` and ``REDSHIFT_PROCESS_ID``; with
    none given at all, ``jax.distributed.initialize()`` detects the cluster itself (TPU pods, SLURM, ...).
    """
    import jax

    coordinator = coordinator or os.environ.get("REDSHIFT_COORDINATOR") or None
    num_processes = num_processes if num_processes is not None else _env_int("REDSHIFT_NUM_PROCESSES")
    process_id = process_id if process_id is not None else _env_int("REDSHIFT_PROCESS_ID")
    given = [v is not None for v in (coordinator, num_processes, process_id)]
    if any(given) and not all(given):
        raise ConfigError(f"--distributed: coordinator={coordinator!r}, num_processes={num_processes!r}, "
                          f"process_id={process_id!r}; allowed: all three (flags or REDSHIFT_* variables) or none "
                          "(JAX detects TPU pods and SLURM jobs itself)")
    try:
        if all(given):
            if num_processes < 1 or not 0 <= process_id < num_processes:
                raise ConfigError(f"--distributed: process_id={process_id} with num_processes={num_processes} is "
                                  f"not allowed; allowed: 0 <= process_id < num_processes")
            jax.distributed.initialize(coordinator, num_processes, process_id,
                                       heartbeat_timeout_seconds=heartbeat_seconds)
        else:
            jax.distributed.initialize(heartbeat_timeout_seconds=heartbeat_seconds)
    except (ValueError, RuntimeError) as err:
        detail = " ".join(str(err).split())[:300]
        raise ConfigError(f"--distributed: jax.distributed.initialize failed ({detail}); "
                          "outside a TPU pod or SLURM job give --coordinator HOST:PORT, --num-processes and "
                          "--process-id (or the REDSHIFT_COORDINATOR, _NUM_PROCESSES, _PROCESS_ID variables)") from None


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not allowed; allowed: an integer") from None


def _client():
    from jax._src import distributed

    return distributed.global_state.client


def process_count() -> int:
    """Processes in this run (1 unless ``jax.distributed`` was initialized)."""
    if _client() is None:
        return 1
    import jax

    return jax.process_count()


def process_index() -> int:
    if _client() is None:
        return 0
    import jax

    return jax.process_index()


def _name(tag: str) -> str:
    # every process calls barriers and publications in the same order, so a counter names them alike
    _STATE["counter"] += 1
    return f"redshift_jax/{_STATE['counter']}/{tag}"


class PeerLost(StoreError):
    """Another process of the run died (or the coordinator is gone) while this one waited for it."""


def _coordinate(call, tag: str, *args):
    """A call to the coordination service; its failure (a dead peer: "Barrier failed ... heartbeat timeout")
    becomes a one-line ``PeerLost`` naming ``--resume`` instead of a JaxRuntimeError traceback."""
    try:
        return call(*args)
    except Exception as err:
        first = " ".join(str(err).split())
        why = "another process stopped sending heartbeats (it died or hangs)" if "heartbeat" in first \
            else f"the coordination service failed: {first[:160]}"
        raise PeerLost(f"process {process_index()} of {process_count()}, waiting at {tag!r}: {why}; finished chunks "
                       "are kept: rerun every process with --resume (any number of processes)") from None


def barrier(tag: str) -> None:
    """Wait until every process reaches this point (nothing to do in a single process)."""
    if process_count() > 1:
        _coordinate(_client().wait_at_barrier, tag, _name(tag), _WAIT_MS)


def publish(tag: str, message: str | None = None) -> None:
    """Process 0 tells the others how a step ended: ``None`` for success, else the error's one-line text."""
    if process_count() > 1:
        _coordinate(_client().key_value_set, tag, _name(tag), "ok" if message is None else "error:" + message)


def wait_for(tag: str) -> None:
    """The other processes wait for process 0's ``publish(tag, ...)``; its error is raised here as a
    ``StoreError`` with the same text (so every process ends with the same one-line message)."""
    if process_count() > 1:
        value = _coordinate(_client().blocking_key_value_get, tag, _name(tag), _WAIT_MS)
        if value != "ok":
            raise StoreError(f"process 0: {value.removeprefix('error:')}")


# ---- SIGTERM: finish the current chunk, then stop ------------------------------------------------------------

def request_stop(signum=signal.SIGTERM, frame=None) -> None:
    """Ask the running sweep or training to stop after its current chunk (the SIGTERM handler)."""
    del frame
    _STATE["stop"] = signum


def check_stop() -> None:
    """Raise ``Preempted`` when a stop was requested (called between chunks, after a chunk is written)."""
    if _STATE["stop"] is not None:
        _STATE["stop"] = None
        raise Preempted("stopped on SIGTERM after writing the current chunk")


def install_sigterm_handler() -> None:
    """SIGTERM (a preemption notice) stops the run after its current chunk (main thread only)."""
    try:
        signal.signal(signal.SIGTERM, request_stop)
    except ValueError:  # not the main thread
        pass
