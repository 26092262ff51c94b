"""A verification in the run store (findings of the pseudo-probe ``mitigate`` in the NEW run), on disk
(``verification.json``, ``model.yaml``) and as text for the terminal."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from lmcritic._serde import to_jsonable
from lmcritic.findings import finding_name, make_finding
from lmcritic.mitigate.base import Cost, MitigatedModel
from lmcritic.mitigate.verify import (
    CLOSED,
    NOT_REPLAYED,
    PROBE_KEY,
    REDUCED,
    ControlComparison,
    Outcome,
    Regression,
    Verification,
    finding_of,
    relative_text,
)
from lmcritic.plots import Bars, bars, to_details
from lmcritic.probes.base import Finding, Severity

if TYPE_CHECKING:
    from lmcritic.store.runs import RunStore


def save_verification(store: RunStore, ver: Verification, mitigated: MitigatedModel) -> None:
    found = [finding_of(o) for o in ver.outcomes] + [_breakdown(ver)] * bool(ver.breakdown)
    found += [_regressions(ver), *(_cost(c) for c in ver.costs)]
    found += [_control(ver.control)] if ver.control else []
    meta = {"run_before": ver.run_before, "method": ver.method, "target": ver.target, "kind": mitigated.kind,
            "model": mitigated.spec, "details": to_jsonable(mitigated.details), "notes": list(ver.notes)}
    found[0] = replace(found[0], details={**found[0].details, "mitigation": meta})
    store.start_probe(ver.run_after, PROBE_KEY, PROBE_KEY, len(ver.outcomes))
    store.add_findings(ver.run_after, PROBE_KEY, found)
    store.finish_probe(ver.run_after, PROBE_KEY)


def _breakdown(ver: Verification) -> Finding:
    worse = [o for o in ver.breakdown if o.verdict == "worse"]
    plot = bars(f"{ver.target} by slice: failure rate after (95% CI)", [o.slice for o in ver.breakdown],
                [o.after for o in ver.breakdown])
    lines = "; ".join(f"{o.slice}: {o.before.value:.3f} → {o.after.value:.3f} ({o.verdict})" for o in ver.breakdown)
    return make_finding(PROBE_KEY, finding_name("slices", ver.target), failed=bool(worse),
                        severity=Severity.MEDIUM if worse else Severity.INFO,
                        summary=f"failure rate per slice of the targeted cases: {lines}",
                        details={"slices": to_jsonable(ver.breakdown), "plots": to_details(plot)})


def _regressions(ver: Verification) -> Finding:
    regs = ver.regressions
    text = "; ".join(f"{r.probe}:{r.metric} {r.before:.4g} → {r.after:.4g} (p_adj {r.p_adjusted:.2g})"
                     for r in regs[:8])
    summary = (f"{len(regs)} metric(s) significantly worse (BH-corrected): {text}" if regs else
               "no metric of the run got significantly worse (BH-corrected paired tests)")
    if ver.appeared:
        summary += f"; newly failing findings: {', '.join(ver.appeared[:8])}"
    plot = Bars("significant regressions: change after − before (95% CI)",
                tuple(f"{r.probe}:{r.metric}" for r in regs), tuple(r.change.value for r in regs),
                tuple(r.change.ci_low for r in regs), tuple(r.change.ci_high for r in regs),
                tuple(r.n_paired for r in regs)) if regs else None
    bad = bool(regs or ver.appeared)
    return make_finding(PROBE_KEY, "regressions", failed=bad, severity=Severity.MEDIUM if bad else Severity.INFO,
                        summary=summary, details={"regressions": to_jsonable(regs), "appeared": list(ver.appeared),
                                                  "improvements": to_jsonable(ver.improvements),
                                                  "plots": to_details(plot)})


def _control(arm: ControlComparison) -> Finding:
    """Passes when the fix beats its control arm on the targeted defect (closed or reduced against it)."""
    o, alone = arm.targeted, next((x for x in arm.retrain_alone if x.targeted), None)
    beats = o is not None and o.verdict in (CLOSED, REDUCED)
    summary = (f"against the control arm (the same fine-tune on the unedited corpus, {arm.steps} steps, run "
               f"{arm.run_control}): " + (_brief(o, "control") if o else "no targeted defect")
               + (f"; retraining alone: {_brief(alone, 'before')}" if alone else "")
               + f"; {len(arm.regressions)} metric(s) significantly worse than the control")
    plot = bars(f"{o.id}: failure rate before, control arm, mitigated (95% CI)", ["before", "control", "mitigated"],
                [alone.before, o.before, o.after]) if o and alone else None
    return make_finding(PROBE_KEY, "versus_control", failed=not beats, severity=Severity.INFO if beats else
                        Severity.MEDIUM, summary=summary, estimate=o.after if o else None,
                        details={"control": to_jsonable(arm), "plots": to_details(plot)})


def _brief(o: Outcome, first: str) -> str:
    return (f"{o.id} {first} {o.before.value:.3f} → {o.after.value:.3f}, change {o.change.value:+.3f} "
            f"[{o.change.ci_low:+.3f}, {o.change.ci_high:+.3f}], p={o.p_value:.3g} ({o.verdict})")


def _cost(cost: Cost) -> Finding:
    return make_finding(PROBE_KEY, finding_name("cost", cost.name), failed=False, summary=cost.summary,
                        estimate=cost.estimate)


def write_outputs(out_dir: Path, mitigated: MitigatedModel, ver: Verification | None) -> dict[str, Path]:
    """``model.yaml`` (loads the mitigated model), ``mitigation.json`` and ``verification.json``."""
    import yaml

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"spec": out_dir / "model.yaml", "mitigation": out_dir / "mitigation.json"}
    header = f"# lmcritic mitigated model ({mitigated.method}): lmcritic scan --model {paths['spec']}\n"
    paths["spec"].write_text(header + yaml.safe_dump(mitigated.spec, sort_keys=False, allow_unicode=True),
                             encoding="utf-8")
    paths["mitigation"].write_text(json.dumps(to_jsonable(mitigated), indent=1, ensure_ascii=False), encoding="utf-8")
    if mitigated.control is not None:  # the control arm loads the same way (scan it, diff it)
        paths["control"] = out_dir / "control" / "model.yaml"
        paths["control"].parent.mkdir(parents=True, exist_ok=True)
        paths["control"].write_text(f"# lmcritic control arm of {mitigated.method} (the same fine-tune on the unedited "
                                    f"corpus): lmcritic scan --model {paths['control']}\n"
                                    + yaml.safe_dump(mitigated.control, sort_keys=False, allow_unicode=True),
                                    encoding="utf-8")
    if ver is not None:
        paths["verification"] = out_dir / "verification.json"
        paths["verification"].write_text(json.dumps(to_jsonable(ver), indent=1, ensure_ascii=False), encoding="utf-8")
    return paths


def render_text(ver: Verification) -> str:
    """The verification for the terminal: per defect before → after, costs, regressions."""
    out = [f"re-verification: run {ver.run_before} (before) vs run {ver.run_after} (after, {ver.method}); "
           f"paired on the same cases, McNemar exact, BH over {len(ver.outcomes)} defect(s), alpha {ver.alpha}"]
    out += [_line(o) for o in ver.outcomes]
    if ver.breakdown:
        out.append("targeted cases by slice:")
        out += ["  " + _line(o) for o in ver.breakdown]
    out += [f"cost on clean inputs — {c.name}: {c.summary}" for c in ver.costs]
    if ver.regressions:
        out.append(f"{len(ver.regressions)} other metric(s) significantly worse (BH-corrected):")
        out += [_moved(r) for r in ver.regressions]
    else:
        out.append("no other metric got significantly worse (BH-corrected)")
    if ver.improvements:
        out.append(f"{len(ver.improvements)} metric(s) significantly better (BH-corrected):")
        out += [_moved(r) for r in ver.improvements]
    if ver.appeared:
        out.append(f"newly failing findings: {', '.join(ver.appeared)}")
    out += _control_lines(ver.control) if ver.control else []
    out += [f"note: {n}" for n in ver.notes]
    return "\n".join(out)


def _control_lines(arm: ControlComparison) -> list[str]:
    out = [f"against the control arm: the same fine-tune ({arm.steps} steps, same start and seed) on the unedited "
           f"corpus, run {arm.run_control}", "  retraining alone (before → control):"]
    out += ["    " + _line(o) for o in arm.retrain_alone]
    out.append("  the fix beyond retraining (control → mitigated):")
    out += ["    " + _line(o) for o in arm.versus_control]
    out.append(f"  {len(arm.regressions)} metric(s) significantly worse than the control, "
               f"{len(arm.improvements)} better (BH-corrected)")
    out += ["  " + _moved(r) for r in arm.regressions]
    return out


def _moved(r: Regression) -> str:
    return (f"  {r.probe}:{r.metric} {r.before:.4g} → {r.after:.4g}, change {r.change.value:+.4g} "
            f"[{r.change.ci_low:+.4g}, {r.change.ci_high:+.4g}], p_adj {r.p_adjusted:.3g} ({r.test}, n={r.n_paired})")


def _line(o: Outcome) -> str:
    rel = f" ({relative_text(o.relative)})" if o.relative is not None else ""
    mark = "*" if o.targeted else " "
    if not o.before.n:
        return f"{mark} {o.id} {o.probe} [{o.slice}]: not compared — {NOT_REPLAYED}"
    return (f"{mark} {o.id} {o.probe} [{o.slice}]: failure rate {o.before} → {o.after}{rel}; change "
            f"{o.change.value:+.3f} [{o.change.ci_low:+.3f}, {o.change.ci_high:+.3f}], McNemar p={o.p_value:.3g} "
            f"(BH {o.p_adjusted:.3g}) → {o.verdict.upper()}")


__all__ = ["render_text", "save_verification", "write_outputs"]
