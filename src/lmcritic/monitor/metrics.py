"""The monitored metrics: each reads one stored per-request score and is a *rate* (share of requests flagged),
a *mean* (of a continuous score) or a *category* (a label's distribution), plus the MiniLM *embedding* of the
prompt or response for multivariate drift. Requests without the score (no response, no feedback) are left out
of that metric's n, never counted as zeros.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

from lmcritic.errors import ConfigError
from lmcritic.registry import Registry

KINDS = ("rate", "mean", "category", "embedding")


@dataclass(frozen=True)
class MetricDef:
    """``source``: the stored score read; a rate flags ``source > threshold`` (``< threshold`` with ``below``)."""

    name: str
    source: str
    kind: str
    description: str
    threshold: float = 0.5
    below: bool = False

    def value(self, scores: Mapping[str, Any]) -> Any:
        """The request's value for this metric (0/1 for a rate, a float, a label), or None when it has none."""
        raw = scores.get(self.source)
        if raw is None or self.kind == "embedding":
            return None
        if self.kind == "category":
            return str(raw)
        x = float(raw)
        if math.isnan(x):
            return None
        if self.kind == "rate":
            return float(x < self.threshold) if self.below else float(x > self.threshold)
        return x


METRICS: Registry[MetricDef] = Registry("monitor_metrics")
for _m in (
    MetricDef("prompt.toxic", "prompt.toxicity", "rate", "prompts with toxicity > 0.5 (max of hatesonar, profanity)"),
    MetricDef("response.toxic", "response.toxicity", "rate", "responses with toxicity > 0.5"),
    MetricDef("prompt.toxicity", "prompt.toxicity", "mean", "mean prompt toxicity score"),
    MetricDef("response.toxicity", "response.toxicity", "mean", "mean response toxicity score"),
    MetricDef("prompt.pii", "prompt.pii", "rate", "prompts containing PII (validated patterns)"),
    MetricDef("response.pii", "response.pii", "rate", "responses containing PII"),
    MetricDef("response.refusal", "response.refusal", "rate", "responses that refuse"),
    MetricDef("prompt.injection", "prompt.injection", "rate", "prompts prompt-guardrail flags as injections"),
    MetricDef("prompt.injection_score", "prompt.injection", "mean", "mean P(injection) of prompts"),
    MetricDef("prompt.colloquial", "prompt.register", "rate", "prompts in colloquial register"),
    MetricDef("prompt.marker_rate", "prompt.register.marker_rate", "mean", "colloquial markers per word"),
    MetricDef("prompt.words", "prompt.length", "mean", "prompt length in words"),
    MetricDef("response.words", "response.length", "mean", "response length in words"),
    MetricDef("prompt.non_english", "prompt.language", "rate", "prompts not identified as English", below=True),
    MetricDef("prompt.language", "prompt.language.code", "category", "prompt language (py3langid)"),
    MetricDef("response.language", "response.language.code", "category", "response language"),
    MetricDef("prompt.perplexity", "prompt.perplexity", "mean", "prompt log-perplexity (mean token NLL)"),
    MetricDef("prompt.adversarial", "prompt.perplexity.max_nll", "mean", "largest token surprisal of the prompt"),
    MetricDef("feedback.negative", "feedback.thumb", "rate", "thumbs-down share of rated requests", 0.0, True),
    MetricDef("feedback.score", "feedback.score", "mean", "mean feedback score as logged"),
    MetricDef("feedback.sentiment", "feedback.vader", "mean", "VADER sentiment of feedback comments (0..1)"),
    MetricDef("prompt.embedding", "prompt", "embedding", "MiniLM embedding of the prompt (MMD drift)"),
    MetricDef("response.embedding", "response", "embedding", "MiniLM embedding of the response (MMD drift)"),
):
    METRICS.add(_m.name, _m)


def metric(name: str) -> MetricDef:
    return METRICS.get(name)


def scalar_metrics(available: set[str] | None = None) -> list[MetricDef]:
    """Every non-embedding metric whose source score exists (``available``: stored score names seen)."""
    out = [METRICS.get(n) for n in METRICS.names()]
    return [m for m in out if m.kind != "embedding" and (available is None or m.source in available)]


@dataclass(frozen=True)
class WindowSpec:
    """Windows of fixed time (``seconds``) aligned to the Unix epoch (UTC), or of ``count`` requests each."""

    seconds: float | None = None
    count: int | None = None

    @property
    def label(self) -> str:
        return f"{self.count} requests" if self.count else _duration(self.seconds or 0)


_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hour|d|day|w|week|req|requests?)?\s*$", re.I)
_UNIT = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400, "w": 604800,
         "week": 604800}


def parse_window(text: str) -> WindowSpec:
    """``hour``/``day``/``week``, ``30m``, ``6h``, ``1d``, ``3600s`` or ``500req`` (a fixed number of requests)."""
    words = {"hour": "1h", "hourly": "1h", "day": "1d", "daily": "1d", "week": "1w", "weekly": "1w"}
    m = _WINDOW.match(words.get(text.strip().lower(), text))
    if not m or float(m.group(1)) <= 0:
        raise ConfigError(f"bad window {text!r}", "use hour, day, 30m, 6h, 1d or 500req")
    unit = (m.group(2) or "s").lower()
    if unit.startswith("req"):
        return WindowSpec(count=int(float(m.group(1))))
    return WindowSpec(seconds=float(m.group(1)) * _UNIT[unit])


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
