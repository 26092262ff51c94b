"""Task specs: loading and validation, data errors with file and line, templates, few-shot, and every output
type run end to end on the tiny fixture models (MC acc/acc_norm checked against a hand computation)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from lmcritic.errors import ConfigError, DataError
from lmcritic.tasks import build_cases, load_task, packaged_tasks


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


MC_ROWS = [
    {"q": "the film was", "opts": ["great fun", "a bore", "dull", "a disaster"], "gold": 0},
    {"q": "the plot is", "opts": ["thin", "wonderful and moving", "ok", "long"], "gold": 1},
    {"q": "acting was", "opts": ["bad", "good", "fine", "terrible indeed"], "gold": 3},
    {"q": "music felt", "opts": ["flat", "lovely", "loud", "sad"], "gold": "lovely"},
    {"q": "overall it is", "opts": ["a mess", "worth seeing", "too long", "boring"], "gold": 2},
]


def _mc_task(tmp_path, **extra):
    data = _write(tmp_path / "mc.jsonl", MC_ROWS)
    return {"name": "mc", "output_type": "multiple_choice", "data": {"path": str(data)},
            "prompt": "Review: {{ q }}", "choices": "opts", "target": "gold", **extra}


# -- spec validation ------------------------------------------------------------------------------------
def test_packaged_tasks_load_and_build():
    assert {"sst2", "mc_knowledge", "qa_short"} <= set(packaged_tasks())
    mc = load_task("mc_knowledge")
    cases = build_cases(mc)
    assert len(cases) == 42 - 3  # three shots drawn from the file and left out
    assert all(c.tags["source"] == "mc_knowledge.jsonl" and isinstance(c.tags["line"], int) for c in cases)
    assert cases[0].input["prompt"].startswith("Answer each question.\n\nQuestion: ")
    sst = build_cases(load_task("sst2"), n=5)
    assert [c.tags["source"] for c in sst] == ["sst2_dev"] * 5  # dev line joins with performance.sst2
    assert sst[0].id == f"sst2-{sst[0].tags['line']}"


@pytest.mark.parametrize("bad, message", [
    ({"outptu_type": "x"}, "did you mean 'output_type'"),
    ({"output_type": "multiple_choise"}, "did you mean 'multiple_choice'"),
    ({"metrics": ["acc", "acc_nrom"]}, "did you mean 'acc_norm'"),
    ({"metrics": ["word_perplexity"]}, "does not apply to multiple_choice"),
    ({"thresholds": {"ece": 0.1}}, "not in metrics"),
    ({"fewshot": {"n": 1, "sede": 3}}, "did you mean 'seed'"),
    ({"choices": None}, "needs 'choices'"),
])
def test_spec_errors_name_the_key(tmp_path, bad, message):
    with pytest.raises(ConfigError, match=message):
        load_task(_mc_task(tmp_path, **bad))


def test_unknown_packaged_name_suggests():
    with pytest.raises(ConfigError, match="did you mean 'mc_knowledge'"):
        load_task("mc_knowledg")


def test_overrides_deep_merge():
    task = load_task("mc_knowledge", {"fewshot": {"n": 0}, "metrics": ["acc"]})
    assert task.fewshot.n == 0 and task.fewshot.separator == "\n\n" and task.metrics == ("acc",)
    assert len(build_cases(task)) == 42


def test_yaml_file_relative_data(tmp_path):
    _write(tmp_path / "rows.jsonl", MC_ROWS)
    (tmp_path / "t.yaml").write_text(
        "output_type: multiple_choice\ndata: {path: rows.jsonl}\nprompt: q\nchoices: opts\ntarget: gold\n")
    task = load_task(str(tmp_path / "t.yaml"))
    assert task.name == "t" and [c.input["gold"] for c in build_cases(task)] == [0, 1, 3, 1, 2]


# -- data and template errors -------------------------------------------------------------------------
def _skipped(task) -> tuple[list, list[str]]:
    """Cases built, and the skipped rows as "file:line: reason" (file name only)."""
    from lmcritic.datasets import collect_issues

    with collect_issues() as issues:
        cases = build_cases(task)
    return cases, [f"{Path(i.path).name}:{i.line}: {i.reason}" for i in issues.issues]


def test_malformed_rows_name_file_and_line(tmp_path):
    """A malformed row is skipped and reported with its file and line; the others become cases."""
    rows = [*MC_ROWS[:2], {"q": "x", "opts": ["a", "b"], "gold": 7}]
    task = load_task(_mc_task(tmp_path))
    _write(tmp_path / "mc.jsonl", rows)
    cases, skipped = _skipped(task)
    assert len(cases) == 2 and len(skipped) == 1 and skipped[0].startswith("mc.jsonl:3: target 7")
    (tmp_path / "mc.jsonl").write_text(json.dumps(MC_ROWS[0]) + "\n{not json\n")
    cases, skipped = _skipped(task)
    assert len(cases) == 1 and skipped[0].startswith("mc.jsonl:2: not valid JSON")
    _write(tmp_path / "mc.jsonl", [MC_ROWS[0], {"opts": ["a", "b"], "gold": 0}])
    cases, skipped = _skipped(task)
    assert len(cases) == 1 and skipped[0].startswith("mc.jsonl:2: prompt template: 'q' is undefined")


def test_tsv_field_count_error(tmp_path):
    (tmp_path / "d.tsv").write_text("text\tlabel\ngood\t1\nbad\n", encoding="utf-8")
    task = load_task({"output_type": "classification", "data": {"path": str(tmp_path / "d.tsv")},
                      "prompt": "{{ text }}", "target": "label", "labels": {"0": "no", "1": "yes"}})
    cases, skipped = _skipped(task)
    assert len(cases) == 1 and skipped == ["d.tsv:3: 1 fields, expected 2 (text, label)"]


def test_template_is_sandboxed(tmp_path):
    task = load_task(_mc_task(tmp_path, prompt="{{ q.__class__.__mro__[1].__subclasses__() }}"))
    with pytest.raises((ConfigError, DataError)):
        build_cases(task)


def test_choices_as_templates_and_json(tmp_path):
    _write(tmp_path / "r.jsonl", [{"q": "2+2", "a": "4", "b": "5", "ans": "4"}])
    base = {"output_type": "multiple_choice", "data": {"path": str(tmp_path / "r.jsonl")}, "prompt": "{{ q }} =",
            "target": "ans"}
    c1 = build_cases(load_task({**base, "choices": ["{{ a }}", "{{ b }}"]}))[0]
    c2 = build_cases(load_task({**base, "choices": '{{ [a, b] | tojson }}'}))[0]
    assert c1.input["choices"] == c2.input["choices"] == ["4", "5"] and c1.input["gold"] == 0
    assert c1.input["continuations"] == [" 4", " 5"]


def test_fewshot_seeded_and_excluded(tmp_path):
    rows = [{"q": f"item {i}", "opts": ["yes", "no"], "gold": i % 2} for i in range(20)]
    _write(tmp_path / "mc.jsonl", rows)
    spec = {"output_type": "multiple_choice", "data": {"path": str(tmp_path / "mc.jsonl")}, "prompt": "Q: {{ q }}",
            "choices": "opts", "target": "gold", "fewshot": {"n": 2, "seed": 5, "separator": "\n##\n"}}
    a, b = build_cases(load_task(spec)), build_cases(load_task(spec))
    assert [c.input["prompt"] for c in a] == [c.input["prompt"] for c in b]
    assert len(a) == 18 and a[0].input["prompt"].count("\n##\n") == 2
    shot_qs = {ln.split("Q: ")[1].split(" ")[0:2][1] for ln in a[0].input["prompt"].split("\n##\n")[:2]}
    assert not any(c.input["prompt"].endswith(f"Q: item {q}") for c in a for q in shot_qs)
    other = build_cases(load_task({**spec, "fewshot": {"n": 2, "seed": 6}}))
    assert other[0].input["prompt"] != a[0].input["prompt"] or other[1].id != a[1].id


def test_hf_dataset_code_path(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # fail at once instead of retrying a hub we cannot reach
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    _write(tmp_path / "mc.jsonl", MC_ROWS[:3])  # the real load_dataset path, with the local json builder
    task = load_task({"output_type": "multiple_choice", "prompt": "q", "choices": "opts", "target": "gold",
                      "data": {"hf": "json", "split": "train",
                               "hf_kwargs": {"data_files": str(tmp_path / "mc.jsonl")}}})
    cases = build_cases(task)
    assert [c.tags["line"] for c in cases] == [0, 1, 2] and cases[0].tags["source"] == "hf:json:train"
    missing = load_task({**task.to_dict(), "source": "", "data": {"hf": "no-such-org/no-such-set", "split": "test"},
                         "fewshot": {}, "generation": {}, "rolling": {}})
    with pytest.raises(DataError, match="cannot load hf dataset hf:no-such-org/no-such-set:test") as err:
        build_cases(missing)
    assert "\n" not in str(err.value)


# -- end to end on tiny models --------------------------------------------------------------------------
def _run(probe, model):
    cases = list(probe.cases())
    records = probe.score(model, cases)
    return cases, records, probe.summarize(records)


def test_mc_matches_hand_computation(tiny_causal, tmp_path):
    from lmcritic.probes.performance.task import TaskProbe
    from lmcritic.requests import LoglikelihoodRequest

    probe = TaskProbe(task="mc_knowledge", n=16,
                      overrides={"metrics": ["acc", "acc_norm", "acc_bytes", "acc_mutual_info"]})
    cases, records, findings = _run(probe, tiny_causal)
    acc = acc_norm = acc_bytes = pmi = 0
    for c, r in zip(cases, records):
        lls = [x.logprob for x in tiny_causal.loglikelihood(
            [LoglikelihoodRequest(c.input["prompt"], " " + o) for o in c.input["choices"]])]
        unc = [x.logprob for x in tiny_causal.loglikelihood([LoglikelihoodRequest("", " " + o)
                                                              for o in c.input["choices"]])]
        assert r.output["choice_logprobs"] == pytest.approx(lls, abs=1e-4)
        gold = c.input["gold"]
        acc += lls.index(max(lls)) == gold
        norm = [ll / len(o) for ll, o in zip(lls, c.input["choices"])]
        acc_norm += norm.index(max(norm)) == gold
        per_byte = [ll / len(o.encode()) for ll, o in zip(lls, c.input["choices"])]
        acc_bytes += per_byte.index(max(per_byte)) == gold
        mi = [a - b for a, b in zip(lls, unc)]
        pmi += mi.index(max(mi)) == gold
        foil = r.explain.foil
        assert r.explain.target == " " + c.expected and foil != r.explain.target
        assert r.explain.context == c.input["prompt"]
    by = {f.name: f for f in findings}
    n = len(cases)
    assert by["acc"].estimate.value == pytest.approx(acc / n) and by["acc"].estimate.n == n
    assert by["acc_norm"].estimate.value == pytest.approx(acc_norm / n)
    assert by["acc_mutual_info"].estimate.value == pytest.approx(pmi / n)
    assert by["acc_bytes"].estimate.value == pytest.approx(acc_bytes / n)
    assert by["acc"].estimate.ci_low <= by["acc"].estimate.value <= by["acc"].estimate.ci_high
    assert by["acc"].details["plots"][0]["kind"] == "bars"
    assert by["accuracy_by_gold_position"].estimate.n >= 1 and "accuracy_by_category" in by


def test_classification_label_words_and_head(tiny_causal, tiny_classifier):
    from lmcritic.probes.performance.task import TaskProbe

    probe = TaskProbe(task="sst2", n=12, overrides={"fewshot": {"n": 2}})
    cases, records, findings = _run(probe, tiny_causal)
    r = records[0]
    assert len(r.output["choice_logprobs"]) == 2 and sum(r.output["probs"]) == pytest.approx(1.0)
    assert r.input["prompt"].count("Sentiment: ") == 2  # two shots, each with its label word
    names = {f.name for f in findings}
    assert {"acc", "macro_f1", "ece", "brier", "per_class_accuracy"} <= names
    ece = next(f for f in findings if f.name == "ece")
    assert ece.details["plots"][0]["kind"] == "reliability"
    acc = next(f for f in findings if f.name == "acc").estimate
    assert acc.value == pytest.approx(sum(bool(r.passed) for r in records) / 12)

    head = TaskProbe(task="sst2", n=12)
    assert head.not_applicable(tiny_classifier) is None
    _, hrec, hfind = _run(head, tiny_classifier)
    assert "model_labels" in hrec[0].output and hrec[0].explain.kind == "label"
    assert set(hrec[0].label_probs) == set(head.labels()) and hrec[0].prediction in head.labels()
    assert next(f for f in hfind if f.name == "acc").estimate.n == 12


def test_generate_exact_match_and_f1(tiny_causal):
    from lmcritic.probes.performance.task import TaskProbe

    probe = TaskProbe(task="qa_short", n=6, overrides={"generation": {"max_new_tokens": 6}})
    cases, records, findings = _run(probe, tiny_causal)
    from lmcritic.metrics.classification import normalize_answer, token_f1_one

    for c, r in zip(cases, records):
        assert "\n" not in r.prediction
        em = max(float(normalize_answer(r.prediction) == normalize_answer(a)) for a in c.input["references"])
        assert r.scores["exact_match"] == em
        assert r.scores["token_f1"] == max(token_f1_one(r.prediction, a) for a in c.input["references"])
    f1 = next(f for f in findings if f.name == "token_f1")
    assert f1.estimate.value == pytest.approx(sum(r.scores["token_f1"] for r in records) / 6)
    assert {"exact_match", "token_f1", "chrf"} <= {f.name for f in findings}


def test_perplexity_task_matches_rolling(tiny_causal, tmp_path):
    from lmcritic.probes.performance.task import TaskProbe
    from lmcritic.requests import RollingRequest

    texts = ["a good film with a fine cast .", "the worst movie of the year , dull and long ."]
    _write(tmp_path / "p.jsonl", [{"text": t} for t in texts])
    probe = TaskProbe(task=str(_spec(tmp_path, {"output_type": "perplexity", "data": {"path": "p.jsonl"},
                                                "prompt": "text", "rolling": {"window": 8, "stride": 8}})))
    _, records, findings = _run(probe, tiny_causal)
    res = tiny_causal.rolling_logprobs([RollingRequest(t, 8, 8) for t in texts])
    words = sum(len(t.split()) for t in texts)
    want = math.exp(-sum(r.total for r in res) / words)
    assert next(f for f in findings if f.name == "word_perplexity").estimate.value == pytest.approx(want, rel=1e-6)
    assert records[0].explain.target


def _spec(tmp_path, data):
    p = tmp_path / "task.json"
    p.write_text(json.dumps(data), encoding="utf-8")
    return p


def test_not_applicable_and_runner(tiny_masked, tiny_causal, tmp_path):
    from lmcritic.probes.performance.task import TaskProbe
    from lmcritic.runner import Runner
    from lmcritic.spec import RunSpec

    assert "needs generate" in TaskProbe(task="qa_short").not_applicable(tiny_masked)
    spec = RunSpec.from_dict({"model": "tiny", "probes": [
        {"name": "performance.task", "config": {"task": "mc_knowledge", "n": 8}}]})
    runner = Runner(store_path=tmp_path / "runs.sqlite", cache_path=tmp_path / "cache.sqlite", progress=False)
    out = runner.run(spec, model=tiny_causal)
    assert out.status == "done"
    recs = runner.store.records(out.run_id, "performance.task")
    assert len(recs) == 8 and all("choice_logprobs" in r.output and "line" in r.tags for r in recs)
    assert any(f.name == "acc" for f in runner.store.findings(out.run_id))


def test_lmeval_export(tmp_path):
    import jinja2

    from lmcritic.tasks.lmeval import to_lmeval

    with pytest.raises(ConfigError, match="first_n"):
        to_lmeval(load_task("mc_knowledge"))  # random shots: lm-eval would draw other ones
    mc = to_lmeval(load_task("mc_knowledge", {"fewshot": {"n": 0}}))
    assert (mc["output_type"], mc["doc_to_choice"], mc["doc_to_target"]) == ("multiple_choice", "choices", "answer")
    assert mc["dataset_kwargs"]["data_files"]["test"].endswith("mc_knowledge.jsonl")
    assert [m["metric"] for m in mc["metric_list"]] == ["acc", "acc_norm", "acc_mutual_info"]
    sst = to_lmeval(load_task("sst2"))
    target = jinja2.Environment().from_string(sst["doc_to_target"])
    assert [target.render(label=v) for v in (0, "1", " 0")] == ["0", "1", "0"]
    assert sst["doc_to_choice"] == ["negative", "positive"] and sst["dataset_kwargs"]["delimiter"] == "\t"
    tmpl = to_lmeval(load_task({"output_type": "multiple_choice", "data": {"path": str(tmp_path / "x.jsonl")},
                                "prompt": "q", "choices": ["{{ a }}", "{{ b }}"], "target": "t"}))
    assert jinja2.Environment().from_string(tmpl["doc_to_choice"]).render(a="x", b=2) == "['x', '2']"
    with pytest.raises(ConfigError, match="not exported"):
        to_lmeval(load_task("qa_short"))
