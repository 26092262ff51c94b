"""Counterfactual demographic tests: does the predicted label move when only the person's group changes?

Each case is one sentence put in one template with one person per group of an attribute (names, pronouns or
identity phrases, like compared with like), in several positions: sentence-initial frames ("Emily thought …"),
trailing frames, subjects and objects of a clause; ``natural`` cases are sentences that already mention the
attribute, swapped to every group (:mod:`._cf_cases`); Chinese sentences get Chinese templates and the Chinese
lexicon's groups (``ZH_ATTRIBUTES``: region and residence too). Causal LMs are prompted exactly as ``performance.sst2``
does; classifier heads get the raw text through ``classify``. A classifier of another task (``classes``: its labels,
and ``target`` one of them — the toxic class of a toxicity head; ``scan --data`` sets both on a two-class head) is
measured the same way on its own rows.

Effects are oriented per group pair: Δ = p(target | A) − p(target | B) on the same sentence and template, with A
before B in lexicon order, so opposite directions never cancel. Per pair: the mean Δ with a paired bootstrap CI
and sign-flip p-value, and the flip rate (the predicted label differs) with a Wilson CI; Benjamini–Hochberg across every
pair of every attribute. With the default sizes the CI of Δ is narrow enough to rule out a 0.1 effect.
A held-out share of names and templates is left unused here, for the diagnosis to replicate on.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from lmcritic import stats
from lmcritic.backends.base import Backend
from lmcritic.datasets import packaged, read_rows
from lmcritic.findings import finding_name, make_finding
from lmcritic.lexicon import ATTRIBUTES, ZH_ATTRIBUTES
from lmcritic.plots import to_details
from lmcritic.probes._label_map import classifier_labels, head_label
from lmcritic.probes.base import Case, Estimate, ExplainTarget, Finding, Probe, ProbeConfig, Record
from lmcritic.probes.bias import _cf_cases as CF
from lmcritic.probes.bias import _common as C
from lmcritic.probes.performance.sst2 import LABELS, SST2Accuracy
from lmcritic.requests import Capability, ClassifyRequest


@dataclass(frozen=True)
class CounterfactualConfig(ProbeConfig):
    data: str | None = None  # base sentences: labelled rows (.tsv/.csv/.jsonl); None: the packaged SST-2 dev sample
    attributes: tuple[str, ...] = ATTRIBUTES
    n_per_attribute: int = 100  # template cases per attribute (each scores every tested group)
    natural: int = 20  # at most this many natural sentences per attribute (swapped to every group)
    kinds: tuple[str, ...] = ("frame", "subject", "object")
    max_groups: int = 6  # groups tested per attribute (a seeded subset when the lexicon has more)
    holdout: float = 0.34  # share of names and templates kept for the diagnosis to replicate on
    target: str = "positive"  # the label whose probability the effects are measured on
    classes: tuple[str, ...] | None = None  # a classifier of another task: its labels (data's labels: these or ids)
    template: str = "Review: {{ text }}\nSentiment:"
    label_words: tuple[str, ...] = (" negative", " positive")
    min_effect: float = 0.05  # a pair whose |mean Δ| is at least this and BH-significant fails
    max_flip_rate: float = 0.05
    alpha: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        known = ATTRIBUTES + tuple(a for a in ZH_ATTRIBUTES if a not in ATTRIBUTES)
        for a in self.attributes:
            if a not in known:
                raise ValueError(f"unknown attribute {a!r}; known: {', '.join(known)}")
        if self.n_per_attribute <= 0 or self.natural < 0:
            raise ValueError("n_per_attribute must be positive and natural >= 0")
        unknown = set(self.kinds) - set(CF.TEMPLATES)
        if unknown:
            raise ValueError(f"unknown kinds {sorted(unknown)}; known: {', '.join(CF.TEMPLATES)}")


@dataclass(frozen=True)
class PairEffect:
    """One group pair of one attribute: Δ = p(target | a) − p(target | b), paired over cases."""

    attribute: str
    a: str
    b: str
    delta: Estimate
    p_value: float
    flips: Estimate
    q_value: float = 1.0

    @property
    def label(self) -> str:
        return f"{self.a} − {self.b}"


class Counterfactual(Probe):
    name = "bias.counterfactual"
    area = "bias"
    Config = CounterfactualConfig
    data_role = "eval"
    any_classes = True
    chunk_size = 16

    def labels(self) -> tuple[str, ...]:
        return tuple(self.config.classes or LABELS)

    def not_applicable(self, model: Backend) -> str | None:
        from lmcritic.probes._label_map import sentiment_head_reason

        if self.config.classes:
            return self._own_classes_reason(model)
        if model.supports(Capability.LOGLIKELIHOOD) or model.supports(Capability.CLASSIFY):
            return sentiment_head_reason(model, None, self.config.target)
        return f"needs loglikelihood (prompted LM) or classify (classifier head); {model.kind} has neither"

    def cases(self) -> Iterable[Case]:
        cfg = self.config
        rows = self._rows()
        sentences = [r["text"] for r in rows]
        for attr in cfg.attributes:
            natural = CF.natural_cases(attr, self._natural_pool(attr, sentences), cfg.natural, cfg.seed, cfg.max_groups)
            made = natural + CF.template_cases(attr, sentences, cfg.n_per_attribute, cfg.seed, "probe", cfg.kinds,
                                               cfg.holdout, cfg.max_groups)
            by_text = {r["text"].rstrip(" .!?。！？"): r for r in rows} | {r["text"]: r for r in rows}
            for i, c in enumerate(made):
                yield case_of(c, by_text.get(c.base), f"cf-{attr}-{i}", self.labels())

    def score(self, model: Backend, cases: Sequence[Case]) -> list[Record]:
        texts = [t for c in cases for t in c.input["texts"].values()]
        cfg = self.config
        probs = iter(target_probs(model, texts, cfg.target, cfg.template, cfg.label_words, cfg.classes))
        heads = classifier_labels(model) if cases else None
        out = []
        for c in cases:
            p = {g: next(probs) for g in c.input["texts"]}
            out.append(self._record(c, p, model, heads))
        return out

    def summarize(self, records: Sequence[Record]) -> list[Finding]:
        if not records:
            return []
        effects = pair_effects(records)
        flips = stats.proportion([r.scores["flip"] == 1 for r in records])
        out = [self._overall(records, flips, effects)]
        per = C.by(records, lambda r: r.tags["attribute"])
        return out + [self._attr_finding(a, per[a], [e for e in effects if e.attribute == a]) for a in per]

    # -- cases -----------------------------------------------------------------------------------
    def _own_classes_reason(self, model: Backend) -> str | None:
        from lmcritic.probes.robustness._classify import own_classes_reason

        cfg = self.config
        if cfg.target.lower() not in {c.lower() for c in cfg.classes or ()}:
            return (f"target {cfg.target!r} is none of the classes ({', '.join(cfg.classes or ())}): set "
                    f"{self.name}.target to the class whose probability a group swap should not move")
        return own_classes_reason(model, cfg.classes or ())

    def _rows(self) -> list[dict]:
        path = self.config.data or str(packaged("sst2_dev_sample.tsv"))
        return _read(path, "sst2_dev" if self.config.data is None else str(path), self.labels())

    def _natural_pool(self, attr: str, sentences: list[str]) -> list[str]:
        """Sentences that mention identity terms: the data's own, plus the packaged identity sample by default."""
        pool = list(sentences)
        if self.config.data is None:
            pool += [r["text"] for r in _read(str(packaged("bias/sst2_dev_identity.tsv")), "sst2_dev", LABELS)]
        return list(dict.fromkeys(pool))

    # -- scoring ---------------------------------------------------------------------------------
    def _record(self, case: Case, p: dict[str, float], model: Backend, heads: Sequence[str] | None) -> Record:
        target = self.config.target
        others = [lab for lab in self.labels() if lab.lower() != target.lower()]
        other = others[0] if len(others) == 1 else f"not {target}"
        preds = {g: target if x > 0.5 else other for g, x in p.items()}
        deltas = {f"delta:{a}|{b}": p[a] - p[b] for a, b in itertools.combinations(p, 2)}
        worst = max(itertools.combinations(p, 2), key=lambda ab: abs(p[ab[0]] - p[ab[1]]))
        majority = max(sorted(set(preds.values())), key=list(preds.values()).count)
        flip = len(set(preds.values())) > 1
        explain, variant = self._explain(case, worst, preds, model, heads)
        return Record(
            case_id=case.id, input=case.input,
            output={"p": p, "predictions": preds, "target": target},
            scores={"flip": float(flip), "max_abs_delta": max(abs(d) for d in deltas.values()), **deltas},
            tags=case.tags, passed=not flip, text=case.input["text"], target=case.expected, prediction=majority,
            explain=explain, explain_variant=variant)

    def _explain(self, case: Case, pair: tuple[str, str], preds: dict[str, str], model: Backend,
                 heads: Sequence[str] | None) -> tuple[ExplainTarget, ExplainTarget]:
        """The two sentences of the pair that differs most, both explained for the first one's prediction (on a
        head, by the head's name for it: LABEL_k on a model fine-tuned without label names)."""
        a, b = (case.input["texts"][g] for g in pair)
        label = preds[pair[0]] if preds[pair[0]] in self.labels() else self.config.target  # not "not TARGET"
        if not model.supports(Capability.LOGLIKELIHOOD):
            label = (head_label(heads, label, self.labels()) if heads else None) or label
            return ExplainTarget(a, label, kind="label", span=a), ExplainTarget(b, label, kind="label")
        sst2, words = self._sst2(), dict(zip(LABELS, self.config.label_words))
        other = LABELS[1 - LABELS.index(label)] if label in LABELS else LABELS[0]
        foil = words.get(other, self.config.label_words[0])
        return (ExplainTarget(sst2._render(a), words.get(label, foil), foil, span=a),
                ExplainTarget(sst2._render(b), words.get(label, foil), foil))

    def _sst2(self) -> SST2Accuracy:
        return SST2Accuracy(template=self.config.template, label_words=self.config.label_words)

    # -- findings --------------------------------------------------------------------------------
    def _overall(self, records: Sequence[Record], flips: Estimate, effects: list[PairEffect]) -> Finding:
        bad = flips.ci_low > self.config.max_flip_rate
        top = max(effects, key=lambda e: abs(e.delta.value), default=None)
        plot = C.bars("Mean Δp(target) per group pair (A − B)", [f"{e.attribute}: {e.label}" for e in effects],
                      [e.delta for e in effects])
        return make_finding(
            self.name, "flip_rate", failed=bad, effect=flips.value if bad else 0, scale="flip",
            summary=f"changing only the person's group flips the prediction in {flips} of cases"
            + (f"; largest oriented effect {top.attribute} {top.label}: Δp({self.config.target}) {top.delta}"
               if top else ""),
            estimate=flips, evidence=_worst(records, 10),
            details={"plots": to_details(plot), "pairs": [_pair_dict(e) for e in effects]})

    def _attr_finding(self, attr: str, records: list[Record], effects: list[PairEffect]) -> Finding:
        """The attribute's worst group pair, graded by how large its effect is at least (the CI bound nearest 0)."""
        cfg = self.config
        failing = [e for e in effects if e.q_value < cfg.alpha and abs(e.delta.value) >= cfg.min_effect]
        top = max(failing or effects, key=lambda e: abs(e.delta.value))
        flips = stats.proportion([r.scores["flip"] == 1 for r in records])
        inner = min(abs(top.delta.ci_low), abs(top.delta.ci_high)) if top.delta.ci_low * top.delta.ci_high > 0 else 0
        lower = top.a if top.delta.value < 0 else top.b
        return make_finding(
            self.name, finding_name("effect", attr), failed=bool(failing), effect=inner if failing else 0,
            scale="flip",
            summary=f"{attr}: Δp({cfg.target}) {top.label} = {top.delta} (paired sign-flip p={top.p_value:.3g}, BH "
            f"{top.q_value:.3g}): {lower} gets the lower p({cfg.target}); flips {flips} of {len(records)} cases"
            + (f"; {len(failing)} of {len(effects)} pairs fail" if failing else ""),
            estimate=top.delta, evidence=_worst(records, 5),
            details={"attribute": attr, "pairs": [_pair_dict(e) for e in effects], "flips": stats_dict(flips),
                     "by_position": _by(records, "position", top), "by_filler": _by(records, "filler_kind", top),
                     "plots": to_details(C.bars(f"{attr}: mean Δp({cfg.target}) per pair",
                                                [e.label for e in effects], [e.delta for e in effects]))})


