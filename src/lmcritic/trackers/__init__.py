"""Experiment trackers: send a run's findings (estimates with their CIs and n) and its report to MLflow or
Weights & Biases, so critique results sit next to training runs (``Results.log_to``, ``lmcritic track``).

``TRACKERS`` holds them (``module:attr`` entries, or plug-ins in the entry-point group ``lmcritic.trackers``).
A tracker is constructed with its config (where to log) and called with a :class:`~lmcritic.results.Results`.
Each client is imported only when its tracker is built; a missing one is a one-line error naming the extra.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from lmcritic.registry import Registry

if TYPE_CHECKING:
    from lmcritic.results import Results

TRACKERS: Registry[type["Tracker"]] = Registry("trackers")
TRACKERS.add("mlflow", "lmcritic.trackers._mlflow:MlflowTracker")
TRACKERS.add("wandb", "lmcritic.trackers._wandb:WandbTracker")


class Tracker(ABC):
    """Where to log (config in the constructor); :meth:`log` sends one run there and says where it went."""

    name = "tracker"

    @abstractmethod
    def log(self, results: "Results") -> str:
        """Log ``results``; returns the tracker's id or folder for the logged run."""


def finding_rows(results: "Results") -> list[dict[str, Any]]:
    """One row per finding: key, probe, name, verdict, severity, value, CI, n, method, summary."""
    from lmcritic.results import finding_key

    rows = []
    for f in results.findings:
        e = f.estimate
        rows.append({"key": finding_key(f), "probe": f.probe, "name": f.name, "verdict": f.verdict.value,
                     "severity": f.severity.value, "value": e.value if e else None,
                     "ci_low": e.ci_low if e else None, "ci_high": e.ci_high if e else None,
                     "n": e.n if e else None, "method": e.method if e else None, "summary": f.summary})
    return rows


def run_params(results: "Results") -> dict[str, str]:
    """What identifies the critique: the lmcritic run, the model, its fingerprint, the probes, the status."""
    info = results.info
    probes = ",".join(p.get("key") or p.get("name", "?") for p in info.spec.get("probes") or ())
    return {"lmcritic_run": results.run_id, "model": results.model_name, "fingerprint": info.model_fingerprint,
            "status": info.status, "probes": probes, "n_findings": str(len(results.findings)),
            "n_fail": str(len(results.failing()))}


def metric_key(probe: str, name: str, suffix: str = "", limit: int = 250) -> str:
    """``PROBE/NAME[.suffix]``, a key MLflow (whose file store makes each key a path: no key may be a folder
    of another) and W&B accept on every OS: one ``/``, then only letters, digits, ``_ - .`` and spaces."""
    def clean(text: str) -> str:
        return re.sub(r"[^\w.\- ]", "_", text.replace("/", ".")).strip(" .") or "_"

    return f"{clean(probe)}/{clean(name)}{suffix}"[:limit]


def missing_client(package: str, extra: str) -> Exception:
    from lmcritic.errors import ConfigError

    return ConfigError(f"the {package} client is not installed", f"pip install 'lmcritic[{extra}]'")


__all__ = ["TRACKERS", "Tracker", "finding_rows", "metric_key", "run_params"]
