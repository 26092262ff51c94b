"""The run report (HTML, Markdown, JSON) and the critique card, from real runs on the tiny model.

`rich_run` adds to a real run everything other areas may store (every plot kind, content warnings,
explanations, a diagnosis graph) with hostile text in every field, so escaping is tested where it matters.
"""
from __future__ import annotations

import html.parser
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lmcritic.backends import ModelSpec
from lmcritic.interpret.cases import CaseExplanation, SideExplanation
from lmcritic.interpret.run import as_record
from lmcritic.interpret.types import Explanation, Target
from lmcritic.probes.base import Estimate, Finding, Record, Severity, Verdict
from lmcritic.report.document import run_document
from lmcritic.report.html import render_html
from lmcritic.report.markdown import render_markdown, write_reports
from lmcritic.runner import Runner
from lmcritic.spec import ProbeSpec, RunSpec

EVIL = ('<script>alert("x")</script></details></td></table></svg><img src=x onerror=alert(1)> '
        '[click](javascript:alert(1)) ![i](http://x/y.png) **bold** <http://evil.example> \n# head\n| a | b |\n'
        "<!-- c --> \u202eevil\x00 & &amp;")
SMALL = (ProbeSpec("performance.sst2", {"n": 12}),
         ProbeSpec("performance.perplexity", {"docs": 2, "window": 32, "stride": 32}))


def real_run(tmp: Path, model_dir: Path, model) -> tuple[Runner, str]:
    runner = Runner(tmp / "runs.sqlite", tmp / "cache.sqlite", progress=False)
    out = runner.run(RunSpec(model=ModelSpec(name=str(model_dir)), probes=SMALL), model=model)
    assert out.status == "done"
    return runner, out.run_id


def rich_run(store, run_id: str) -> None:
    """Add a bias-like probe (bars, line, invalid plot, content warning), explanations and a diagnosis graph."""
    recs = [Record(case_id=EVIL if i == 0 else f"b-{i}", input={"text": EVIL, "explain": {"context": EVIL}},
                   output={"completion": EVIL, "heat_html": '<b onmouseover="alert(1)">x</b>'},
                   scores={"gap": 0.1 * i}, tags={"group": EVIL, "source": "synthetic"}, passed=i % 2 == 0)
            for i in range(4)]
    store.start_probe(run_id, "bias.synthetic", "bias.synthetic", len(recs))
    store.add_records(run_id, "bias.synthetic", recs)
    plots = [{"kind": "bars", "title": EVIL, "labels": [EVIL, "b"], "values": [0.2, 0.5], "ci_low": [0.1, 0.4],
              "ci_high": [0.3, 0.6], "n": [10, 12]},
             {"kind": "line", "title": "line", "x": [0, 1, 2], "y": [0.5, 0.2, 0.9], "x_label": EVIL, "y_label": "y"},
             {"kind": "tokens", "title": "tok", "tokens": [EVIL, " fine"], "weights": [0.9, -0.4]},
             {"kind": EVIL, "title": "bad kind"}]
    store.add_findings(run_id, "bias.synthetic", [Finding(
        "bias.synthetic", "group_gap" + EVIL, Verdict.FAIL, Severity.CRITICAL, EVIL,
        Estimate(0.3, 22, 0.1, 0.5), (EVIL, "b-1"), {"plots": plots, "content_warning": EVIL, "note": EVIL})])
    store.finish_probe(run_id, "bias.synthetic")
    target = Target(EVIL, " ok")
    ex = Explanation("grad_x_input", target, ("<script>", "ok", EVIL), ((0, 8), (8, 10), (10, 12)), (0.5, -0.2, 0.1),
                     ("<script>", "ok", EVIL), ((0, 8), (8, 10), (10, 12)), (0.5, -0.2, 0.1))
    explained = as_record(CaseExplanation("bias.synthetic", "b-1", SideExplanation(target, (ex,))), recs[1])
    store.add_records(run_id, "interpret.explanations", [explained])
    graph = {"nodes": [{"id": "a", "label": EVIL, "severity": "high"}, {"id": "b", "label": "cause"}],
             "edges": [{"source": "b", "target": "a", "label": EVIL}]}
    store.add_records(run_id, "diagnose.graph", [Record("g-1", {"text": "graph"}, graph, {})])
    store.add_findings(run_id, "diagnose.graph", [Finding("diagnose.graph", "root_cause", Verdict.FAIL, Severity.HIGH,
                                                          "cause b explains a", details={"graph": graph})])


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_causal_dir, tiny_causal):
    tmp = tmp_path_factory.mktemp("report")
    runner, run_id = real_run(tmp, tiny_causal_dir, tiny_causal)
    rich_run(runner.store, run_id)
    return runner.store, run_id, tmp


