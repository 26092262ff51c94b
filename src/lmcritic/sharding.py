"""Sharded scans: the independent probes of a run on N workers at once, all writing to the same run.

``parallel: {workers: 4}`` in a run spec (``lmcritic scan --workers 4``) runs the probes on four worker
processes of this machine; ``engine: ray`` runs the workers as Ray actors instead (``num_cpus``/``num_gpus``
each; the store and cache files must be reachable from their nodes: a local Ray instance, or a shared
file system). Each worker loads the model itself, wraps it in its own call cache on the shared cache file,
opens the run store file and runs whole probes with the sequential runner's code, so each chunk of records
is stored as soon as it is scored. SQLite serializes the writers (WAL, busy timeout, ``BEGIN IMMEDIATE``);
case rows are keyed by (run, probe, case), so a chunk written twice is stored once.

The driver loads no model: it takes the model's identity from the workers, records the plan's probes in
plan order (records and findings then read back in the sequential run's order, so the results are the
same), hands out one probe at a time, shows progress read from the store, prints what the workers report,
and runs the stages on a worker once every probe is over. The budget is shared: the workers book queries
and tokens on one counter (shared memory; a Ray actor).

A worker that dies (killed, out of memory) is replaced and its probe handed out again, ``max_restarts``
times in all; then the probe is marked failed and ``resume`` retries it. The cases it stored are kept and
not asked again. When the driver dies, local workers die with it (Linux parent-death signal; elsewhere
they stop after their probe), Ray kills the actors of a dead driver, and ``resume`` continues the run:
finished probes are skipped and a probe's stored cases are not recomputed.
"""
from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from lmcritic._progress import Bar
from lmcritic.errors import BackendError, BudgetExceeded, LmcriticError, ModelLoadError

if TYPE_CHECKING:
    from lmcritic._sharding_local import Processes
    from lmcritic._sharding_ray import RayActors
    from lmcritic.runner import Runner
    from lmcritic.spec import RunSpec
    from lmcritic.store.runs import RunStore

POLL_S = 0.5  # how often the driver refreshes progress while it waits for the workers
STAT_KEYS = ("hits", "misses", "queries", "tokens", "elapsed_s")


@dataclass(frozen=True)
class Task:
    """One unit of work: a probe of the plan, or a stage (after every probe)."""

    kind: str  # "probe" | "stage"
    run_id: str
    key: str


@dataclass(frozen=True)
class Reply:
    """A worker's answer: ``ready`` (model loaded), ``broken`` (it could not load), ``done``, ``budget`` (the
    shared budget is spent), ``fatal`` (the store or the worker failed), ``died`` (its process is gone)."""

    kind: str
    key: str = ""
    message: str = ""
    hint: str | None = None
    notes: tuple[tuple[str, str], ...] = ()  # (level, text) the runner would have printed
    profile: dict[str, float] = field(default_factory=dict)
    stats: dict[str, float] = field(default_factory=dict)  # the worker's cache counters so far
    pid: int = 0
    fingerprint: str = ""
    describe: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkerSetup:
    spec: RunSpec
    store_path: str
    cache_path: str
    max_output_chars: int | None
    threads: int | None  # BLAS threads per local worker (None: as inherited)
    parent_pid: int


class Worker:
    """One worker: the model (with its own call cache on the shared file) and the run store, running the
    tasks it is handed with the sequential runner's code. Used in a local process and as a Ray actor."""

    def __init__(self, setup: WorkerSetup, ledger: Any = None) -> None:
        from lmcritic.backends import load_model
        from lmcritic.runner import Runner, make_plan

        self.spec = setup.spec
        self.runner = Runner(setup.store_path, setup.cache_path, progress=False, create_store=False,
                             max_output_chars=setup.max_output_chars)
        self.model = self.runner._wrap(load_model(self.spec.model), self.spec, ledger)
        self.plan = {item.key: item for item in make_plan(self.spec, self.model)}

    def hello(self) -> Reply:
        return Reply("ready", pid=os.getpid(), fingerprint=self.model.fingerprint(), describe=self.model.describe())

    def handle(self, task: Task) -> Reply:
        runner, relay = self.runner, _Relay()
        runner._profile = {}
        measured = task.key if task.kind == "probe" else f"stage:{task.key}"
        try:
            with runner._measure(measured, self.model):
                if task.kind == "probe":
                    runner._run_item(task.run_id, self.plan[task.key], self.model, relay)
                else:
                    stage = next(s for s in self.spec.stages if s.name == task.key)
                    runner._run_stage(task.run_id, stage, self.spec, self.model, relay)
        except BudgetExceeded as err:
            return self._reply("budget", task.key, relay, err.message, err.hint)
        except Exception as err:  # noqa: BLE001 - the store failed, or the worker itself: the driver stops the run
            return self._reply("fatal", task.key, relay, _reason(err, f"worker, {task.kind} {task.key}"))
        return self._reply("done", task.key, relay, profile=runner._profile.get(measured, {}))

    def _reply(self, kind: str, key: str, relay: "_Relay", message: str = "", hint: str | None = None,
               profile: dict[str, float] | None = None) -> Reply:
        from lmcritic._scoring import backend_stats as _stats

        stats = _stats(self.model)
        return Reply(kind, key, message, hint, tuple(relay.lines), dict(profile or {}),
                     {k: stats[k] for k in STAT_KEYS}, os.getpid())

    def close(self) -> None:
        self.model.close()


