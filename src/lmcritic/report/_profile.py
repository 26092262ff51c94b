"""Where a run's time went: per probe and stage, wall seconds, seconds inside the model, and the rest.

The runner stores each probe's and stage's wall time (``probe_runs.elapsed_s``) and, in the run's timings,
the call cache's counters around each of them (time inside the real backend, cache hits, requests sent).
The difference between a probe's wall time and its model time is everything else: building cases, scorers
(toxicity classifiers, perturbations, sentence encoders), statistics and storage.
"""
from __future__ import annotations

from typing import Any, Sequence


def run_profile(info: dict[str, Any], probe_rows: list[dict[str, Any]],
                stage_rows: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """{"rows": slowest first, "total_s", "load_s", "model_s", "other_s", "model_share"} of a stored run; a
    stage's row is keyed ``stage:<name>``, as the runner keys its measurement."""
    timings = info.get("timings") or {}
    measured = timings.get("probes") or {}
    planned = {p.get("key") or p.get("name") for p in (info.get("spec") or {}).get("probes") or []}
    total = _num(timings.get("total_s"))
    stages = [{**s, "probe_key": f"stage:{s['stage']}"} for s in stage_rows]
    rows = [_row(p, measured.get(p["probe_key"]) or {}, total) for p in [*probe_rows, *stages]
            if p.get("elapsed_s") is not None and (p["probe_key"] in planned or p["probe_key"].startswith("stage:"))]
    rows.sort(key=lambda r: -r["seconds"])
    model = _num((timings.get("cache") or {}).get("elapsed_s"))
    return {"rows": rows, "total_s": total, "load_s": _num(timings.get("load_s")), "model_s": model,
            "other_s": total - model if total is not None and model is not None else None,
            "model_share": model / total if total and model is not None else None}


def _row(p: dict[str, Any], m: dict[str, Any], total: float | None) -> dict[str, Any]:
    secs, model = float(p["elapsed_s"]), _num(m.get("model_s"))
    return {"key": p["probe_key"], "kind": "stage" if p["probe_key"].startswith("stage:") else "probe",
            "status": p.get("status"), "seconds": secs, "model_s": model,
            "other_s": max(0.0, secs - model) if model is not None else None,
            "share": secs / total if total else None, "hits": m.get("hits"), "sent": m.get("queries")}


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def fmt_s(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def fmt_share(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def summary_line(prof: dict[str, Any]) -> str:
    """One sentence: total, model time and its share, the rest, loading."""
    if prof["total_s"] is None:
        return "no timings stored (the run did not finish)"
    load = f"; model loading {fmt_s(prof['load_s'])} s before that" if prof["load_s"] is not None else ""
    return (f"{fmt_s(prof['total_s'])} s in probes and stages: {fmt_s(prof['model_s'])} s inside the model "
            f"({fmt_share(prof['model_share'])}), {fmt_s(prof['other_s'])} s outside it (cases, scorers, "
            f"statistics, storage){load}")


HEADERS = ("probe / stage", "seconds", "share", "model s", "other s", "sent", "cached")


def table_rows(prof: dict[str, Any]) -> list[tuple[str, ...]]:
    """The profile's rows as text cells, in :data:`HEADERS` order."""
    return [(r["key"], fmt_s(r["seconds"]), fmt_share(r["share"]), fmt_s(r["model_s"]), fmt_s(r["other_s"]),
             "" if r["sent"] is None else str(r["sent"]), "" if r["hits"] is None else str(r["hits"]))
            for r in prof["rows"]]
