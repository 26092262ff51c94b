"""RunStore: ids and references, records and findings round-trip in order, status transitions, tag joins."""
from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from lmcritic.errors import ConfigError, LmcriticError, UnknownNameError
from lmcritic.probes.base import Estimate, Finding, Record, Severity, Verdict
from lmcritic.store import _sqlite
from lmcritic.store.runs import MIGRATIONS, SCHEMA_VERSION, RunStore

SPEC = {"model": {"name": "tiny"}, "probes": [{"name": "performance.sst2", "config": {"n": 3}}]}
MODEL = {"backend": "counting", "name": "tiny"}


def _store(tmp_path) -> RunStore:
    return RunStore(tmp_path / "deep" / "er" / "runs.sqlite")


def _records(n: int, start: int = 0) -> list[Record]:
    return [Record(case_id=f"c{i}", input={"text": f"input {i}", "n": [i, i + 1]}, output={"label": "pos"},
                   scores={"correct": float(i % 2), "logprob": -1.5 * i}, tags={"group": "ab"[i % 2], "line": i},
                   passed=bool(i % 2) if i % 3 else None)
            for i in range(start, start + n)]


def test_create_and_resolve_references(tmp_path) -> None:
    store = _store(tmp_path)
    with pytest.raises(UnknownNameError, match="no runs stored yet"):
        store.resolve("latest")
    ids = [store.create_run(SPEC, MODEL, "fp", name=f"run {i}") for i in range(3)]
    assert len(set(ids)) == 3 and all(len(i) == 20 and i[8] == "-" and i[15] == "-" for i in ids)
    assert [store.resolve(r) for r in ("latest", "latest~0", "latest~1", "latest~2")] == ids[::-1][:1] + ids[::-1]
    for run_id in ids:
        assert store.resolve(run_id) == run_id
        others = [o for o in ids if o != run_id]
        n = next(k for k in range(1, 21) if not any(o.startswith(run_id[:k]) for o in others))
        assert store.resolve(run_id[:n]) == run_id
    with pytest.raises(UnknownNameError, match="ambiguous"):
        store.resolve(ids[0][:4])
    with pytest.raises(UnknownNameError) as err:
        store.resolve("no-such-run")
    assert "no-such-run" in str(err.value) and all(i in str(err.value) for i in ids)
    with pytest.raises(UnknownNameError, match="3 run"):
        store.resolve("latest~3")
    with pytest.raises(ConfigError):
        store.resolve("latest~x")
    assert isinstance(err.value, LmcriticError)


def test_run_info_and_lifecycle(tmp_path) -> None:
    store = _store(tmp_path)
    run_id = store.create_run(SPEC, MODEL, "fp123", name="demo")
    info = store.get_run("latest")
    assert (info.id, info.name, info.status, info.spec, info.model) == (run_id, "demo", "running", SPEC, MODEL)
    assert info.model_fingerprint == "fp123" and info.finished is None and info.timings is None
    assert info.versions["python"] == sys.version.split()[0] and "lmcritic" in info.versions
    store.set_status(run_id, "interrupted", error="budget spent \ud800")
    info = store.get_run(run_id)
    assert info.status == "interrupted" and info.finished and info.error.startswith("budget spent")
    store.set_status(run_id, "running")
    assert store.get_run(run_id).finished is None
    store.finish_run(run_id, timings={"total_s": 1.5, "cache": {"hits": 3}}, summary={"n_findings": 0})
    info = store.get_run(run_id)
    assert info.status == "done" and info.error is None and info.timings["cache"]["hits"] == 3
    assert [r.id for r in store.list_runs()] == [run_id]
    with pytest.raises(ConfigError):
        store.set_status(run_id, "finished")
    with pytest.raises(UnknownNameError):
        store.set_status("nope", "done")


