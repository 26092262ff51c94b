"""Perplexity of a text set with a strided sliding window, and where in each text the model is lost.

Token-level perplexity, word-level perplexity and bits per byte use lm-eval's definitions
(word = whitespace-separated chunk; bytes = UTF-8 bytes). Each document keeps its per-token surprisal
and its worst span, so the report can show them and diagnosis can ask why. A masked LM (no left-to-right
log-probs) is measured on its own objective instead: pseudo-perplexity from the pseudo-log-likelihood (Salazar
et al. 2020: each token masked in turn), on documents short enough for the model.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from lmcritic import stats
from lmcritic._serde import to_jsonable
from lmcritic.backends.base import Backend
from lmcritic.datasets import packaged, read_lines, read_rows
from lmcritic.findings import make_finding
from lmcritic.probes.base import Case, Finding, Probe, ProbeConfig, Record, Severity
from lmcritic.requests import Capability, RollingRequest, RollingResult

LN2 = math.log(2)
PSEUDO_WORDS = 48  # a masked LM scores the first words of each document (one forward pass per token; fits 128)


@dataclass(frozen=True)
class PerplexityConfig(ProbeConfig):
    data: str | None = None  # None: packaged SST-2 sentences grouped into documents; or .txt/.tsv/.jsonl
    docs: int | None = 40
    sentences_per_doc: int = 10  # only for sentence-per-row files
    window: int = 256  # model input length per window
    stride: int = 128  # new tokens scored per later window (== window: lm-eval's disjoint windows)
    span_tokens: int = 8  # length of the "worst span" shown per document
    max_token_perplexity: float = 200.0  # above this the finding fails

    def __post_init__(self) -> None:
        if not 0 < self.stride <= self.window:
            raise ValueError("need 0 < stride <= window")


class Perplexity(Probe):
    name = "performance.perplexity"
    area = "performance"
    requires = frozenset()  # rolling_logprobs (causal LM) or pseudo_loglikelihood (masked LM)
    Config = PerplexityConfig
    chunk_size = 8

    def not_applicable(self, model: Backend) -> str | None:
        if model.supports(Capability.ROLLING_LOGPROBS) or model.supports(Capability.PSEUDO_LOGLIKELIHOOD):
            return None
        return f"needs rolling_logprobs (causal LM) or pseudo_loglikelihood (masked LM); the {model.kind} backend " \
               "has neither"

    def cases(self) -> Iterable[Case]:
        for i, (text, tags) in enumerate(self._documents()):
            if self.config.docs is not None and i >= self.config.docs:
                break
            yield Case(id=f"doc-{i:04d}", input={"text": text}, tags=tags)

    def score(self, model: Backend, cases: Sequence[Case]) -> list[Record]:
        if not model.supports(Capability.ROLLING_LOGPROBS):
            return self._pseudo(model, cases)
        reqs = [RollingRequest(c.input["text"], self.config.window, self.config.stride) for c in cases]
        return [self._record(c, r) for c, r in zip(cases, model.rolling_logprobs(reqs))]

    def _pseudo(self, model: Backend, cases: Sequence[Case]) -> list[Record]:
        """Masked LM: pseudo-log-likelihood per document (its tokens and surprisals; spans by token index)."""
        from lmcritic.requests import PseudoLoglikelihoodRequest

        short = [replace(c, input={**c.input, "text": " ".join(c.input["text"].split()[:PSEUDO_WORDS])}) for c in cases]
        out = []
        results = model.pseudo_loglikelihood([PseudoLoglikelihoodRequest(c.input["text"]) for c in short])
        for c, r in zip(short, results):
            spans = tuple((0, 0) for _ in r.tokens)
            rolled = RollingResult(tuple(range(len(r.tokens))), r.tokens, r.token_logprobs, spans)
            rec = self._record(c, rolled)
            out.append(Record(rec.case_id, rec.input, {**rec.output, "method": "pseudo_loglikelihood"}, rec.scores,
                              {**rec.tags, "method": "pseudo"}, rec.passed))
        return out

    def summarize(self, records: Sequence[Record]) -> list[Finding]:
        if not records:
            return []
        nll = [r.scores["nll"] for r in records]
        tok_ppl = stats.transform(stats.ratio_of_sums(nll, [r.scores["n_tokens"] for r in records]), math.exp)
        word_ppl = stats.transform(stats.ratio_of_sums(nll, [r.scores["n_words"] for r in records]), math.exp)
        bpb = stats.transform(stats.ratio_of_sums(nll, [r.scores["n_bytes"] for r in records]), lambda x: x / LN2)
        worst = sorted(records, key=lambda r: -r.output["worst_span"]["mean_surprisal"])
        over = tok_ppl.value - self.config.max_token_perplexity
        return [make_finding(
            probe=self.name, name="perplexity",
            failed=over > 0,
            severity=Severity.MEDIUM if over > 0 else Severity.INFO,
            summary=f"{'pseudo-' if records[0].output.get('method') else ''}token perplexity {tok_ppl}; "
            f"word perplexity "
            f"{word_ppl.value:.4g}; "
            f"bits/byte {bpb.value:.4g} (window {self.config.window}, stride {self.config.stride})",
            estimate=tok_ppl,
            evidence=tuple(r.case_id for r in worst[:5]),
            details={"word_perplexity": to_jsonable(word_ppl), "bits_per_byte": to_jsonable(bpb),
                     "worst_spans": [{"case_id": r.case_id, **r.output["worst_span"]} for r in worst[:5]],
                     "window": self.config.window, "stride": self.config.stride},
        )]

    # -- helpers -------------------------------------------------------------------------------
    def _documents(self) -> Iterable[tuple[str, dict]]:
        path = Path(self.config.data) if self.config.data else packaged("sst2_train_sentences.tsv")
        if path.suffix.lower() == ".txt":
            paragraphs = _paragraphs(read_lines(path))
            yield from ((p, {"source": str(path), "paragraph": i}) for i, p in enumerate(paragraphs))
            return
        rows = [(line, (row.get("text") or row.get("sentence") or "").strip(), row)
                for line, row in read_rows(path, required=())]
        if rows and all(len(r[1].split()) < 60 for r in rows):  # sentence-per-row: group into documents
            k = self.config.sentences_per_doc
            for i in range(0, len(rows), k):
                group = rows[i : i + k]
                lines = [int(r[2].get("train_line") or r[0]) for r in group]
                yield " ".join(r[1] for r in group), {"source": _source(self.config.data), "lines": lines}
        else:
            yield from ((text, {"source": _source(self.config.data), "line": line}) for line, text, _ in rows)

    def _record(self, case: Case, res: RollingResult) -> Record:
        text = case.input["text"]
        nll = -res.total
        n_bytes = len(text.encode("utf-8"))
        n_words = len(re.split(r"\s+", text))
        return Record(
            case_id=case.id,
            input=case.input,
            output={"tokens": list(res.tokens), "logprobs": [round(x, 5) for x in res.logprobs],
                    "offsets": [list(o) for o in res.offsets],
                    "worst_span": _worst_span(text, res, self.config.span_tokens)},
            scores={"nll": nll, "n_tokens": float(res.n_tokens), "n_words": float(n_words), "n_bytes": float(n_bytes),
                    "token_perplexity": math.exp(nll / max(res.n_tokens, 1)), "bits_per_byte": nll / n_bytes / LN2},
            tags=case.tags, text=text,
        )


def _worst_span(text: str, res: RollingResult, k: int) -> dict:
    """The k consecutive tokens with the highest mean surprisal (−log p)."""
    s = -np.asarray(res.logprobs, dtype=float)
    k = max(1, min(k, len(s)))
    means = np.convolve(s, np.ones(k) / k, mode="valid")
    i = int(np.argmax(means))
    start, end = res.offsets[i][0], res.offsets[i + k - 1][1]
    span = text[start:end] if end > start else " ".join(res.tokens[i : i + k])  # no offsets: pseudo-LL tokens
    return {"start_char": int(start), "end_char": int(end), "text": span,
            "mean_surprisal": float(means[i]), "token_index": i}


def _source(data: str | None) -> str:
    return "sst2_train_sample" if data is None else str(data)


def _paragraphs(lines: Iterable[tuple[int, str]]) -> list[str]:
    """Consecutive non-blank lines joined; a blank (or skipped) line ends a paragraph."""
    out: list[list[str]] = []
    last = -1
    for number, text in lines:
        if number != last + 1 or not out:
            out.append([])
        out[-1].append(text)
        last = number
    return ["\n".join(p).strip() for p in out if "".join(p).strip()]
