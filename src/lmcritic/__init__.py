"""lmcritic: critique a language model end to end and find why it fails.

Importing this package is cheap: torch, transformers and every other heavy dependency load only inside
the backend or probe that needs them. Public names resolve lazily on first attribute access.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Backend": "lmcritic.backends.base",
    "ModelSpec": "lmcritic.backends",
    "load_model": "lmcritic.backends",
    "BACKENDS": "lmcritic.backends",
    "MODELS": "lmcritic.backends",
    "Capability": "lmcritic.requests",
    "GenParams": "lmcritic.requests",
    "ChatMessage": "lmcritic.requests",
    "LoglikelihoodRequest": "lmcritic.requests",
    "RollingRequest": "lmcritic.requests",
    "GenerateRequest": "lmcritic.requests",
    "ClassifyRequest": "lmcritic.requests",
    "PseudoLoglikelihoodRequest": "lmcritic.requests",
    "EmbeddingRequest": "lmcritic.requests",
    "CachedBackend": "lmcritic.store.cache",
    "Budget": "lmcritic.store.cache",
    "RunStore": "lmcritic.store.runs",
    "MonitorStore": "lmcritic.store.monitor",
    "RunSpec": "lmcritic.spec",
    "Probe": "lmcritic.probes.base",
    "Case": "lmcritic.probes.base",
    "Record": "lmcritic.probes.base",
    "Finding": "lmcritic.probes.base",
    "Verdict": "lmcritic.probes.base",
    "PROBES": "lmcritic.probes",
    "DETECTORS": "lmcritic.detectors",
    "TRANSFORMS": "lmcritic.attacks.prompts",
    "build_chain": "lmcritic.attacks.prompts",
    "METRICS": "lmcritic.metrics",
    "Registry": "lmcritic.registry",
    "LmcriticError": "lmcritic.errors",
    "run_spec": "lmcritic.runner",
    "diagnose_run": "lmcritic.diagnose.api",
    "MITIGATIONS": "lmcritic.mitigate",
    "TaskSpec": "lmcritic.tasks",
    "load_task": "lmcritic.tasks",
    "scan": "lmcritic.api",
    "run": "lmcritic.api",
    "Results": "lmcritic.results",
    "RunFailed": "lmcritic.errors",
    "model_dir": "lmcritic.backends.objects",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lmcritic' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
