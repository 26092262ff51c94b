"""Monitoring after deployment: production traffic and user feedback through the same scorers as the
pre-deployment scan, then windows, drift, alerts, a report, and new test cases back into the loop.

Pipeline (each step stores its work in the run store, so every step is incremental and resumable):
``ingest`` (logs → requests) → ``score`` (per-request scores, batched and cached) → ``check`` (windows with CIs,
drift against a reference, alert rules) → ``report`` / ``export-cases`` / ``to_run`` (diagnose like a run).
Nothing heavy is imported here; each step imports what it needs.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "LogRecord": "lmcritic.monitor.schema",
    "normalize": "lmcritic.monitor.schema",
    "ingest": "lmcritic.monitor.ingest",
    "MonitorStore": "lmcritic.store.monitor",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lmcritic.monitor' has no attribute {name!r}")