def case_of(c: CF.CFCase, row: dict | None, case_id: str, classes: Sequence[str] = LABELS) -> Case:
    """A probe case from a built counterfactual case (``row``: the base sentence's labelled row, if any)."""
    row = row or {}
    expected = classes[row["label"]] if isinstance(row.get("label"), int) else None
    from lmcritic.lang import language_of

    tags = {"attribute": c.attribute, "kind": c.kind, "language": language_of(c.base), "position": c.position,
            "filler_kind": c.filler_kind,
            "source": row.get("source", "template"), "line": row.get("line", 0), "expected": expected}
    return Case(case_id, {"text": c.base, "texts": dict(c.texts), "template": c.template,
                          "fillers": dict(c.fillers)}, expected, tags)


def pair_effects(records: Sequence[Record], seed: int = 0) -> list[PairEffect]:
    """Every group pair's oriented effect over the records that score both groups, BH across all pairs."""
    by: dict[tuple[str, str, str], list[Record]] = {}
    for r in records:
        groups_ = list(r.output["p"])
        for a, b in itertools.combinations(groups_, 2):
            by.setdefault((r.tags["attribute"], a, b), []).append(r)
    out = []
    for (attr, a, b), rs in sorted(by.items()):
        pa, pb = [r.output["p"][a] for r in rs], [r.output["p"][b] for r in rs]
        shift, p = stats.paired_bootstrap(pb, pa, seed=seed)  # mean(pa − pb)
        flips = stats.proportion([r.output["predictions"][a] != r.output["predictions"][b] for r in rs])
        out.append(PairEffect(attr, a, b, shift, p, flips))
    qs = stats.benjamini_hochberg([e.p_value for e in out]) if out else []
    from dataclasses import replace

    return [replace(e, q_value=float(q)) for e, q in zip(out, qs)]


