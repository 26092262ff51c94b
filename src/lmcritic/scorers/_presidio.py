"""Optional Presidio engine for the PII scorer (needs presidio-analyzer and a locally installed spaCy model)."""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from typing import Any, Sequence

from lmcritic.errors import LmcriticError

# Presidio entity → our PII type.
ENTITY_MAP = {"EMAIL_ADDRESS": "email", "PHONE_NUMBER": "phone", "CREDIT_CARD": "credit_card", "IBAN_CODE": "iban",
              "IP_ADDRESS": "ip_address", "US_SSN": "ssn", "PERSON": "person", "LOCATION": "street_address"}
SPACY_MODELS = ("en_core_web_lg", "en_core_web_md", "en_core_web_sm")


def presidio_missing() -> str | None:
    if importlib.util.find_spec("presidio_analyzer") is None:
        return "presidio-analyzer is not installed; use engine='patterns'"
    if not any(importlib.util.find_spec(m) for m in SPACY_MODELS):
        return "no spaCy English model is installed (en_core_web_sm/md/lg); use engine='patterns'"
    return None


@lru_cache(maxsize=1)
def _analyzer() -> Any:
    reason = presidio_missing()
    if reason:
        raise LmcriticError(f"PII engine 'presidio' cannot run: {reason}")
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    model = next(m for m in SPACY_MODELS if importlib.util.find_spec(m))
    conf = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}]}
    return AnalyzerEngine(nlp_engine=NlpEngineProvider(nlp_configuration=conf).create_engine())


def presidio_find(text: str, types: Sequence[str]) -> list:
    from lmcritic.scorers.pii import PIIMatch, _drop_overlaps

    wanted = [e for e, t in ENTITY_MAP.items() if t in types]
    found = [PIIMatch(ENTITY_MAP[r.entity_type], r.start, r.end, text[r.start:r.end])
             for r in _analyzer().analyze(text=text, entities=wanted, language="en")]
    return _drop_overlaps(found)
