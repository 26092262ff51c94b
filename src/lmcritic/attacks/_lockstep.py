"""Attack several examples in lockstep: one backend call per round instead of one per example and step.

A query-efficient search (guided greedy: one candidate per query, first improvement wins) asks the model one
tiny question at a time, and each answer decides the next question, so one example's queries cannot be
batched. Different examples' can: here every example's attack runs unchanged in a thread of its own, each
model call it makes parks the thread, and once every unfinished example has parked, their requests go to the
model as ONE call per method; the answers are split back and the threads resume.

Only one thread runs at any moment (resumed one after another, in example order), so nothing the searches do
outside model calls (white-box gradient passes, similarity encoders, random generators) runs concurrently, and
the order of everything is fixed. Each example asks exactly the questions it asks alone, so queries, budgets
and results are those of the one-by-one loop; only how requests are grouped into backend calls changes (scores
can differ in the last float bits, as with any batch composition).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence, TypeVar

from lmcritic.backends.base import Backend
from lmcritic.requests import Capability

if TYPE_CHECKING:
    from lmcritic.backends.whitebox import WhiteBox

T = TypeVar("T")


@dataclass(eq=False)
class _Worker:
    job: Callable[[Backend], Any]
    go: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    pending: tuple[str, list[Any]] | None = None
    answer: list[Any] | None = None
    error: BaseException | None = None
    value: Any = None
    done: bool = False


class _Parked(Backend):
    """The backend one example sees: model calls park its thread until the round's merged call answers."""

    kind = "lockstep"

    def __init__(self, inner: Backend, worker: _Worker, parked: threading.Semaphore) -> None:
        self.inner, self._worker, self._parked = inner, worker, parked
        self.loaded_from = inner.loaded_from

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self.inner.capabilities

    def fingerprint(self) -> str:
        return self.inner.fingerprint()

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def white_box(self) -> WhiteBox:
        return self.inner.white_box()

    def __getattr__(self, name: str) -> Any:  # counters, tokenizers and the like of the wrapped backend
        return getattr(self.inner, name)

    def call(self, method: str, requests: Sequence[Any]) -> list[Any]:
        w = self._worker
        w.pending, w.answer, w.error = (method, list(requests)), None, None
        self._parked.release()
        w.go.acquire()
        err, w.error = w.error, None
        if err is not None:
            raise err
        return w.answer or []

    def loglikelihood(self, requests: Sequence[Any]) -> list[Any]:
        return self.call("loglikelihood", requests)

    def rolling_logprobs(self, requests: Sequence[Any]) -> list[Any]:
        return self.call("rolling_logprobs", requests)

    def generate(self, requests: Sequence[Any]) -> list[Any]:
        return self.call("generate", requests)

    def classify(self, requests: Sequence[Any]) -> list[Any]:
        return self.call("classify", requests)

    def pseudo_loglikelihood(self, requests: Sequence[Any]) -> list[Any]:
        return self.call("pseudo_loglikelihood", requests)

    def embed(self, requests: Sequence[Any]) -> list[Any]:
        return self.call("embed", requests)


def lockstep(model: Backend, jobs: Sequence[Callable[[Backend], T]]) -> list[T]:
    """``[job(model) for job in jobs]``, with the jobs' model calls merged round by round (see the module).

    An error inside a job is raised here after every job has finished (the first one, in job order), as the
    one-by-one loop would raise it; an error of a merged call reaches every job that had requests in it."""
    if len(jobs) < 2:
        return [job(model) for job in jobs]
    parked = threading.Semaphore(0)
    workers = [_Worker(job) for job in jobs]
    for w in workers:
        threading.Thread(target=_run, args=(w, _Parked(model, w, parked), parked), daemon=True,
                         name="lmcritic-lockstep").start()
    _resume(workers, parked)
    while True:
        waiting = [w for w in workers if w.pending is not None]
        if not waiting:
            break
        _answer(model, waiting)
        _resume(waiting, parked)
    for w in workers:
        if w.error is not None:
            raise w.error
    return [w.value for w in workers]


def _run(w: _Worker, model: _Parked, parked: threading.Semaphore) -> None:
    w.go.acquire()
    try:
        w.value = w.job(model)
    except BaseException as err:  # noqa: BLE001 - handed to the caller's thread, raised there
        w.error = err
    w.done = True
    parked.release()


def _resume(workers: Sequence[_Worker], parked: threading.Semaphore) -> None:
    """Let each worker run, one at a time, until it parks on a model call or finishes."""
    for w in workers:
        w.pending = None
        w.go.release()
        parked.acquire()


def _answer(model: Backend, waiting: Sequence[_Worker]) -> None:
    """One backend call per method for every parked worker's requests; answers (or the error) handed back."""
    by_method: dict[str, list[_Worker]] = {}
    for w in waiting:
        assert w.pending is not None
        by_method.setdefault(w.pending[0], []).append(w)
    for method, group in by_method.items():
        requests = [r for w in group for r in (w.pending[1] if w.pending else [])]
        try:
            out = model.call(method, requests)
        except Exception as err:  # noqa: BLE001 - every job that asked gets the error, as alone it would
            for w in group:
                w.error = err
            continue
        at = 0
        for w in group:
            k = len(w.pending[1]) if w.pending else 0
            w.answer, at = out[at : at + k], at + k


__all__ = ["lockstep"]