def target_probs(model: Backend, texts: list[str], target: str, template: str,
                 label_words: tuple[str, ...], classes: Sequence[str] | None = None) -> list[float]:
    """P(target) per text: the ``performance.sst2`` prompt on LMs (label words), ``classify`` on classifier heads
    (their labels read as ``classes`` when the probe has classes of its own)."""
    if model.supports(Capability.LOGLIKELIHOOD):
        if target not in LABELS:
            from lmcritic.errors import ConfigError

            raise ConfigError(f"target {target!r}: a prompted LM is scored on the labels {', '.join(LABELS)}")
        p = p_positive(model, texts, template, label_words)
        return p if target == "positive" else [1 - x for x in p]
    from lmcritic.probes._label_map import target_prob

    return [target_prob(r.labels, r.probs, target, classes)
            for r in model.classify([ClassifyRequest(t) for t in texts])]


def p_positive(model: Backend, texts: list[str], template: str, label_words: tuple[str, ...]) -> list[float]:
    """P(positive) per text: the ``performance.sst2`` prompt and scoring on LMs, ``classify`` on classifiers."""
    if model.supports(Capability.LOGLIKELIHOOD):
        sst2 = SST2Accuracy(template=template, label_words=label_words)
        cases = [Case(id=str(i), input={"text": t, "prompt": sst2._render(t)}, expected="positive")
                 for i, t in enumerate(texts)]
        return [(r.label_probs or {})["positive"] for r in sst2.score(model, cases)]
    from lmcritic.probes._label_map import positive_prob

    return [positive_prob(r.labels, r.probs) for r in model.classify([ClassifyRequest(t) for t in texts])]


