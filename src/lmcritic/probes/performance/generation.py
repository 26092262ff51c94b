"""Generation quality against reference answers: BLEU, chrF, TER, ROUGE-1/2/L and meaning (MiniLM cosine).

Lexical metrics reward reusing the reference's words; a correct answer in other words scores low, and a
wrong answer that copies most words scores high. So besides one finding per metric (corpus value, n,
bootstrap 95% CI, worst cases), the probe reports ``bleu_meaning_disagreement``: the cases where sentence
BLEU and meaning (cosine of all-MiniLM-L6-v2 embeddings) point in opposite directions.

Verdict logic of ``bleu_meaning_disagreement``. A case is

* a *paraphrase BLEU punishes* when sentence BLEU < ``paraphrase_max_bleu`` (default 20) and
  cosine >= ``paraphrase_min_cosine`` (default 0.8): the words differ, the meaning is kept;
* *overlap without meaning* when sentence BLEU >= ``overlap_min_bleu`` (default 40) and
  cosine < ``overlap_max_cosine`` (default 0.7): the words match, the meaning has moved.

The share of cases in either group gets a Wilson 95% CI. The finding FAILs (severity low; medium when
half or more disagree) when the CI's *lower* bound exceeds ``max_disagreement`` (default 0.2): we are
95% sure that on more than that share of this model's answers BLEU contradicts the meaning score, so
BLEU/ROUGE should not be read as the headline quality figure; read ``semantic_similarity`` and the
listed cases instead. Otherwise it PASSes. The finding judges the metrics' fit to this model and data,
not the model. Known blind spot: MiniLM cosine barely moves under negation or a swapped name or number
("safe" vs "not safe" ≈ 0.9), so "overlap without meaning" catches topic drift, not every factual slip.

Per-metric findings FAIL when the corpus value misses ``thresholds[metric]`` (a minimum; a maximum for
TER); metrics without a threshold are reported with verdict pass and severity info.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from lmcritic import stats
from lmcritic._serde import to_jsonable
from lmcritic.backends.base import Backend
from lmcritic.datasets import packaged, read_rows, skip_row
from lmcritic.errors import DataError, did_you_mean
from lmcritic.findings import make_finding, shortfall
from lmcritic.metrics import METRICS, estimate
from lmcritic.metrics.generation import GENERATION_METRICS, SACRE_KINDS, case_scores, cosines
from lmcritic.probes.base import Case, Finding, Probe, ProbeConfig, Record, Severity
from lmcritic.requests import Capability, ChatMessage, GenerateRequest, GenerateResult, GenParams

PER_CASE = {"semantic_similarity": "cosine"}  # metric name → per-case score key (others: the same name)
LABELS = {"bleu": "corpus BLEU", "chrf": "corpus chrF", "ter": "corpus TER", "rouge1": "mean ROUGE-1 F",
          "rouge2": "mean ROUGE-2 F", "rougeL": "mean ROUGE-L F", "semantic_similarity": "mean MiniLM cosine"}
SHOW_CHARS = 300  # prediction/reference text kept per listed case


@dataclass(frozen=True)
class GenerationConfig(ProbeConfig):
    data: str | None = None  # None: the packaged 60 tasks; or a .jsonl/.csv/.tsv with id, prompt, reference[, kind]
    n: int | None = None  # cases to use (None: all)
    seed: int = 0  # which n cases, when n is set
    max_new_tokens: int = 48
    chat: bool | None = None  # None: chat messages when the backend offers chat, else the plain template
    template: str = "{{ prompt }}\nAnswer:"  # plain (non-chat) prompt; generation stops at a newline
    metrics: tuple[str, ...] = GENERATION_METRICS
    thresholds: dict[str, float] = field(default_factory=lambda: {"semantic_similarity": 0.7})
    paraphrase_max_bleu: float = 20.0
    paraphrase_min_cosine: float = 0.8
    overlap_min_bleu: float = 40.0
    overlap_max_cosine: float = 0.7
    max_disagreement: float = 0.2

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", tuple(self.metrics))
        for name in (*self.metrics, *self.thresholds):
            if name not in GENERATION_METRICS:
                raise ValueError(f"unknown generation metric {name!r}; {did_you_mean(name, GENERATION_METRICS)}")
        if self.max_new_tokens < 1 or (self.n is not None and self.n <= 0):
            raise ValueError("max_new_tokens must be >= 1 and n > 0")
        if not 0 <= self.max_disagreement <= 1:
            raise ValueError("max_disagreement is a share, in [0, 1]")


class GenerationQuality(Probe):
    name = "performance.generation"
    area = "performance"
    requires = frozenset({Capability.GENERATE})
    Config = GenerationConfig
    chunk_size = 16

    def not_applicable(self, model: Backend) -> str | None:
        reason = super().not_applicable(model)
        if reason is None and self.config.chat and Capability.CHAT not in model.capabilities:
            return f"chat: true needs chat; the {model.kind} backend does not offer it (set chat: false)"
        return reason

    def cases(self) -> Iterable[Case]:
        rows = self._rows()
        keep = list(range(len(rows)))
        if self.config.n is not None and self.config.n < len(rows):
            keep = sorted(random.Random(self.config.seed).sample(range(len(rows)), self.config.n))
        for i in keep:
            row = rows[i]
            yield Case(id=f"gen-{row['id']}", input={"prompt": row["prompt"]}, expected=row["reference"],
                       tags={"kind": row["kind"], "source": row["source"], "line": row["line"]})

    def score(self, model: Backend, cases: Sequence[Case]) -> list[Record]:
        chat = self._use_chat(model)
        results = model.generate([self._request(c, chat) for c in cases])
        preds = [_clean(r.text, chat) for r in results]
        refs = [c.expected for c in cases]
        sims = cosines(preds, refs) if "semantic_similarity" in self.config.metrics else [None] * len(cases)
        return [self._record(c, r, p, s, chat) for c, r, p, s in zip(cases, results, preds, sims)]

    def summarize(self, records: Sequence[Record]) -> list[Finding]:
        if not records:
            return []
        findings = [self._metric_finding(name, records) for name in self.config.metrics]
        if all("cosine" in r.scores for r in records):
            findings.append(self._disagreement_finding(records))
        return findings

    # -- cases and requests ----------------------------------------------------------------------
    def _rows(self) -> list[dict[str, Any]]:
        path = self.config.data or str(packaged("gen_tasks.jsonl"))
        source = "gen_tasks" if self.config.data is None else str(path)
        rows: list[dict[str, Any]] = []
        first_line: dict[str, int] = {}
        for line, row in read_rows(path, required=("id", "prompt", "reference")):
            problem = _task_problem(row)
            rid = str(row["id"]).strip()
            if problem is None and rid in first_line:
                problem = f"duplicate id {rid!r} (first on line {first_line[rid]})"
            if problem is not None:
                skip_row(path, line, problem)  # the other tasks still run; the skip is a data_quality finding
                continue
            rows.append(_task(row, line, source))
            first_line[rid] = line
        if not rows:
            raise DataError(f"{path}: no tasks", "each row needs id, prompt, reference")
        return rows

    def _use_chat(self, model: Backend) -> bool:
        return Capability.CHAT in model.capabilities if self.config.chat is None else self.config.chat

    def _request(self, case: Case, chat: bool) -> GenerateRequest:
        if chat:
            params = GenParams(max_new_tokens=self.config.max_new_tokens)
            return GenerateRequest(messages=(ChatMessage("user", case.input["prompt"]),), params=params)
        params = GenParams(max_new_tokens=self.config.max_new_tokens, stop=("\n",))
        return GenerateRequest(prompt=self._render(case.input["prompt"]), params=params)

    def _render(self, prompt: str) -> str:
        import jinja2

        env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
        return env.from_string(self.config.template).render(prompt=prompt)

    def _record(self, case: Case, result: GenerateResult, pred: str, sim: float | None, chat: bool) -> Record:
        scores = case_scores(pred, case.expected)
        threshold = self.config.thresholds.get("semantic_similarity")
        if sim is not None:
            scores["cosine"] = sim
        passed = None if sim is None or threshold is None else sim >= threshold
        return Record(
            case_id=case.id,
            input={**case.input, "chat": chat},
            output={"reference": case.expected, "finish_reason": result.finish_reason,
                    "n_new_tokens": result.n_new_tokens},
            scores=scores, tags=dict(case.tags), passed=passed,
            text=case.input["prompt"], target=case.expected, prediction=pred,
        )

    # -- findings --------------------------------------------------------------------------------
    def _metric_finding(self, name: str, records: Sequence[Record]) -> Finding:
        est = estimate(name, _columns(records))
        higher = METRICS.get(name).higher_is_better
        threshold = self.config.thresholds.get(name)
        scale = 100.0 if name in SACRE_KINDS else 1.0
        gap = shortfall(est.value, threshold, higher) / scale
        key = PER_CASE.get(name, name)
        worst = sorted(records, key=lambda r: r.scores[key] if higher else -r.scores[key])
        judged = "no threshold set" if threshold is None else f"threshold {'≥' if higher else '≤'} {threshold:g}"
        return make_finding(
            probe=self.name, name=name, failed=gap > 0,
            effect=gap, summary=f"{LABELS[name]} {est}, scale 0–{scale:g}; {judged}",
            estimate=est, evidence=tuple(r.case_id for r in worst[:10]),
            details={"threshold": threshold, "higher_is_better": higher, "scale": scale,
                     "by_kind": _by_kind(name, records), **(_length_details(records) if key == "cosine" else {})},
        )

    def _disagreement_finding(self, records: Sequence[Record]) -> Finding:
        cfg = self.config
        para = [r for r in records if r.scores["bleu"] < cfg.paraphrase_max_bleu
                and r.scores["cosine"] >= cfg.paraphrase_min_cosine]
        over = [r for r in records if r.scores["bleu"] >= cfg.overlap_min_bleu
                and r.scores["cosine"] < cfg.overlap_max_cosine]
        para.sort(key=lambda r: r.scores["bleu"] / 100 - r.scores["cosine"])
        over.sort(key=lambda r: r.scores["cosine"] - r.scores["bleu"] / 100)
        flagged = {r.case_id for r in (*para, *over)}
        share = stats.proportion([r.case_id in flagged for r in records])
        fail = share.ci_low > cfg.max_disagreement
        return make_finding(
            probe=self.name, name="bleu_meaning_disagreement", failed=fail,
            severity=(Severity.MEDIUM if share.value >= 0.5 else Severity.LOW) if fail else Severity.INFO,
            summary=f"BLEU and meaning disagree on {share} of cases: {len(para)} paraphrases BLEU punishes "
            f"(BLEU < {cfg.paraphrase_max_bleu:g}, cosine ≥ {cfg.paraphrase_min_cosine:g}), {len(over)} word "
            f"overlaps with the meaning off (BLEU ≥ {cfg.overlap_min_bleu:g}, cosine < {cfg.overlap_max_cosine:g})"
            + ("; read semantic_similarity, not BLEU, for this model" if fail else ""),
            estimate=share, evidence=tuple(r.case_id for r in [*para[:5], *over[:5]]),
            details={"paraphrases_bleu_punishes": _listing(para, len(records)),
                     "overlap_without_meaning": _listing(over, len(records)),
                     "rank_agreement": _spearman_ci([r.scores["bleu"] for r in records],
                                                    [r.scores["cosine"] for r in records]),
                     "max_disagreement": cfg.max_disagreement},
        )


def _task_problem(row: dict[str, Any]) -> str | None:
    """Why a task row cannot be used, or None."""
    for col in ("prompt", "reference"):
        if not isinstance(row[col], str) or not row[col].strip():
            return f"{col!r} must be non-empty text, got {row[col]!r:.60}"
    if not isinstance(row["id"], (str, int)) or isinstance(row["id"], bool) or not str(row["id"]).strip():
        return "'id' must be a non-empty string or integer"
    return None


def _task(row: dict[str, Any], line: int, source: str) -> dict[str, Any]:
    """One task row (checked by :func:`_task_problem`)."""
    kind = row.get("kind") or "task"
    return {"id": str(row["id"]).strip(), "prompt": row["prompt"], "reference": row["reference"].strip(),
            "kind": str(kind), "line": line, "source": source}


def _clean(text: str, chat: bool) -> str:
    """The answer as scored: trimmed; for plain prompts only its first line (a base model runs on)."""
    text = text.strip()
    return text if chat else text.split("\n", 1)[0].strip()


def _columns(records: Sequence[Record]) -> dict[str, list[str]]:
    return {"predictions": [r.prediction for r in records],
            "references": [r.output["reference"] for r in records]}


def _by_kind(name: str, records: Sequence[Record]) -> dict[str, Any]:
    """The metric per task kind, each with its own n and CI (paraphrase vs factual often differ most)."""
    kinds = sorted({str(r.tags.get("kind")) for r in records})
    return {k: to_jsonable(estimate(name, _columns([r for r in records if str(r.tags.get("kind")) == k])))
            for k in kinds}


def _length_details(records: Sequence[Record]) -> dict[str, Any]:
    """Truncated or long answers explain many low scores; show how long the answers were."""
    return {"truncated": sum(r.output["finish_reason"] == "length" for r in records),
            "mean_words_prediction": float(np.mean([len((r.prediction or "").split()) for r in records])),
            "mean_words_reference": float(np.mean([len(r.output["reference"].split()) for r in records])),
            "encoder": _encoder_info()}


def _encoder_info() -> dict[str, Any]:
    from lmcritic import _minilm

    return _minilm.describe()


def _listing(records: Sequence[Record], n: int) -> dict[str, Any]:
    return {"share": to_jsonable(stats.proportion([True] * len(records) + [False] * (n - len(records)))),
            "cases": [{"case_id": r.case_id, "kind": r.tags.get("kind"), "bleu": r.scores["bleu"],
                       "cosine": r.scores["cosine"], "prediction": (r.prediction or "")[:SHOW_CHARS],
                       "reference": r.output["reference"][:SHOW_CHARS]} for r in records[:20]]}


def _spearman_ci(x: Sequence[float], y: Sequence[float], n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Spearman rank correlation of sentence BLEU and cosine, with a case bootstrap 95% CI."""
    a, b = np.asarray(x, float), np.asarray(y, float)
    idx = np.random.default_rng(seed).integers(0, len(a), size=(n_boot, len(a)))
    boot = [_spearman(a[i], b[i]) for i in idx]
    ok = [v for v in boot if v == v]
    lo, hi = np.quantile(ok, [0.025, 0.975]) if ok else (float("nan"), float("nan"))
    return to_jsonable({"rho": _spearman(a, b), "ci_low": float(lo), "ci_high": float(hi), "n": len(a)})


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = _ranks(a), _ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def _ranks(v: np.ndarray) -> np.ndarray:
    """Ranks with ties averaged (sentence BLEU has many ties at 0 and 100)."""
    _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)
    return (upper - (counts - 1) / 2)[inverse]