def test_records_round_trip_in_case_order_and_re_add_is_idempotent(tmp_path) -> None:
    store = _store(tmp_path)
    run_id = store.create_run(SPEC, MODEL, "fp")
    recs = _records(10)
    order = {r.case_id: i for i, r in enumerate(recs)}
    store.add_records(run_id, "p", recs[5:], order=order)  # later chunk first, as after a resume
    store.add_records(run_id, "p", recs[:5], order=order)
    assert store.records(run_id, "p") == recs
    assert store.done_case_ids(run_id, "p") == {f"c{i}" for i in range(10)}
    changed = [Record(r.case_id, r.input, {"label": "neg"}, r.scores, {"group": "z"}, False) for r in recs[2:4]]
    store.add_records(run_id, "p", changed)  # no order: each keeps its place
    got = store.records(run_id, "p")
    assert len(got) == 10 and got[2:4] == changed and got[:2] == recs[:2] and got[4:] == recs[4:]
    store.add_records(run_id, "q", _records(3, start=20))
    store.add_records(run_id, "q", _records(2, start=40))  # no order: appended after the last
    assert [r.case_id for r in store.records(run_id, "q")] == ["c20", "c21", "c22", "c40", "c41"]
    assert len(store.records(run_id)) == 15 and store.records(run_id, "none") == []


def test_untrusted_text_and_odd_values_cannot_crash_the_store(tmp_path) -> None:
    store = _store(tmp_path)
    run_id = store.create_run(SPEC, MODEL, "fp")
    import numpy as np

    weird = Record("bad\ud800id", {"text": "<script>\ud83d"}, {"text": "\x00\udfff\n'; DROP TABLE runs;--"},
                   {"nan": float("nan"), "np": np.float32(0.5), "inf": -math.inf}, {"tag": "\ud800", "set": {1}})
    store.add_records(run_id, "p", [weird])
    (got,) = store.records(run_id, "p")
    assert got.input == weird.input and got.output == weird.output  # stored as-is, escaping is the report's job
    assert math.isnan(got.scores["nan"]) and got.scores["np"] == 0.5 and got.scores["inf"] == -math.inf
    assert got.case_id == "bad\ufffdid" and got.tags == {"tag": "\ud800", "set": [1]}


def test_findings_round_trip_and_replace(tmp_path) -> None:
    store = _store(tmp_path)
    run_id = store.create_run(SPEC, MODEL, "fp")
    store.start_probe(run_id, "b", "probe.b", 3)
    store.start_probe(run_id, "a", "probe.a", 3)
    fa = [Finding("a", "accuracy", Verdict.FAIL, Severity.HIGH, "low <b>", Estimate(0.5, 10, 0.2, 0.8),
                  ("c1", "c0"), {"worst_spans": [{"case_id": "c1", "score": 1.5}]}),
          Finding("a", "skew", Verdict.PASS, Severity.INFO, "fine")]
    fb = [Finding("b", "ppl", Verdict.NOT_APPLICABLE, Severity.LOW, "n/a", Estimate(3.0, 4, 2.0, 4.5, "t", 0.9))]
    store.add_findings(run_id, "a", [Finding("a", "old", Verdict.PASS, Severity.INFO, "replaced")])
    store.add_findings(run_id, "a", fa)
    store.add_findings(run_id, "b", fb)
    assert store.findings(run_id) == fb + fa  # plan order (b started first), then each probe's own order
    store.add_findings(run_id, "a", [])
    assert store.findings(run_id) == fb


def test_probe_status_transitions(tmp_path) -> None:
    store = _store(tmp_path)
    run_id = store.create_run(SPEC, MODEL, "fp")
    store.skip_probe(run_id, "s", "probe.s", "needs generate")
    store.fail_probe(run_id, "f", "dataset line 3 is malformed")  # failed before it started
    store.start_probe(run_id, "p", "probe.p", n_cases=40)
    store.fail_probe(run_id, "p", "backend down")
    store.start_probe(run_id, "p", "probe.p", n_cases=40)  # resume
    assert store.probe_runs(run_id)[2].reason is None
    time.sleep(0.01)
    store.finish_probe(run_id, "p")
    runs = {p.probe_key: p for p in store.probe_runs(run_id)}
    assert [p.probe_key for p in store.probe_runs(run_id)] == ["s", "f", "p"]
    assert (runs["s"].status, runs["s"].reason) == ("skipped", "needs generate")
    assert (runs["f"].status, runs["f"].probe_name) == ("failed", "f")
    p = runs["p"]
    assert (p.status, p.n_cases, p.probe_name) == ("done", 40, "probe.p") and p.elapsed_s >= 0.01
    store.finish_probe(run_id, "p", elapsed_s=2.5)
    assert store.probe_runs(run_id)[2].elapsed_s == 2.5
    with pytest.raises(LmcriticError, match="never started"):
        store.finish_probe(run_id, "zzz")
    with pytest.raises(UnknownNameError):
        store.start_probe("nope", "p", "probe.p")


