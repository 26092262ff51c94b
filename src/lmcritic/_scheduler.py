"""The model's one worker for ``lmcritic serve``: a bounded queue, deadlines, cancellation, and short
requests first.

One thread runs all model work (backends are not promised to be thread-safe, and they batch internally).
Requests wait in a queue of at most ``max_queue`` jobs; a full queue refuses at once (the server answers 503
with Retry-After) instead of letting connections pile up. So does a queue that could not serve the new job
before its deadline (the work queued ahead of it times the measured seconds per unit of work): under
overload a client hears "retry in N s" at once rather than a 504 after waiting out its deadline. A job that
waited past its deadline, or whose client hung up, is dropped without touching the model.

Scheduling is shortest-remaining-work first: each job says how much work is left (new tokens still to
generate, or the number of prompts to score), and the waiting job with the least goes next (ties: the
earliest deadline, then arrival). Work that can pause (a generation stepping token by token, see
``HFBackend.start_generation``) checks between tokens whether a waiting job needs at most half of what it
still needs; once it has run ``quantum_s`` since it (re)started, it then pauses, keeps its KV cache, and
continues later with the same tokens. A 2-token request behind an 8000-token one waits about ``quantum_s``,
not minutes; a burst of equal requests is served first come, first served (no time slicing, which would
make every one of them late). Work that cannot pause (scoring, a Python callable) runs to the end once started.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

Step = Callable[[Callable[[], bool]], "tuple[bool, Any]"]  # step(pause) -> (done, value)


class QueueFull(Exception):
    """The queue holds ``max_queue`` jobs; ``retry_after`` estimates the seconds until there is room."""

    def __init__(self, retry_after: int, size: int, why: str = "") -> None:
        super().__init__(f"the server is busy ({size} requests queued{why})")
        self.retry_after, self.size = retry_after, size


class Cancelled(Exception):
    """The client went away before the job finished; nothing was sent."""


class DeadlinePassed(Exception):
    """The job's deadline passed (``started``: after some model work was done on it)."""

    def __init__(self, timeout_s: float, started: bool) -> None:
        where = "while it was being served" if started else "while it waited in the queue"
        super().__init__(f"the request's deadline of {timeout_s:g} s passed {where}")


@dataclass(eq=False)
class Job:
    step: Step
    deadline: float  # time.monotonic()
    timeout_s: float
    remaining: Callable[[], float] = lambda: 1.0  # work left (tokens to generate, prompts to score)
    size: float = 1.0  # the work it came with
    arrived: float = field(default_factory=time.monotonic)
    service: float = 0.0  # model time spent on it so far
    started: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    cancelled: threading.Event = field(default_factory=threading.Event)
    value: Any = None
    error: BaseException | None = None

    def expired(self) -> bool:
        return time.monotonic() > self.deadline


