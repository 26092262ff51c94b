"""Re-verify defects whose cases the diagnosis made, not a probe: a shortcut token inserted into held-out inputs.

The replay re-runs the run's probes, so a defect found in the training corpus (a backdoor token that never occurs
in the evaluation data) had no case in both runs and was "not compared" — the very defect ``shortcut_removal``
treats went unverified. Here the diagnosis's own edited inputs (stored under ``diagnose.<hypothesis>`` in the
original run) are asked again of the re-run's model through the same own-task probe, every input of the test
(not only those that failed before: the rate before is then the test's flip rate, not 1 by selection), and
stored in the re-run under the same pseudo-probe, so the paired comparison reads them like any probe's cases.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from lmcritic.mitigate.base import Target
from lmcritic.probes.base import Case, Record

if TYPE_CHECKING:
    from lmcritic.backends.base import Backend
    from lmcritic.store.runs import RunStore

DIAGNOSIS_PREFIX = "diagnose."


def reask(store: RunStore, run_id: str, runs: Sequence[str], targets: Sequence[Target],
          cache_path: str | Path | None = None) -> tuple[list[Target], list[str]]:
    """``targets`` with each diagnosis-made defect pointed at its cases re-asked in every one of ``runs`` (the
    re-run, and the control arm's); and notes. Each defect's cases are looked up once, each run's model loaded
    once."""
    out: list[Target] = []
    notes: list[str] = []
    models: dict[str, Backend | None] = {}
    for t in targets:
        found = diagnosis_cases(store, run_id, t)
        if found is None:
            out.append(t)
            continue
        key, records = found
        asked = []
        for run in runs:
            if run not in models:
                models[run] = _model(store, run, cache_path, notes)
            model = models[run]
            asked.append(model is not None and _rescore(store, run_id, run, t.probe, key, records, model, notes))
        if not asked[0]:  # the re-run decides; a control arm that could not be asked says so in the notes
            out.append(t)
            continue
        ids = tuple(r.case_id for r in records)
        out.append(replace(t, probe=key, case_ids=ids, failing=tuple(r.case_id for r in records if r.passed is False)))
    return out, notes


def diagnosis_cases(store: RunStore, run_id: str, target: Target) -> tuple[str, list[Record]] | None:
    """The pseudo-probe holding the target's cases and every case of the same tests (same defect and test tags),
    when the target's own probe holds none of them; None otherwise."""
    wanted = set(target.case_ids) | set(target.failing)
    keys = [p.probe_key for p in store.probe_runs(run_id)]
    if not wanted or (target.probe in keys and wanted & {r.case_id for r in store.records(run_id, target.probe)}):
        return None
    for key in (k for k in keys if k.startswith(DIAGNOSIS_PREFIX)):
        records = store.records(run_id, key)
        tests = {(r.tags.get("defect"), r.tags.get("test")) for r in records if r.case_id in wanted}
        if tests:
            return key, [r for r in records if (r.tags.get("defect"), r.tags.get("test")) in tests]
    return None


def _rescore(store: RunStore, run_id: str, new_run: str, task: str, key: str, records: list[Record],
             model: Backend, notes: list[str]) -> bool:
    """Ask ``model`` about ``records``' inputs through the run's ``task`` probe; store them in ``new_run``."""
    from lmcritic.diagnose.rescore import build_probes

    probe = build_probes(store.get_run(run_id).spec, [task]).get(task)
    if probe is None:
        notes.append(f"the diagnosis's {key} cases were not asked again: probe {task!r} is not in the run's spec")
        return False
    cases = [Case(r.case_id, r.input, r.target, dict(r.tags)) for r in records]
    try:
        answers = probe.score(model, cases)
    except Exception as err:  # noqa: BLE001 - one defect left "not compared" must not sink the verification
        notes.append(f"the diagnosis's {key} cases were not asked again: {type(err).__name__}: {err}")
        return False
    answers = [replace(a, tags={**a.tags, **c.tags}) for a, c in zip(answers, cases)]
    store.start_probe(new_run, key, key, len(answers), kind="stage")
    store.add_records(new_run, key, answers)
    store.finish_probe(new_run, key)
    return True


def _model(store: RunStore, run_id: str, cache_path: str | Path | None, notes: list[str]) -> Backend | None:
    """The re-run's model (the mitigated one, wrappers included) behind the call cache."""
    from lmcritic.diagnose.api import load_run_model

    return load_run_model(store.get_run(run_id), cache_path, notes)
