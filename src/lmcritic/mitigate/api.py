"""``apply``: defect → cause → mitigation → mitigated model → paired re-verification, from Python or the CLI.

    from lmcritic.mitigate import apply
    outcome = apply(store, "latest", method="auto", train="sst2_train.tsv")
    outcome.verification.targeted.verdict   # closed | reduced | unchanged | worse
    apply(store, "latest", train="sst2_train.tsv", control=True).verification.control.targeted.verdict
    # the same, judged against the same fine-tune on the unedited corpus (training-time fixes)

The original run is only read. The mitigated model is written to ``out`` (``model.yaml`` loads it: ``lmcritic scan
--model out/model.yaml``, a run spec's ``model:``, ``lmcritic serve --model out/model.yaml``), and the re-run is a
new run whose report has a Mitigation section.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from lmcritic.mitigate.base import TRAINING, MitigatedModel, MitigationContext, Target, backend_of
from lmcritic.mitigate.verify import Verification

if TYPE_CHECKING:
    from lmcritic.store.runs import RunStore


@dataclass(frozen=True)
class MitigationOutcome:
    run_id: str
    target: Target
    method: str
    reason: str
    model: MitigatedModel
    out_dir: Path
    paths: dict[str, Path]
    verification: Verification | None
    apply_s: float
    verify_s: float


def apply(store: RunStore, run: str, *, method: str = "auto", defect: str | None = None,
          train: str | Path | None = None, heldout: str | Path | None = None, out: str | Path | None = None,
          config: dict[str, Any] | None = None,
          seed: int = 0, verify: bool = True, decontaminate: bool = False, force: bool = False,
          cache_path: str | Path | None = None, progress: bool = True, probes: Sequence[str] | None = None,
          keep_stages: bool = False, alpha: float = 0.05, control: bool = False) -> MitigationOutcome:
    """Pick (or take) a mitigation for a defect of run ``run``, make the mitigated model and re-verify it.
    ``control``: a training-time fix also trains the same fine-tune on the unedited corpus and is judged against
    it too (twice the training and the re-run)."""
    from lmcritic.mitigate import MITIGATIONS
    from lmcritic.mitigate._reask import reask
    from lmcritic.mitigate.choose import select
    from lmcritic.mitigate.storage import write_outputs
    from lmcritic.mitigate.verify import against_control, replay
    from lmcritic.mitigate.verify import verify as verify_runs

    run_id = store.resolve(run)
    info = store.get_run(run_id)
    train_path, heldout_path = _path(train, "--train"), _path(heldout, "--heldout")
    target, name, reason, targets = select(store, run_id, method, defect, backend_of(info.spec), train_path, force)
    settings, unused = settings_for(MITIGATIONS.get(name), config or {}, method)
    if unused:
        reason += f"; fine-tuning settings not used (it trains nothing): {', '.join(unused)}"
    mitigation = MITIGATIONS.get(name)(**settings)
    if control and mitigation.kind != TRAINING:
        reason += ("; no control arm: an inference-time fix leaves the model as it was, so the run itself is its "
                   "control")
    ctx = MitigationContext(store, run_id, info.spec, target, _out_dir(out, run_id, target, name), train_path,
                            heldout_path, seed, decontaminate, Path(cache_path) if cache_path else None, progress,
                            control and mitigation.kind == TRAINING)
    t0 = time.perf_counter()
    mitigated = mitigation.apply(ctx)
    apply_s = time.perf_counter() - t0
    ver = None
    if verify:
        rerun = partial(replay, store, run_id, cache_path=cache_path, progress=progress, probes=probes,
                        keep_stages=keep_stages)
        new_run = rerun(mitigated.spec, name)
        control_run = (rerun(mitigated.control, name, name=f"control arm of {name}")
                       if mitigated.control is not None else None)
        every, notes = reask(store, run_id, [new_run, *([control_run] if control_run else [])],
                             targets or [target], cache_path)
        judged = next((t for t in every if t.id == target.id), target)
        arm = None
        if control_run is not None:
            arm = against_control(store, run_id, control_run, new_run, every, judged,
                                  int(mitigated.details.get("control", {}).get("steps") or 0), alpha)
        mitigated = replace(mitigated, notes=(*mitigated.notes, *notes))
        ver = verify_runs(store, run_id, new_run, every, judged, mitigated, alpha, arm)
    paths = write_outputs(ctx.out_dir, mitigated, ver)
    return MitigationOutcome(run_id, target, name, reason, mitigated, ctx.out_dir, paths, ver, apply_s,
                             time.perf_counter() - t0 - apply_s)


def settings_for(cls: type[Any], config: dict[str, Any], method: str) -> tuple[dict[str, Any], list[str]]:
    """The config the chosen mitigation takes. With ``auto`` the fix is not known in advance, so fine-tuning
    settings given for a training-time fix (``--set base=DIR steps=300``) are set aside when it picks an
    inference-time one; any other unknown key is still an error."""
    from dataclasses import fields

    from lmcritic.mitigate.trainers import TrainConfig

    if method != "auto" or cls.kind == TRAINING:
        return config, []
    own = {f.name for f in fields(cls.Config)}
    unused = sorted(k for k in config if k not in own and k in {f.name for f in fields(TrainConfig)})
    return {k: v for k, v in config.items() if k not in unused}, unused


def _path(value: str | Path | None, flag: str) -> Path | None:
    if value is None:
        return None
    p = Path(value).expanduser()
    if not p.is_file():
        from lmcritic.errors import DataError

        raise DataError(f"{flag} {str(p)!r} not found", "give a .tsv/.csv/.jsonl with text and label columns")
    return p


def _out_dir(out: str | Path | None, run_id: str, target: Target, name: str) -> Path:
    if out is not None:
        return Path(out).expanduser()
    from lmcritic.runner import lmcritic_home

    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in target.id)
    return lmcritic_home() / "mitigations" / f"{run_id}-{safe}-{name}"


__all__ = ["MitigationOutcome", "apply", "settings_for"]
