"""Which defect to fix and with which mitigation: ``auto`` follows the diagnosis.

``auto`` takes the defect's supported cause (without ``--defect``: the defect whose supported cause the diagnosis
ranks most severe), lists the mitigations that treat it, ranks first those that act on
the diagnosed culprit directly (the content-free prior → calibration; a shortcut token → its removal; typos that
spell-correction repaired → input normalisation; ...), then by their preference, and applies the best one whose
needs are met (a training-time fix needs local weights with a trainer and ``--train``). A named method must treat
a cause the diagnosis did not rule out; without a diagnosis it targets its own probes (an injection guard →
``robustness.injection``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

from lmcritic.errors import ConfigError, UnknownNameError
from lmcritic.mitigate.base import Mitigation, Target
from lmcritic.mitigate.targets import SUPPORTED, diagnosed_nodes, probe_target, target_of

if TYPE_CHECKING:
    from pathlib import Path

    from lmcritic.diagnose.graph import DefectNode
    from lmcritic.diagnose.hypotheses.base import CauseVerdict
    from lmcritic.registry import Registry
    from lmcritic.store.runs import RunStore

NOT_SUPPORTED = "not supported"


def unmet(cls: type[Mitigation], backend: str, train: Path | None) -> str | None:
    """What ``cls`` needs that this run cannot give, checked before any model is loaded."""
    from lmcritic.mitigate.trainers import TRAINERS

    if "weights" in cls.needs and backend not in TRAINERS:
        return f"retrains weights, but the {backend} backend is a black box"
    if "train" in cls.needs and train is None:
        return "needs the training corpus (--train PATH)"
    return None


def select(store: RunStore, run_id: str, method: str, defect: str | None, backend: str, train: Path | None,
           force: bool = False) -> tuple[Target, str, str, list[Target]]:
    """(the target, the mitigation's name, why it was chosen, every target to re-verify)."""
    from lmcritic.mitigate import MITIGATIONS

    nodes = diagnosed_nodes(store, run_id)
    if method == "auto":
        target, name, reason = _auto(nodes, defect, run_id, lambda c: unmet(c, backend, train), MITIGATIONS)
        return target, name, reason, [target_of(n) for n in nodes or ()]
    if method not in MITIGATIONS:
        raise UnknownNameError(MITIGATIONS.unknown_message(method))
    cls = MITIGATIONS.get(method)
    why = unmet(cls, backend, train)
    if why:
        raise ConfigError(f"{method} {why}", _alternatives(cls, backend, train))
    target = _named_target(store, run_id, cls, nodes, defect, force)
    others = [target_of(n) for n in nodes or () if n.defect.id != target.id] if target.probe != target.id else []
    return target, method, f"named with --method ({cls.title})", [target, *others]


def _auto(nodes: list[DefectNode] | None, defect: str | None, run_id: str,
          why_not: Callable[[type[Mitigation]], str | None],
          registry: Registry[type[Mitigation]]) -> tuple[Target, str, str]:
    """The named defect (or the one with the most severe supported cause that some mitigation here can treat) and
    its fix."""
    if nodes is None:
        raise ConfigError(f"run {run_id} has no diagnosis, so there is no cause to pick a mitigation for",
                          f"run `lmcritic diagnose {run_id}` first (add --train PATH for data causes), "
                          "or name --method")
    if not nodes:
        raise ConfigError(f"the diagnosis of run {run_id} found no defects", "there is nothing to mitigate")
    candidates = [_find(nodes, defect)] if defect else \
        [n for n, _ in _ranked(nodes, lambda c: c.verdict == SUPPORTED)]
    if not candidates or not any(c.verdict == SUPPORTED for c in candidates[0].causes):
        which = f"{candidates[0].defect.id} of run {run_id} has no" if candidates else \
            f"no defect of run {run_id} has a"
        raise ConfigError(f"{which} supported cause, so auto cannot pick a mitigation",
                          "name a --method to apply one anyway, or re-diagnose with --train PATH")
    errors: list[ConfigError] = []
    for node in candidates:
        target = target_of(node)
        try:
            return (target, *auto_method(target, why_not, registry))
        except ConfigError as err:
            errors.append(err)
    raise errors[0]


def _ranked(nodes: Sequence[DefectNode], keep: Callable[[CauseVerdict], bool]) -> list[tuple[DefectNode, str]]:
    """The defects with a cause ``keep`` accepts and that cause, by the diagnosis's own ranking of it (supported
    first, then severity, corroboration, confidence); ties go to the defect that fails most, then the defects'
    order. A low-severity prior on D1 must not be fixed before a high-severity label-noise defect found last, and
    one run-wide cause ranked alike on a slice failing 8/12 and on the rest of its probe failing 18/176 targets
    the slice (the fix was verified against the 18/176 it barely touches)."""
    from lmcritic.diagnose.calibrate import sort_key

    ranked = []
    for i, node in enumerate(nodes):
        causes = [c for c in node.causes if keep(c)]
        if causes:
            best = min(causes, key=sort_key)
            ranked.append((sort_key(best), -node.defect.failure_rate.value, i, node, best.cause))
    return [(node, cause) for *_, node, cause in sorted(ranked, key=lambda t: t[:3])]


def auto_method(target: Target, why_not: Callable[[type[Mitigation]], str | None],
                registry: Registry[type[Mitigation]]) -> tuple[str, str]:
    """The best available mitigation for the target's cause, and a one-line reason."""
    ranked = sorted((c for c in (registry.get(n) for n in registry.names()) if target.cause in c.treats),
                    key=lambda c: (-score(c, target), c.kind != "inference", c.name))
    if not ranked:
        raise ConfigError(f"no mitigation treats {target.cause} (the cause of {target.id})",
                          "lmcritic mitigations lists what exists; name one with --method")
    skipped: list[str] = []
    for cls in ranked:
        reason = why_not(cls)
        if reason is None:
            culprit = target.culprit
            acts = (f"; acts on the culprit ({culprit.kind} {culprit.value})"
                    if culprit and culprit.kind in cls.culprits else "")
            passed = f"; passed over: {'; '.join(skipped)}" if skipped else ""
            return cls.name, f"treats {target.cause} ({target.verdict}){acts}{passed}"
        skipped.append(f"{cls.name} ({reason})")
    raise ConfigError(f"no mitigation of {target.cause} can run here: {'; '.join(skipped)}",
                      "pass --train PATH for a training-time fix, or use a model with local weights")


def score(cls: type[Mitigation], target: Target) -> float:
    matched = target.culprit is not None and target.culprit.kind in cls.culprits
    return cls.preference + (1.0 if matched else 0.0)


def _named_target(store: RunStore, run_id: str, cls: type[Mitigation], nodes: list[DefectNode] | None,
                  defect: str | None, force: bool) -> Target:
    if defect:
        if nodes is None:
            raise ConfigError(f"run {run_id} has no diagnosis, so it has no defect {defect}",
                              f"run `lmcritic diagnose {run_id}` first, or drop --defect")
        node = _find(nodes, defect)
        open_causes = [c for c, v in ((c.cause, c.verdict) for c in node.causes) if v != NOT_SUPPORTED]
        treated = [c for c in open_causes if c in cls.treats]
        if not treated and not force:
            raise ConfigError(f"{cls.name} treats {', '.join(sorted(cls.treats)) or 'no diagnosed cause'}, but "
                              f"{node.defect.id}'s possible causes are {', '.join(open_causes) or 'none'}",
                              "use --method auto, or --force to apply it anyway")
        return target_of(node, treated[0] if treated else None)
    for node, cause in _ranked(nodes or (), lambda c: c.cause in cls.treats and c.verdict != NOT_SUPPORTED)[:1]:
        return target_of(node, cause)
    keys = {p.probe_key for p in store.probe_runs(run_id)}
    probe = next((p for p in cls.probes if p in keys), None)
    if probe is None:
        raise ConfigError(f"no defect of run {run_id} has a cause {cls.name} treats, and the run has none of its "
                          f"probes ({', '.join(cls.probes) or 'none'})", "name the defect with --defect D and --force")
    return probe_target(store, run_id, probe)


def _find(nodes: Sequence[DefectNode], defect: str) -> DefectNode:
    for n in nodes:
        if n.defect.id.lower() == defect.lower():
            return n
    raise ConfigError(f"no defect {defect!r} in the diagnosis", f"defects: {', '.join(n.defect.id for n in nodes)}")


def _alternatives(cls: type[Mitigation], backend: str, train: Path | None) -> str:
    from lmcritic.mitigate import MITIGATIONS

    ok = [n for n in MITIGATIONS.names() if MITIGATIONS.get(n).treats & cls.treats
          and unmet(MITIGATIONS.get(n), backend, train) is None]
    return f"try {', '.join(ok)}" if ok else "lmcritic mitigations lists what each needs"


__all__ = ["auto_method", "score", "select", "unmet"]