class Shards:
    """The driver's side. ``with Shards(spec, runner) as shards``: start the workers and wait for their models;
    :meth:`run` hands out tasks until every one is over; leaving the block stops the workers."""

    def __init__(self, spec: RunSpec, runner: Runner) -> None:
        self.parallel = spec.parallel
        self.store: RunStore = runner.store
        threads = max(1, (os.cpu_count() or 1) // self.parallel.workers)
        setup = WorkerSetup(spec, str(runner.store.path), str(runner.cache_path), runner.max_output_chars,
                            threads, os.getpid())
        budget = spec.budget
        capped = budget.max_queries is not None or budget.max_tokens is not None
        if self.parallel.engine == "ray":
            from lmcritic._sharding_ray import RayActors

            self.transport: Processes | RayActors = RayActors(setup, capped, self.parallel)
        else:
            from lmcritic._sharding_local import Processes

            self.transport = Processes(setup, capped, self.parallel)
        self.restarts = 0
        self.profile: dict[str, dict[str, float]] = {}
        self._stats: dict[int, dict[str, float]] = {}  # per worker process: its cache counters
        self._idle: set[int] = set()
        self._starting: set[int] = set()
        self._pids: dict[int, int] = {}
        self._fingerprint, self._describe = "", dict[str, Any]()
        self._progress: _Progress | None = None

    # -- what the runner needs of a model -------------------------------------------------------
    def fingerprint(self) -> str:
        return self._fingerprint

    def describe(self) -> dict[str, Any]:
        return self._describe

    @property
    def pids(self) -> list[int]:
        """The workers' process ids (local engine: this machine's)."""
        return [self._pids[i] for i in sorted(self._pids)]

    @property
    def stats(self) -> dict[str, float]:
        """The workers' cache counters, summed (every worker process there ever was)."""
        return {k: sum(s.get(k, 0) for s in self._stats.values()) for k in STAT_KEYS}

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> "Shards":
        try:
            for slot in range(self.parallel.workers):
                self._start(slot)
            while self._starting:
                for slot, reply in self.transport.poll(set(self._starting), POLL_S):
                    self._started(slot, reply)
        except BaseException:
            self.transport.stop_all()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.transport.stop_all()

    def _start(self, slot: int) -> None:
        self._starting.add(slot)
        self.transport.start(slot)

    def _started(self, slot: int, reply: Reply) -> None:
        self._starting.discard(slot)
        if reply.kind == "broken":
            raise LmcriticError(reply.message, reply.hint)
        if reply.kind != "ready":
            raise ModelLoadError(f"worker {slot} died while loading the model ({reply.message})",
                                 "check memory: every worker loads its own copy; lower parallel.workers")
        if self._fingerprint and reply.fingerprint != self._fingerprint:
            raise BackendError("the workers loaded different models (their fingerprints differ)",
                               "point the spec at a fixed checkpoint, not one that changes between loads")
        self._fingerprint, self._describe = reply.fingerprint, self._describe or reply.describe
        self._pids[slot] = reply.pid
        self._idle.add(slot)

    # -- handing out work -----------------------------------------------------------------------
    def run(self, run_id: str, tasks: Sequence[Task], bar: Bar) -> None:
        """Every task on some worker; returns when all are over. Raises BudgetExceeded (after the busy workers
        are done) when the shared budget ran out, and LmcriticError when a worker failed in a way a probe
        cannot absorb (the store, the worker itself)."""
        queue, busy = deque(tasks), dict[int, Task]()
        spent: Reply | None = None
        if self._progress is None or (self._progress.run_id, self._progress.bar) != (run_id, bar):
            self._progress = _Progress(self.store, run_id, bar)  # one set of bars per run, however many calls
        progress = self._progress
        while busy or self._starting or (queue and spent is None and self._idle):
            while queue and spent is None and self._idle:
                slot = min(self._idle)
                self._idle.discard(slot)
                busy[slot] = queue.popleft()
                if busy[slot].kind == "stage":  # a stage can take minutes and has no bar
                    bar.note(f"stage {busy[slot].key} ...")
                self.transport.send(slot, busy[slot])
            for slot, reply in self.transport.poll(set(busy) | self._starting, POLL_S):
                if slot in self._starting:
                    self._started(slot, reply)
                    continue
                task = busy.pop(slot)
                spent = self._settle(slot, task, reply, queue, bar) or spent
            progress.update()
        progress.update(force=True)
        if spent is not None:
            raise BudgetExceeded(spent.message, spent.hint)
        for task in queue:  # every worker died and none may be replaced
            self._fail(task, f"no worker is left to run it ({self.restarts} replaced, all died); "
                       f"`lmcritic run --resume {task.run_id}` continues it", bar)

    def _settle(self, slot: int, task: Task, reply: Reply, queue: deque[Task], bar: Bar) -> Reply | None:
        """Take in one worker's reply; returns it when the budget is spent."""
        for level, text in reply.notes:
            if (level, text) != ("note", f"stage {task.key} ..."):  # said when it was handed out
                {"error": bar.error, "warn": bar.warn}.get(level, bar.note)(text)
        if reply.kind == "died":
            self._replace(slot, task, reply, queue, bar)
            return None
        self._stats[reply.pid] = reply.stats
        self._idle.add(slot)
        if reply.kind == "fatal":
            raise LmcriticError(f"worker {slot} (pid {reply.pid}) failed on {task.kind} {task.key}: {reply.message}")
        if reply.profile and any(reply.profile.values()):
            self.profile[task.key if task.kind == "probe" else f"stage:{task.key}"] = reply.profile
        return reply if reply.kind == "budget" else None

    def _replace(self, slot: int, task: Task, reply: Reply, queue: deque[Task], bar: Bar) -> None:
        """A dead worker's task goes to a fresh worker (up to ``max_restarts`` in all), else it is marked failed."""
        pid = self._pids.pop(slot, 0)
        why = f"worker {slot} (pid {pid}) died while running {task.kind} {task.key} ({reply.message})"
        if self.restarts < self.parallel.max_restarts:
            self.restarts += 1
            bar.warn(f"{why}; a new worker takes it over (restart {self.restarts} of {self.parallel.max_restarts})")
            self._start(slot)
            queue.appendleft(task)
            return
        self._fail(task, f"{why}; {self.restarts} worker(s) were already replaced; its stored cases are kept: "
                   f"`lmcritic run --resume {task.run_id}` continues it", bar)

    def _fail(self, task: Task, reason: str, bar: Bar) -> None:
        if task.kind == "probe":
            self.store.fail_probe(task.run_id, task.key, reason)
        else:
            self.store.fail_stage(task.run_id, task.key, reason)
        bar.error(f"{task.key} failed: {reason}")


class _Progress:
    """Bars for the probes the workers run, read from the store (the cases stored so far)."""

    def __init__(self, store: RunStore, run_id: str, bar: Bar) -> None:
        self.store, self.run_id, self.bar = store, run_id, bar
        self.bars: dict[str, Any] = {}
        self.last = 0.0

    def update(self, force: bool = False) -> None:
        if not self.bar.enabled or (not force and time.monotonic() - self.last < POLL_S):
            return
        self.last = time.monotonic()
        counts = self.store.case_counts(self.run_id)
        for p in self.store.probe_runs(self.run_id, kind="probe"):
            if p.status in ("pending", "skipped") or p.n_cases is None:
                continue
            if p.probe_key not in self.bars:
                self.bars[p.probe_key] = self.bar.track(p.probe_key, p.n_cases)
            self.bars[p.probe_key](min(counts.get(p.probe_key, 0), p.n_cases))


class _Relay(Bar):
    """The runner's progress interface inside a worker: what it would print is sent to the driver."""

    def __init__(self) -> None:
        super().__init__(False)
        self.lines: list[tuple[str, str]] = []

    def note(self, text: str) -> None:
        self.lines.append(("note", text))

    def error(self, text: str) -> None:
        self.lines.append(("error", text))

    def warn(self, text: str) -> None:
        self.lines.append(("warn", text))


def _reason(err: BaseException, context: str) -> str:
    from lmcritic._scoring import failure_reason as reason

    return reason(err, context)
