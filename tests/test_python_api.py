"""lmcritic.scan / lmcritic.run from Python: every kind of model object, the stored spec and fingerprint, how a run
that did not finish is surfaced, and the Results object (findings, cases, reports, inline display)."""
from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import pytest

import lmcritic
from lmcritic.errors import LmcriticError, ModelLoadError, RunFailed, RunWarning, UnknownNameError
from lmcritic.results import Results

SST2 = {"name": "performance.task", "key": "sst2", "config": {"task": "sst2", "n": 40}}
CLASSIFY = {"task": "classify", "labels": ["negative", "positive"]}
SMALL = {"performance.sst2": {"n": 8}}


@pytest.fixture(scope="module")
def objects(tiny_causal_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_causal_dir), AutoTokenizer.from_pretrained(tiny_causal_dir)


@pytest.fixture
def where(tmp_path) -> dict:
    return {"store": tmp_path / "runs.sqlite", "cache": tmp_path / "cache.sqlite", "progress": False}


def test_scan_in_memory_model_is_stored_like_a_cli_run(objects, where, capsys) -> None:
    from lmcritic.cli.main import main

    results = lmcritic.scan(objects, probes=["performance.sst2"], config=SMALL, stages=False, **where)
    assert results.status == "done" and results.errors == []
    model = results.info.spec["model"]
    assert model["backend"] == "memory" and model["options"]["fingerprint"] == results.info.model_fingerprint
    assert [f.name for f in results.findings][:1] == ["accuracy"]
    assert main(["show", results.run_id, "--store", str(where["store"])]) == 0  # the command line reads it
    assert results.run_id in capsys.readouterr().out
    again = lmcritic.scan(objects[0], tokenizer=objects[1], probes=["performance.sst2"], config=SMALL, stages=False,
                          **where)
    assert again.info.model_fingerprint == results.info.model_fingerprint  # same weights: same fingerprint
    assert again.info.timings["cache"]["misses"] == 0  # ... so every answer came from the cache


def test_in_memory_fingerprint_sees_every_weight(objects) -> None:
    """A one-element edit that the folders' strided sample misses still changes an in-memory model's fingerprint."""
    import torch

    from lmcritic.backends._hf_tensors import fingerprint
    from lmcritic.backends.objects import as_backend

    model, tok = objects
    before_full, before_sampled = as_backend(objects)[0].fingerprint(), fingerprint(model, tok)
    weight = model.transformer.wte.weight
    with torch.no_grad():
        weight.view(-1)[1] += 1.0  # off the sampling stride (numel // 2048 > 1)
    try:
        assert fingerprint(model, tok) == before_sampled
        assert as_backend(objects)[0].fingerprint() != before_full
    finally:
        with torch.no_grad():
            weight.view(-1)[1] -= 1.0


def test_live_model_reloads_from_its_spec_and_a_gone_one_says_what_to_do(objects) -> None:
    from lmcritic.backends import ModelSpec, load_model
    from lmcritic.backends.objects import as_backend

    backend, spec = as_backend(objects, name="my-model")
    assert spec.name == "my-model" and load_model(spec) is backend  # diagnosis/resume/mitigation get it back
    gone = ModelSpec("my-model", "memory", {"fingerprint": "0" * 64})
    with pytest.raises(ModelLoadError, match="Python object .* not loaded in this process.*save_pretrained"):
        load_model(gone)


def test_pipeline_path_and_backend_objects(objects, tiny_causal_dir, where) -> None:
    from transformers import pipeline

    from lmcritic.backends.objects import as_backend

    pipe = pipeline("text-generation", model=objects[0], tokenizer=objects[1])
    backend, spec = as_backend(pipe)
    assert backend.model_kind == "causal" and spec.backend == "memory"
    loaded, path_spec = as_backend(tiny_causal_dir)
    assert path_spec.name == str(tiny_causal_dir) and path_spec.backend is None  # replayable from the CLI
    assert as_backend(loaded)[1] == path_spec  # a backend from load_model keeps the spec it came from
    with pytest.raises(LmcriticError, match="needs its tokenizer"):
        as_backend(objects[0])
    with pytest.raises(LmcriticError, match="cannot critique a int"):
        as_backend(3)


def test_functions_importable_or_not(where) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    import _toy_classifiers as toy

    with warnings.catch_warnings():
        warnings.simplefilter("error", RunWarning)  # a clean run warns about nothing (`-W error` suites can scan)
        importable = lmcritic.scan(toy.good, options=CLASSIFY, probes=[SST2], stages=False, **where)
    model = importable.info.spec["model"]
    assert model["backend"] == "python" and model["options"]["fn"] == "_toy_classifiers:good"
    assert importable.finding("sst2:acc").estimate.value >= 0.85
    local = lmcritic.scan(lambda text: toy.good(text), options=CLASSIFY, probes=[SST2], stages=False, **where)
    assert local.info.spec["model"]["backend"] == "memory"  # a lambda cannot be imported by another process
    replay = lmcritic.run(importable.info.spec, **where)  # the stored spec alone runs it again
    assert replay.finding("sst2:acc").estimate == importable.finding("sst2:acc").estimate


def test_budget_stop_warns_and_resume_finishes(where) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    import _toy_classifiers as toy

    with pytest.warns(RunWarning, match="interrupted"):
        stopped = lmcritic.scan(toy.worse, options=CLASSIFY, probes=[SST2], stages=False, budget=5, **where)
    assert stopped.status == "interrupted"
    finished = stopped.resume(budget=1000)  # the stored budget would stop it again
    assert finished.run_id == stopped.run_id and finished.status == "done"
    assert finished.finding("sst2:acc").estimate.n == 40


