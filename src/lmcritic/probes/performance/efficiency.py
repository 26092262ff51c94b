"""What the model costs to run: parameters, latency per request, tokens/s and peak memory.

Each case is one timed backend call — a single request (batch size 1) or all the fixed prompts in one
list (the backend batches them at its own batch size) — repeated ``repeats`` times after an untimed
warm-up, so every latency is a median with a bootstrap CI over stored calls, each with its token counts.

The probe times the *real* backend: the run hands probes a ``CachedBackend``, which would answer every
repeat from SQLite in microseconds, so it is unwrapped via ``.inner``. Timing calls therefore neither
hit nor fill the cache and do not count against the run's query budget (they are few and bounded by
``prompts × (repeats + 1) × 2`` requests per mode).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from lmcritic import stats
from lmcritic._serde import to_jsonable
from lmcritic._timing import MemoryWatch, device_type, real_backend, timed, torch_module
from lmcritic.backends.base import Backend
from lmcritic.datasets import packaged, read_rows
from lmcritic.findings import finding_name, make_finding
from lmcritic.probes.base import Case, Estimate, Finding, Probe, ProbeConfig, Record, Severity
from lmcritic.requests import Capability, GenerateRequest, GenParams, LoglikelihoodRequest

MODES = {"score": Capability.LOGLIKELIHOOD, "generate": Capability.GENERATE}
SCORE_CONTEXT = "Text:"


@dataclass(frozen=True)
class EfficiencyConfig(ProbeConfig):
    prompts: int = 8  # fixed prompts (packaged SST-2 sentences), sent one per call and all in one call
    repeats: int = 5  # timed repetitions of every call, after one untimed warm-up
    max_new_tokens: int = 16  # greedy generation length
    modes: tuple[str, ...] = ("score", "generate")
    max_score_latency_ms: float | None = None  # per request at batch size 1; None: no limit
    max_generate_latency_ms: float | None = None
    min_score_tokens_per_s: float | None = None  # at the backend's batch
    min_generate_tokens_per_s: float | None = None
    max_memory_mb: float | None = None  # peak inference memory over the start of measurement
    reset_peak_rss: bool = True  # Linux: restart VmHWM so the peak is inference's, not model loading's

    def __post_init__(self) -> None:
        if self.prompts < 1 or self.repeats < 2 or self.max_new_tokens < 1:
            raise ValueError("need prompts >= 1, repeats >= 2 (for a CI) and max_new_tokens >= 1")
        unknown = set(self.modes) - set(MODES)
        if unknown or not self.modes:
            raise ValueError(f"modes must be a non-empty subset of {sorted(MODES)}, got {list(self.modes)}")


class Efficiency(Probe):
    name = "performance.efficiency"
    area = "performance"
    requires = frozenset()  # GENERATE or LOGLIKELIHOOD: see not_applicable
    Config = EfficiencyConfig
    chunk_size = 10_000  # one chunk: one warm-up and one memory watch cover every timed call

    def not_applicable(self, model: Backend) -> str | None:
        if any(MODES[m] in model.capabilities for m in self.config.modes):
            return None
        wanted = " or ".join(MODES[m].value for m in self.config.modes)
        return f"needs {wanted} to time; the {model.kind} backend offers neither"

    def cases(self) -> Iterable[Case]:
        texts = _prompts(self.config.prompts)
        for r in range(self.config.repeats):  # repeats outermost: slow drift spreads over every setting
            for mode in self.config.modes:
                for i, text in enumerate(texts):
                    yield _case(f"{mode}-b1-r{r}-p{i:02d}", mode, "1", r, [text])
                yield _case(f"{mode}-batch-r{r}", mode, "batched", r, texts)

    def score(self, model: Backend, cases: Sequence[Case]) -> list[Record]:
        real = real_backend(model)
        runnable = [c for c in cases if MODES[c.input["mode"]] in real.capabilities]
        watch = MemoryWatch(cuda=device_type(real) == "cuda", reset=self.config.reset_peak_rss).start()
        about = _about(real)
        self._warm_up(real, runnable)
        done = {c.id: self._time_case(real, c, watch, about) for c in runnable}
        return [done.get(c.id) or _skipped(c, real) for c in cases]

    def summarize(self, records: Sequence[Record]) -> list[Finding]:
        timed_records = [r for r in records if "latency_s" in r.scores]
        if not timed_records:
            return []
        findings = []
        for mode in self.config.modes:
            mine = [r for r in timed_records if r.tags["mode"] == mode]
            if mine:
                findings += [self._latency_finding(mode, mine), self._throughput_finding(mode, mine)]
        return findings + [self._memory_finding(timed_records)]

    # -- timing --------------------------------------------------------------------------------
    def _requests(self, mode: str, texts: Sequence[str]) -> list:
        if mode == "score":
            return [LoglikelihoodRequest(SCORE_CONTEXT, " " + t) for t in texts]
        params = GenParams(max_new_tokens=self.config.max_new_tokens, temperature=0.0)
        return [GenerateRequest(prompt=t, params=params) for t in texts]

    def _call(self, real: Backend, mode: str, texts: Sequence[str]) -> tuple[list, float]:
        method = real.loglikelihood if mode == "score" else real.generate
        reqs = self._requests(mode, texts)
        return timed(lambda: method(reqs))

    def _warm_up(self, real: Backend, cases: Sequence[Case]) -> None:
        """One untimed single and batched call per mode: lazy init, allocator and kernel caches."""
        for mode in dict.fromkeys(c.input["mode"] for c in cases):
            texts = max((c.input["texts"] for c in cases if c.input["mode"] == mode), key=len)
            self._call(real, mode, texts[:1])
            self._call(real, mode, texts)

    def _time_case(self, real: Backend, case: Case, watch: MemoryWatch, about: dict[str, Any]) -> Record:
        mode = case.input["mode"]
        results, elapsed = self._call(real, mode, case.input["texts"])
        counts = _token_counts(mode, results)
        n = len(results)
        latency = elapsed / n
        limit = self._limits(mode)[0]
        return Record(
            case_id=case.id, input=case.input,
            output={**counts, **about, "memory": watch.read(),
                    "finish_reasons": [r.finish_reason for r in results] if mode == "generate" else []},
            scores={"latency_s": latency, "elapsed_s": elapsed, "n_requests": float(n),
                    "tokens": float(counts["throughput_tokens"]),
                    "tokens_per_s": counts["throughput_tokens"] / elapsed if elapsed > 0 else float("inf")},
            tags=case.tags,
            passed=None if limit is None else latency * 1000 <= limit,
        )

    # -- findings ------------------------------------------------------------------------------
    def _limits(self, mode: str) -> tuple[float | None, float | None]:
        cfg = self.config
        if mode == "score":
            return cfg.max_score_latency_ms, cfg.min_score_tokens_per_s
        return cfg.max_generate_latency_ms, cfg.min_generate_tokens_per_s

    def _latency_finding(self, mode: str, records: Sequence[Record]) -> Finding:
        single, batched = _split(records)
        est = _median_ms(single or batched)
        other = _median_ms(batched) if single and batched else None
        limit = self._limits(mode)[0]
        over = limit is not None and est.value > limit
        where = "batch size 1" if single else "the backend's batch"
        extra = f"; {other.value:.4g} ms/request at the backend's batch" if other else ""
        return make_finding(
            probe=self.name, name=finding_name("latency", mode), failed=over,
            severity=Severity.MEDIUM if over else Severity.INFO,
            summary=f"{_WHAT[mode]} latency {est} ms/request (median) at {where}{extra}; limit {_fmt(limit, 'ms')}",
            estimate=est, evidence=_slowest(single or batched),
            details={"unit": "ms per request", "batched": to_jsonable(other), "limit_ms": limit,
                     "requests_per_batched_call": _per_call(batched), **self._context(mode, records)},
        )

    def _throughput_finding(self, mode: str, records: Sequence[Record]) -> Finding:
        single, batched = _split(records)
        est = _rate(batched or single)
        slow = _rate(single) if single and batched else None
        limit = self._limits(mode)[1]
        under = limit is not None and est.value < limit
        unit = "prompt tokens scored/s" if mode == "score" else "new tokens generated/s"
        extra = f"; {slow.value:.4g} at batch size 1" if slow else ""
        return make_finding(
            probe=self.name, name=finding_name("throughput", mode), failed=under,
            severity=Severity.MEDIUM if under else Severity.INFO,
            summary=f"{est} {unit} at the backend's batch{extra}; minimum {_fmt(limit, unit)}",
            estimate=est, evidence=_slowest(batched or single),
            details={"unit": unit, "batch_size_1": to_jsonable(slow), "limit": limit,
                     "tokens_total": sum(r.scores["tokens"] for r in records)},
        )

    def _memory_finding(self, records: Sequence[Record]) -> Finding:
        peaks = _memory_peaks(records)
        which = next(k for k in ("cuda_peak_mb", "rss_peak_over_start_mb", "maxrss_delta_mb") if peaks[k] is not None)
        value = float(peaks[which] or 0.0)  # not None: chosen so
        est = Estimate(value, len(records), value, value, method="observed maximum (no sampling error)")
        limit = self.config.max_memory_mb
        over = limit is not None and value > limit
        params = records[0].output.get("n_parameters")
        return make_finding(
            probe=self.name, name="memory", failed=over,
            severity=Severity.MEDIUM if over else Severity.INFO,
            summary=f"peak inference memory {value:.1f} MiB ({_MEMORY_WHAT[which]}) over {len(records)} calls; "
            f"{_fmt_params(params)}; limit {_fmt(limit, 'MiB')}",
            estimate=est, details={**peaks, "headline": which, "limit_mb": limit, "n_parameters": params,
                                   "rss_at_start_mb": records[0].output["memory"].get("rss_start_mb")},
        )

    def _context(self, mode: str, records: Sequence[Record]) -> dict[str, Any]:
        first = records[0].output
        return {"backend_batch_size": first.get("backend_batch_size"), "device": first.get("device"),
                "max_new_tokens": self.config.max_new_tokens if mode == "generate" else None}


_WHAT = {"score": "scoring (loglikelihood)", "generate": "greedy generation"}
_MEMORY_WHAT = {"cuda_peak_mb": "torch.cuda.max_memory_allocated",
                "rss_peak_over_start_mb": "process RSS high-water mark over RSS at start",
                "maxrss_delta_mb": "rise of the process's ru_maxrss"}


def _prompts(n: int) -> list[str]:
    """The first ``n`` packaged SST-2 training sentences: fixed, so runs compare like for like."""
    rows = read_rows(packaged("sst2_train_sentences.tsv"), required=())
    texts = [(row.get("text") or row.get("sentence") or "").strip() for _, row in rows]
    return [t for t in texts if t][:n]


def _case(case_id: str, mode: str, batch: str, repeat: int, texts: list[str]) -> Case:
    return Case(id=case_id, input={"mode": mode, "texts": texts},
                tags={"mode": mode, "batch": batch, "repeat": repeat})


def _about(real: Backend) -> dict[str, Any]:
    """Parameters (declared, else counted on a white-box model), the backend's batch size and device."""
    info = real.describe()
    params = info.get("n_parameters")
    module = torch_module(real)
    if params is None and module is not None:
        params = sum(p.numel() for p in module.parameters())
    batch = info.get("batch_size", getattr(real, "batch_size", None))
    return {"n_parameters": params, "backend_batch_size": batch, "device": device_type(real)}


