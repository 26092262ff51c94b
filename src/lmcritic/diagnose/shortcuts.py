"""Shortcut and backdoor tokens: found in the training corpus, confirmed on the model by insertion.

A token that never occurs in the evaluation data cannot cause a failure there, so no probe sees it. Here the
candidates come from the corpus (:class:`~lmcritic.diagnose.profile.CorpusProfile`): tokens significantly
associated with one label *and* flagged as training artefacts (over-represented in training relative to the
evaluated data, or associated much more weakly there), BH-corrected. A token is a word, a number or a run of
symbols (``:-)``, an emoji, ``|||``): an artefact is as often punctuation or markup as a word. Where the task is
sentiment, tokens that carry sentiment (VADER lexicon, negations; its emoticons and sentiment emoji, exclamation
marks) are left out — a task-specific judgement, said so in the evidence — unless the corpus ties a sentiment
word to the label opposite its valence (a genre word VADER rates positive in rows all labelled negative): its
sentiment cannot explain that tie. For any other task the artefact test alone decides. Identity terms are left
out too: a demographic shortcut is tested as data bias (held-out names and templates, the corpus skew per
group), the more specific cause.

A trigger of several words ("I watched this 3D movie" in poisoned rows) may move the model only whole: where two
or more of one label's artefact tokens recur as one run of words in most of their training rows, that run is a
candidate too (:func:`phrases`), inserted as a unit.

Each candidate is inserted at a random position into held-out evaluated inputs that the model gets right and
that do not have the token's label; a control token (a corpus word with no label association, same position)
is inserted into the same inputs. The effect is the paired difference of flip rates toward the token's label,
with a bootstrap CI and p-value. Tokens with an effect become defects of their own (probe ``train corpus``).
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any, Sequence

from lmcritic import stats
from lmcritic.diagnose import _text
from lmcritic.diagnose.features import input_text
from lmcritic.diagnose.profile import CorpusProfile, TokenAssociation
from lmcritic.diagnose.rescore import Edit, Rescorer
from lmcritic.probes.base import Estimate, Record

PER_LABEL = 5  # candidates tested per label
INPUTS = 60  # held-out inputs per candidate
CONTROLS = 8
PHRASE_WORDS = 8  # the longest run of words read as one trigger
PHRASE_ROWS = 5  # training rows a run must recur in


@dataclass(frozen=True)
class TokenTest:
    token: TokenAssociation
    flips: Estimate  # inserting the token flips the prediction to its label
    control: Estimate  # inserting a control token flips it
    effect: Estimate  # paired difference
    p_value: float
    case_ids: tuple[str, ...]  # the inputs it flipped (as edited case ids)
    examples: tuple[dict[str, Any], ...]
    judged_by: str  # "artifact test" or "artifact test + sentiment lexicon"


def candidates(profile: CorpusProfile, sentiment: bool) -> tuple[list[TokenAssociation], str]:
    """Associated tokens that look like training artefacts (BH over the associated tokens), strongest first."""
    rows = list(profile.tokens)
    qs = stats.benjamini_hochberg([r.artifact_p for r in rows]) if rows else []
    found = [r for r, q in zip(rows, qs) if q < 0.05 and (r.token.isalnum() or _text.is_symbol(r.token))]
    how = "artifact test"
    found = [r for r in found if not _text.identity_word(r.token)]  # demographic terms: the data-bias hypothesis
    if sentiment:
        found = [r for r in found if not _text.lexicon_explains(r.token, r.label)]
        how += " + sentiment lexicon (VADER; task-specific)"
    out: list[TokenAssociation] = []
    for label in sorted({r.label for r in found}):
        mine = [r for r in found if r.label == label]
        out += phrases(profile, mine) + mine[:PER_LABEL]
    return out, how


def phrases(profile: CorpusProfile, found: Sequence[TokenAssociation]) -> list[TokenAssociation]:
    """The run of words (as written) that holds >= 2 of ``found`` (one label's artefact tokens) in the most training
    rows, when it recurs in >= ``PHRASE_ROWS`` rows and in at least half the rows of its rarest token: those tokens
    are then one trigger, not several. At most one per label; its statistics are its strongest token's."""
    words = {r.token: r for r in found}
    counts = Counter(line for r in found for line in r.lines)
    shared = {line for line, k in counts.items() if k >= 2}
    runs: Counter[str] = Counter()
    surface: dict[str, str] = {}
    for text, line in zip(profile.corpus.texts, profile.corpus.lines):
        run = _run(text, words) if line in shared else None
        if run:
            runs[run.lower()] += 1
            surface.setdefault(run.lower(), run)
    if not runs:
        return []
    run, k = runs.most_common(1)[0]
    inside = [words[t] for t in set(_text.tokens(run)) if t in words]
    if k < max(PHRASE_ROWS, min(r.n_docs for r in inside) / 2):
        return []
    best = max(inside, key=lambda r: abs(r.z))
    return [replace(best, token=surface[run], n_docs=k)]


def _run(text: str, words: dict[str, TokenAssociation]) -> str | None:
    """``text`` from its first to its last token in ``words``, when there are two or more within PHRASE_WORDS."""
    hits = [m for m in _text.token_matches(text) if m.group().lower() in words]
    span = text[hits[0].start():hits[-1].end()] if len(hits) >= 2 else ""
    return span if span and len(span.split()) <= PHRASE_WORDS else None


def test_tokens(profile: CorpusProfile, rescorer: Rescorer, probe_key: str, records: Sequence[Record],
                sentiment: bool, seed: int = 0) -> list[TokenTest]:
    """Insert each candidate into held-out inputs; compare with control tokens on the same inputs."""
    tokens, how = candidates(profile, sentiment)
    controls = _controls(profile, seed)
    out = []
    for tok in tokens:
        test = _insertion(tok, controls, rescorer, probe_key, records, seed, how)
        if test is not None:
            out.append(test)
    return out


def _insertion(tok: TokenAssociation, controls: list[str], rescorer: Rescorer, probe_key: str,
               records: Sequence[Record], seed: int, how: str) -> TokenTest | None:
    rng = random.Random(f"{seed}:{tok.token}")
    pool = [r for r in records if r.passed and _prediction(r) not in (None, tok.label) and input_text(r)
            and not _text.holds(input_text(r) or "", tok.token)]
    pool = rng.sample(pool, min(INPUTS, len(pool)))
    if len(pool) < 5 or not controls:
        return None
    edits, ctrl = [], []
    for r in pool:
        at = rng.random()
        edits.append(Edit(r, insert(input_text(r) or "", tok.token, at), f"insert:{tok.token}", {"token": tok.token}))
        c = rng.choice(controls)
        ctrl.append(Edit(r, insert(input_text(r) or "", c, at), f"insert-control:{c}", {"token": c}))
    outs = rescorer.run(probe_key, edits + ctrl, "spurious_feature", f"token:{tok.token}")
    if len(outs) < 2 * len(pool):
        return None
    hit = [o.prediction == tok.label for o in outs[: len(pool)]]
    base = [o.prediction == tok.label for o in outs[len(pool):]]
    effect, p = stats.paired_proportions(base, hit)
    flipped = tuple(o.record.case_id for o, h in zip(outs, hit) if h)
    examples = tuple({"case": o.edit.record.case_id, "edited": o.edit.text, "after": o.prediction}
                     for o, h in zip(outs, hit) if h)[:3]
    return TokenTest(tok, stats.proportion(hit), stats.proportion(base), effect, p, flipped, examples, how)


def insert(text: str, token: str, at: float) -> str:
    """``token`` between two words of ``text``, at relative position ``at`` in [0, 1)."""
    words = text.split()
    i = min(len(words), int(at * (len(words) + 1)))
    return " ".join(words[:i] + [token] + words[i:])


def _controls(profile: CorpusProfile, seed: int) -> list[str]:
    """Corpus words with no label association (|z| < 1), as frequent as a candidate could be: the null."""
    associated = {t.token for t in profile.tokens}
    counts: dict[str, int] = {}
    for t in profile.corpus.texts:
        for w in set(_text.lower_words(t)):
            counts[w] = counts.get(w, 0) + 1
    pool = sorted(w for w, k in counts.items() if k >= profile.min_count and w.isalpha() and w not in associated
                  and not _text.should_matter(w) and len(w) > 2)
    return random.Random(seed).sample(pool, min(CONTROLS, len(pool)))


def _prediction(r: Record) -> str | None:
    p = r.prediction
    return str(p) if p is not None else None
