"""Plan and execute a run: capabilities are checked before any work, every chunk of records is stored
as soon as it is scored, and ``resume`` picks up a killed run without recomputing finished work."""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator, Sequence

from lmcritic.backends import load_model
from lmcritic.backends.base import Backend
from lmcritic.errors import BudgetExceeded, ConfigError, LmcriticError
from lmcritic.probes import PROBES
from lmcritic.probes.base import Case, Probe
from lmcritic.spec import RunSpec


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
    status: str  # done | interrupted | failed
    message: str = ""


def make_plan(spec: RunSpec, model: Backend) -> list[PlanItem]:
    """Instantiate every probe and decide applicability from declared capabilities alone."""
    items = []
    for p in spec.probes:
        probe = PROBES.get(p.name)(**p.config)
        items.append(PlanItem(p.key, p.name, probe, probe.not_applicable(model)))
    return items


class Runner:
    """Runs specs against a run store and a call cache. Construct with config, call with a spec."""

    def __init__(self, store_path: str | Path | None = None, cache_path: str | Path | None = None,
                 progress: bool = True) -> None:
        from lmcritic.store.runs import RunStore

        home = lmcritic_home()
        self.store = RunStore(store_path or home / "runs.sqlite")
        self.cache_path = Path(cache_path) if cache_path else home / "cache.sqlite"
        self.progress = progress

    def run(self, spec: RunSpec, resume: str | None = None, model: Backend | None = None) -> RunOutcome:
        """Execute ``spec`` (or continue run ``resume``); returns how it ended."""
        inner = model or load_model(spec.model)
        cached = self._wrap(inner, spec)
        run_id = self._open_run(spec, cached, resume)
        plan = make_plan(spec, cached)
        started = time.perf_counter()
        try:
            with self._progress() as bar:
                for item in plan:
                    self._run_item(run_id, item, cached, bar)
                for stage in spec.stages:
                    self._run_stage(run_id, stage, spec, cached, bar)
        except BudgetExceeded as err:
            return self._stop(run_id, "interrupted", f"{err.message}; finished work is stored: "
                              f"continue with `lmcritic run --resume {run_id}` and a larger budget")
        except KeyboardInterrupt:
            return self._stop(run_id, "interrupted", f"interrupted; continue with `lmcritic run --resume {run_id}`")
        timings = {"total_s": time.perf_counter() - started, "cache": _stats(cached)}
        self.store.finish_run(run_id, timings=timings, summary=self._summary(run_id))
        return RunOutcome(run_id, "done")

    # -- steps ---------------------------------------------------------------------------------
    def _wrap(self, inner: Backend, spec: RunSpec) -> Backend:
        from lmcritic.store.cache import Budget, CachedBackend

        budget = Budget(spec.budget.max_queries, spec.budget.max_tokens)
        return CachedBackend(inner, self.cache_path, budget=budget)

    def _open_run(self, spec: RunSpec, model: Backend, resume: str | None) -> str:
        if resume is None:
            resolved = spec.resolved()
            return self.store.create_run(resolved.to_dict(), model.describe(), model.fingerprint(), spec.name)
        run_id = self.store.resolve(resume)
        info = self.store.get_run(run_id)
        if info.model_fingerprint != model.fingerprint():
            raise ConfigError(f"run {run_id} was made with another model (fingerprint differs)",
                              "resume with the same model, or start a new run")
        self.store.set_status(run_id, "running")
        return run_id

    def _finished(self, run_id: str, key: str) -> bool:
        """Done or skipped earlier (a resumed run does not redo it)."""
        return any(p.probe_key == key and p.status in ("done", "skipped") for p in self.store.probe_runs(run_id))

    def _run_item(self, run_id: str, item: PlanItem, model: Backend, bar: "_Bar") -> None:
        if self._finished(run_id, item.key):
            return
        if item.skip_reason:
            self.store.skip_probe(run_id, item.key, item.name, item.skip_reason)
            bar.note(f"skip {item.key}: {item.skip_reason}")
            return
        try:
            self._score_all(run_id, item, model, bar)
        except (BudgetExceeded, KeyboardInterrupt):
            raise
        except LmcriticError as err:
            self.store.fail_probe(run_id, item.key, str(err))
            bar.note(f"failed {item.key}: {err}")

    def _run_stage(self, run_id: str, stage: Any, spec: RunSpec, model: Backend, bar: "_Bar") -> None:
        """A stage is stored like a probe (key ``stage:NAME``) so a resumed run skips it once done."""
        from lmcritic.stages import StageContext, run_stage

        key = f"stage:{stage.name}"
        if self._finished(run_id, key):
            return
        self.store.start_probe(run_id, key, stage.name)
        bar.note(f"stage {stage.name} ...")
        try:
            run_stage(stage.name, StageContext(self.store, run_id, model, spec), stage.config)
        except (BudgetExceeded, KeyboardInterrupt):
            raise
        except LmcriticError as err:
            self.store.fail_probe(run_id, key, str(err))
            bar.note(f"failed {key}: {err}")
            return
        self.store.finish_probe(run_id, key)

    def _score_all(self, run_id: str, item: PlanItem, model: Backend, bar: "_Bar") -> None:
        cases = list(item.probe.cases())
        _check_unique(cases, item.key)
        finished = self.store.done_case_ids(run_id, item.key)
        todo = [c for c in cases if c.id not in finished]
        self.store.start_probe(run_id, item.key, item.name, len(cases))
        t0 = time.perf_counter()
        with bar.task(item.key, total=len(cases), completed=len(cases) - len(todo)) as advance:
            for chunk in _chunks(todo, item.probe.chunk_size):
                self.store.add_records(run_id, item.key, item.probe.score(model, chunk), order=_order(cases))
                advance(len(chunk))
        findings = item.probe.summarize(self.store.records(run_id, item.key))
        self.store.add_findings(run_id, item.key, [replace(f, probe=item.key) for f in findings])
        self.store.finish_probe(run_id, item.key, elapsed_s=time.perf_counter() - t0)

    def _stop(self, run_id: str, status: str, message: str) -> RunOutcome:
        self.store.set_status(run_id, status, error=message)
        return RunOutcome(run_id, status, message)

    def _summary(self, run_id: str) -> dict:
        findings = self.store.findings(run_id)
        return {"n_findings": len(findings), "n_fail": sum(f.verdict.value == "fail" for f in findings),
                "probes": {p.probe_key: p.status for p in self.store.probe_runs(run_id)}}

    @contextmanager
    def _progress(self) -> Iterator["_Bar"]:
        bar = _Bar(self.progress)
        with bar:
            yield bar


