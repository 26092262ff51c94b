"""Mitigate and re-verify: turn a diagnosis into a fix and prove it with a paired re-run.

``MITIGATIONS`` holds the fixes (lazily registered; a plug-in adds ``MITIGATIONS.add("name", "pkg.mod:Class")``
or an entry point in the group ``lmcritic.mitigations``). Training-time ones retrain local weights on an edited
training corpus; inference-time ones wrap any backend (:data:`lmcritic.mitigate.wrappers.WRAPPERS`, loaded from a
model spec with ``backend: mitigated``). :func:`apply` picks one for a diagnosed defect (``method="auto"``),
makes the mitigated model and re-verifies it. Importing this is cheap.
"""
from __future__ import annotations

import importlib
from typing import Any

from lmcritic.registry import Registry

MITIGATIONS: Registry = Registry("mitigations")
for _name, _target in {
    # training-time: a new model folder
    "counterfactual_augmentation": "lmcritic.mitigate.counterfactual:CounterfactualAugmentation",
    "adversarial_training": "lmcritic.mitigate.adversarial:AdversarialTraining",
    "domain_augmentation": "lmcritic.mitigate.training:DomainAugmentation",
    "shortcut_removal": "lmcritic.mitigate.cleaning:ShortcutRemoval",
    "label_repair": "lmcritic.mitigate.cleaning:LabelRepair",
    "dedup": "lmcritic.mitigate.cleaning:Dedup",
    # inference-time: the model behind a wrapper
    "calibrate": "lmcritic.mitigate.inference:Calibrate",
    "normalize_input": "lmcritic.mitigate.inference:NormalizeInput",
    "adversarial_guard": "lmcritic.mitigate.inference:AdversarialGuardMitigation",
    "injection_guard": "lmcritic.mitigate.safety:InjectionGuardMitigation",
    "harm_guard": "lmcritic.mitigate.safety:HarmGuardMitigation",
    "output_filter": "lmcritic.mitigate.safety:OutputFilterMitigation",
}.items():
    MITIGATIONS.add(_name, _target)

_EXPORTS = {
    "apply": "lmcritic.mitigate.api",
    "MitigationOutcome": "lmcritic.mitigate.api",
    "Mitigation": "lmcritic.mitigate.base",
    "MitigationContext": "lmcritic.mitigate.base",
    "MitigatedModel": "lmcritic.mitigate.base",
    "Culprit": "lmcritic.mitigate.base",
    "Target": "lmcritic.mitigate.base",
    "Verification": "lmcritic.mitigate.verify",
    "WRAPPERS": "lmcritic.mitigate.wrappers",
    "MitigatedBackend": "lmcritic.mitigate.wrappers",
    "WrapperBackend": "lmcritic.mitigate.wrappers",
    "TRAINERS": "lmcritic.mitigate.trainers",
    "TrainConfig": "lmcritic.mitigate.trainers",
    "TrainingSet": "lmcritic.mitigate.data",
    "load_training": "lmcritic.mitigate.data",
}
__all__ = sorted(["MITIGATIONS", *_EXPORTS])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lmcritic.mitigate' has no attribute {name!r}")