def _token_counts(mode: str, results: Sequence) -> dict[str, int]:
    if mode == "score":
        scored = sum(r.n_tokens for r in results)
        return {"n_tokens_scored": scored, "throughput_tokens": scored}
    new = sum(r.n_new_tokens for r in results)
    return {"n_prompt_tokens": sum(r.n_prompt_tokens for r in results), "n_new_tokens": new,
            "throughput_tokens": new}


def _skipped(case: Case, real: Backend) -> Record:
    reason = f"the {real.kind} backend cannot {MODES[case.input['mode']].value}"
    return Record(case_id=case.id, input=case.input, output={"skipped": reason}, scores={}, tags=case.tags)


def _split(records: Sequence[Record]) -> tuple[list[Record], list[Record]]:
    return [r for r in records if r.tags["batch"] == "1"], [r for r in records if r.tags["batch"] != "1"]


def _median_ms(records: Sequence[Record]) -> Estimate:
    return stats.bootstrap([r.scores["latency_s"] * 1000 for r in records], np.median)


def _rate(records: Sequence[Record]) -> Estimate:
    """Total tokens over total seconds, with a bootstrap CI over calls."""
    return stats.ratio_of_sums([r.scores["tokens"] for r in records], [r.scores["elapsed_s"] for r in records])


def _slowest(records: Sequence[Record]) -> tuple[str, ...]:
    return tuple(r.case_id for r in sorted(records, key=lambda r: -r.scores["latency_s"])[:5])


def _per_call(records: Sequence[Record]) -> int | None:
    return int(records[0].scores["n_requests"]) if records else None


def _memory_peaks(records: Sequence[Record]) -> dict[str, float | None]:
    keys = ("cuda_peak_mb", "rss_peak_over_start_mb", "maxrss_delta_mb")
    out: dict[str, float | None] = {}
    for key in keys:
        values = [r.output["memory"][key] for r in records if r.output["memory"].get(key) is not None]
        out[key] = max(values) if values else None
    return out


def _fmt(limit: float | None, unit: str) -> str:
    return "none set" if limit is None else f"{limit:g} {unit}"


def _fmt_params(n: int | None) -> str:
    return "parameter count unknown" if n is None else f"{n / 1e6:.2f}M parameters"
