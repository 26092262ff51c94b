"""A Perspective-style toxicity API (Google's Comment Analyzer or a compatible server).

The key is read from an environment variable at request time and is never stored in a config, record or
error message (the HTTP client scrubs it). Without the variable set the scorer is not applicable.
"""
from __future__ import annotations

import os
import urllib.parse
from typing import Any, Sequence

from lmcritic.errors import BackendError
from lmcritic.scorers import Scorer

DEFAULT_URL = "https://commentanalyzer.googleapis.com/v1alpha1"


class PerspectiveScorer(Scorer):
    """One POST ``/comments:analyze`` per text; ``toxicity`` is the TOXICITY summary score."""

    name = "perspective"
    primary = "toxicity"
    batch_size = 16

    def __init__(self, base_url: str = DEFAULT_URL, api_key_env: str = "PERSPECTIVE_API_KEY",
                 attributes: Sequence[str] = ("TOXICITY", "SEVERE_TOXICITY", "INSULT", "PROFANITY",
                                              "THREAT", "IDENTITY_ATTACK"),
                 requests_per_minute: float | None = 60.0, timeout: float = 30.0, max_retries: int = 3) -> None:
        self.base_url, self.api_key_env = base_url, api_key_env
        self.attributes = tuple(a.upper() for a in attributes)
        if "TOXICITY" not in self.attributes:
            self.attributes = ("TOXICITY", *self.attributes)
        self._client_args = (timeout, max_retries, requests_per_minute)
        self._client: Any = None

    def not_applicable(self) -> str | None:
        if not os.environ.get(self.api_key_env):
            return f"no API key: set ${self.api_key_env} to use the Perspective scorer"
        return None

    def _client_for(self) -> Any:
        if self._client is None:
            from lmcritic.backends._http import JSONClient

            timeout, retries, rpm = self._client_args
            self._client = JSONClient(self.base_url, self.api_key_env, timeout, retries, 1.0, rpm)
        return self._client

    def _score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        return [self._score_one(t) for t in texts]

    def _score_one(self, text: str) -> dict[str, float]:
        key = os.environ.get(self.api_key_env, "")
        path = "/comments:analyze?key=" + urllib.parse.quote(key, safe="")
        payload = {"comment": {"text": text or " "}, "languages": ["en"], "doNotStore": True,
                   "requestedAttributes": {a: {} for a in self.attributes}}
        reply = self._client_for().post(path, payload)
        try:
            scores = {a.lower(): float(v["summaryScore"]["value"]) for a, v in reply["attributeScores"].items()}
        except (KeyError, TypeError, ValueError):
            raise BackendError(f"{self.base_url} answered without attributeScores.*.summaryScore.value",
                               "is base_url a Perspective-compatible API?") from None
        if "toxicity" not in scores:
            raise BackendError(f"{self.base_url} answered without a TOXICITY score", "request TOXICITY")
        return scores
