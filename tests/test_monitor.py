"""Monitor scoring, windows, drift, alerts, report, export-cases and traffic-as-a-run, on small synthetic logs
with planted changes (cheap scorers only: PII, refusal, length, register; no embeddings)."""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest

from lmcritic.monitor import drift
from lmcritic.monitor.alerts import Rule, load_rules
from lmcritic.monitor.check import CheckConfig, Checker
from lmcritic.monitor.ingest import ingest
from lmcritic.monitor.metrics import parse_window
from lmcritic.monitor.scoring import RequestScorer, ScoringConfig, Step, score_store
from lmcritic.scorers import SCORERS, Scorer
from lmcritic.store.monitor import MonitorStore

CHEAP = (Step("prompt", "pii"), Step("response", "pii"), Step("response", "refusal"), Step("prompt", "length"),
         Step("prompt", "register"))
WORDS = "the film was long but the actors were good and the story moved along at a fair pace".split()


def traffic(n: int = 1200, pii_from: int | None = 900, seed: int = 0, high: float = 0.15) -> list[dict]:
    """One request a minute; responses leak an e-mail 1% of the time, ``high`` from ``pii_from`` on."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        prompt = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 12)))
        rate = high if pii_from is not None and i >= pii_from else 0.01
        response = "Sure, mail jane.doe@example.com" if rng.random() < rate else "Here is my answer."
        rows.append({"timestamp": 1_789_999_200 + 60 * i, "prompt": prompt, "response": response,
                     "topic": rng.choice(["a", "b"]), "feedback": rng.choice([True, False, None])})
    return rows


def load(tmp_path: Path, rows: list[dict], store: MonitorStore) -> None:
    path = tmp_path / f"log{random.random():.6f}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    ingest(store, [path])


@pytest.fixture
def store(tmp_path: Path) -> MonitorStore:
    with MonitorStore(tmp_path / "runs.sqlite") as s:
        yield s


class Counting(Scorer):
    name, primary = "counting", "chars"
    calls: list[int] = []

    def _score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        Counting.calls.append(len(texts))
        return [{"chars": float(len(t))} for t in texts]


def test_scores_are_cached_per_distinct_text(tmp_path: Path, store: MonitorStore) -> None:
    SCORERS.add("counting", Counting)
    rows = [{"timestamp": 1_790_000_000 + i, "prompt": ["same", "other"][i % 2], "response": "r"} for i in range(40)]
    load(tmp_path, rows, store)
    Counting.calls.clear()
    scorer = RequestScorer(ScoringConfig((Step("prompt", "counting"),)), store)
    assert score_store(store, scorer, chunk=7) == 40 and sum(Counting.calls) == 2  # two distinct texts, once each
    assert score_store(store, scorer) == 0
    again = RequestScorer(ScoringConfig((Step("prompt", "counting"),)), store)
    load(tmp_path, [{"timestamp": 1_790_009_999, "prompt": "same", "response": "r"}], store)
    assert score_store(store, again) == 1 and sum(Counting.calls) == 2  # a cache hit, no new call
    scored = {rid: s for chunk in store.iter_scored(scorer.fingerprint) for rid, _, s, _ in chunk}
    assert {s["prompt.counting"] for s in scored.values()} == {4.0, 5.0}


def test_register_lexicon_edit_rescores_instead_of_reusing_the_cache(tmp_path: Path, store: MonitorStore,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from lmcritic.diagnose import _text
    from lmcritic.perturb import register

    load(tmp_path, [{"timestamp": 1_790_000_000, "prompt": "that film was zorbly good", "response": "r"}], store)
    before = RequestScorer(ScoringConfig((Step("prompt", "register"),)), store)
    score_store(store, before)
    old = [s["prompt.register"] for c in store.iter_scored(before.fingerprint) for _, _, s, _ in c]
    table = dict(register._lex())
    monkeypatch.setattr(register, "_lex", lambda: {**table, "to_formal": {**table["to_formal"], "zorbly": "very"}})
    _text._colloquial_pattern.cache_clear()
    try:
        after = RequestScorer(ScoringConfig((Step("prompt", "register"),)), store)
        assert after.fingerprint != before.fingerprint
        assert score_store(store, after) == 1
        new = [s["prompt.register"] for c in store.iter_scored(after.fingerprint) for _, _, s, _ in c]
        assert old == [0.0] and new == [1.0]  # the edited lexicon's word counts; no stale cached 0
    finally:
        _text._colloquial_pattern.cache_clear()


def test_scores_do_not_depend_on_chunking(tmp_path: Path) -> None:
    outs = []
    for chunk in (3, 500):
        with MonitorStore(tmp_path / f"s{chunk}.sqlite") as s:
            load(tmp_path, traffic(60), s)
            scorer = RequestScorer(ScoringConfig(CHEAP), s)
            score_store(s, scorer, chunk=chunk)
            outs.append([x[2] for c in s.iter_scored(scorer.fingerprint) for x in c])
    assert outs[0] == outs[1]


def checked(store: MonitorStore, rules: Sequence[Rule], window: str = "300req", reference: str = "first:2"):
    scorer = RequestScorer(ScoringConfig(CHEAP), store)
    score_store(store, scorer)
    return Checker(store, scorer.fingerprint, CheckConfig(window, reference, embedding=False), rules).run()


def test_planted_pii_rise_alerts_in_its_window_only(tmp_path: Path, store: MonitorStore) -> None:
    load(tmp_path, traffic(1200, pii_from=900), store)
    result = checked(store, [Rule("response.pii", "change", 0.01, min_n=100)])
    assert [w.is_reference for w in result.windows] == [True, True, False, False]
    assert [len(w.alerts) for w in result.windows] == [0, 0, 0, 1]
    alert = result.alerts[0]
    assert alert.metric == "response.pii" and alert.test.effect > 0.05 and alert.test.p_adj < 0.01
    flagged = store.requests(list(alert.evidence))
    assert flagged and all("@example.com" in r.record.response for r in flagged)
    summary = next(s for s in result.windows[3].summaries if s.metric == "response.pii")
    assert summary.ci_low < summary.value < summary.ci_high and summary.n == 300


def test_no_change_gives_no_alert_under_the_default_rules(tmp_path: Path, store: MonitorStore) -> None:
    load(tmp_path, traffic(1500, pii_from=None, seed=3), store)
    result = checked(store, load_rules(None))
    assert not result.alerts
    tested = [w for w in result.windows if not w.is_reference]
    assert tested and all(t.p_adj >= t.p for w in tested for t in w.tests)


def test_rules_by_group_level_and_validation(tmp_path: Path, store: MonitorStore) -> None:
    rows = traffic(900, pii_from=None)
    for i, r in enumerate(rows):
        if i >= 600 and r["topic"] == "b":
            r["response"] = "I'm sorry, but I can't help with that."
    load(tmp_path, rows, store)
    result = checked(store, [Rule("response.refusal", "change", 0.1, by="topic", min_n=50),
                             Rule("response.refusal", "level", 0.2, min_n=50)])
    fired = {(a.metric, a.group, a.test.test) for a in result.alerts}
    assert fired == {("response.refusal", "topic=b", "change"), ("response.refusal", None, "level")}
    with pytest.raises(Exception, match="drift only"):
        Rule("prompt.embedding", "change")
    with pytest.raises(Exception, match="unknown monitor_metrics"):
        Rule("response.pi")


def test_time_windows_and_window_parsing() -> None:
    assert parse_window("hour").seconds == 3600 and parse_window("500req").count == 500
    assert parse_window("30m").seconds == 1800 and parse_window("1d").label == "1d"
    with pytest.raises(Exception, match="bad window"):
        parse_window("soon")


def test_hourly_windows_against_previous(tmp_path: Path, store: MonitorStore) -> None:
    load(tmp_path, traffic(600, pii_from=420, high=0.4), store)  # one per minute: 10 hourly windows
    result = checked(store, [Rule("response.pii", "change", 0.01, min_n=30)], window="1h", reference="previous")
    assert len(result.windows) == 10 and result.windows[0].is_reference
    assert [w.index for w in result.windows if w.alerts] == [result.windows[7].index]


def test_mmd_is_calibrated_and_detects_a_shift() -> None:
    rng = np.random.default_rng(0)
    null_p = [drift.mmd_test(rng.normal(size=(60, 8)), rng.normal(size=(60, 8)), 300, seed=s)[1] for s in range(30)]
    assert sum(p < 0.05 for p in null_p) <= 4  # about 5% expected
    x, y = rng.normal(size=(80, 8)), rng.normal(size=(80, 8)) + 0.5
    mmd2, p, witness = drift.mmd_test(x, y, 500)
    assert mmd2 > 0 and p < 0.01 and witness.shape == (80,)


def test_psi_ks_and_categories() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=2000), rng.normal(size=2000)
    assert drift.psi(a, b) < 0.05 and drift.psi(a, b + 1.0) > 0.25
    assert drift.ks(a, b)[1] > 0.01 and drift.ks(a, b + 0.3)[1] < 1e-6
    size, p = drift.categories({"en": 950, "fr": 50}, {"en": 700, "fr": 250, "de": 50})
    assert size > 0.1 and p < 1e-10
    assert drift.two_proportions(1, 500, 60, 500) < 1e-10 and drift.rate_above(2, 100, 0.2) > 0.99


def test_report_escapes_log_text_and_shows_file_line(tmp_path: Path, store: MonitorStore) -> None:
    from lmcritic.report.monitor import monitor_document, render_monitor_html, render_monitor_json

    rows = traffic(1200, pii_from=900)
    for r in rows[900:]:
        if "@" in r["response"]:
            r["response"] += " <script>alert(1)</script>"
    load(tmp_path, rows, store)
    result = checked(store, [Rule("response.pii", "change", 0.01)])
    doc = monitor_document(store, result)
    html = render_monitor_html(doc)
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html
    assert ".jsonl:9" in html or ".jsonl:1" in html  # drill-down names file:line
    assert "<polygon" in html  # the CI band
    data = json.loads(render_monitor_json(doc))
    assert data["alerts"][0]["evidence_lines"] and data["series"]["response.pii"]["marked"] == [3]


def test_export_cases_and_replay_probe(tmp_path: Path, store: MonitorStore) -> None:
    from lmcritic.backends.python import PythonBackend
    from lmcritic.monitor.export import export_cases
    from lmcritic.probes import PROBES
    from lmcritic.spec import RunSpec

    rows = traffic(400, pii_from=200)
    rows[5]["expected"] = "the answer"
    rows[5]["feedback"] = False
    load(tmp_path, rows, store)
    scorer = RequestScorer(ScoringConfig(CHEAP), store)
    score_store(store, scorer)
    counts = export_cases(store, scorer.fingerprint, tmp_path / "cases", ("response.pii", "feedback.negative"))
    assert counts["pii_prompts"] >= 20 and counts["production_task"] == 1
    spec = RunSpec.from_file(tmp_path / "cases" / "scan.yaml")
    assert {p.name for p in spec.probes} >= {"safety.replay", "safety.pii", "performance.task"}
    model = PythonBackend(fn=lambda prompt: "Please write to bob@example.com" if "film" in prompt else "no")
    probe = PROBES.get("safety.replay")(data=str(tmp_path / "cases" / "production_cases.jsonl"), n=12)
    cases = list(probe.cases())
    records = probe.score(model, cases)
    assert [r.passed for r in records] == ["film" not in c.input["prompt"] and not c.expected for c in cases]
    assert any(c.expected for c in cases)  # the thumbed-down row with a reference answer fails on token F1
    (finding,) = probe.summarize(records)
    assert finding.estimate.n == 12


def test_traffic_as_a_run_is_diagnosable(tmp_path: Path, store: MonitorStore) -> None:
    from lmcritic.diagnose.api import DiagnoseConfig, diagnose_run
    from lmcritic.monitor.export import to_run
    from lmcritic.store.runs import RunStore

    rows = traffic(600, pii_from=None)
    for r in rows:
        if r["topic"] == "b" and random.Random(r["timestamp"]).random() < 0.5:
            r["response"] = "Contact jane.doe@example.com"
    load(tmp_path, rows, store)
    scorer = RequestScorer(ScoringConfig(CHEAP), store)
    score_store(store, scorer)
    runs = RunStore(tmp_path / "runs.sqlite")
    run_id = to_run(store, runs, scorer.fingerprint, ("response.pii",))
    graph = diagnose_run(runs, run_id, config=DiagnoseConfig(perplexity=False, hypotheses=("data_bias",)))
    assert any(("tag.topic", "b") in n.defect.predicates for n in graph.defects)


def test_reference_from_a_pre_deployment_run(tmp_path: Path, store: MonitorStore) -> None:
    from lmcritic.monitor.api import check_store
    from lmcritic.monitor.export import to_run

    rows = traffic(1200, pii_from=900)
    load(tmp_path, rows[:600], store)
    scorer = RequestScorer(ScoringConfig(CHEAP), store)
    score_store(store, scorer)
    run_id = to_run(store, store, scorer.fingerprint)  # stands in for a scan whose records carry the inputs
    load(tmp_path, rows[600:], store)
    result = check_store(store, scorer, CheckConfig("300req", f"run:{run_id}", embedding=False),
                         [Rule("response.pii", "change", 0.01)], run_store=store)
    assert not any(w.is_reference for w in result.windows)
    assert [bool(w.alerts) for w in result.windows] == [False, False, False, True]


def test_input_perplexity_with_a_scoring_model(tmp_path: Path, store: MonitorStore, tiny_causal) -> None:
    from lmcritic.requests import RollingRequest

    load(tmp_path, traffic(20, pii_from=None), store)
    scorer = RequestScorer(ScoringConfig((Step("prompt", "length"),)), store, lm=tiny_causal)
    assert "prompt.perplexity" in scorer.metrics()
    score_store(store, scorer)
    (rid, _, scores, _), = list(store.iter_scored(scorer.fingerprint, chunk=1))[0][:1]
    prompt = store.requests([rid])[0].record.prompt
    (roll,) = tiny_causal.rolling_logprobs([RollingRequest(prompt)])
    assert scores["prompt.perplexity"] == pytest.approx(-sum(roll.logprobs) / len(roll.logprobs), abs=1e-5)
    assert scores["prompt.perplexity.max_nll"] == pytest.approx(-min(roll.logprobs), abs=1e-5)


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from lmcritic.cli.main import main

    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in traffic(1200, pii_from=900)) + "{broken\n")
    db = str(tmp_path / "cli.sqlite")
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {metric: response.pii, test: change, threshold: 0.01}\n")
    assert main(["monitor", "ingest", str(log), "--store", db]) == 0
    assert "invalid_json 1" in capsys.readouterr().out
    base = ["--store", db, "--scorers", "response.pii,prompt.length", "--window", "300req", "--no-embedding"]
    assert main(["monitor", "check", *base, "--rules", str(rules)]) == 5
    assert "ALERT high" in capsys.readouterr().out  # the rule file's severity (default high)
    before_rise = str(1_789_999_200 + 900 * 60)  # the first 900 requests: no change yet
    assert main(["monitor", "check", *base, "--rules", str(rules), "--until", before_rise]) == 0
    assert "3 windows" in capsys.readouterr().out
    assert main(["monitor", "report", *base, "--rules", str(rules), "-o", str(tmp_path / "r.html")]) == 5
    assert "response.pii change" in (tmp_path / "r.html").read_text()
    assert main(["monitor", "check", *base, "--reference", "sideways"]) == 2
