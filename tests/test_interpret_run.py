"""Explanations of stored cases: worst failures of a real run are explained, stored and summarized; pairs show
both sides; the CLI explains a case by id."""
from __future__ import annotations

import json

import pytest

from lmcritic.backends import ModelSpec
from lmcritic.probes.base import ExplainTarget, Record
from lmcritic.runner import Runner
from lmcritic.spec import ProbeSpec, RunSpec


@pytest.fixture(scope="module")
def sst2_run(tmp_path_factory, tiny_causal_dir, tiny_causal):
    home = tmp_path_factory.mktemp("interp-run")
    runner = Runner(home / "runs.sqlite", home / "cache.sqlite", progress=False)
    spec = RunSpec(model=ModelSpec(name=str(tiny_causal_dir)), probes=(ProbeSpec("performance.sst2", {"n": 16}),))
    out = runner.run(spec, model=tiny_causal)
    assert out.status == "done"
    return runner.store, out.run_id, home


def test_explain_worst_stores_explanations(sst2_run, tiny_causal) -> None:
    from lmcritic.interpret import EXPLANATIONS_KEY, explain_worst
    from lmcritic.interpret.gradients import GradientXInput
    from lmcritic.interpret.occlusion import LeaveOneOut

    store, run_id, _ = sst2_run
    failed = [r for r in store.records(run_id, "performance.sst2") if r.passed is False]
    assert failed, "the tiny model should get some SST-2 cases wrong"
    done = explain_worst(tiny_causal, store, run_id, k=2, methods=[GradientXInput(), LeaveOneOut()])
    assert len(done) == min(2, len(failed))
    most = max(failed, key=lambda r: r.scores["confidence"])
    assert done[0].case_id == most.case_id  # most confident failure first
    side = done[0].original
    # the explained target is the wrong prediction against the true label, inside the review only
    assert side.target.target.strip() == most.prediction and side.target.foil.strip() == most.tags["expected"]
    assert side.target.text[slice(*side.target.span)] == most.input["text"]
    assert [e.method for e in side.explanations] == ["grad_x_input", "leave_one_out"]
    assert len(side.faithfulness) == 2 and "spearman" in side.agreement
    stored = store.records(run_id, EXPLANATIONS_KEY)
    assert [r.case_id for r in stored] == [f"performance.sst2/{c.case_id}" for c in done]
    assert "comprehensiveness.grad_x_input" in stored[0].scores and stored[0].tags["line"] == most.tags["line"]
    names = {f.name: f for f in store.findings(run_id) if f.probe == EXPLANATIONS_KEY}
    assert {"faithfulness/grad_x_input", "faithfulness/leave_one_out", "spurious_share"} <= set(names)
    plot = names["spurious_share"].details["plots"][0]
    assert plot["kind"] == "tokens" and len(plot["tokens"]) == len(plot["weights"])
    assert names["faithfulness/leave_one_out"].estimate.n == len(done)


def test_pair_explains_both_sides(tiny_causal) -> None:
    from lmcritic.interpret.cases import explain_record
    from lmcritic.interpret.gradients import GradientXInput

    ctx = "Review: the film was great fun.\nSentiment:"
    var = "Review: the film was gr8 fun.\nSentiment:"
    rec = Record("pair-1", {}, {}, {}, passed=False, explain=ExplainTarget(ctx, " positive", " negative"),
                 explain_variant=ExplainTarget(var, " positive", " negative"))
    ce = explain_record(tiny_causal, rec, [GradientXInput()], faithfulness=False)
    assert ce.variant is not None and ce.variant.target.text == var
    diff = ce.difference["grad_x_input"]
    assert [(c["original"], c["variant"]) for c in diff["changed"]] == [("great", "gr8")]
    assert diff["score_original"] == pytest.approx(ce.original.explanations[0].score)
    assert 0 <= diff["changed_mass_original"] <= 1


def test_record_without_target_is_refused(tiny_causal) -> None:
    from lmcritic.errors import InputError
    from lmcritic.interpret.cases import explain_record

    with pytest.raises(InputError, match="explain"):
        explain_record(tiny_causal, Record("x", {"text": "hi"}, {}, {}), [])


def test_cli_explain_case_and_worst(sst2_run, tmp_path, capsys) -> None:
    from lmcritic.cli.main import main

    store, run_id, home = sst2_run
    case = next(r for r in store.records(run_id, "performance.sst2") if r.passed is False).case_id
    page = tmp_path / "x.html"
    args = [run_id, "--store", str(home / "runs.sqlite"), "--cache", str(home / "cache.sqlite")]
    assert main(["explain", *args[:1], case, *args[1:], "--method", "grad_x_input", "--method", "attention",
                 "--html", str(page), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.split("\nwrote ")[0])
    assert out[0]["case_id"] == case and len(out[0]["original"]["explanations"]) == 2
    html = page.read_text()
    assert "<script" not in html and "lmc-attention" in html and "lmc-tokens" in html
    assert main(["explain", *args, "--worst", "1", "--method", "leave_one_out", "--no-faithfulness"]) == 0
    assert "stored 1 explanations" in capsys.readouterr().out
    assert main(["explain", *args[:1], "nope", *args[1:]]) == 2


@pytest.mark.slow
def test_smollm2_sst2_failure_explained() -> None:
    """SmolLM2 on a real SST-2 sentence: the explained score is the probe's margin; leave-one-out beats random."""
    from lmcritic.backends import load_model
    from lmcritic.interpret import ERASER, Target, attributor
    from lmcritic.requests import LoglikelihoodRequest

    model = load_model("smollm2-135m")
    text = "there has always been something likable about the marquis de sade ."
    ctx = f"Review: {text}\nSentiment:"
    t = Target(ctx, " negative", " positive", span=(8, 8 + len(text)))
    res = model.loglikelihood([LoglikelihoodRequest(ctx, " negative"), LoglikelihoodRequest(ctx, " positive")])
    gxi, loo = attributor("grad_x_input")(model, t), attributor("leave_one_out")(model, t)
    assert gxi.score == pytest.approx(res[0].logprob - res[1].logprob, abs=1e-3)
    f = ERASER()(model, loo)
    assert f.comprehensiveness > f.random_comprehensiveness