def run_spec(spec: RunSpec, **kwargs) -> RunOutcome:
    """Convenience: ``run_spec(RunSpec.default())`` with the default store and cache."""
    resume = kwargs.pop("resume", None)
    model = kwargs.pop("model", None)
    return Runner(**kwargs).run(spec, resume=resume, model=model)


class _Bar:
    """rich progress bars with ETA, one per probe (silent when disabled)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress = None

    def __enter__(self) -> "_Bar":
        if self.enabled:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self._progress = Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                      console=Console(stderr=True))
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    @contextmanager
    def task(self, name: str, total: int, completed: int) -> Iterator:
        if self._progress is None:
            yield lambda n: None
            return
        tid = self._progress.add_task(name, total=total, completed=completed)
        yield lambda n: self._progress.advance(tid, n)

    def note(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(f"[dim]{_escape(text)}[/dim]")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _chunks(items: Sequence[Case], size: int) -> Iterator[Sequence[Case]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _order(cases: Sequence[Case]) -> dict[str, int]:
    return {c.id: i for i, c in enumerate(cases)}


def _check_unique(cases: Sequence[Case], key: str) -> None:
    ids = [c.id for c in cases]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"probe {key} produced duplicate case ids", "case ids must be unique within a probe")


def _stats(model: Backend) -> dict:
    from lmcritic._serde import to_jsonable

    return to_jsonable(getattr(model, "stats", None)) or {}