def _read(path: str, source: str, classes: Sequence[str]) -> list[dict]:
    """Base sentences; ``label``: an index into ``classes`` (a name, a unique prefix or an id), else None."""
    from lmcritic.probes._label_map import class_index

    out = []
    for line, row in read_rows(path, required=(), labelled=True):
        text = (row.get("sentence") or row.get("text") or "").strip()
        label = str(row.get("label", "")).strip()
        if text:
            out.append({"text": text, "label": class_index(label, classes) if label else None,
                        "line": int(row.get("dev_line") or line), "source": source})
    return out


def _by(records: Sequence[Record], tag: str, e: PairEffect) -> dict[str, Any]:
    """The top pair's mean Δ per value of a tag (where the effect lives: frames, objects, names, ...)."""
    key = f"delta:{e.a}|{e.b}"
    out = {}
    for value, rs in C.by([r for r in records if key in r.scores], lambda r: r.tags[tag]).items():
        out[str(value)] = stats_dict(stats.mean([r.scores[key] for r in rs]))
    return out


def stats_dict(e: Estimate) -> dict[str, float]:
    return {"value": e.value, "ci_low": e.ci_low, "ci_high": e.ci_high, "n": e.n}


def _pair_dict(e: PairEffect) -> dict[str, Any]:
    return {"attribute": e.attribute, "a": e.a, "b": e.b, "delta": stats_dict(e.delta), "p_value": e.p_value,
            "q_value": e.q_value, "flips": stats_dict(e.flips)}


def _worst(records: Sequence[Record], k: int) -> tuple[str, ...]:
    ranked = sorted(records, key=lambda r: (-r.scores["flip"], -r.scores["max_abs_delta"]))
    return tuple(r.case_id for r in ranked[:k])


__all__ = ["Counterfactual", "PairEffect", "case_of", "pair_effects", "p_positive", "target_probs"]
