"""Conversions between the run store's SQLite rows and the typed runs, records and findings (and back)."""
from __future__ import annotations

import functools
import typing
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from lmcritic._serde import from_jsonable
from lmcritic.errors import LmcriticError
from lmcritic.findings import canonical_name
from lmcritic.probes.base import Finding, Record
from lmcritic.store import _compat, _sqlite
from lmcritic.store._sqlite import dumps, loads, safe_text

if TYPE_CHECKING:
    from lmcritic.store.runs import RunStore


@dataclass(frozen=True)
class RunInfo:
    """One run as stored: its resolved spec (replayable), the model and versions it ran with, and outcome."""

    id: str
    name: str | None
    created: float
    finished: float | None
    status: str
    spec: dict[str, Any]
    model: dict[str, Any]
    model_fingerprint: str
    versions: dict[str, str]
    timings: dict[str, Any] | None
    summary: dict[str, Any] | None
    error: str | None


@dataclass(frozen=True)
class ProbeRunInfo:
    """One probe of a run (``kind="probe"``), or the records and findings a stage wrote (``kind="stage"``):
    its status, why it was skipped or failed, and how long it took."""

    run_id: str
    probe_key: str
    probe_name: str
    status: str
    reason: str | None
    started: float | None
    finished: float | None
    elapsed_s: float | None
    n_cases: int | None
    kind: str = "probe"


@dataclass(frozen=True)
class StageRunInfo:
    """One stage of a run (``interpret.explain``, ``diagnose``): its status, why it failed, how long it took."""

    run_id: str
    stage: str
    status: str
    reason: str | None
    started: float | None
    finished: float | None
    elapsed_s: float | None


RUN_COLUMNS = ("id, name, created, finished, status, spec_json, model_json, model_fingerprint, versions_json, "
                "timings_json, summary_json, error")
UPSERT_CASE = """INSERT INTO cases (run_id, probe_key, case_id, seq, input_json, output_json, scores_json, tags_json,
    passed, created, fields_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (run_id, probe_key, case_id) DO UPDATE SET seq = excluded.seq, input_json = excluded.input_json,
    output_json = excluded.output_json, scores_json = excluded.scores_json, tags_json = excluded.tags_json,
    passed = excluded.passed, created = excluded.created, fields_json = excluded.fields_json"""
RECORD_FIELDS = ("text", "target", "prediction", "label_probs", "group", "explain", "explain_variant")


def run_info(row: tuple[Any, ...]) -> RunInfo:
    rid, name, created, finished, status, spec, model, fp, versions, timings, summary, error = row
    return RunInfo(rid, name, created, finished, status, loads(spec), loads(model), fp, loads(versions),
                   loads(timings), loads(summary), error)


def case_row(run_id: str, probe_key: str, r: Record, seq: int, now: float) -> tuple[Any, ...]:
    passed = None if r.passed is None else int(bool(r.passed))
    fields = {k: getattr(r, k) for k in RECORD_FIELDS if getattr(r, k) is not None}
    return (run_id, probe_key, r.case_id, seq, dumps(r.input), dumps(r.output), dumps(r.scores), dumps(r.tags),
            passed, now, dumps(fields))


def safe_record(r: Record, max_chars: int) -> Record:
    """A case id SQLite can take (ids with lone surrogates get U+FFFD; their JSON columns are escaped), and
    output texts over ``max_chars`` cut with a marker (a 10 MB answer must not become 10 MB per copy)."""
    safe = safe_text(r.case_id) or ""
    output = _sqlite.cap_strings(r.output, max_chars)
    return r if safe == r.case_id and output is r.output else replace(r, case_id=safe, output=output)


def record_of(row: tuple[Any, ...], legacy: "LegacyContext | None") -> Record:
    case_id, inp, out, scores, tags, passed, fields, probe_key = row
    inp, out, tags = loads(inp), loads(out), loads(tags)
    if fields is None and legacy is not None:  # stored before the typed fields existed
        typed = legacy.fields(probe_key, inp, out, tags)
    else:
        hints = _field_types()
        typed = {k: from_jsonable(hints[k], v) for k, v in (loads(fields) or {}).items()}
    return Record(case_id=case_id, input=inp, output=out, scores=from_jsonable(dict[str, float], loads(scores)),
                  tags=tags, passed=None if passed is None else bool(passed), **typed)


@functools.cache
def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(Record)


class LegacyContext:
    """What :func:`_compat.legacy_fields` needs about a run's probes (their configs and declared labels), read
    once per :meth:`RunStore.records` call and only when old rows are present."""

    def __init__(self, store: RunStore, run_id: str) -> None:
        spec = store.get_run(run_id).spec or {}
        self.configs = {p.get("key") or p.get("name"): p.get("config") or {} for p in spec.get("probes") or []}
        self.names = {p.probe_key: p.probe_name for p in store.probe_runs(run_id)}

        self._labels: dict[str, tuple[str, ...] | None] = {}

    def fields(self, probe_key: str, inp: Any, out: Any, tags: Any) -> dict[str, Any]:
        return _compat.legacy_fields(inp, out, tags, self.configs.get(probe_key), lambda: self.labels(probe_key))

    def labels(self, probe_key: str) -> tuple[str, ...] | None:
        """The label set the probe declares (built from its stored config), or None if it cannot be built."""
        if probe_key not in self._labels:
            from lmcritic.probes import PROBES

            try:
                probe = PROBES.get(self.names.get(probe_key, probe_key))(**self.configs.get(probe_key, {}))
                self._labels[probe_key] = probe.labels()
            except (LmcriticError, TypeError, ValueError):
                self._labels[probe_key] = None
        return self._labels[probe_key]


def finding_of(row: tuple[Any, ...]) -> Finding:
    probe, name, verdict, severity, summary, estimate, evidence, details = row
    data = {"probe": probe, "name": canonical_name(name), "verdict": verdict, "severity": severity, "summary": summary,
            "estimate": loads(estimate), "evidence": loads(evidence), "details": _compat.legacy_details(loads(details))}
    finding: Finding = from_jsonable(Finding, data)
    return finding


def tag_value(value: object) -> Any:
    """Scalars as SQL values (so ``value = 'female'`` or ``value > 3`` works); anything else as JSON text."""
    if value is None or isinstance(value, (int, float)):
        return int(value) if isinstance(value, bool) else value
    if isinstance(value, str):
        return safe_text(value)
    return dumps(value)