class Tags(html.parser.HTMLParser):
    """Every start/end tag and attribute of an HTML document."""

    def __init__(self) -> None:
        super().__init__()
        self.starts: list[tuple[str, dict]] = []
        self.ends: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.starts.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        self.ends.append(tag)


def assert_inert(markup: str, allowed_scripts: int) -> Tags:
    p = Tags()
    p.feed(markup)
    tags = [t for t, _ in p.starts]
    assert tags.count("script") == allowed_scripts
    assert not {"img", "iframe", "object", "embed", "form", "base", "link"} & set(tags)
    for tag, attrs in p.starts:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        assert str(attrs.get("href", "#")).startswith("#") and "src" not in attrs, (tag, attrs)  # nothing to fetch
    return p


def test_html_is_inert_and_balanced(run) -> None:
    store, run_id, _ = run
    page = render_html(run_document(store, run_id))
    p = assert_inert(page, allowed_scripts=1)
    for tag in ("details", "table", "svg", "section", "article", "tr"):
        assert sum(t == tag for t, _ in p.starts) == p.ends.count(tag), tag
    assert "&lt;script&gt;alert(&quot;x&quot;)" in page and "\\u202e" in page and "\\u0000" in page
    assert "onmouseover" not in page  # stored HTML fragments are never rendered, not even escaped
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_markdown_is_inert(run) -> None:
    from markdown_it import MarkdownIt

    store, run_id, _ = run
    text = render_markdown(store, run_id)
    rendered = MarkdownIt("commonmark", {"html": True}).enable("table").render(text)
    assert_inert(rendered, allowed_scripts=0)
    assert rendered.count("<h1>") == 1 and "<strong>bold</strong>" not in rendered
    assert "&lt;script&gt;" in rendered and "<a " not in rendered


def test_document_has_every_section(run) -> None:
    store, run_id, _ = run
    doc = run_document(store, run_id)
    assert [f["verdict"] for f in doc["findings"]][:2] == ["fail", "fail"]
    assert doc["findings"][0]["severity"] == "critical"  # worst first
    assert {a["area"] for a in doc["areas"]} == {"performance", "bias", "diagnose", "interpret"}
    (warning,) = doc["content_warnings"]
    assert warning.startswith(EVIL) and warning.endswith(")")  # the text, then the findings that carry it
    kinds = {p["kind"] for f in doc["findings"] for p in f["plots"]}
    assert kinds == {"bars", "line", "tokens", "invalid", "reliability", "graph"}
    ppl = next(f for f in doc["findings"] if f["name"] == "perplexity")
    heat = [p for p in ppl["plots"] if p["kind"] == "tokens"]
    rec = next(r for r in store.records(run_id, "performance.perplexity") if r.case_id == heat[0]["case_id"])
    assert "".join(heat[0]["tokens"]) in rec.input["text"]  # tokens cut from the text by their offsets
    assert [p["kind"] for p in doc["explanations"][0]["plots"]] == ["tokens"]
    assert doc["cases"]["performance.sst2"]["total"] == 12 and "diagnose.graph" in doc["cases"]
    acc = next(f for f in doc["findings"] if f["name"] == "accuracy")
    assert acc["estimate"]["n"] == 12 and len(acc["evidence_cases"]) == min(5, acc["n_evidence"])


