"""The local engine of sharded scans (:mod:`lmcritic.sharding`): the workers as spawned processes of this
machine, each answering over a pipe, and the shared budget in shared memory."""
from __future__ import annotations

import os
import signal
import sys
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from lmcritic.sharding import Reply, Task, Worker, WorkerSetup, _reason

if TYPE_CHECKING:
    from lmcritic.spec import ParallelSpec
    from lmcritic.store.cache import Budget


class Processes:
    """Workers as processes of this machine (spawned: no state shared with the driver but the ledger)."""

    def __init__(self, setup: WorkerSetup, capped: bool, parallel: ParallelSpec) -> None:
        import multiprocessing

        self.ctx = multiprocessing.get_context("spawn")
        self.setup = setup
        self.ledger = SharedLedger(self.ctx) if capped else None
        self.procs: dict[int, Any] = {}
        self.conns: dict[int, Any] = {}

    def start(self, slot: int) -> None:
        if slot in self.conns:  # a dead worker's pipe
            self.conns[slot].close()
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_process_main, args=(child, self.setup, self.ledger),
                                name=f"lmcritic-worker-{slot}")
        with _main_hidden():
            proc.start()
        child.close()
        self.procs[slot], self.conns[slot] = proc, parent

    def send(self, slot: int, task: Task) -> None:
        try:
            self.conns[slot].send(task)
        except OSError:  # it died just now: the next poll reports it
            pass

    def poll(self, slots: set[int], timeout: float) -> list[tuple[int, Reply]]:
        from multiprocessing.connection import wait

        waiting = {self.conns[s]: s for s in slots} | {self.procs[s].sentinel: s for s in slots}
        ready = {waiting[w] for w in wait(list(waiting), timeout)} if waiting else set()
        return [(s, self._receive(s)) for s in sorted(ready)]

    def _receive(self, slot: int) -> Reply:
        conn, proc = self.conns[slot], self.procs[slot]
        try:
            if conn.poll():  # a reply sent just before the process ended still counts
                reply: Reply = conn.recv()
                return reply
        except (EOFError, OSError):
            pass
        proc.join(5)
        code = proc.exitcode
        why = f"killed by {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
        return Reply("died", message=why, pid=proc.pid or 0)

    def stop_all(self) -> None:
        """Idle workers are asked to stop; busy ones are terminated (their probe stays resumable)."""
        for slot in self.procs:
            try:
                self.conns[slot].send(None)
            except OSError:
                pass
        deadline = time.monotonic() + 2
        for proc in self.procs.values():
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for conn in self.conns.values():
            conn.close()
        self.procs, self.conns = {}, {}


@contextmanager
def _main_hidden() -> Iterator[None]:
    """A spawned worker needs lmcritic and the model's module, never the caller's script: without this, spawning
    re-runs a script that lacks an ``if __name__ == "__main__"`` guard (so the scan would start itself again)."""
    main = sys.modules.get("__main__")
    saved = {k: main.__dict__.pop(k) for k in ("__file__",) if main is not None and k in main.__dict__}
    spec = getattr(main, "__spec__", None)
    if main is not None:
        main.__spec__ = None
    try:
        yield
    finally:
        if main is not None:
            main.__dict__.update(saved)
            main.__spec__ = spec


def _process_main(conn: Any, setup: WorkerSetup, ledger: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the driver decides
    _die_with_parent(setup.parent_pid)
    if setup.threads:
        os.environ.setdefault("OMP_NUM_THREADS", str(setup.threads))
    try:
        worker = Worker(setup, ledger)
        conn.send(worker.hello())
    except BaseException as err:  # noqa: BLE001 - reported to the driver, which raises it as one line
        conn.send(Reply("broken", message=_reason(err, "worker, loading the model"), pid=os.getpid()))
        return
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):  # the driver is gone
            break
        if task is None:
            break
        conn.send(worker.handle(task))
    worker.close()


def _die_with_parent(parent_pid: int) -> None:
    """Linux: this process gets SIGKILL when the driver dies (a worker must not outlive its run's driver)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the driver died before the signal was armed
        os._exit(1)


class SharedLedger:
    """The queries and tokens all local workers spent, in shared memory under one lock."""

    def __init__(self, ctx: Any) -> None:
        self._counts = ctx.Array("q", 2)  # queries, tokens

    def reserve(self, budget: Budget, tokens: Sequence[int]) -> int:
        with self._counts.get_lock():
            queries, spent = self._counts[0], self._counts[1]
            n = budget.take(queries, spent, tokens)
            self._counts[0], self._counts[1] = queries + n, spent + sum(tokens[:n])
        return n

    def spent(self) -> tuple[int, int]:
        with self._counts.get_lock():
            return int(self._counts[0]), int(self._counts[1])
