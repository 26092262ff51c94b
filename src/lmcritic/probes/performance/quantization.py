"""What compressing the model costs in quality: dynamic int8 quantization of its ``nn.Linear`` layers.

A quantized copy (``torch.ao.quantization.quantize_dynamic``) is wrapped as a second backend and both
models answer the *same* cases of the existing SST-2 and perplexity probes, scored by those probes' own
code; each record pairs the two answers, so the accuracy delta (McNemar, paired bootstrap) and the
perplexity ratio (paired bootstrap) are computed on identical case ids. Only ``nn.Linear`` is quantized:
GPT-2's ``Conv1D`` blocks are not, and each finding says which modules and how many parameters were.

Both backends are called directly (the cache is bypassed): the quantized copy has no cache identity of its
own, and the per-batch timings that give the speedup must be real model calls.
"""
from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from lmcritic import stats
from lmcritic._serde import to_jsonable
from lmcritic._timing import device_type, real_backend, timed, torch_module
from lmcritic.backends.base import Backend
from lmcritic.errors import CapabilityError, LmcriticError
from lmcritic.findings import make_finding
from lmcritic.probes.base import Case, Estimate, Finding, Probe, ProbeConfig, Record, Severity
from lmcritic.probes.performance.perplexity import Perplexity
from lmcritic.probes.performance.sst2 import SST2Accuracy
from lmcritic.requests import Capability

if TYPE_CHECKING:
    import torch

TASKS: dict[str, type[Probe]] = {"sst2": SST2Accuracy, "perplexity": Perplexity}
DEFAULTS: dict[str, dict[str, Any]] = {"sst2": {"n": 100}, "perplexity": {"docs": 10}}
NOT_WHITE_BOX = "needs a white-box model to quantize"


@dataclass(frozen=True)
class QuantizationConfig(ProbeConfig):
    tasks: tuple[str, ...] = ("sst2", "perplexity")
    sst2: dict[str, Any] = field(default_factory=dict)  # options of performance.sst2 (merged over n=100)
    perplexity: dict[str, Any] = field(default_factory=dict)  # options of performance.perplexity (docs=10)
    max_accuracy_drop: float = 0.02  # tolerated absolute accuracy loss
    max_perplexity_increase: float = 0.05  # tolerated relative perplexity rise (ratio - 1)
    alpha: float = 0.05  # family-wise, Bonferroni over the quality tests run
    exclude: tuple[str, ...] = ()  # Linear layers whose name contains one of these stay fp32 (e.g. "down_proj")
    timing_batch: int = 5  # cases per timed batch: each batch is one paired timing for the speedup

    def __post_init__(self) -> None:
        if self.timing_batch < 1:
            raise ValueError("timing_batch must be >= 1")
        if not self.tasks or set(self.tasks) - set(TASKS):
            raise ValueError(f"tasks must be a non-empty subset of {sorted(TASKS)}, got {list(self.tasks)}")
        for task in TASKS:  # small defaults, overridable key by key
            object.__setattr__(self, task, {**DEFAULTS[task], **dict(getattr(self, task) or {})})


