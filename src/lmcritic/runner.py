"""Plan and execute a run: capabilities are checked before any work, every chunk of records is stored
as soon as it is scored, and ``resume`` picks up a killed run without recomputing finished work.

A run always ends with a status that tells the truth: ``done`` (every probe ran), ``partial`` (some
probes, stages or cases failed: each reason is printed and stored, and a resume retries them), ``failed``
(nothing ran), ``interrupted`` (budget spent, Ctrl-C, SIGTERM). It never stays ``running`` after its
process ends: every exit path marks it, and a store opened later marks runs whose process died.
One bad case does not throw away the others: a chunk that fails is split until the failing cases are
alone, and those are reported (``case_errors``) while the rest are scored.
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from lmcritic._progress import Bar
from lmcritic._scoring import Tally, backend_stats, case_order, check_unique, chunks, failure_reason, quality_findings
from lmcritic._signals import terminate_as_interrupt
from lmcritic.backends import load_model
from lmcritic.backends.base import Backend
from lmcritic.errors import BudgetExceeded, CapabilityError, ConfigError, DataError, StoreError
from lmcritic.probes import PROBES
from lmcritic.probes.base import Case, Probe
from lmcritic.spec import RunSpec, StageSpec

if TYPE_CHECKING:
    from lmcritic.sharding import Shards
    from lmcritic.store.cache import Ledger
    from lmcritic.store.runs import ProbeRunInfo

FATAL = (BudgetExceeded, KeyboardInterrupt, StoreError, CapabilityError)  # stop the probe (or run) at once


def lmcritic_home() -> Path:
    """Where the run store, the model cache and reports live (``$LMCRITIC_HOME``, default ~/.cache/lmcritic)."""
    return Path(os.environ.get("LMCRITIC_HOME") or Path.home() / ".cache" / "lmcritic").expanduser()


@dataclass(frozen=True)
class PlanItem:
    """A probe of the run and, if it cannot run on this model, why (decided before running anything)."""

    key: str
    name: str
    probe: Probe
    skip_reason: str | None


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    status: str  # done | partial | failed | interrupted
    message: str = ""
    errors: tuple[str, ...] = ()  # "KEY: reason" for each probe or stage that failed or had failing cases
    interrupted_by: str | None = None  # "budget" or "signal" (Ctrl-C, SIGTERM) when the status is interrupted


def make_plan(spec: RunSpec, model: Backend) -> list[PlanItem]:
    """Instantiate every probe and decide applicability from declared capabilities and languages alone."""
    items = []
    for p in spec.probes:
        probe = PROBES.get(p.name)(**p.config)
        items.append(PlanItem(p.key, p.name, probe, probe.not_applicable(model) or probe.language_mismatch()))
    return items


class Runner:
    """Runs specs against a run store and a call cache. Construct with config, call with a spec.

    ``create_store=False`` refuses a store path that does not exist yet; ``max_output_chars`` caps stored
    model text (default ``$LMCRITIC_MAX_OUTPUT_CHARS``, 100,000 characters).
    """

    def __init__(self, store_path: str | Path | None = None, cache_path: str | Path | None = None,
                 progress: bool = True, *, create_store: bool = True, max_output_chars: int | None = None) -> None:
        from lmcritic.store.runs import RunStore

        home = lmcritic_home()
        self.store = RunStore(store_path or home / "runs.sqlite", create=create_store,
                              max_output_chars=max_output_chars)
        if self.store.read_only:
            raise StoreError(f"run store {self.store.path} is read-only", "runs need a writable --store")
        self.cache_path = Path(cache_path) if cache_path else home / "cache.sqlite"
        self.progress = progress
        self.max_output_chars = max_output_chars
        self.shards: Shards | None = None  # the workers of the last sharded run (their pids, restarts)

    def run(self, spec: RunSpec, resume: str | None = None, model: Backend | None = None) -> RunOutcome:
        """Execute ``spec`` (or continue run ``resume``); returns how it ended. ``spec.parallel.workers > 1``
        runs the probes on that many workers at once (:mod:`lmcritic.sharding`)."""
        if spec.parallel.workers > 1:
            return self._run_sharded(spec, resume, model)
        t_load = time.perf_counter()
        inner = model or load_model(spec.model)
        load_s = None if model is not None else time.perf_counter() - t_load
        cached = self._wrap(inner, spec)
        run_id = self._open_run(spec, cached, resume)
        return self._guarded(run_id, lambda: self._execute(run_id, spec, cached, load_s))

    def _run_sharded(self, spec: RunSpec, resume: str | None, model: Backend | None) -> RunOutcome:
        from lmcritic.sharding import Shards

        if model is not None:
            raise ConfigError("a sharded run loads the model in each worker from the spec, so it cannot take a model "
                              "object", "pass the model in the spec, or run with parallel.workers = 1")
        t_load = time.perf_counter()
        with terminate_as_interrupt(), Shards(spec, self) as shards:
            load_s = time.perf_counter() - t_load
            run_id = self._open_run(spec, shards, resume)  # type: ignore[arg-type]  # fingerprint, describe
            self.shards = shards
            return self._guarded(run_id, lambda: self._execute_sharded(run_id, spec, shards, load_s))

    def _guarded(self, run_id: str, body: Callable[[], RunOutcome]) -> RunOutcome:
        """``body()``, with every way a run can stop recorded on the run (it must not stay ``running``)."""
        with terminate_as_interrupt():
            try:
                return body()
            except BudgetExceeded as err:
                return self._stop(run_id, "interrupted", f"{err.message}; finished work is stored: "
                                  f"continue with `lmcritic run --resume {run_id}` and a larger budget", "budget")
            except KeyboardInterrupt as err:
                why = str(err) or "interrupted"
                return self._stop(run_id, "interrupted", f"{why}; continue with `lmcritic run --resume {run_id}`",
                                  "signal")
            except BaseException as err:  # the run must not stay "running": mark it, then let the caller report
                self._mark_failed(run_id, err)
                raise

    def _execute(self, run_id: str, spec: RunSpec, model: Backend, load_s: float | None) -> RunOutcome:
        started = time.perf_counter()
        plan = make_plan(spec, model)
        self._profile: dict[str, dict[str, float]] = {}
        with Bar(self.progress) as bar:
            for item in plan:
                with self._measure(item.key, model):
                    self._run_item(run_id, item, model, bar)
            for stage in spec.stages:
                with self._measure(f"stage:{stage.name}", model):
                    self._run_stage(run_id, stage, spec, model, bar)
        return self._finish(run_id, started, load_s, backend_stats(model), self._profile)

    def _execute_sharded(self, run_id: str, spec: RunSpec, shards: Shards, load_s: float) -> RunOutcome:
        """The probes on the workers, in any order; then each stage (they read every probe's records)."""
        from lmcritic.sharding import Task

        started = time.perf_counter()
        self.store.plan_probes(run_id, [(p.key, p.name) for p in spec.probes])
        with Bar(self.progress) as bar:
            shards.run(run_id, [Task("probe", run_id, p.key) for p in spec.probes
                                if not self._finished(run_id, p.key)], bar)
            for stage in spec.stages:
                if not self._stage_finished(run_id, stage.name):
                    shards.run(run_id, [Task("stage", run_id, stage.name)], bar)
        workers = {"workers": spec.parallel.workers, "engine": spec.parallel.engine, "restarts": shards.restarts}
        return self._finish(run_id, started, load_s, shards.stats, shards.profile, parallel=workers)

    def _finish(self, run_id: str, started: float, load_s: float | None, cache: dict[str, Any],
                profile: dict[str, dict[str, float]], **extra: Any) -> RunOutcome:
        status, message, errors = self._verdict(run_id)
        timings = {"total_s": time.perf_counter() - started, "load_s": load_s, "cache": cache, "probes": profile,
                   **extra}
        self.store.finish_run(run_id, timings=timings, summary=self._summary(run_id), status=status,
                              error=message or None)
        return RunOutcome(run_id, status, message, errors)

    @contextmanager
    def _measure(self, key: str, model: Backend) -> Iterator[None]:
        """The model's share of one probe or stage: the call cache's counters before and after it (time inside
        the real backend, requests answered from the cache and sent to the model)."""
        before = backend_stats(model)
        try:
            yield
        finally:
            after = backend_stats(model)
            delta = {k: after[k] - before.get(k, 0) for k in ("elapsed_s", "hits", "misses", "queries")
                     if isinstance(after.get(k), (int, float))}
            if any(delta.values()):
                self._profile[key] = {"model_s" if k == "elapsed_s" else k: v for k, v in delta.items()}

    # -- steps ---------------------------------------------------------------------------------
    def _wrap(self, inner: Backend, spec: RunSpec, ledger: Ledger | None = None) -> Backend:
        from lmcritic.store.cache import Budget, CachedBackend

        budget = Budget(spec.budget.max_queries, spec.budget.max_tokens)
        return CachedBackend(inner, self.cache_path, budget=budget, max_output_chars=self.max_output_chars,
                             ledger=ledger)

    def _open_run(self, spec: RunSpec, model: Backend, resume: str | None) -> str:
        if resume is None:
            resolved = spec.resolved()
            return self.store.create_run(resolved.to_dict(), model.describe(), model.fingerprint(), spec.name)
        run_id = self.store.resolve(resume)
        info = self.store.get_run(run_id)
        if info.model_fingerprint != model.fingerprint():
            raise ConfigError(f"run {run_id} was made with another model (fingerprint differs)",
                              "resume with the same model, or start a new run")
        owner = self.store.running_elsewhere(run_id)
        if owner is not None:
            raise ConfigError(f"run {run_id} is still running (pid {owner.pid} on {owner.host})",
                              "wait for it to end, or stop that process first")
        self.store.set_status(run_id, "running")
        return run_id

    def _finished(self, run_id: str, key: str) -> bool:
        """Done or skipped earlier (a resumed run does not redo it; failed and partial ones are retried)."""
        return any(p.probe_key == key and p.status in ("done", "skipped") for p in self.store.probe_runs(run_id))

    def _stage_finished(self, run_id: str, stage: str) -> bool:
        return any(s.stage == stage and s.status == "done" for s in self.store.stage_runs(run_id))

    def _run_item(self, run_id: str, item: PlanItem, model: Backend, bar: Bar) -> None:
        if self._finished(run_id, item.key):
            return
        if item.skip_reason:
            self.store.skip_probe(run_id, item.key, item.name, item.skip_reason)
            bar.note(f"skip {item.key}: {item.skip_reason}")
            return
        try:
            self._score_all(run_id, item, model, bar)
        except (BudgetExceeded, KeyboardInterrupt, StoreError):
            raise
        except Exception as err:  # the probe failed as a whole: say why, store it, go on with the others
            reason = failure_reason(err, f"probe {item.key}")
            self.store.fail_probe(run_id, item.key, reason, item.name)
            bar.error(f"{item.key} failed: {reason}")

    def _run_stage(self, run_id: str, stage: StageSpec, spec: RunSpec, model: Backend, bar: Bar) -> None:
        """A stage's status lives in the store's stage table, so a resumed run skips it once done; the data rows
        it skipped become a finding under ``stage.NAME``."""
        from lmcritic.datasets import collect_issues
        from lmcritic.stages import StageContext, run_stage

        if self._stage_finished(run_id, stage.name):
            return
        self.store.start_stage(run_id, stage.name)
        bar.note(f"stage {stage.name} ...")
        try:
            with collect_issues() as issues:
                run_stage(stage.name, StageContext(self.store, run_id, model, spec), stage.config)
        except (BudgetExceeded, KeyboardInterrupt, StoreError):
            raise
        except Exception as err:
            reason = failure_reason(err, f"stage {stage.name}")
            self.store.fail_stage(run_id, stage.name, reason)
            bar.error(f"stage {stage.name} failed: {reason}")
            return
        quality = quality_findings(f"stage.{stage.name}", issues, [], 0, bar)
        if quality:
            self.store.add_findings(run_id, f"stage.{stage.name}", quality)
        self.store.finish_stage(run_id, stage.name)

    def _score_all(self, run_id: str, item: PlanItem, model: Backend, bar: Bar) -> None:
        from lmcritic.datasets import collect_issues

        with collect_issues() as issues:
            cases = list(item.probe.cases())
        if not cases and issues.issues:
            raise DataError(f"no usable data rows: {len(issues.issues)} skipped (first: {issues.issues[0]})")
        check_unique(cases, item.key)
        finished = self.store.done_case_ids(run_id, item.key)
        todo = [c for c in cases if c.id not in finished]
        self.store.start_probe(run_id, item.key, item.name, len(cases))
        t0 = time.perf_counter()
        tally, order = Tally(item.key), case_order(cases)
        with bar.task(item.key, total=len(cases), completed=len(cases) - len(todo)) as advance:
            for chunk in chunks(todo, item.probe.chunk_size):
                self._score_chunk(run_id, item, model, chunk, order, tally)
                advance(len(chunk))
        tally.check_any_scored(len(cases) - len(todo))
        findings = [replace(f, probe=item.key) for f in item.probe.summarize(self.store.records(run_id, item.key))]
        findings += quality_findings(item.key, issues, tally.errors, len(cases), bar)
        self.store.add_findings(run_id, item.key, findings)
        elapsed = time.perf_counter() - t0
        if tally.errors:
            self.store.partial_probe(run_id, item.key, tally.summary(len(cases)), elapsed_s=elapsed)
            bar.error(f"{item.key}: {tally.summary(len(cases))}")
        else:
            self.store.finish_probe(run_id, item.key, elapsed_s=elapsed)

    def _score_chunk(self, run_id: str, item: PlanItem, model: Backend, chunk: Sequence[Case],
                     order: dict[str, int], tally: "Tally") -> None:
        """Score and store ``chunk``; if it fails, split it until the failing cases are alone (each is then
        a case error) and score the rest. Results do not depend on chunking, so the split changes nothing."""
        try:
            records = item.probe.score(model, chunk)
        except FATAL:
            raise
        except Exception as err:
            if len(chunk) == 1:
                tally.error(chunk[0].id, failure_reason(err, f"probe {item.key}, case {chunk[0].id}"))
                return
            mid = len(chunk) // 2
            self._score_chunk(run_id, item, model, chunk[:mid], order, tally)
            self._score_chunk(run_id, item, model, chunk[mid:], order, tally)
            return
        self.store.add_records(run_id, item.key, records, order=order)
        tally.scored(len(chunk))

    def _verdict(self, run_id: str) -> tuple[str, str, tuple[str, ...]]:
        """``done``, ``partial`` or ``failed``, a one-line message, and each failure's reason."""
        probes = self.store.probe_runs(run_id)
        ran = [p for p in probes if p.status != "skipped"]
        bad = [p for p in ran if p.status in ("failed", "partial") or _unfinished(p)]
        # a failed stage writes no probe row: it left the run "done" (exit 0) with the diagnosis missing
        bad_stages = [s for s in self.store.stage_runs(run_id) if s.status == "failed"]
        errors = (*(f"{p.probe_key}: {p.reason}" for p in bad),
                  *(f"stage {s.stage}: {s.reason}" for s in bad_stages))
        if not ran:
            return "failed", f"no probe could run on this model ({len(probes)} skipped; see `lmcritic show " \
                             f"{run_id}` for why)", errors
        if all(p.status == "failed" or _unfinished(p) for p in ran):
            return "failed", f"every probe failed ({len(ran)}); the reasons are printed above", errors
        if bad or bad_stages:
            with_cases = sum(p.status == "partial" for p in bad)
            failed = len(bad) - with_cases + len(bad_stages)
            return "partial", (f"{failed} of {len(ran) + len(bad_stages)} probes/stages failed, {with_cases} with "
                               f"failing cases; the rest is stored: `lmcritic run --resume {run_id}` retries the "
                               "failed parts"), errors
        return "done", "", errors

    def _stop(self, run_id: str, status: str, message: str, by: str | None = None) -> RunOutcome:
        self.store.set_status(run_id, status, error=message)
        errors = tuple(f"{p.probe_key}: {p.reason}" for p in self.store.probe_runs(run_id)
                       if p.status in ("failed", "partial"))
        return RunOutcome(run_id, status, message, errors, by)

    def _mark_failed(self, run_id: str, err: BaseException) -> None:
        """Best effort (the store itself may be what failed)."""
        from lmcritic._crashlog import one_line

        try:
            self.store.set_status(run_id, "failed", error=f"stopped by an error: {one_line(err)}; finished work "
                                  f"is stored: `lmcritic run --resume {run_id}` continues it")
        except Exception:  # noqa: BLE001 - the original error is the one to report
            pass

    def _summary(self, run_id: str) -> dict[str, Any]:
        findings = self.store.findings(run_id)
        return {"n_findings": len(findings), "n_fail": sum(f.verdict.value == "fail" for f in findings),
                "probes": {p.probe_key: p.status for p in self.store.probe_runs(run_id)},
                "stages": {s.stage: s.status for s in self.store.stage_runs(run_id)}}


def run_spec(spec: RunSpec, **kwargs: Any) -> RunOutcome:
    """Convenience: ``run_spec(RunSpec.default())`` with the default store and cache."""
    resume = kwargs.pop("resume", None)
    model = kwargs.pop("model", None)
    return Runner(**kwargs).run(spec, resume=resume, model=model)


def _unfinished(p: ProbeRunInfo) -> bool:
    """A spec probe still pending or running when the run ends: no worker of a sharded run finished it."""
    return p.kind == "probe" and p.status in ("pending", "running")
