"""The Ray engine of sharded scans (:mod:`lmcritic.sharding`): the workers as Ray actors, and the shared budget
as one actor. Imported only for ``parallel.engine: ray``."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from lmcritic.errors import LmcriticError
from lmcritic.sharding import Reply, Task, Worker, WorkerSetup

if TYPE_CHECKING:
    from lmcritic.spec import ParallelSpec
    from lmcritic.store.cache import Budget


class RayActors:
    """Workers as Ray actors (``num_cpus``/``num_gpus`` each); a dead actor is reported like a dead process."""

    def __init__(self, setup: WorkerSetup, capped: bool, parallel: ParallelSpec) -> None:
        from lmcritic.backends.ray import init_ray

        self.ray = init_ray(parallel.address, parallel.num_cpus * parallel.workers)
        self.setup = setup
        self.cls = self.ray.remote(num_cpus=parallel.num_cpus, num_gpus=parallel.num_gpus, max_restarts=0)(Worker)
        self.ledger = _RayLedger(self.ray.remote(num_cpus=0)(_LedgerActor).remote()) if capped else None
        self.actors: dict[int, Any] = {}
        self.refs: dict[int, Any] = {}

    def start(self, slot: int) -> None:
        self.actors[slot] = self.cls.remote(self.setup, self.ledger)
        self.refs[slot] = self.actors[slot].hello.remote()

    def send(self, slot: int, task: Task) -> None:
        self.refs[slot] = self.actors[slot].handle.remote(task)

    def poll(self, slots: set[int], timeout: float) -> list[tuple[int, Reply]]:
        refs = {self.refs[s]: s for s in slots if s in self.refs}
        if not refs:
            return []
        ready, _ = self.ray.wait(list(refs), num_returns=1, timeout=timeout)
        out = []
        for ref in ready:
            slot = refs[ref]
            del self.refs[slot]
            out.append((slot, self._get(slot, ref)))
        return out

    def _get(self, slot: int, ref: Any) -> Reply:
        from ray.exceptions import RayActorError, RayTaskError

        try:
            reply: Reply = self.ray.get(ref)
            return reply
        except RayActorError as err:
            self.ray.kill(self.actors[slot], no_restart=True)
            return Reply("died", message=(str(err).splitlines() or ["actor died"])[0][:200])
        except RayTaskError as err:  # the actor's constructor failed (e.g. the model does not load)
            cause = getattr(err, "cause", None)
            return Reply("broken", message=str(cause) if isinstance(cause, LmcriticError) else str(err)[:300])

    def stop_all(self) -> None:
        for actor in self.actors.values():
            self.ray.kill(actor, no_restart=True)
        self.actors, self.refs = {}, {}


class _LedgerActor:
    """The shared budget of Ray workers: one actor, so bookings are serialized."""

    def __init__(self) -> None:
        self.queries = self.tokens = 0

    def reserve(self, budget: Budget, tokens: list[int]) -> int:
        n = budget.take(self.queries, self.tokens, tokens)
        self.queries, self.tokens = self.queries + n, self.tokens + sum(tokens[:n])
        return n

    def spent(self) -> tuple[int, int]:
        return self.queries, self.tokens


class _RayLedger:
    """What a Ray worker's cache books its spending on (a handle to the ledger actor)."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    def reserve(self, budget: Budget, tokens: Sequence[int]) -> int:
        import ray

        return int(ray.get(self.actor.reserve.remote(budget, list(tokens))))

    def spent(self) -> tuple[int, int]:
        import ray

        queries, tokens = ray.get(self.actor.spent.remote())
        return int(queries), int(tokens)
