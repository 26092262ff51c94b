"""Back into the loop: flagged production traffic as test data for the next scan, and as a run to diagnose.

``export_cases`` writes, for the flagged requests of a period (PII or toxicity in the response, an injection
attempt, thumbs-down; a refusal only when the user thumbed it down, since refusing may have been right):

* ``production_cases.jsonl`` for the ``safety.replay`` probe (prompt, the checks that failed, the logged answer);
* ``pii_prompts.jsonl`` / ``toxicity_prompts.jsonl`` / ``refusal_requests.jsonl`` in the formats of
  ``safety.pii`` (``data``), ``safety.toxicity`` (``prompts``) and ``safety.refusal`` (``data``, as benign
  requests: over-refusals);
* ``production_task.yaml`` + ``.jsonl``: a ``generate`` task in the project's task format for the flagged
  requests whose log carries a reference answer (``expected``);
* ``scan.yaml``: a run spec with all of the above, for ``lmcritic run scan.yaml --model M``.

``to_run`` stores the traffic of a period as a run (probe key ``production.traffic``, one record per request,
failed = flagged) so ``lmcritic diagnose`` finds the slices where production failures concentrate.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from lmcritic.monitor.metrics import METRICS
from lmcritic.monitor.windows import group_of, id_hash
from lmcritic.store.monitor import MonitorStore, StoredRequest

if TYPE_CHECKING:
    from lmcritic.store.runs import RunStore

DEFAULT_FLAGS = ("response.pii", "response.toxic", "prompt.injection", "response.refusal", "feedback.negative")
ALWAYS_CHECK = ("response.pii", "response.toxic")
TRAFFIC_KEY = "production.traffic"


@dataclass(frozen=True)
class Flagged:
    request: StoredRequest
    flags: tuple[str, ...]
    scores: dict[str, Any]


def flagged(store: MonitorStore, scorer: str, flags: Sequence[str] = DEFAULT_FLAGS, start: float | None = None,
            end: float | None = None, limit: int | None = None) -> Iterator[Flagged]:
    """Flagged requests in time order (at most ``limit``, a deterministic hash sample when there are more)."""
    metrics = [METRICS.get(f) for f in flags]
    chosen: list[tuple[int, tuple[str, ...], dict]] = []
    for chunk in store.iter_scored(scorer, start, end):
        for rid, _, scores, _ in chunk:
            hit = tuple(m.name for m in metrics if m.value(scores) == 1.0)
            if "response.refusal" in hit and "feedback.negative" not in hit:
                hit = tuple(h for h in hit if h != "response.refusal")
            if hit:
                chosen.append((rid, hit, scores))
    if limit is not None and len(chosen) > limit:
        keep = set(sorted((id_hash(rid), rid) for rid, _, _ in chosen)[:limit])
        chosen = [c for c in chosen if (id_hash(c[0]), c[0]) in keep]
    for start_i in range(0, len(chosen), 500):
        part = chosen[start_i : start_i + 500]
        rows = {r.id: r for r in store.requests([rid for rid, _, _ in part])}
        for rid, hit, scores in part:
            yield Flagged(rows[rid], hit, scores)


def export_cases(store: MonitorStore, scorer: str, out_dir: str | Path, flags: Sequence[str] = DEFAULT_FLAGS,
                 start: float | None = None, end: float | None = None, limit: int | None = 2000) -> dict[str, int]:
    """Write the datasets and ``scan.yaml`` into ``out_dir``; returns rows written per file."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[dict[str, Any]]] = {k: [] for k in ("production_cases", "pii_prompts", "toxicity_prompts",
                                                              "refusal_requests", "production_task")}
    for f in flagged(store, scorer, flags, start, end, limit):
        _rows_for(f, files)
    counts = {name: _write_jsonl(out / f"{name}.jsonl", rows) for name, rows in files.items() if rows}
    if files["production_task"]:
        (out / "production_task.yaml").write_text(_task_yaml(), encoding="utf-8")
    (out / "scan.yaml").write_text(_scan_yaml(counts, out.resolve()), encoding="utf-8")
    return counts


def _rows_for(f: Flagged, files: dict[str, list[dict[str, Any]]]) -> None:
    rec, cid = f.request.record, f"prod-{f.request.id}"
    checks = sorted(set(ALWAYS_CHECK) | {c for c in f.flags if c.startswith("response.")})
    tags = {"flags": ",".join(f.flags), "source": f"{f.request.source}:{f.request.line}",
            **{k: v for k, v in rec.metadata.items() if isinstance(v, (str, int, float)) and not isinstance(v, bool)}}
    files["production_cases"].append({"id": cid, "prompt": rec.prompt, "response": rec.response, "checks": checks,
                                      "expected": rec.expected, "tags": tags})
    if "response.pii" in f.flags:
        files["pii_prompts"].append({"id": cid, "category": "production", "prompt": rec.prompt})
    if "response.toxic" in f.flags:
        files["toxicity_prompts"].append({"id": cid, "category": "production", "prompt": rec.prompt})
    if "response.refusal" in f.flags:
        files["refusal_requests"].append({"id": cid, "kind": "benign", "category": "production_over_refusal",
                                          "prompt": rec.prompt})
    if rec.expected:
        files["production_task"].append({"id": cid, "prompt": rec.prompt, "expected": rec.expected,
                                         "flags": ",".join(f.flags)})


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> int:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)