def test_failed_partial_and_interrupted_runs(where) -> None:
    def echo(prompt: str) -> str:
        return prompt

    with pytest.raises(RunFailed, match="no probe could run") as failed:  # generate-only: sst2 needs log-likelihoods
        lmcritic.scan(echo, probes=["performance.sst2"], stages=False, **where)
    assert failed.value.results.status == "failed" and failed.value.results.skipped

    def flaky(text: str) -> dict:  # a classifier head is given the raw sentence
        if text.lower().startswith("a "):
            raise ValueError("no")
        return {"negative": 0.5, "positive": 0.5}

    with pytest.warns(RunWarning, match="partial"):
        partial = lmcritic.scan(flaky, options=CLASSIFY, probes=[SST2], stages=False, **where)
    assert partial.status == "partial" and "case" in partial.errors[0]
    with pytest.raises(RunFailed, match="partial"):
        lmcritic.scan(flaky, options=CLASSIFY, probes=[SST2], stages=False, strict=True, **where)

    def interrupted(text: str) -> dict:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # a script or a cell stops; the run is stored as interrupted
        lmcritic.scan(interrupted, options=CLASSIFY, probes=[SST2], stages=False, **where)
    assert Results.load("latest", where["store"]).status == "interrupted"


def test_results_api(objects, where, tmp_path, monkeypatch) -> None:
    results = lmcritic.scan(objects, probes=["performance.sst2"], config=SMALL, stages=False, **where)
    assert results.failing() == sorted(results.failing(), key=lambda f: -f.severity.rank)
    assert all(f.verdict.value == "fail" for f in results.failing())
    with pytest.raises(UnknownNameError, match="did you mean 'performance.sst2:accuracy'"):
        results.finding("performance.sst2:acuracy")
    frame = results.cases("performance.sst2")
    assert len(frame) == 8 and list(frame.columns[:5]) == ["case_id", "passed", "text", "target", "prediction"]
    assert {"label_probs.positive", "scores.correct", "explain.context", "input.prompt"} <= set(frame.columns)
    with pytest.raises(UnknownNameError, match="did you mean 'performance.sst2'"):
        results.cases("performance.sst")
    monkeypatch.setitem(sys.modules, "pandas", None)  # without pandas: the typed records
    assert [r.case_id for r in results.cases("performance.sst2")] == list(frame["case_id"])
    doc = json.loads(results.to_json())
    assert doc["schema"] == "lmcritic.report/1" and doc["run_id"] == results.run_id
    assert results.report(tmp_path / "r.md").read_text().startswith("# lmcritic report")
    assert json.loads(results.report(tmp_path / "r.json").read_text())["run_id"] == results.run_id
    html = results.report(tmp_path / "all")
    assert html.name == "report.html" and (tmp_path / "all" / "report.md").is_file()
    assert Results.load(results.run_id[:15], where["store"]).run_id == results.run_id
    assert f"{len(results.failing())} of {len(results.findings)} findings fail" in repr(results)


def test_mitigate_applies_and_reverifies_on_the_in_memory_model(objects, where) -> None:
    results = lmcritic.scan(objects, probes=["performance.sst2"], config={"performance.sst2": {"n": 40}}, **where)
    outcome = results.mitigate(method="calibrate")
    assert outcome.method == "calibrate" and outcome.run_id == results.run_id
    assert outcome.verification is not None and outcome.verification.run_after != results.run_id
    assert outcome.verification.targeted.verdict in {"closed", "reduced", "unchanged", "worse"}
    assert Results.load(outcome.verification.run_after, where["store"]).status == "done"


def test_inline_display_is_the_escaped_scoped_scorecard(tmp_path, tiny_causal_dir, tiny_causal) -> None:
    from markdown_it import MarkdownIt

    from lmcritic.report._style import scoped_css
    from lmcritic.report.inline import SCOPE
    from test_report import EVIL, assert_inert, real_run, rich_run

    runner, run_id = real_run(tmp_path, tiny_causal_dir, tiny_causal)
    rich_run(runner.store, run_id)  # hostile text in every field, a content warning
    results = Results(runner.store, run_id)
    page = results._repr_html_()
    assert_inert(page, allowed_scripts=0)
    assert page.startswith(f'<div class="{SCOPE}">') and "Scorecard" in page and "Failing findings" in page
    assert "&lt;script&gt;alert(&quot;x&quot;)" in page and EVIL not in page
    assert selectors(scoped_css(SCOPE)) and all(s.startswith(f".{SCOPE}") for s in selectors(scoped_css(SCOPE)))
    text = results._repr_markdown_()
    rendered = MarkdownIt("commonmark", {"html": True}).enable("table").render(text)
    assert_inert(rendered, allowed_scripts=0)
    assert "&lt;script&gt;" in rendered and "| performance.sst2 |" in text



def selectors(css: str) -> list[str]:
    """Every selector of a stylesheet, inside @-rules too."""
    from lmcritic.report._style import _RULE

    out = []
    for m in _RULE.finditer(css):
        head = m.group(1).strip()
        out += selectors(m.group(2)) if head.startswith("@") else [s.strip() for s in head.split(",")]
    return out


def test_diagnose_rescores_through_the_live_in_memory_model(where) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    import _toy_classifiers as toy

    results = lmcritic.scan(lambda text: toy.worse(text), options=CLASSIFY, probes=[SST2], stages=False, **where)
    assert results.info.spec["model"]["backend"] == "memory"
    graph = results.diagnose(max_queries=100, perplexity=False)
    assert graph.defects and graph.tests_run > 0  # edited cases were scored by the notebook's own function
    assert not any("model not loaded" in n for n in graph.notes)
    assert any(f.probe == "diagnose" for f in results.findings)  # stored in the run, so the report shows it