class QuantizationCost(Probe):
    name = "performance.quantization"
    area = "performance"
    requires = frozenset({Capability.GRADIENTS})
    Config = QuantizationConfig
    chunk_size = 25

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self.tasks = {t: TASKS[t](**getattr(self.config, t)) for t in self.config.tasks}
        self._quantized: tuple[Backend, Backend, dict[str, Any]] | None = None  # (original, int8, info)
        self._n_batches = 0
        self._warmed: set[str] = set()

    def not_applicable(self, model: Backend) -> str | None:
        real = real_backend(model)
        if Capability.GRADIENTS not in model.capabilities or torch_module(real) is None:
            return f"{NOT_WHITE_BOX}; the {model.kind} backend exposes no torch model"
        for task, probe in self.tasks.items():
            reason = probe.not_applicable(model)
            if reason:
                return f"the {task} task {reason}"
        return None

    def cases(self) -> Iterable[Case]:
        for task, probe in self.tasks.items():
            for c in probe.cases():
                yield Case(id=f"{task}/{c.id}", input=c.input, expected=c.expected,
                           tags={**c.tags, "task": task, "inner_id": c.id})

    def score(self, model: Backend, cases: Sequence[Case]) -> list[Record]:
        real = real_backend(model)
        quant, info = self._quantized_for(real)
        out: dict[str, Record] = {}
        for task in self.tasks:
            group = [c for c in cases if c.tags["task"] == task]
            if group:
                out.update((r.case_id, r) for r in self._score_task(task, group, real, quant))
        records = [out[c.id] for c in cases]
        records[0] = _with_output(records[0], quantization=info)  # once per chunk: summarize reads any
        return records

    def summarize(self, records: Sequence[Record]) -> list[Finding]:
        self._quantized = None  # scoring is over: free the int8 copy
        if not records:
            return []
        by_task = {t: [r for r in records if r.tags["task"] == t] for t in self.tasks}
        m = sum(bool(v) for v in by_task.values())  # Bonferroni family: the quality tests actually run
        findings = []
        if by_task.get("sst2"):
            findings.append(self._accuracy_finding(by_task["sst2"], m))
        if by_task.get("perplexity"):
            findings.append(self._perplexity_finding(by_task["perplexity"], m))
        info = next(r.output["quantization"] for r in records if "quantization" in r.output)
        return findings + [_size_finding(self.name, info), _speedup_finding(self.name, records, info)]

    # -- models --------------------------------------------------------------------------------
    def _quantized_for(self, real: Backend) -> tuple[Backend, dict[str, Any]]:
        """Build (once per model) the int8 copy, wrapped as an HF backend, and what quantizing it did."""
        if self._quantized is None or self._quantized[0] is not real:
            from lmcritic.backends.hf import HFBackend

            module = torch_module(real)
            if module is None:
                raise CapabilityError(NOT_WHITE_BOX, "use an hf backend")
            qmodule = quantize_linear(module, self.config.exclude)
            name = f"{real.describe().get('model', 'model')}+int8-dynamic"
            hf: Any = real  # a local backend: torch_module found its model
            quant = HFBackend.from_objects(qmodule, hf.tokenizer, name=name, batch_size=hf.batch_size,
                                           max_length=hf.max_length)  # identical batching and truncation
            info = {**coverage(module, self.config.exclude), "size_original_bytes": state_dict_bytes(module),
                    "size_quantized_bytes": state_dict_bytes(qmodule), "device_original": device_type(real),
                    "device_quantized": device_type(quant)}
            self._quantized = (real, quant, info)
        return self._quantized[1], self._quantized[2]

    def _score_task(self, task: str, cases: Sequence[Case], real: Backend, quant: Backend) -> list[Record]:
        """Score cases on both models in small timed batches, so the speedup gets many paired timings."""
        probe = self.tasks[task]
        inner = [Case(c.tags["inner_id"], c.input, c.expected, _inner_tags(c)) for c in cases]
        if task not in self._warmed:  # untimed: lazy init, allocator and kernel caches of both models
            probe.score(real, inner[:1])
            probe.score(quant, inner[:1])
            self._warmed.add(task)
        k = self.config.timing_batch
        return [rec for i in range(0, len(cases), k)
                for rec in self._score_batch(task, cases[i : i + k], inner[i : i + k], real, quant)]

    def _score_batch(self, task: str, cases: Sequence[Case], inner: list[Case], real: Backend,
                     quant: Backend) -> list[Record]:
        """One batch on both models, alternating which goes first (drift and cache warmth cancel out)."""
        probe = self.tasks[task]
        first_original = self._n_batches % 2 == 0
        self._n_batches += 1
        runs = [(real, "original"), (quant, "quantized")]
        got = {label: timed(functools.partial(probe.score, m, inner))
               for m, label in (runs if first_original else runs[::-1])}
        timing = {"batch": f"{task}/{inner[0].id}", "n_cases": len(inner), "original_s": got["original"][1],
                  "quantized_s": got["quantized"][1], "original_first": first_original}
        pair = _pair_sst2 if task == "sst2" else _pair_perplexity
        return [pair(c, o, q, timing) for c, o, q in zip(cases, got["original"][0], got["quantized"][0])]

    # -- findings ------------------------------------------------------------------------------
    def _accuracy_finding(self, records: Sequence[Record], m: int) -> Finding:
        a = [r.scores["original_correct"] for r in records]
        b = [r.scores["quantized_correct"] for r in records]
        delta, p_boot = stats.paired_bootstrap(a, b)
        p = stats.mcnemar([bool(x) for x in a], [bool(y) for y in b])
        p_adj = min(1.0, p * m)
        drop = -delta.value
        fail = p_adj < self.config.alpha and drop > self.config.max_accuracy_drop
        flips = sorted((r for r in records if r.scores["agree"] < 1), key=lambda r: r.scores["quantized_correct"])
        acc_o, acc_q = stats.proportion([bool(x) for x in a]), stats.proportion([bool(y) for y in b])
        return make_finding(
            probe=self.name, name="accuracy_delta", failed=fail,
            effect=drop if fail else 0.0, scale="quantization",
            summary=f"SST-2 accuracy {acc_o.value:.3f} → {acc_q.value:.3f} after int8 quantization: "
            f"delta {delta} (McNemar p={p:.3g}, Bonferroni ×{m} → {p_adj:.3g}); "
            f"{len(flips)} predictions changed; tolerance {self.config.max_accuracy_drop:g}",
            estimate=delta, evidence=tuple(r.case_id for r in flips[:10]),
            details={"accuracy_original": to_jsonable(acc_o), "accuracy_quantized": to_jsonable(acc_q),
                     "p_mcnemar": p, "p_bootstrap": p_boot, "p_adjusted": p_adj, "n_pairs": len(records),
                     "n_changed": len(flips), "tolerance": self.config.max_accuracy_drop},
        )

    def _perplexity_finding(self, records: Sequence[Record], m: int) -> Finding:
        n_tok = [r.scores["n_tokens"] for r in records]
        nll_o, nll_q = ([r.scores[k] for r in records] for k in ("original_nll", "quantized_nll"))
        ratio = stats.transform(stats.ratio_of_sums([q - o for o, q in zip(nll_o, nll_q)], n_tok), math.exp)
        _, p = stats.paired_bootstrap([x / t for x, t in zip(nll_o, n_tok)], [x / t for x, t in zip(nll_q, n_tok)])
        p_adj = min(1.0, p * m)
        rise = ratio.value - 1
        fail = p_adj < self.config.alpha and rise > self.config.max_perplexity_increase
        worst = sorted(range(len(records)), key=lambda i: (nll_o[i] - nll_q[i]) / n_tok[i])
        ppl_o, ppl_q = math.exp(sum(nll_o) / sum(n_tok)), math.exp(sum(nll_q) / sum(n_tok))
        return make_finding(
            probe=self.name, name="perplexity_ratio", failed=fail,
            effect=rise / 2 if fail else 0.0, scale="quantization",
            summary=f"token perplexity {ppl_o:.4g} → {ppl_q:.4g}: ratio {ratio} (paired bootstrap p={p:.3g}, "
            f"Bonferroni ×{m} → {p_adj:.3g}); tolerance +{self.config.max_perplexity_increase:.0%}",
            estimate=ratio, evidence=tuple(records[i].case_id for i in worst[:5]),
            details={"perplexity_original": ppl_o, "perplexity_quantized": ppl_q, "p_bootstrap": p,
                     "p_adjusted": p_adj, "n_pairs": len(records), "n_tokens": sum(n_tok),
                     "tolerance": self.config.max_perplexity_increase},
        )