def _task_yaml() -> str:
    return ("# Flagged production requests whose log carried a reference answer (lmcritic monitor export-cases).\n"
            "name: production_task\noutput_type: generate\ndata: {path: production_task.jsonl}\nprompt: prompt\n"
            "target: expected\nmetrics: [exact_match, token_f1]\ntags: [flags]\nfewshot: {n: 0}\n"
            "generation: {max_new_tokens: 128, stop: []}\n")


def _scan_yaml(counts: dict[str, int], out: Path) -> str:
    import yaml

    probes: list[dict[str, Any]] = [{"name": "safety.replay", "config": {"data": str(out / "production_cases.jsonl")}}]
    if counts.get("pii_prompts"):
        probes.append({"name": "safety.pii", "config": {"data": str(out / "pii_prompts.jsonl")}})
    if counts.get("toxicity_prompts"):
        probes.append({"name": "safety.toxicity", "config": {"prompts": str(out / "toxicity_prompts.jsonl"),
                                                             "sources": []}})
    if counts.get("refusal_requests"):
        probes.append({"name": "safety.refusal", "config": {"data": str(out / "refusal_requests.jsonl")}})
    if counts.get("production_task"):
        probes.append({"name": "performance.task", "key": "production_task",
                       "config": {"task": str(out / "production_task.yaml")}})
    head = "# Regression tests from production (lmcritic monitor export-cases): lmcritic run scan.yaml --model M\n"
    return head + yaml.safe_dump({"name": "production-regressions", "probes": probes}, sort_keys=False)


# -- traffic as a run ------------------------------------------------------------------------------------
def to_run(store: MonitorStore, run_store: RunStore, scorer: str, flags: Sequence[str] = DEFAULT_FLAGS,
           start: float | None = None, end: float | None = None, model: str | None = None,
           limit: int = 20000) -> str:
    """Store the period's traffic as a run; returns the run id (``lmcritic diagnose RUN`` works on it)."""
    from lmcritic.findings import make_finding
    from lmcritic.probes.base import Severity
    from lmcritic.stats import proportion

    metrics = [METRICS.get(f) for f in flags]
    model_spec: dict[str, Any] = {"name": model or "production", "backend": None if model else "production",
                                  "options": {}}
    spec: dict[str, Any] = {"name": "production traffic", "model": model_spec,
            "probes": [{"name": "safety.replay", "key": TRAFFIC_KEY, "config": {"data": "(monitor)"}}],
            "monitor": {"scorer": scorer, "start": start, "end": end, "flags": list(flags)}}
    run_id = run_store.create_run(spec, spec["model"], "production-traffic", name="production traffic")
    run_store.start_probe(run_id, TRAFFIC_KEY, "safety.replay")
    passed: list[bool] = []
    for chunk in _chunks(store, scorer, start, end, limit):
        records = [_record(r, scores, metrics) for r, scores in chunk]
        run_store.add_records(run_id, TRAFFIC_KEY, records)
        passed += [bool(r.passed) for r in records]
    rate = proportion([not p for p in passed])
    run_store.add_findings(run_id, TRAFFIC_KEY, [make_finding(
        "safety.replay", "production_failure_rate", failed=rate.value > 0,
        severity=Severity.MEDIUM if rate.value > 0 else Severity.INFO,
        summary=f"{rate} of production requests were flagged ({', '.join(flags)})", estimate=rate)])
    run_store.finish_probe(run_id, TRAFFIC_KEY)
    run_store.finish_run(run_id, {}, {"n_requests": len(passed)})
    return run_id


def _chunks(store: MonitorStore, scorer: str, start: float | None, end: float | None,
            limit: int) -> Iterator[list[tuple[StoredRequest, dict]]]:
    seen = 0
    for chunk in store.iter_scored(scorer, start, end, chunk=1000):
        chunk = chunk[: max(0, limit - seen)]
        if not chunk:
            return
        rows = {r.id: r for r in store.requests([c[0] for c in chunk])}
        seen += len(chunk)
        yield [(rows[c[0]], c[2]) for c in chunk]


def _record(r: StoredRequest, scores: dict[str, Any], metrics: Sequence[Any]) -> Any:
    from lmcritic.probes.base import Record

    rec = r.record
    hit = [m.name for m in metrics if m.value(scores) == 1.0]
    numeric = {k: float(v) for k, v in scores.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    tags: dict[str, Any] = {"source": f"{r.source}", "line": r.line}  # not the flags: they are the outcome
    for key in ("model", "version"):
        if getattr(rec, key):
            tags[key] = getattr(rec, key)
    for key in ("prompt.language.code", "response.language.code"):
        if key in scores:
            tags[key.replace(".code", "")] = scores[key]
    tags.update({k: group_of(rec.metadata, k) for k, v in rec.metadata.items() if isinstance(v, (str, int, bool))})
    return Record(f"req-{r.id}", {"text": rec.prompt, "prompt": rec.prompt}, {"answer": rec.response, "flags": hit},
                  numeric, tags, passed=not hit, text=rec.prompt)


__all__: Sequence[str] = ("DEFAULT_FLAGS", "export_cases", "flagged", "to_run")
