"""One process of a distributed run, watched: whatever ends it, its stderr ends in one line (DESIGN.md section 17).

When a peer dies, JAX's coordination service ends the survivors itself: after the heartbeat timeout, or at once
when the coordinator (process 0) is gone, it aborts the process from a C++ thread with a "Check failure stack
trace" (exit 134), which no Python code in that process can catch (``missed_heartbeat_callback`` cannot be a
Python function in jax 0.10.2: the status argument has no Python type). So ``redshift-jax sweep --distributed``
runs as two processes: this light watcher (it imports nothing of jax, so it is also what ``--processes N``
starts, N times) and a child that does the work. The child runs with JAX's C++ log below FATAL silenced
(``TF_CPP_MIN_LOG_LEVEL=3`` unless set); its stderr passes through here, C++ log records are dropped, and a
fatal record (with the stack trace after it) is replaced by one line naming ``--resume``. The child dies with
this process (``PR_SET_PDEATHSIG``), so killing the watcher kills both.

Run as a script: ``python _supervisor.py PROCESS_ID ARGS...`` runs ``python -m redshift_jax.cli ARGS...``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

# A line of XLA's C++ log ("E1206 23:04:02.291867    6215 coordination_service.cc:1549] ...")
CPP_LOG = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ \S+:\d+\] ")
# A line that is not the continuation of a C++ log record: ours, a Python warning or traceback, a result line
OURS = re.compile(r"^(redshift-jax|results:|figure:|Traceback|\S+:\d+: \w*Warning:|\[)")
SUPERVISED = "REDSHIFT_SUPERVISED"


def _die_with_parent() -> None:
    """In the child: its own process group (a terminal's Ctrl-C reaches the watcher, which passes it on once,
    instead of the child getting it twice) and, on Linux, SIGKILL when the watcher dies, however it dies."""
    os.setpgrp()
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _reason(fatal: list[str], code: int) -> str:
    text = " ".join(" ".join(fatal[:4]).split())
    if "stopped sending heartbeats" in text or "heartbeat timeout" in text:
        return "another process of the run stopped sending heartbeats (it died or hangs)"
    if "leader task" in text or "coordination service" in text:
        return "the coordinator (process 0) is gone"
    if code < 0:
        return f"it was killed by signal {-code}"
    return f"JAX's distributed runtime failed ({text[:160] or f'exit code {code}'})"


def supervise(argv: list[str], process_id) -> int:
    """Run ``redshift-jax ARGV`` in a child, pass its stderr through, end in one line; return the exit code."""
    env = dict(os.environ, **{SUPERVISED: "1"})
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    child = subprocess.Popen([sys.executable, "-m", "redshift_jax.cli", *argv], env=env, stderr=subprocess.PIPE,
                             preexec_fn=_die_with_parent)
    state = {"fatal": [], "error_shown": False, "in_record": False}

    last: dict = {}

    def forward(signum, frame):
        # once per signal and second: a Ctrl-C can reach the watcher twice (from the terminal and from the
        # --processes launcher, which forwards it too)
        now = time.monotonic()
        if child.poll() is None and now - last.get(signum, -10.0) > 1.0:
            last[signum] = now
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}

    def emit(text: str) -> None:
        sys.stderr.write(text)
        sys.stderr.flush()

    def pump() -> None:
        pending = ""
        while True:
            data = os.read(child.stderr.fileno(), 65536)
            if not data:
                break
            pending += data.decode(errors="replace")
            *lines, pending = pending.split("\n")
            for line in lines:
                if state["fatal"]:
                    state["fatal"].append(line)
                elif line.startswith("F") and CPP_LOG.match(line) or line.startswith("*** Check failure"):
                    state["fatal"].append(line)
                elif CPP_LOG.match(line):
                    state["in_record"] = True  # its continuation lines follow, up to a line of ours
                elif not state["in_record"] or OURS.match(line):
                    state["in_record"] = False
                    state["error_shown"] |= line.startswith("redshift-jax: error:")
                    emit(line + "\n")
            if "\r" in pending and not state["fatal"]:  # a progress bar's redraws: show them as they come
                head, _, pending = pending.rpartition("\r")
                emit(head + "\r")
        if pending and not state["fatal"]:
            emit(pending)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    reader.join(timeout=5)
    if code >= 0 and not state["fatal"]:
        return code
    if not state["error_shown"]:
        emit(f"redshift-jax: error: process {process_id} of the distributed run stopped: "
             f"{_reason(state['fatal'], code)}; finished chunks are kept beside --out: rerun every process with "
             "--resume (any number of processes)\n")
    return 1


if __name__ == "__main__":
    sys.exit(supervise(sys.argv[2:], sys.argv[1]))
