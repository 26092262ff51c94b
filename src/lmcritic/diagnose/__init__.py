"""Root-cause diagnosis: group a run's failures into defects, test candidate causes on each, and link
them to the training data. ``diagnose_run(store, run_id)`` is the entry point; importing this is cheap."""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "diagnose_run": "lmcritic.diagnose.api",
    "DiagnoseConfig": "lmcritic.diagnose.api",
    "DefectGraph": "lmcritic.diagnose.graph",
    "load_graph": "lmcritic.diagnose.storage",
    "render_text": "lmcritic.diagnose.graph",
    "HYPOTHESES": "lmcritic.diagnose.hypotheses",
    "Corpus": "lmcritic.diagnose.corpus",
    "CorpusProfile": "lmcritic.diagnose.profile",
    "CauseVerdict": "lmcritic.diagnose.hypotheses.base",
    "Culprit": "lmcritic.diagnose.hypotheses.base",
    "RankedCause": "lmcritic.diagnose.graph",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lmcritic.diagnose' has no attribute {name!r}")