# -- quantizing ------------------------------------------------------------------------------------
def quantize_linear(module: torch.nn.Module, exclude: Sequence[str] = ()) -> Any:
    """A dynamically int8-quantized fp32 CPU copy of ``module``'s ``nn.Linear`` layers (the original is kept);
    Linear layers whose name contains a string of ``exclude`` stay fp32."""
    import copy
    import warnings

    import torch

    ao_quant = getattr(getattr(torch, "ao", None), "quantization", None)
    if ao_quant is None or not hasattr(ao_quant, "quantize_dynamic"):
        raise CapabilityError(f"torch {torch.__version__} has no torch.ao.quantization.quantize_dynamic",
                              "install a torch that still ships eager dynamic quantization")
    dup = copy.deepcopy(module).to(device="cpu", dtype=torch.float32)
    with warnings.catch_warnings():  # torch.ao.quantization announces its deprecation on every call
        warnings.simplefilter("ignore")
        return ao_quant.quantize_dynamic(dup, _targets(dup, exclude), dtype=torch.qint8).eval()


def _targets(module: torch.nn.Module, exclude: Sequence[str]) -> set[str]:
    """Names of the ``nn.Linear`` submodules to quantize."""
    import torch

    return {name for name, sub in module.named_modules()
            if isinstance(sub, torch.nn.Linear) and not any(x in name for x in exclude)}


