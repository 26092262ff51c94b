"""Rule signals of prompt injection, for what a bag-of-words classifier misses: the *shape* of an injected
instruction rather than its vocabulary. The families follow the public taxonomies of prompt injection (goal
hijacking and prompt leaking, Perez & Ribeiro 2022; indirect injection, Greshake et al. 2023; the "ignore
previous instructions" verb x qualifier x object heuristic of open-source detectors; OWASP LLM01):

* ``override``: an instruction to drop earlier instructions or context (an override verb close before a
  reference to what came before or to the instructions themselves);
* ``spoofed_role``: text posing as a system/administrator/developer message or a chat special token;
* ``new_instructions``: an announced replacement task ("your new task is", "from now on", "developer mode");
* ``persona``: a persona swap ("you are now", "pretend to be");
* ``redirected_output``: an output demanded *instead* of the task's, or a literal to print;
* ``insistence``: pressure to comply ("do not deviate", "stop everything");
* ``spoofed_turn``: a fake conversation turn (``Assistant:``/``User:`` mid-text);
* ``addressed_to_model``: text that speaks to the AI that reads it;
* ``delimiter_escape``: a claimed end of the document or input, followed by more text;
* ``exfiltration``: a request to put a link or image into the answer.

The first three are *strong* (each alone is an injection: score 0.9); the others are *weak* (0.35 each, and
combined as independent evidence, so two weak signals together pass 0.5). Every pattern is case-insensitive
and counts whole words only.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

STRONG, WEAK = 0.9, 0.35

_VERB = (r"(?:ignore|disregard|forget|skip|neglect|overlook|bypass|override|overrule|abandon|discard|drop|"
         r"cancel|scrap|stop\s+following|do\s+not\s+(?:follow|obey|heed)|don'?t\s+(?:follow|obey|heed)|"
         r"pay\s+no\s+attention\s+to|never\s*mind)")
_BEFORE = (r"(?:previous|previously|prior|above|preceding|earlier|foregoing|former|original|initial|"
           r"aforementioned|old|rest\s+of|remaining|following|other|these|those|your|all|any|every)")
# a user correcting themselves ("ignore my last message", "forget what I said") is not an override
_SELF = r"(?!\W+(?:(?:all\W+|the\W+)?(?:of\W+)?(?:my|our|what\s+i|what\s+we|i)\b))"
_OBJECT = (r"(?:instructions?|directions?|directives?|commands?|rules|guidelines|guidance|prompts?|"
           r"system\s+(?:prompt|message)|context|tasks?|orders|constraints|restrictions|policies|programming|"
           r"text|data|content|input|conversation|messages?|requests?|information|everything|above)")
_ROLE = r"(?:system|administrator|admin|developer|operator|root|sysadmin)"


@functools.lru_cache(maxsize=1)
def _patterns() -> dict[str, tuple[float, tuple[re.Pattern[str], ...]]]:
    flags = re.IGNORECASE
    c = functools.partial(re.compile, flags=flags)
    return {
        "override": (STRONG, (
            c(rf"\b{_VERB}\b{_SELF}(?:\W+\w+){{0,3}}?\W+{_BEFORE}\b(?:\W+\w+){{0,2}}?\W+{_OBJECT}\b"),
            c(rf"\b{_VERB}\W+(?:all\W+|any\W+|the\W+)?(?:above|previous|prior|preceding|foregoing|earlier)\b"),
            c(rf"\b{_VERB}\W+(?:the\W+|your\W+|this\W+|that\W+)?(?:instructions?|task|prompt|"
              r"system\s+prompt|rules|guidelines)\b"),
        )),
        "spoofed_role": (STRONG, (
            c(rf"(?:^|\n|[.!?]\s+)\s*(?:#+\s*)?{_ROLE}(?:\s+(?:message|note|prompt|override|instructions?|"
              r"update))?\s*:"),
            c(r"[\[<]\s*/?\s*(?:system|admin|administrator|developer)\s*[\]>]"),
            c(r"<\|\s*(?:im_start|im_end|endoftext|system|assistant|user|eot_id|start_header_id)\s*\|>"),
            c(r"\b(?:new|updated|revised|real|actual)\s+(?:system\s+)?(?:instructions?|directives?|rules|orders)\s+"
              rf"from\s+(?:the\s+)?{_ROLE}\b"),
            c(r"\b(?:priority|admin(?:istrator)?|developer|emergency|security)\s+override\b"),
        )),
        "new_instructions": (STRONG, (
            c(r"\b(?:new|updated|revised|real|actual|true)\s+(?:instructions?|task|directives?|objective|"
              r"assignment|orders|rules)\s*(?::|are\b|is\b|follow\b)"),
            c(r"\byour\s+(?:new|only|real|actual|true|sole|next)\s+(?:task|job|goal|objective|instruction|"
              r"purpose|mission|assignment)\s+(?:now\s+)?(?:is|will\s+be|from\s+now)\b"),
            c(r"\bfrom\s+now\s+on,?\s+(?:you|your|always|only|respond|answer|reply|act|ignore)\b"),
            c(r"\b(?:developer|god|jailbreak|unrestricted|dan)\s+mode\b"),
            c(r"\b(?:without|no|free\s+of)\s+(?:any\s+)?(?:rules|restrictions|filters|guidelines|limits)\b"
              r"(?:\W+\w+){0,6}?\W+(?:answer|respond|reply|act|begin|start|say)\b"),
        )),
        "spoofed_turn": (WEAK, (
            c(r"(?:^|\n|[.!?\"']\s+)\s*(?:assistant|ai|bot|chatbot|model|gpt|claude|user|human)\s*:\s*\S"),
        )),
        "addressed_to_model": (WEAK, (
            c(r"\b(?:to|for|attention|note\s+(?:to|for)|dear|hey|hi)\s+(?:the\s+|any\s+|all\s+)?(?:ai|a\.i\.|"
              r"assistant|llm|language\s+model|chatbot|bot|model|automated\s+\w+|gpt)s?\b"
              r"(?:\s+(?:reading|processing|summari[sz]ing|analy[sz]ing|scanning)\s+this)?\s*[:,]"),
            c(r"\bif\s+you\s+are\s+(?:an?\s+|the\s+)?(?:ai|assistant|llm|language\s+model|chatbot|bot|model)\b"),
            c(r"\b(?:ai|assistant|llm|model|chatbot)s?\s+(?:reading|processing|summari[sz]ing|analy[sz]ing)\s+"
              r"this\b"),
            c(r"\bnote\s+(?:to|for)\s+(?:the\s+|any\s+|all\s+)?(?:\w+\s+){0,2}(?:software|systems?|tools?|scanners?|"
              r"screeners?|readers?|agents?|bots?|models?|ai|llms?)\b"),
            c(r"\b(?:visible|readable|meant|intended)\s+(?:only\s+)?(?:to|for)\s+(?:the\s+)?(?:ai|llm|language\s+model|"
              r"model|bot|assistant|automated\s+\w+)s?\b"),
            c(r"\b(?:invisible|hidden)\s+(?:to|from)\s+(?:the\s+)?(?:humans?|people|users?|readers?)\b"),
        )),
        "insistence": (WEAK, (
            c(r"\b(?:do\s+not|don'?t|you\s+(?:may|must|can|should)\s+not|never)\s+deviate\b"),
            c(r"\bstop\s+(?:everything|what\s+you\s*(?:'re|are)\s+doing|all\s+(?:other\s+)?tasks)\b"),
            c(r"\b(?:this|it)\s+is\s+(?:critical|imperative|vital|mandatory)\s+(?:that|to|for)\s+(?:you|my)\b"),
        )),
        "delimiter_escape": (WEAK, (
            c(r"\bend\s+of\s+(?:the\s+)?(?:document|text|input|context|data|article|email|file|prompt|"
              r"instructions|user\s+input|review)\b\W*\S"),
            c(r"(?:^|\n)\s*(?:\"{3}|'{3}|`{3}|-{3,}|={3,}|#{3,})\s*\n(?:.*\n)?\s*(?:new|now|next|then|instead|"
              r"your|please|you)\b"),
        )),
        "exfiltration": (WEAK, (
            c(r"\b(?:add|include|append|insert|put|embed|render)\s+(?:the\s+|this\s+|a\s+|an\s+)?(?:following\s+)?"
              r"(?:link|url|image|markdown|hyperlink|tracking\s+pixel)s?\b"),
            c(r"!\[[^\]]*\]\(\s*https?://"),
        )),
        "persona": (WEAK, (
            c(r"\byou\s+are\s+(?:now|no\s+longer)\s+(?:an?\s+|the\s+|in\s+)?\w+"),
            c(r"\b(?:pretend|act|behave|roleplay)\s+(?:to\s+be\s+|as\s+(?:if\s+you\s+(?:are|were)\s+)?|like\s+)"
              r"(?:an?\s+|the\s+)?\w+"),
        )),
        "redirected_output": (WEAK, (
            c(r"\binstead\b(?:\W+\w+){0,3}?\W+(?:say|print|output|write|respond|reply|answer|tell|repeat|"
              r"return|type)\b"),
            c(r"\b(?:say|print|output|write|respond|reply|answer|repeat|return)\b(?:\W+\w+){0,6}?\W+instead\b"),
            c(r"\b(?:just|only|simply)\s+(?:print|say|output|write|type|respond\s+with|reply\s+with|answer\s+with)\b"),
            c(r"\b(?:repeat|print|output|write)\s+(?:the\s+following|this|these)\s+(?:\w+\s+)?(?:verbatim|exactly|"
              r"sentence|text|words?|phrase|string)\b"),
        )),
    }


@dataclass(frozen=True)
class RuleHits:
    """Which families matched, and the combined score (1 - prod(1 - weight) over matched families)."""

    families: tuple[str, ...]
    score: float


def fingerprint() -> str:
    """A hash of every pattern and weight: the scorer's cache key changes whenever a rule does."""
    import hashlib

    parts = [f"{name}:{w}:" + "|".join(p.pattern for p in pats) for name, (w, pats) in _patterns().items()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def rule_hits(text: str) -> RuleHits:
    found = [(name, w) for name, (w, pats) in _patterns().items() if any(p.search(text) for p in pats)]
    miss = 1.0
    for _, w in found:
        miss *= 1.0 - w
    return RuleHits(tuple(n for n, _ in found), round(1.0 - miss, 6))


FAMILIES: tuple[str, ...] = ("override", "spoofed_role", "new_instructions", "spoofed_turn", "addressed_to_model",
                             "insistence", "delimiter_escape", "exfiltration", "persona", "redirected_output")

__all__ = ["FAMILIES", "RuleHits", "fingerprint", "rule_hits"]
