"""A small pool of persistent verifier worker processes with a hard per-item timeout.

Why processes: math-verify's own timeout uses ``signal.alarm``, which only works in the main thread, and a
sympy call cannot be interrupted from another thread. So each comparison that needs sympy runs in a worker
process; if it is not answered within the timeout the worker is killed (SIGKILL) and a fresh one started in
the background, and the item gets ``(False, "timeout")``. This works from any thread.

Lifecycle:

- Workers start lazily on the first item that needs math-verify (start-up costs ~1-2 s: Python, sympy and
  math-verify imports) and then stay alive, idle, blocked on their pipe. ``verify_batch(workers=k)`` grows the
  pool to ``k`` workers; concurrent callers share it (a caller waits for a free worker).
- They are stopped at interpreter exit (``atexit``), by :func:`shutdown_pool`, and on their own when the
  owner process dies (pipe EOF + a watchdog). After ``os.fork()`` the child starts a pool of its own.
- Start methods (``CCPO_VERIFY_START_METHOD`` or ``WorkerPool(method=...)``): ``"subprocess"`` (default on
  POSIX) runs ``python -c <boot>`` with the pipe's file descriptor: it does not re-import the caller's
  ``__main__`` (no ``if __name__ == "__main__"`` guard needed), is unaffected by
  ``multiprocessing.set_start_method``, and works inside daemonic processes. ``"spawn"``, ``"forkserver"``
  and ``"fork"`` use :mod:`multiprocessing` contexts (``"spawn"`` is the default off POSIX).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections import deque
from multiprocessing.connection import wait
from pathlib import Path

from .worker import serve

logger = logging.getLogger(__name__)

START_METHODS = ("subprocess", "spawn", "forkserver", "fork")
STARTUP_TIMEOUT = 120.0  # generous: imports on a loaded 2-core machine can take several seconds
MAX_START_FAILURES = 3  # per run() call, before remaining items are failed with "error:WorkerStartError"
_SLOW_FOR_TEST = 0.0  # seconds each worker sleeps before comparing; tests set it to exercise timeouts

_PKG_DIR = str(Path(__file__).resolve().parents[1])  # the ccpo_env package directory
# The worker needs only ccpo_env.verify; a stub parent package skips ccpo_env/__init__.py (environments,
# gymnasium, pettingzoo), which would slow every (re)start.
_BOOT = (
    "import sys, types\n"
    "pkg = types.ModuleType('ccpo_env'); pkg.__path__ = [sys.argv[1]]; sys.modules['ccpo_env'] = pkg\n"
    "from ccpo_env.verify.worker import main\n"
    "main(sys.argv[2:])\n"
)

Task = tuple[str, str, bool]  # (pred, gold, symmetric)
Decision = tuple[bool, str]


class PoolError(RuntimeError):
    """No worker process could be started."""


def default_start_method() -> str:
    method = os.environ.get("CCPO_VERIFY_START_METHOD", "").strip() or (
        "subprocess" if os.name == "posix" else "spawn"
    )
    if method not in START_METHODS:
        raise ValueError(f"CCPO_VERIFY_START_METHOD={method!r}; valid: {', '.join(START_METHODS)}")
    return method


class _Worker:
    """One worker process and the parent's end of its pipe."""

    def __init__(self, method: str):
        self.ready = False
        self.started = time.monotonic()
        if method == "subprocess":
            parent, child = multiprocessing.Pipe(duplex=True)
            fd = child.fileno()
            try:
                self.proc: subprocess.Popen | multiprocessing.process.BaseProcess = subprocess.Popen(
                    [sys.executable, "-c", _BOOT, _PKG_DIR, str(fd), str(os.getpid())],
                    pass_fds=(fd,),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                )
            finally:
                child.close()
        else:
            ctx = multiprocessing.get_context(method)
            parent, child = ctx.Pipe(duplex=True)
            try:
                self.proc = ctx.Process(
                    target=serve, args=(child, os.getpid()), name="ccpo-verify-worker", daemon=True
                )
                self.proc.start()
            finally:
                child.close()
        self.conn = parent

    def _reap(self, timeout: float) -> bool:
        if isinstance(self.proc, subprocess.Popen):
            try:
                self.proc.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        self.proc.join(timeout)
        return self.proc.exitcode is not None

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.close()
        with contextlib.suppress(OSError, ValueError, AttributeError):
            self.proc.kill()
        self._reap(5.0)

    def ask_to_stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(None)

    def finish_stop(self) -> None:
        if not self._reap(1.0):
            self.kill()
        with contextlib.suppress(OSError):
            self.conn.close()


