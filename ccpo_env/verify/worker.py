"""The verifier worker process: runs math-verify comparisons sent over a pipe, one at a time.

Protocol (pickled tuples over a :class:`multiprocessing.connection.Connection`):

- worker -> parent, once: ``("ready", pid)`` after math-verify is imported and warmed up, or
  ``("failed", message)``;
- parent -> worker: ``(task_id, pred, gold, symmetric, slow_for_test)``; ``None`` asks it to exit;
- worker -> parent: ``(task_id, correct, reason)``.

The parent enforces the hard timeout by killing the worker; the worker itself never needs signals, so it
has no main-thread restriction. A worker also exits on its own when its owner process disappears (pipe EOF,
or a watchdog thread that notices the owner is gone while a comparison is still running).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from multiprocessing.connection import Connection

DEFAULT_MEM_LIMIT_MB = 4096


def _address_space_bytes() -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _limit_memory() -> None:
    """Cap the worker's address space so a runaway bigint fails with MemoryError instead of swapping the box.

    The cap is ``CCPO_VERIFY_WORKER_MEM_MB`` (default 4096, 0 disables) *on top of* what the process already
    maps, so a worker forked from a large parent (``"fork"`` start method) is not starved.
    """
    try:
        mb = int(os.environ.get("CCPO_VERIFY_WORKER_MEM_MB", DEFAULT_MEM_LIMIT_MB))
    except ValueError:
        mb = DEFAULT_MEM_LIMIT_MB
    current = _address_space_bytes()
    if mb <= 0 or current is None:  # no /proc (macOS, Windows): RLIMIT_AS is not reliable there anyway
        return
    try:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = current + mb * 2**20
        if hard == resource.RLIM_INFINITY or limit < hard:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):
        pass  # not available on this platform: the parent's timeout still bounds the time


def _watch_owner(owner_pid: int) -> None:
    start_ppid = os.getppid()

    def loop() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != start_ppid:  # re-parented: whoever started us is gone
                os._exit(0)
            try:
                os.kill(owner_pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except OSError:
                pass

    threading.Thread(target=loop, name="ccpo-verify-watchdog", daemon=True).start()


def serve(conn: Connection, owner_pid: int) -> None:
    """Worker main loop (the target for the ``multiprocessing`` start methods)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the owner's business; it kills us cleanly
    _limit_memory()
    _watch_owner(owner_pid)
    try:
        from .compare import mv_compare, warm_up

        warm_up()  # import sympy/antlr and fill sympy's lazy caches before we count as ready
    except Exception as e:  # report instead of dying silently: the pool turns this into verdict reasons
        conn.send(("failed", f"{type(e).__name__}: {e}"))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        task_id, pred, gold, symmetric, slow = msg
        try:
            if slow > 0:
                time.sleep(slow)  # test hook: simulates a comparison that never finishes
            correct, reason = mv_compare(pred, gold, symmetric)
        except (Exception, RecursionError, MemoryError) as e:
            correct, reason = False, f"error:{type(e).__name__}"
        try:
            conn.send((task_id, correct, reason))
        except (OSError, ValueError):
            return


def main(argv: list[str]) -> None:
    """Entry point of the ``subprocess`` backend: ``argv = [fd, owner_pid]``."""
    serve(Connection(int(argv[0])), int(argv[1]))
