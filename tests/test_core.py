"""Registry, spec, stats, serde, datasets and import hygiene: the pieces everything else stands on."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from lmcritic import stats
from lmcritic._serde import canonical_json, from_jsonable, stable_hash, to_jsonable
from lmcritic.datasets import read_rows
from lmcritic.errors import ConfigError, DataError, UnknownNameError, did_you_mean
from lmcritic.registry import Registry
from lmcritic.requests import ChatMessage, GenerateRequest, GenParams, RollingResult
from lmcritic.spec import RunSpec


def test_import_is_light() -> None:
    code = ("import sys, lmcritic, lmcritic.cli.main; "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_api_resolves() -> None:
    import lmcritic

    for name in lmcritic.__all__:
        assert getattr(lmcritic, name) is not None


def test_registry_lazy_and_did_you_mean() -> None:
    reg: Registry[object] = Registry("widgets")
    reg.add("json-dumps", "json:dumps")

    @reg.register("answer")
    def answer() -> int:
        return 42

    assert reg.get("json-dumps") is json.dumps
    assert reg.get("answer")() == 42
    with pytest.raises(UnknownNameError, match="did you mean 'answer'"):
        reg.get("anwser")


def test_did_you_mean_is_one_wording() -> None:
    assert did_you_mean("scna", ["scan", "run"]) == "did you mean 'scan'?"
    assert did_you_mean("zzz", ["scan", "run"]) == "known: scan, run"
    assert did_you_mean("zzz", [], None) == "known: none" and did_you_mean("zzz", ["a"], "") == ""
    assert did_you_mean("sst", ["sst2", "sst5", "mnli"], n=3, cutoff=0.5) == "did you mean 'sst5', 'sst2'?"


def test_registry_refuses_duplicates_and_checks_types() -> None:
    from lmcritic.errors import RegistryError
    from lmcritic.probes.base import Probe

    reg: Registry[object] = Registry("widgets", subclass_of=Probe)
    reg.add("sst2", "lmcritic.probes.performance.sst2:SST2Accuracy")
    reg.add("sst2", "lmcritic.probes.performance.sst2:SST2Accuracy")  # the same target again: harmless
    with pytest.raises(RegistryError, match="'sst2' is already registered to 'lmcritic.probes.performance.sst2:"
                                            "SST2Accuracy'; refusing to replace it with 'json:dumps'"):
        reg.add("sst2", "json:dumps")
    reg.add("sst2", "json:dumps", replace=True)
    with pytest.raises(RegistryError, match="not a Probe subclass"):
        reg.get("sst2")
    reg.add("sst2", "lmcritic.probes.performance.sst2:SST2Accuracy", replace=True)
    assert issubclass(reg.get("sst2"), Probe)
    reg.add("sst2", "lmcritic.probes.performance.sst2:SST2Accuracy")  # its path, once resolved, is still the same
    with pytest.raises(RegistryError, match="replace=True"):
        reg.register("sst2")(Probe)


def test_serde_round_trip_nested() -> None:
    req = GenerateRequest(messages=(ChatMessage("user", "hi"),), params=GenParams(stop=("\n",), seed=3))
    again = from_jsonable(GenerateRequest, json.loads(canonical_json(req)))
    assert again == req
    res = RollingResult((1, 2), ("a", "b"), (-1.0, -2.5), ((0, 1), (1, 2)))
    assert from_jsonable(RollingResult, to_jsonable(res)) == res
    assert stable_hash(req) == stable_hash(again) != stable_hash(GenerateRequest(prompt="hi"))


def test_spec_round_trip_and_errors(tmp_path) -> None:
    spec = RunSpec.default().resolved()
    path = tmp_path / "spec.json"
    path.write_text(spec.to_json())
    assert RunSpec.from_file(path) == spec
    (tmp_path / "bad.yaml").write_text("model: smollm2-135m\nprobs: [performance.sst2]\n")
    with pytest.raises(ConfigError, match="did you mean 'probes'"):
        RunSpec.from_file(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="did you mean 'performance.sst2'"):
        RunSpec.from_dict({"probes": ["performance.sst"]})
    with pytest.raises(ConfigError, match="did you mean 'shots'"):
        RunSpec.from_dict({"probes": [{"name": "performance.sst2", "config": {"shot": 2}}]}).resolved()
    (tmp_path / "broken.yaml").write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml line"):
        RunSpec.from_file(tmp_path / "broken.yaml")
    with pytest.raises(ConfigError, match="not found"):
        RunSpec.from_file(tmp_path / "missing.yaml")


def test_wilson_and_bootstrap_cover_truth() -> None:
    est = stats.proportion([True] * 8 + [False] * 2)
    assert est.n == 10 and est.ci_low < 0.8 < est.ci_high
    assert stats.proportion([True] * 5).ci_high == 1.0
    m = stats.mean([1.0, 2.0, 3.0, 4.0])
    assert m.ci_low <= 2.5 <= m.ci_high
    assert stats.bootstrap([1, 2, 3, 4]).ci_low == m.ci_low  # seeded: reproducible


def test_paired_tests() -> None:
    a = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0]
    b = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert stats.mcnemar(a, b) == pytest.approx(2 / 2**8)
    delta, p = stats.paired_bootstrap([0.0] * 30, [1.0] * 30)
    assert delta.value == 1.0 and p < 0.01


def test_paired_mean_difference_is_honest_at_small_n() -> None:
    """Six swaps that all move p(negative) by about 0.04 (the demo's D4): the resampled centred differences had
    said p = 0.0002; no test of six pairs can go below 2/64, and the interval widens by Student's t."""
    d = [0.03, 0.05, 0.04, 0.045, 0.035, 0.042]
    est, p = stats.paired_bootstrap([0.0] * 6, d)
    assert p == pytest.approx(2 / 64)
    plain = stats.bootstrap(d)
    assert est.ci_low < plain.ci_low and est.ci_high > plain.ci_high and est.value == plain.value
    assert stats.paired_bootstrap([0.0] * 6, [0.1, -0.1, 0.1, -0.1, 0.1, -0.1])[1] == 1.0
    assert stats.t_quantile(0.975, 1) == pytest.approx(12.706, abs=1e-3)
    assert stats.t_quantile(0.975, 5) == pytest.approx(2.571, abs=1e-3)
    assert stats.t_quantile(0.975, 30) == pytest.approx(2.042, abs=1e-3)
    big, p_big = stats.paired_bootstrap([0.0] * 40, [0.05 + 0.01 * (i % 3) for i in range(40)])
    assert p_big < 0.001 and big.ci_low > 0.05  # many pairs: Monte Carlo sign flips, a tight interval
    # 27 cases worse, 4 better, 148 unchanged: exact McNemar says 3.4e-5; 5,000 sign patterns alone could not go
    # below 1/5001 = 2e-4, which BH over ~150 metrics of a re-verification turned into 0.03 (the demo's
    # reference_correct after calibration: 29 worse, 6 better of 179, exact McNemar 1.2e-4)
    d = np.array([-1.0] * 27 + [1.0] * 4 + [0.0] * 148)
    assert 1e-5 < stats.sign_flip(d) < 1e-4
    assert stats.sign_flip(np.ones(30)) == pytest.approx(1 / (stats.MAX_DRAWS + 1), rel=0.05)
    assert stats.benjamini_hochberg([0.01, 0.04, 0.03, 0.2]) == pytest.approx([0.04, 0.0533333, 0.0533333, 0.2])


def test_paired_proportions_keep_their_width_at_small_n() -> None:
    """Newcombe's paired interval: close to Wald on Agresti's approval table (n=1600), and honest where a
    bootstrap of few 0/1 pairs collapses onto zero (0 of 6 fixed by either edit: the bootstrap says [0, 0])."""
    a = [True] * 944 + [False] * 656
    b = [True] * 794 + [False] * 150 + [True] * 86 + [False] * 570
    est, p = stats.paired_proportions(b, a)
    assert est.value == pytest.approx(0.04) and (est.ci_low, est.ci_high) == pytest.approx((0.0213, 0.0587), abs=1e-3)
    assert p == pytest.approx(stats.mcnemar(b, a))
    none, p0 = stats.paired_proportions([False] * 6, [False] * 6)
    assert stats.paired_bootstrap([0.0] * 6, [0.0] * 6)[0].ci_high == 0.0
    assert none.ci_low < -0.35 and none.ci_high > 0.35 and p0 == 1.0
    one, _ = stats.paired_proportions([False] * 7 + [True], [False] * 8)  # 0 of 8 fixed vs 1 of 8
    assert one.ci_high > 0.2  # a 20-point advantage is not excluded by 8 cases


def test_labelled_rows_read_other_column_names_and_say_so(tmp_path) -> None:
    """A user's file with "review,sentiment" columns was refused ("no column 'label'"); labelled readers take the
    usual other names, say so once, and leave every other file as it was."""
    from lmcritic.datasets import DataWarning

    csv_path = tmp_path / "rev.csv"
    csv_path.write_text("id,review,sentiment\n1,\"great, truly\",pos\n2,dull,neg\n")
    with pytest.warns(DataWarning, match="reading column 'sentiment' as the label, column 'review' as the text"):
        rows = [r for _, r in read_rows(csv_path, ("label",), labelled=True)]
    assert [(r["text"], r["label"]) for r in rows] == [("great, truly", "pos"), ("dull", "neg")]
    assert [(r["text"], r["label"]) for _, r in read_rows(csv_path, ("label",), labelled=True)] == \
        [("great, truly", "pos"), ("dull", "neg")]  # said once per file
    j = tmp_path / "rev.jsonl"
    j.write_text('{"content": "fine", "category": "sports"}\n')
    with pytest.warns(DataWarning, match="'category' as the label, column 'content' as the text"):
        assert [r["label"] for _, r in read_rows(j, (), labelled=True)] == ["sports"]
    with pytest.raises(DataError, match="no column 'label'"):
        list(read_rows(csv_path, ("label",)))  # not a labelled reader: unchanged
    keep = tmp_path / "keep.tsv"
    keep.write_text("text\tlabel\tcategory\na\t1\tx\n")
    assert [r for _, r in read_rows(keep, (), labelled=True)] == [{"text": "a", "label": "1", "category": "x"}]


def test_labelled_rows_without_one_text_fail_at_the_header(tmp_path) -> None:
    """A premise/hypothesis file had every row 'skipped' (template: 'text' is undefined) and the scan evaluated
    nothing; a labelled read now refuses the file at its header, naming the pair or the columns it has."""
    nli = tmp_path / "nli.tsv"
    nli.write_text("premise\thypothesis\tlabel\nA man plays.\tA person plays.\tentailment\n")
    with pytest.raises(DataError, match="sentence pairs \\(columns 'premise', 'hypothesis'\\)") as err:
        list(read_rows(nli, ("label",), labelled=True))
    assert "not supported yet" in str(err.value.hint)
    qnli = tmp_path / "qnli.jsonl"
    qnli.write_text('\n{"question": "Who?", "sentence": "Him.", "label": 0}\n')  # a blank first line
    with pytest.raises(DataError, match="'question', 'sentence'"):
        list(read_rows(qnli, (), labelled=True))
    other = tmp_path / "other.csv"
    other.write_text("body2,label\nx,1\n")
    with pytest.raises(DataError, match=r"no text column \(columns: body2, label\)"):
        list(read_rows(other, ("label",), labelled=True))
    assert list(read_rows(other, ("label",))) == [(2, {"body2": "x", "label": "1"})]  # not a labelled read


def test_datasets_name_file_and_line(tmp_path) -> None:
    """A malformed row is skipped and reported with its file and line; the good rows are read."""
    from lmcritic.datasets import collect_issues

    good = tmp_path / "d.tsv"
    good.write_text("sentence\tlabel\nfine\t1\n")
    assert list(read_rows(good, ("sentence", "label"))) == [(2, {"sentence": "fine", "label": "1"})]
    bad = tmp_path / "bad.tsv"
    bad.write_text("sentence\tlabel\nok\t1\nbroken row without tab\n")
    j = tmp_path / "d.jsonl"
    j.write_text('{"text": "a"}\n{"text": ""}\n')
    (tmp_path / "x.jsonl").write_text('{"text": "a"}\n{oops\n')
    with collect_issues() as issues:
        assert [line for line, _ in read_rows(bad, ("sentence", "label"))] == [2]
        assert [line for line, _ in read_rows(j, ("text",))] == [1]
        assert [line for line, _ in read_rows(tmp_path / "x.jsonl", ("text",))] == [1]
    assert [str(i).replace(str(tmp_path) + "/", "") for i in issues.issues] == [
        "bad.tsv:3: 1 fields, expected 2 (sentence, label)", "d.jsonl:2: row lacks text",
        "x.jsonl:2: not valid JSON (Expecting property name enclosed in double quotes)"]
    (tmp_path / "none.jsonl").write_text('{oops\n')
    with pytest.raises(DataError, match=r"none.jsonl: no usable rows \(1 skipped; first: line 1: not valid JSON"):
        list(read_rows(tmp_path / "none.jsonl", ("text",)))
    with pytest.raises(DataError, match=r"no column 'labels'"):
        list(read_rows(good, ("labels",)))


def test_markdown_escape_neutralises_model_text() -> None:
    from lmcritic.report._escape import md

    out = md("<script>alert(1)</script> **bold** [x](http://e) |pipe|\nline")
    assert "<script>" not in out and "**" not in out and "](" not in out and "|" not in out.replace("\\|", "")


def test_mantel_haenszel_compares_within_strata_and_standardized_reweighs() -> None:
    """Group 1 sits mostly in the stratum with more events (Simpson's paradox): pooled it looks higher, within
    strata it is not; a real excess within strata is found. The standardized rate is group 0's rate at group 1's
    stratum mix."""
    from scipy.stats import fisher_exact

    same = [(57, 190, 30, 100), (1, 20, 5, 100)]  # 30 % vs 30 %, 5 % vs 5 %
    assert fisher_exact([[58, 152], [35, 165]], alternative="greater").pvalue < 0.01  # pooled: 28 % vs 18 %
    assert stats.mantel_haenszel(same) > 0.5
    more = [(95, 190, 30, 100), (3, 20, 5, 100)]
    assert stats.mantel_haenszel(more) < 0.001
    assert stats.mantel_haenszel([(5, 10, 0, 0)]) == 1.0  # no comparison in any stratum
    est = stats.standardized([(20, 100), (10, 100)], [90, 10])
    assert abs(est.value - 0.19) < 1e-9 and est.n == 200 and est.ci_low < 0.19 < est.ci_high