def test_tags_join_in_sql_and_delete_cascades(tmp_path) -> None:
    store = _store(tmp_path)
    run_id = store.create_run(SPEC, MODEL, "fp")
    other = store.create_run(SPEC, MODEL, "fp")
    store.add_records(run_id, "p", _records(12))
    store.add_records(other, "p", _records(4))
    conn = sqlite3.connect(store.path)
    failed_b = conn.execute(
        "SELECT c.case_id FROM cases c JOIN case_tags t USING (run_id, probe_key, case_id) "
        "WHERE c.run_id = ? AND t.key = 'group' AND t.value = 'b' AND c.passed = 1 ORDER BY c.seq",
        (run_id,)).fetchall()
    assert [r[0] for r in failed_b] == ["c1", "c5", "c7", "c11"]
    late = conn.execute("SELECT count(*) FROM case_tags WHERE run_id = ? AND key = 'line' AND value >= 10",
                        (run_id,)).fetchone()[0]
    assert late == 2
    store.start_probe(run_id, "p", "probe.p")
    store.add_findings(run_id, "p", [Finding("p", "x", Verdict.PASS, Severity.INFO, "ok")])
    store.delete_run(run_id)
    for table in ("runs", "probe_runs", "cases", "case_tags", "findings"):
        column = "id" if table == "runs" else "run_id"
        assert conn.execute(f"SELECT count(*) FROM {table} WHERE {column} = ?", (run_id,)).fetchone()[0] == 0
    assert len(store.records(other)) == 4
    with pytest.raises(UnknownNameError):
        store.delete_run(run_id)


def test_schema_version_and_migration_hook(tmp_path) -> None:
    store = _store(tmp_path)
    assert _sqlite.user_version(store._conn) == SCHEMA_VERSION == len(MIGRATIONS)
    store.close()
    conn = _sqlite.connect(store.path)
    applied = []
    steps = (*MIGRATIONS, "ALTER TABLE runs ADD COLUMN note TEXT", lambda c: applied.append(_sqlite.user_version(c)))
    assert _sqlite.migrate(conn, steps, "test") == SCHEMA_VERSION + 2  # only the new steps ran
    assert applied == [SCHEMA_VERSION + 1]
    conn.close()
    with pytest.raises(LmcriticError, match="newer than this lmcritic knows"):
        RunStore(store.path)
    not_a_db = tmp_path / "junk.sqlite"
    not_a_db.write_bytes(b"not a database" * 100)
    with pytest.raises(LmcriticError, match="junk.sqlite"):
        RunStore(not_a_db)


def test_typed_record_fields_round_trip(tmp_path) -> None:
    from lmcritic.probes.base import ExplainTarget

    store = _store(tmp_path)
    run_id = store.create_run(SPEC, MODEL, "fp")
    rec = Record("c1", {"prompt": "Review: fine\nSentiment:"}, {}, {"correct": 1.0}, passed=True, text="fine",
                 target="positive", prediction="positive", label_probs={"negative": 0.25, "positive": 0.75},
                 group="ab", explain=ExplainTarget("Review: fine\nSentiment:", " positive", " negative", span="fine"))
    store.add_records(run_id, "performance.sst2", [rec, Record("c2", {}, {}, {})])
    assert store.records(run_id, "performance.sst2") == [rec, Record("c2", {}, {}, {})]


