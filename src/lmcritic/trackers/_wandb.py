"""Weights & Biases: a ``lmcritic/findings`` table (one row per finding: verdict, severity, estimate, CI, n,
summary), each estimate in the run summary, and the report as an artifact.

Logs into the active ``wandb.run`` when there is one (it is left open), else starts a run and finishes it.
``mode="offline"`` writes the run under ``dir`` without any network (``wandb sync`` uploads it later).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmcritic.trackers import Tracker, finding_rows, metric_key, missing_client, run_params

if TYPE_CHECKING:
    from lmcritic.results import Results

COLUMNS = ("key", "probe", "name", "verdict", "severity", "value", "ci_low", "ci_high", "n", "method", "summary")


class WandbTracker(Tracker):
    """``project``/``entity``/``dir``/``mode`` as for ``wandb.init`` (None: wandb's defaults and environment)."""

    name = "wandb"

    def __init__(self, project: str = "lmcritic", entity: str | None = None, dir: str | None = None,
                 mode: str | None = None, run_name: str | None = None, report: bool = True) -> None:
        try:
            import wandb
        except ImportError:
            raise missing_client("wandb", "wandb") from None
        self.wandb = wandb
        self.init = {"project": project, "entity": entity, "dir": dir, "mode": mode, "name": run_name}
        self.report = report

    def log(self, results: "Results") -> str:
        wandb = self.wandb
        owned = wandb.run is None
        if owned:
            if self.init["dir"]:
                Path(self.init["dir"]).mkdir(parents=True, exist_ok=True)
            init = {k: v for k, v in self.init.items() if v is not None}
            run = wandb.init(**{"name": f"lmcritic {results.run_id}", **init}, config=run_params(results))
        else:
            run = wandb.run
            run.config.update(run_params(results), allow_val_change=True)
        rows = finding_rows(results)
        run.log({"lmcritic/findings": wandb.Table(columns=list(COLUMNS), data=[[r[c] for c in COLUMNS] for r in rows])})
        run.summary.update(_summary(rows))
        if self.report:
            self._artifact(run, results)
        where = str(getattr(run.settings, "sync_dir", "") or run.dir)
        if owned:
            run.finish()
        return where

    def _artifact(self, run: Any, results: "Results") -> None:
        with tempfile.TemporaryDirectory(prefix="lmcritic-wandb-") as tmp:
            results.report(Path(tmp))
            art = self.wandb.Artifact(f"lmcritic-report-{results.run_id}", type="lmcritic-report")
            art.add_dir(tmp)  # copied into the artifact's staging area before the folder goes
            run.log_artifact(art)


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for r in rows:
        if r["value"] is not None:
            base = metric_key(r["probe"], r["name"])
            out.update({base: r["value"], f"{base}.ci_low": r["ci_low"], f"{base}.ci_high": r["ci_high"],
                        f"{base}.n": r["n"]})
    return out