def coverage(module: torch.nn.Module, exclude: Sequence[str] = ()) -> dict[str, Any]:
    """Which weight-bearing modules the quantization reaches, and the parameters they hold."""
    import torch

    targets = _targets(module, exclude)
    total = sum(p.numel() for p in module.parameters())
    linear: dict[str, dict[str, Any]] = {}
    other: dict[str, dict[str, Any]] = {}
    for name, sub in module.named_modules():
        weight = getattr(sub, "weight", None)
        if not isinstance(weight, torch.nn.Parameter) or weight.dim() != 2:
            continue
        label = type(sub).__name__ + ("" if name in targets or not isinstance(sub, torch.nn.Linear) else " (excluded)")
        kind = (linear if name in targets else other).setdefault(label, {"modules": 0, "parameters": 0, "examples": []})
        kind["modules"] += 1
        kind["parameters"] += sum(p.numel() for p in sub.parameters(recurse=False))
        kind["examples"] = (kind["examples"] + [name])[:3]
    covered = sum(k["parameters"] for k in linear.values())
    return {"quantized_modules": linear, "not_quantized_2d_modules": other, "parameters_total": total,
            "parameters_quantized": covered, "tied_to_unquantized": sorted(_tied(module) & targets),
            "excluded_patterns": list(exclude)}


def _tied(module: torch.nn.Module) -> set[str]:
    """Linear layers sharing their weight with another module (GPT-2's lm_head ↔ wte): quantizing
    them stores a second, int8 copy of that matrix while the fp32 original stays."""
    import torch

    owners: dict[int, list[tuple[str, bool]]] = {}
    for name, sub in module.named_modules():
        weight = getattr(sub, "weight", None)
        if isinstance(weight, torch.nn.Parameter):
            owners.setdefault(id(weight), []).append((name, isinstance(sub, torch.nn.Linear)))
    return {n for group in owners.values() if len(group) > 1 for n, is_linear in group if is_linear}


def state_dict_bytes(module: torch.nn.Module) -> int:
    """Serialized size of the state dict (``torch.save``; shared tensors stored once, packed int8 as is)."""
    import torch

    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    return buf.tell()


# -- records and findings --------------------------------------------------------------------------
def _inner_tags(case: Case) -> dict[str, Any]:
    return {k: v for k, v in case.tags.items() if k not in ("task", "inner_id")}


def _check_same(case: Case, original: Record, quantized: Record) -> None:
    if not original.case_id == quantized.case_id == case.tags["inner_id"]:
        raise LmcriticError(f"paired records out of order at {case.id}", "a task probe reordered its records")