def test_formats_say_the_same(run) -> None:
    store, run_id, tmp = run
    paths = write_reports(store, run_id, tmp / "out", max_cases=3)
    doc = json.loads(paths["json"].read_text())
    page, text = paths["html"].read_text(), paths["md"].read_text()
    assert doc["cases"]["performance.sst2"]["shown"] == 3
    for f in doc["findings"]:
        if "<" not in f["name"]:
            assert f["name"] in page and f["name"].replace("_", "\\_") in text
        if f.get("estimate"):
            n = str(f["estimate"]["n"])
            assert f"n = {n}" in page and f"n = {n}" in text
    assert "--cases performance.sst2" in page and "lists all" in text  # capped drill-down points to `show`


def test_cap_and_drilldown_anchors(run) -> None:
    from lmcritic.report._escape import anchor

    store, run_id, _ = run
    page = render_html(run_document(store, run_id, max_cases=200))
    acc = next(f for f in store.findings(run_id) if f.name == "accuracy")
    target = anchor("performance.sst2", acc.evidence[0])
    assert f'href="#{target}"' in page and f'id="{target}"' in page


def test_card_from_findings(run) -> None:
    from lmcritic.report.card import render_card

    store, run_id, _ = run
    card = render_card(store, run_id, intended_use="sentiment triage")
    assert "## Limitations found" in card and "## Intended-use warnings" in card and "sentiment triage" in card
    fails = [f for f in store.findings(run_id) if f.verdict is Verdict.FAIL]
    for f in fails:
        if "<" not in f.name:
            assert f.name.replace("_", "\\_") in card
    assert "Robustness" in card.split("Not evaluated in this run")[1].splitlines()[0]  # untested area named
    assert "<script" not in card
    # OWASP LLM Top 10: this run has no security probe, so every risk is listed as not tested
    owasp = card.split("## OWASP Top 10 for LLM applications (2025)")[1].split("\n## ")[0]
    assert "LLM01 Prompt Injection | not tested" in owasp and owasp.count("| not tested |") == 10
    doc = run_document(store, run_id)
    assert [r["risk"] for r in doc["owasp"]] == [f"LLM{i:02d}" for i in range(1, 11)]
    assert 'id="owasp"' in render_html(doc)


def test_cli_report_and_card(tmp_path, tiny_causal_dir) -> None:
    env = {**os.environ, "LMCRITIC_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "lmcritic.cli.main", *args], capture_output=True, text=True,
                              env=env, timeout=300)

    scan = cli("scan", "--model", str(tiny_causal_dir), "--probe", "performance.sst2", "--probe",
               "performance.perplexity", "--no-stages", "--set", "performance.sst2.n=6", "--set",
               "performance.perplexity.docs=1", "--set", "performance.perplexity.window=32", "--set",
               "performance.perplexity.stride=32", "--no-progress")
    assert scan.returncode == 0, scan.stderr
    last = Path(scan.stdout.strip().splitlines()[-1].removeprefix("report: "))
    assert last.suffix == ".html" and last.is_file() and last.with_suffix(".md").is_file()
    doc = json.loads(cli("report", "latest", "--format", "json", "-o", "-").stdout)
    assert doc["schema"] == "lmcritic.report/1" and doc["header"]["n_cases"] == 7
    out = cli("report", "latest", "--format", "md", "-o", str(tmp_path / "x" / "r.md"))
    assert out.returncode == 0 and (tmp_path / "x" / "r.md").read_text().startswith("# lmcritic report")
    card = cli("card", "latest")
    assert card.returncode == 0 and card.stdout.startswith("# Model critique card")
    bad = cli("report", "no-such-run")
    assert bad.returncode == 2 and "no-such-run" in bad.stderr and "Traceback" not in bad.stderr