class WorkerPool:
    """Persistent worker processes shared by all callers; see the module docstring."""

    def __init__(self, method: str | None = None):
        self.method = method or default_start_method()
        if self.method not in START_METHODS:
            raise ValueError(f"unknown start method {self.method!r}; valid: {', '.join(START_METHODS)}")
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._count = 0  # workers owned by the pool: idle + checked out
        self._capacity = 0
        self._closed = False
        self.pid = os.getpid()

    @property
    def size(self) -> int:
        return self._count

    def _spawn(self) -> _Worker:
        return _Worker(self.method)

    def _checkout(self, n: int) -> list[_Worker]:
        with self._cond:
            self._capacity = max(self._capacity, n)
            while True:
                if self._closed:
                    raise PoolError("the verifier pool has been shut down")
                got = [self._idle.pop() for _ in range(min(n, len(self._idle)))]
                while len(got) < n and self._count < self._capacity:
                    try:
                        got.append(self._spawn())
                    except OSError as e:
                        if got or self._count:
                            break
                        raise PoolError(f"cannot start a verifier worker: {e}") from e
                    self._count += 1
                if got:
                    return got
                self._cond.wait()

    def _checkin(self, workers: list[_Worker], lost: int) -> None:
        with self._cond:
            self._count -= lost
            if self._closed:
                self._count -= len(workers)
                for w in workers:
                    w.kill()
            else:
                self._idle.extend(workers)
            self._cond.notify_all()

    def run(self, tasks: list[Task], timeout: float, workers: int = 1) -> list[Decision]:
        """Compare every task on up to ``workers`` workers; each item gets at most ``timeout`` seconds."""
        if not tasks:
            return []
        try:
            mine = self._checkout(max(1, min(workers, len(tasks))))
        except PoolError as e:
            logger.warning("%s", e)
            return [(False, "error:WorkerStartError")] * len(tasks)
        results: list[Decision | None] = [None] * len(tasks)
        pending = deque(range(len(tasks)))
        idle = [w for w in mine if w.ready]
        starting = {w.conn: w for w in mine if not w.ready}
        busy: dict = {}  # conn -> (worker, item index, deadline)
        lost = failures = 0

        def replace(w: _Worker) -> None:
            nonlocal lost, failures
            w.kill()
            if failures >= MAX_START_FAILURES:
                lost += 1
                return
            try:
                nw = self._spawn()
            except OSError:
                failures += 1
                lost += 1
                return
            starting[nw.conn] = nw

        try:
            while pending or busy:
                while pending and idle:
                    w, i = idle.pop(), pending.popleft()
                    try:
                        w.conn.send((i, *tasks[i], _SLOW_FOR_TEST))
                    except (OSError, ValueError):
                        pending.appendleft(i)
                        replace(w)
                        continue
                    busy[w.conn] = (w, i, time.monotonic() + timeout)
                if not busy and not starting:
                    break  # every worker failed to start
                deadlines = [d for _, _, d in busy.values()]
                deadlines += [w.started + STARTUP_TIMEOUT for w in starting.values()]
                for conn in wait(list(busy) + list(starting), max(0.0, min(deadlines) - time.monotonic())):
                    if conn in starting:
                        w = starting.pop(conn)
                        try:
                            msg = conn.recv()
                        except (EOFError, OSError):
                            msg = ("failed", "worker exited during start-up")
                        if msg[0] == "ready":
                            w.ready = True
                            idle.append(w)
                        else:
                            failures += 1
                            logger.warning("verifier worker failed to start: %s", msg[1])
                            replace(w)
                    else:
                        w, i, _ = busy.pop(conn)
                        try:
                            _, correct, reason = conn.recv()
                            results[i] = (bool(correct), str(reason))
                            idle.append(w)
                        except (EOFError, OSError):  # crashed (e.g. killed by the OOM killer)
                            results[i] = (False, "error:WorkerDied")
                            replace(w)
                now = time.monotonic()
                for conn, (w, i, deadline) in list(busy.items()):
                    if now >= deadline:
                        del busy[conn]
                        results[i] = (False, "timeout")
                        replace(w)
                for conn, w in list(starting.items()):
                    if now >= w.started + STARTUP_TIMEOUT:
                        del starting[conn]
                        failures += 1
                        logger.warning("verifier worker did not start within %.0f s", STARTUP_TIMEOUT)
                        replace(w)
        finally:
            for w, _, _ in busy.values():  # only on an exception (e.g. KeyboardInterrupt): state unknown
                w.kill()
                lost += 1
            self._checkin(idle + list(starting.values()), lost)
        return [r if r is not None else (False, "error:WorkerStartError") for r in results]

    def close(self) -> None:
        """Stop idle workers now; workers in use are stopped when their caller returns them."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._cond.notify_all()
        for w in idle:
            w.ask_to_stop()
        for w in idle:
            w.finish_stop()


_POOL: WorkerPool | None = None
_POOL_LOCK = threading.Lock()


def get_pool() -> WorkerPool:
    """The process-wide pool (created on first use; a forked child gets its own)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL.pid != os.getpid():
            _POOL = WorkerPool()  # a pool inherited through fork() belongs to the parent: leave it alone
        return _POOL


def shutdown_pool() -> None:
    """Stop the worker processes (they restart on demand). Registered with ``atexit``."""
    global _POOL
    with _POOL_LOCK:
        pool, _POOL = _POOL, None
    if pool is not None and pool.pid == os.getpid():
        pool.close()


atexit.register(shutdown_pool)