def test_runs_stored_before_typed_fields_still_load(tmp_path) -> None:
    """A version-1 store (record text, label, prediction and explanation target inside input/output/tags) is
    migrated on open, and its records read back with the typed fields derived once, in the store."""
    path = tmp_path / "old.sqlite"
    conn = _sqlite.connect(path)
    _sqlite.migrate(conn, MIGRATIONS[:1], "v1")
    spec = '{"probes": [{"name": "performance.sst2", "key": "performance.sst2", "config": {"n": 3}}]}'
    conn.execute("INSERT INTO runs (id, created, status, spec_json, model_json, model_fingerprint, versions_json) "
                 "VALUES ('r1', 1.0, 'done', ?, '{}', 'fp', '{}')", (spec,))
    conn.execute("INSERT INTO probe_runs (run_id, probe_key, probe_name, status) VALUES "
                 "('r1', 'performance.sst2', 'performance.sst2', 'done')")
    old = ('{"text": "fine", "prompt": "Review: fine\\nSentiment:", "explain": {"context": "Review: fine\\n'
           'Sentiment:", "target": " positive", "foil": " negative"}}',
           '{"prediction": "positive", "label_logprobs": [-2.0, -1.0], "probs": [0.25, 0.75]}',
           '{"expected": "negative", "group": "a"}')
    conn.execute("INSERT INTO cases VALUES ('r1', 'performance.sst2', 'c1', 0, ?, ?, '{}', ?, 0, 1.0)", old)
    for key in ("stage:interpret.explain", "interpret.explanations", "stage:diagnose", "diagnose.fragility",
                "diagnose"):
        conn.execute("INSERT INTO probe_runs (run_id, probe_key, probe_name, status, elapsed_s) VALUES "
                     "('r1', ?, ?, 'done', 1.5)", (key, key.removeprefix("stage:")))
    plot = '{"plot": {"kind": "line", "title": "t", "x": [0, 1], "y": [1, 2]}, "reliability": [{"low": 0, "high": 1}]}'
    heatmap = '{"kind": "tokens", "title": "h", "tokens": ["a"], "weights": [0.5]}'
    both = f'{{"plot": {heatmap}, "plots": [{heatmap}, {heatmap.replace("h", "k", 1)}]}}'  # the first stored twice
    conn.execute("INSERT INTO findings VALUES ('r1', 'interpret.explanations', 9, 'interpret.explanations', "
                 "'spurious_share', 'pass', 'info', 's', NULL, '[]', ?)", (both,))
    for seq, name in enumerate(("invariance:casing", "faithfulness.grad_x_input", "canary_exposure_3",
                                "D2: mc_knowledge [identity_term=no & perplexity=low]", "accuracy")):
        conn.execute("INSERT INTO findings VALUES ('r1', 'performance.sst2', ?, 'performance.sst2', ?, 'fail', "
                     "'high', 's', NULL, '[]', ?)", (seq, name, plot))
    conn.close()
    with RunStore(path) as store:
        (rec,) = store.records("r1", "performance.sst2")
        stages, probes, findings = store.stage_runs("r1"), store.probe_runs("r1"), store.findings("r1")
    assert [(s.stage, s.status, s.elapsed_s) for s in stages] == [("interpret.explain", "done", 1.5),
                                                                   ("diagnose", "done", 1.5)]
    assert [(p.probe_key, p.kind) for p in probes] == [
        ("performance.sst2", "probe"), ("interpret.explanations", "stage"), ("diagnose.fragility", "stage"),
        ("diagnose", "stage")]
    spurious = findings.pop(next(i for i, f in enumerate(findings) if f.name == "spurious_share"))
    assert [p["title"] for p in spurious.details["plots"]] == ["h", "k"] and "plot" not in spurious.details
    assert [f.name for f in findings] == ["invariance/casing", "faithfulness/grad_x_input", "canary_exposure/3",
                                          "D2/mc_knowledge/identity_term=no & perplexity=low", "accuracy"]
    assert [p["kind"] for p in findings[0].details["plots"]] == ["line", "reliability"] and \
        findings[0].details["plots"][0]["series"] == [{"name": "", "x": [0, 1], "y": [1, 2]}]
    assert (rec.text, rec.target, rec.prediction, rec.group) == ("fine", "negative", "positive", "a")
    assert rec.label_probs == {"negative": 0.25, "positive": 0.75}  # the bare list, named by the probe's labels
    assert rec.explain.context == "Review: fine\nSentiment:" and rec.explain.span == "fine"
    assert rec.explain_variant is None and rec.output["prediction"] == "positive"  # payload left as stored


def test_threads_write_and_other_processes_read(tmp_path) -> None:
    store = _store(tmp_path)
    run_id = store.create_run(SPEC, MODEL, "fp")
    threads = [threading.Thread(target=store.add_records, args=(run_id, f"p{i}", _records(50))) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.records(run_id)) == 200
    code = ("import sys; from lmcritic.store.runs import RunStore; s = RunStore(sys.argv[1]); "
            "new = s.create_run({}, {}, 'fp'); "
            "print(len(s.records(s.resolve(sys.argv[2]))), s.resolve('latest') == new, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(store.path), run_id], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["200", "True", "False"]  # recording versions imported no torch
    assert "torch" in store.get_run("latest").versions