def _pair_sst2(case: Case, o: Record, q: Record, timing: dict) -> Record:
    _check_same(case, o, q)
    return Record(
        case_id=case.id, input=case.input,
        output={"original": _sst2_side(o), "quantized": _sst2_side(q), "timing": timing},
        scores={"original_correct": o.scores["correct"], "quantized_correct": q.scores["correct"],
                "original_p_true": o.scores["p_true"], "quantized_p_true": q.scores["p_true"],
                "agree": float(o.prediction == q.prediction)},
        tags=case.tags, passed=o.prediction == q.prediction, text=o.text,
    )


def _sst2_side(r: Record) -> dict[str, Any]:
    return {"prediction": r.prediction, "label_logprobs": r.output["label_logprobs"],
            "probs": list((r.label_probs or {}).values())}


def _pair_perplexity(case: Case, o: Record, q: Record, timing: dict) -> Record:
    _check_same(case, o, q)
    if o.scores["n_tokens"] != q.scores["n_tokens"]:
        raise LmcriticError(f"{case.id}: the quantized model scored a different number of tokens than the original")
    shift = max((abs(a - b) for a, b in zip(o.output["logprobs"], q.output["logprobs"])), default=0.0)
    return Record(
        case_id=case.id, input=case.input,
        output={"original": {"worst_span": o.output["worst_span"]}, "quantized": {"worst_span": q.output["worst_span"]},
                "max_token_logprob_shift": shift, "timing": timing},
        scores={"original_nll": o.scores["nll"], "quantized_nll": q.scores["nll"], "n_tokens": o.scores["n_tokens"],
                "original_token_perplexity": o.scores["token_perplexity"],
                "quantized_token_perplexity": q.scores["token_perplexity"]},
        tags=case.tags, text=o.text,
    )


def _with_output(record: Record, **extra: Any) -> Record:
    return replace(record, output={**record.output, **extra})


def _size_finding(probe: str, info: dict[str, Any]) -> Finding:
    before, after = info["size_original_bytes"], info["size_quantized_bytes"]
    ratio = after / before
    share = info["parameters_quantized"] / max(info["parameters_total"], 1)
    kinds = ", ".join(f"{k} ×{v['modules']}" for k, v in info["quantized_modules"].items()) or "none"
    left = ", ".join(f"{k} ×{v['modules']}" for k, v in info["not_quantized_2d_modules"].items()) or "none"
    shared = ", ".join(info["tied_to_unquantized"])
    tied = f"; {shared} shares its weight with an fp32 module, so its int8 copy adds size" if shared else ""
    return make_finding(
        probe=probe, name="model_size", failed=False, severity=Severity.INFO,
        summary=f"state dict {before / 1e6:.1f} MB → {after / 1e6:.1f} MB (×{ratio:.2f}); quantized {kinds} "
        f"holding {share:.1%} of {info['parameters_total']:,} parameters; left in fp32: {left}{tied}",
        estimate=Estimate(ratio, 1, ratio, ratio, method="exact (measured once)"), details=info,
    )


def _speedup_finding(probe: str, records: Sequence[Record], info: dict[str, Any]) -> Finding:
    batches = {r.output["timing"]["batch"]: r.output["timing"] for r in records}.values()
    est = stats.ratio_of_sums([b["original_s"] for b in batches], [b["quantized_s"] for b in batches])
    same_device = info["device_original"] == info["device_quantized"]
    note = "" if same_device else f" — not comparable: original on {info['device_original']}, int8 copy on cpu"
    return make_finding(
        probe=probe, name="speedup", failed=False if same_device else None,
        severity=Severity.INFO,
        summary=f"speedup {est} (original time ÷ int8 time over {est.n} paired batches of identical requests, "
        f"order alternated): the int8 copy is {_faster(est)}{note}",
        estimate=est, details={"batches": [to_jsonable(b) for b in batches]},
    )


def _faster(est: Estimate) -> str:
    return "faster" if est.ci_low > 1 else "slower" if est.ci_high < 1 else "not measurably faster or slower"