class Scheduler:
    """Construct, :meth:`start`, then :meth:`run` jobs from any thread; :meth:`stop` ends the worker."""

    def __init__(self, max_queue: int = 64, quantum_s: float = 0.2) -> None:
        self.max_queue, self.quantum_s = max_queue, quantum_s
        self._queue: list[Job] = []
        self._cond = threading.Condition()
        self._running: Job | None = None
        self._running_since = 0.0
        self._least_waiting: float | None = None  # smallest remaining work among queued jobs (read per token)
        self.cost = CostModel()  # model seconds for a job of a given size, learnt from finished jobs
        self._stopped = False
        self._thread: threading.Thread | None = None

    def start(self) -> "Scheduler":
        self._thread = threading.Thread(target=self._loop, name="lmcritic-model", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    @property
    def size(self) -> int:
        """Jobs queued or running."""
        with self._cond:
            return len(self._queue) + (self._running is not None)

    def run(self, step: Step, timeout_s: float, client_gone: Callable[[], bool] | None = None,
            remaining: Callable[[], float] | None = None, poll_s: float = 0.05) -> Any:
        """Queue ``step`` and wait for its value; raises QueueFull, DeadlinePassed, Cancelled or its error."""
        job = self.submit(step, timeout_s, remaining)
        while not job.done.wait(poll_s):
            if client_gone is not None and client_gone():
                self.cancel(job, Cancelled("the client disconnected"))
            elif job.expired() and not job.started:  # a started job stops at its next pause check
                self.cancel(job, DeadlinePassed(timeout_s, False))
        if job.error is not None:
            raise job.error
        return job.value

    def submit(self, step: Step, timeout_s: float, remaining: Callable[[], float] | None = None) -> Job:
        remaining = remaining or (lambda: 1.0)
        size = max(1.0, float(remaining()))
        with self._cond:
            queued = len(self._queue) + (self._running is not None)
            wait = self._wait_s(size)
            if queued >= self.max_queue:
                raise QueueFull(self._retry_after(self._running_left_s()), queued)
            if wait is not None and wait > timeout_s:  # it would only wait to time out: refuse it now
                raise QueueFull(self._retry_after(wait - timeout_s), queued,
                                f"; it would finish in about {wait:.0f} s, past its {timeout_s:g} s deadline")
            job = Job(step, time.monotonic() + timeout_s, timeout_s, remaining, size)
            self._queue.append(job)
            self._update_least()
            self._cond.notify()
        return job

    def cancel(self, job: Job, why: BaseException) -> None:
        """Drop a queued job now; a running one pauses at its next check (or ends when its step returns)."""
        job.cancelled.set()
        with self._cond:
            if job in self._queue:
                self._queue.remove(job)
                self._update_least()
                self._finish(job, error=why)
            elif job.error is None and not job.done.is_set():
                job.error = why  # the worker keeps this reason when the step comes back

    # -- the worker -----------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            self._serve(job)

    def _next(self) -> Job | None:
        with self._cond:
            while not self._queue and not self._stopped:
                self._cond.wait()
            if self._stopped:
                return None
            job = min(self._queue, key=lambda j: (j.remaining(), j.deadline, j.arrived))
            self._queue.remove(job)
            self._update_least()
            self._running, self._running_since = job, time.monotonic()
            return job

    def _serve(self, job: Job) -> None:
        if job.expired():
            return self._done_running(job, error=DeadlinePassed(job.timeout_s, job.started))
        job.started = True
        began = time.monotonic()
        try:
            finished, value = job.step(lambda: self._should_pause(job))
        except BaseException as err:  # noqa: BLE001 - handed to the waiting request, never kills the worker
            return self._done_running(job, error=err, spent=time.monotonic() - began)
        spent = time.monotonic() - began
        if finished:
            return self._done_running(job, value=value, spent=spent)
        if job.cancelled.is_set() or job.expired():
            return self._done_running(job, error=job.error or DeadlinePassed(job.timeout_s, True), spent=spent)
        with self._cond:  # paused for a job that has had less: back in the queue
            job.service += spent
            self._running = None
            self._queue.append(job)
            self._update_least()

    def _should_pause(self, job: Job) -> bool:
        """Checked between tokens: stop for a cancel or the deadline, or make way for much shorter work."""
        if job.cancelled.is_set() or job.expired():
            return True
        least = self._least_waiting
        if least is None or time.monotonic() - self._running_since < self.quantum_s:
            return False
        return 2 * least <= job.remaining()

    def _done_running(self, job: Job, value: object = None, error: BaseException | None = None,
                      spent: float = 0.0) -> None:
        with self._cond:
            job.service += spent
            self._running = None
            if error is None and spent:
                self.cost.observe(job.size, job.service)
            self._finish(job, value, error)

    def _finish(self, job: Job, value: object = None, error: BaseException | None = None) -> None:
        if job.done.is_set():
            return
        job.value = value
        job.error = job.error if job.cancelled.is_set() and job.error is not None else error
        job.done.set()

    def _update_least(self) -> None:
        self._least_waiting = min((j.remaining() for j in self._queue), default=None)

    def _wait_s(self, size: float) -> float | None:
        """Estimated seconds before a job of ``size`` would finish: the work ahead of it (queued jobs no larger,
        the rest of the running one unless that would pause for it) plus its own, at the measured rate; None
        before anything was measured."""
        if not self.cost.ready:
            return None
        ahead = sum(self.cost.predict(j.remaining()) for j in self._queue if j.remaining() <= size)
        running = self._running.remaining() if self._running is not None else 0.0
        pauses = math.isfinite(self.quantum_s) and 2 * size <= running  # (pausable work only: an estimate)
        now = self.quantum_s if pauses else running * self.cost.per_unit
        return ahead + now + self.cost.predict(size)

    def _running_left_s(self) -> float:
        """Seconds until the running job ends and a place frees (1 s while nothing was measured)."""
        if self._running is None or not self.cost.ready:
            return 1.0
        return self._running.remaining() * self.cost.per_unit

    @staticmethod
    def _retry_after(seconds: float) -> int:
        return max(1, min(60, math.ceil(seconds)))


class CostModel:
    """Seconds a job takes as ``overhead + per_unit × size``, fitted by exponentially weighted least squares
    on finished jobs (recent ones count most). Until jobs of different sizes were seen, the overhead cannot be
    told apart and the whole time is put per unit (a cautious estimate for larger jobs)."""

    def __init__(self, decay: float = 0.9) -> None:
        self.decay = decay
        self.w = self.x = self.y = self.xx = self.xy = 0.0

    @property
    def ready(self) -> bool:
        return self.w > 0

    def observe(self, size: float, seconds: float) -> None:
        d = self.decay
        self.w, self.x, self.y = d * self.w + 1, d * self.x + size, d * self.y + seconds
        self.xx, self.xy = d * self.xx + size * size, d * self.xy + size * seconds

    def _fit(self) -> tuple[float, float]:
        mx, my = self.x / self.w, self.y / self.w
        var = self.xx / self.w - mx * mx
        if var <= 1e-9 * max(1.0, mx * mx):
            return 0.0, my / max(mx, 1e-9)
        slope = max(0.0, (self.xy / self.w - mx * my) / var)
        return max(0.0, my - slope * mx), slope

    @property
    def per_unit(self) -> float:
        return self._fit()[1]

    def predict(self, size: float) -> float:
        overhead, slope = self._fit()
        return overhead + slope * size
