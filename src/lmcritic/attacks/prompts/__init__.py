"""Prompt-level attack families (jailbreaks) as composable transforms, in one registry.

    from lmcritic.attacks.prompts import TRANSFORMS, build_chain
    chain = build_chain("base64+dan")   # encode the request, then wrap it in a DAN persona

Static transforms compose left to right; an adaptive attack (``crescendo``, ``suffix``) talks to the model
and may only end a chain. ``lmcritic.probes.safety.jailbreak`` runs chains over seed requests.
"""
from __future__ import annotations

from lmcritic.attacks.prompts.base import (
    Adaptive,
    AttackPrompt,
    Attempt,
    Chain,
    Sender,
    TextTransform,
    Transform,
    TransformContext,
    TransformError,
    build_chain,
)
from lmcritic.registry import Registry

TRANSFORMS: Registry[type[Transform] | type[Adaptive]] = Registry("transforms", subclass_of=(Transform, Adaptive))
for _name, _target in {
    "dan": "persona:DoAnythingNow", "roleplay": "persona:RolePlay",
    "refusal_suppression": "persona:RefusalSuppression", "prefix_injection": "persona:PrefixInjection",
    "payload_split": "structure:PayloadSplit", "many_shot": "structure:ManyShot",
    "base64": "encoding:Base64", "rot13": "encoding:Rot13", "leetspeak": "encoding:Leetspeak",
    "homoglyph": "encoding:Homoglyph", "translate": "translate:Translate",
    "crescendo": "crescendo:Crescendo", "suffix": "suffix:SuffixSearch",
}.items():
    TRANSFORMS.add(_name, f"lmcritic.attacks.prompts.{_target}")

__all__ = ["TRANSFORMS", "Adaptive", "Attempt", "AttackPrompt", "Chain", "Sender", "TextTransform", "Transform",
           "TransformContext", "TransformError", "build_chain"]
