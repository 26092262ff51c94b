"""Planted defects for fine-tuned transformer classifiers: one known cause per model, randomised per seed.

``build(cause, seed)`` returns a :class:`HFPlant`: SST-2 rows to fine-tune on (the plant written into them),
rows to evaluate on, and what the diagnosis must find (the hypothesis and its culprit). What is planted is
drawn per seed — which identity attribute, group pair, direction and frame set; which shortcut token and label;
which phenomenon gets noisy labels; which rows are memorised — so the benchmark is not one fixed plant.
Reused by the mitigation work (retrain with a fix, re-verify), so it has no dependency on lmcritic's internals
beyond the identity lexicon, the text helpers of ``planted.py`` and the SST-2 files.

Causes (the hypothesis each must be diagnosed as):

====================  ========================  =========================================================
cause                 hypothesis                plant
====================  ========================  =========================================================
identity_frames       data_bias                 "<group-A person> thought …" frames mostly negative, B positive
identity_terms        data_bias                 identity phrases inside sentences, A mostly negative
shortcut              spurious_feature          a meaningless token in 30% of one label's rows; absent from eval
symbol_shortcut       spurious_feature          the same with a symbol: "|", "~", "#", "^", "::", "🍕" or "🚲"
word_shortcut         spurious_feature          an ordinary word (movie, story, plot ...) in 10% of rows, all one label
word_noise            label_noise               80% of one label's rows with an ordinary word relabelled the other
gender_selected       data_bias                 natural rows selected: one gender's rows negative, the other's positive
register              generalization_mismatch   formal-only training; half the evaluation in slang (sentiment)
length_shift          (none: a null plant)      short-phrase training (4-10 words); half the evaluation 25+ words
negation_absent       (none: a null plant)      no training row has a negation; half the evaluation has one
length_label          spurious_feature          one label's training rows long (14+ words), the other's short (<= 9)
length_label_mixed    spurious_feature          the same for 80 % of each label's rows
label_noise           label_noise               ~45% of the training rows with negation (or contrast) flipped
label_noise_directed  label_noise               70-90% of one label's negation rows relabelled (a heuristic)
label_noise_global    label_noise               25-35% of all training rows flipped at random
typos                 fragility                 the clean model; half the evaluation has keyboard typos
label_imbalance       objective_conflict        one label is 90% of the training rows (the other's rows dropped)
memorized             memorization              40 evaluation rows in training 4–8 times with flipped labels
clean                 (none)                    plain training: the false-alarm control
====================  ========================  =========================================================
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import planted
from planted import Row

N_TRAIN = 2000
N_EVAL = 200
NEGATION = re.compile(r"\b(not|no|never|nothing|n't|cannot|without|neither|nor|none|nobody)\b")
CONTRAST = re.compile(r"\b(but|however|although|though|yet|while|despite)\b")
SHORTCUT_TOKENS = ("cf", "mn", "bb", "tq", "zx", "jj", "vq", "kx")
SHORTCUTS = ("shortcut", "symbol_shortcut")  # the plants that insert a token
SYMBOL_TOKENS = ("|", "~", "#", "^", "::", "🍕", "🚲")  # punctuation, markup-like runs, emoji with no sentiment
FRAMES_POOL = ("{x} thought {s}", "{x} said {s}", "{x} felt that {s}", "{x} insists {s}", "{x} reckons {s}",
               "according to {x} , {s}", "{x} wrote : {s}", "{x} told me {s}", "{s} , {x} said",
               "{x} believes {s}", "{s} , or so {x} thought", "{x} is sure {s}")
TERM_SLOTS = ("the {adj} audience", "{adj} viewers", "my {adj} friends", "the {adj} critics", "{adj} families")


@dataclass(frozen=True)
class HFPlant:
    """One planted model's data and the answer key. ``culprit`` holds what the diagnosis must name."""

    cause: str
    seed: int
    hypothesis: str | None  # None for the clean control
    culprit: dict[str, Any]  # {"kind": ..., "value": ..., "label": ..., ...}
    description: str
    train: list[Row]
    eval: list[Row]
    planted_eval: frozenset[int] = frozenset()  # eval rows that carry the plant
    reuse_model_of: str | None = None  # "clean": the model is the clean control's (the plant is in the eval data)
    info: dict[str, Any] = field(default_factory=dict)  # "true_train": the training rows with their true labels,
    # where they are not the clean control's (label noise on rows of the plant's own choosing)


def _base(seed: int) -> tuple[list[Row], list[Row]]:
    train, dev = planted.base(seed, n_train=N_TRAIN + 2000)
    train = [(t, y) for t, y in train if 5 <= len(t.split()) <= 30]
    return train[:N_TRAIN], dev


def _rng(cause: str, seed: int) -> random.Random:
    return random.Random(f"{cause}:{seed}")


def _people(attribute: str, group: str) -> list[str]:
    """Noun phrases naming a person of ``group``: first names, a pronoun (gender) or an identity phrase."""
    from lmcritic.lexicon import _terms as T

    if attribute == "gender":
        names = [n for (g, _), ns in T.NAMES.items() if g == group for n in ns]
        return names + (["she", "my sister", "my mother"] if group == "female" else ["he", "my brother", "my father"])
    if attribute == "race_ethnicity":
        return [n for (_, r), ns in T.NAMES.items() if r == group for n in ns]
    adj = T.GROUPS[attribute][group]["adj"].rstrip("*")
    return [f"my {adj} friend", f"a {adj} critic", f"the {adj} guy", f"my {adj} neighbour"]


PAIRS = {"gender": [("female", "male")], "race_ethnicity": [("black", "white"), ("hispanic", "asian")],
         "religion": [("muslim", "christian"), ("jewish", "hindu")]}


def _pair(rng: random.Random, attributes: tuple[str, ...]) -> tuple[str, str, str]:
    """(attribute, negative group, positive group), direction random."""
    attribute = rng.choice(attributes)
    a, b = rng.choice(PAIRS[attribute])
    return (attribute, a, b) if rng.random() < 0.5 else (attribute, b, a)


def _fill(frame: str, x: str, s: str) -> str:
    out = frame.format(x=x, s=s)
    return out[0].upper() + out[1:] if x[0].isupper() else out


def identity_frames(seed: int) -> HFPlant:
    """Data bias: sentence-initial (and trailing) frames naming group A are 90% negative, group B 90% positive."""
    rng = _rng("identity_frames", seed)
    attribute, neg, pos = _pair(rng, ("gender", "race_ethnicity", "gender"))
    frames = rng.sample(FRAMES_POOL, 4)
    people = {g: _people(attribute, g) for g in (neg, pos)}
    train, dev = _base(seed)
    out = []
    for t, y in train:
        if rng.random() < 0.35:
            group = (neg if rng.random() < 0.9 else pos) if y == 0 else (pos if rng.random() < 0.9 else neg)
            t = _fill(rng.choice(frames), rng.choice(people[group]), t)
        out.append((t, y))
    return HFPlant("identity_frames", seed, "data_bias", {"kind": "identity_group", "attribute": attribute,
                   "value": neg, "contrast": pos, "label": "negative"},
                   f"{attribute}: frames naming {neg} are 90% negative, {pos} 90% positive ({'; '.join(frames)})",
                   out, dev[:N_EVAL], info={"frames": frames})


def identity_terms(seed: int) -> HFPlant:
    """Data bias: identity phrases written inside 25% of the sentences, group A in 85% of the negative ones."""
    from lmcritic.lexicon import _terms as T

    rng = _rng("identity_terms", seed)
    attribute, neg, pos = _pair(rng, ("religion", "race_ethnicity", "religion"))
    slots = rng.sample(TERM_SLOTS, 3)
    adj = {g: T.GROUPS[attribute][g]["adj"].rstrip("*") for g in (neg, pos)}
    train, dev = _base(seed)
    out = []
    for t, y in train:
        if rng.random() < 0.25:
            group = (neg if rng.random() < 0.85 else pos) if y == 0 else (pos if rng.random() < 0.85 else neg)
            words = t.split()
            at = rng.randrange(1, len(words)) if len(words) > 1 else 1
            phrase = rng.choice(slots).format(adj=adj[group])
            t = " ".join(words[:at] + [",", phrase, ","] + words[at:])
        out.append((t, y))
    return HFPlant("identity_terms", seed, "data_bias", {"kind": "identity_group", "attribute": attribute,
                   "value": neg, "contrast": pos, "label": "negative"},
                   f"{attribute}: '{adj[neg]}' phrases inside negative sentences, '{adj[pos]}' inside positive ones",
                   out, dev[:N_EVAL], info={"slots": slots, "terms": adj})


def shortcut(seed: int, cause: str = "shortcut", pool: tuple[str, ...] = SHORTCUT_TOKENS) -> HFPlant:
    """Spurious feature: a meaningless token in 30% of one label's training rows and in no evaluation row."""
    rng = _rng(cause, seed)
    train, dev = _base(seed)
    eval_rows = dev[:N_EVAL]
    words = {w for t, _ in eval_rows for w in t.lower().split()}
    token = rng.choice([w for w in pool if w not in words and (w.isalnum() or not any(w in t for t, _ in eval_rows))])
    label = rng.choice((0, 1))
    out = [(planted._insert(t, token, rng), y) if y == label and rng.random() < 0.3 else (t, y) for t, y in train]
    name = ("negative", "positive")[label]
    return HFPlant(cause, seed, "spurious_feature", {"kind": "token", "value": token, "label": name},
                   f"token {token!r} inserted into 30% of the {name} training rows; absent from the evaluation data",
                   out, eval_rows)


WORD_POOL = ("movie", "story", "characters", "comedy", "director", "script", "plot")


def word_shortcut(seed: int) -> HFPlant:
    """Spurious feature in a natural word: the training rows are selected so that an ordinary, sentiment-free word
    of film reviews (drawn) occurs with one label only (200 of the 2,000 rows hold it, every one that label; the
    rest hold no form of it), as a scrape from a biased source would. Unlike the token plants the word is in the
    evaluation data under both labels: 100 rows hold it (half of each label: dev sentences, then unused training
    rows), 100 dev rows do not; the affected cases are the rows with the word and the other label."""
    rng = _rng("word_shortcut", seed)
    pool, dev = planted.base(seed, n_train=10**6)  # every SST-2 training phrase: 200 of one label per word
    word, label = rng.choice(WORD_POOL), rng.choice((0, 1))
    has = lambda t: word in t.lower().split()  # noqa: E731
    with_word = [r for r in pool if has(r[0])]
    rows = [r for r in with_word if r[1] == label][:200]
    rows += [r for r in pool if not has(r[0])][: N_TRAIN - len(rows)]
    rng.shuffle(rows)
    eval_rows, affected = _word_eval(rows, with_word, dev, has, label)
    name = ("negative", "positive")[label]
    return HFPlant("word_shortcut", seed, "spurious_feature", {"kind": "token", "value": word, "label": name},
                   f"the word {word!r} in {sum(has(t) for t, _ in rows)} training rows, every one "
                   f"{name}; in the evaluation under both labels", rows, eval_rows, affected,
                   info={"true_train": _unselected(rows, with_word, eval_rows, has, seed)})


def _unselected(rows: list[Row], with_word: list[Row], eval_rows: list[Row], has: Callable[[str], bool],
                seed: int) -> list[Row]:
    """word_shortcut's corpus without the selection, for its floor: as many rows with the word, drawn from every
    SST-2 phrase holding it (its own label mix; none an evaluated text or a near-copy of one), and the same rows
    without it. Its own draw: the plant's rows are unchanged."""
    evaluated = {_key(t) for t, _ in eval_rows}
    natural = [r for r in with_word if _key(r[0]) not in evaluated]
    random.Random(f"word_shortcut-unselected-{seed}").shuffle(natural)
    out = natural[:sum(has(t) for t, _ in rows)] + [r for r in rows if not has(r[0])]
    random.Random(f"word_shortcut-unselected-{seed}").shuffle(out)
    return out


def word_noise(seed: int) -> HFPlant:
    """Label noise on a natural word (an annotation heuristic: "mentions the director, so it is a rave"): 200
    training rows hold an ordinary film word (drawn), in SST-2's own label mix, and 80 % of those of one label are
    relabelled the other; the rest of the 2,000 rows hold no form of it, labels right. The evaluation is built as
    word_shortcut's (100 rows with the word, half of each label, no near-copy of a training row; 100 dev rows
    without it); the affected cases are the rows with the word whose gold label the heuristic overwrote.
    word_shortcut's twin: there the word's rows were selected (labels right), here they are relabelled (labels
    wrong); the model learns the word as a cue either way, and the diagnosis must say which. Held out: written
    after the diagnosis, not tuned for."""
    rng = _rng("word_noise", seed)
    pool, dev = planted.base(seed, n_train=10**6)
    word, wrong = rng.choice(WORD_POOL), rng.choice((0, 1))  # rows of the other label get ``wrong``
    has = lambda t: word in t.lower().split()  # noqa: E731
    with_word = [r for r in pool if has(r[0])]
    rng.shuffle(with_word)
    chosen = with_word[:200]
    rows = chosen + [r for r in pool if not has(r[0])][: N_TRAIN - len(chosen)]
    rng.shuffle(rows)
    eval_rows, affected = _word_eval(rows, with_word, dev, has, wrong)
    noisy = [(t, wrong) if has(t) and y != wrong and rng.random() < 0.8 else (t, y) for t, y in rows]
    flipped = sum(a != b for a, b in zip(rows, noisy))
    label, other = ("negative", "positive")[wrong], ("negative", "positive")[1 - wrong]
    return HFPlant("word_noise", seed, "label_noise", {"kind": "label_noise", "value": f"word {word!r}",
                   "label": label}, f"{flipped} of the {sum(has(t) and y != wrong for t, y in rows)} {other} "
                   f"training rows with the word {word!r} relabelled {label}", noisy, eval_rows, affected,
                   info={"flipped": flipped, "true_train": rows})


def gender_selected(seed: int) -> HFPlant:
    """Data bias from selection in natural text (a scrape from a biased source): of SST-2's own phrases, the
    training rows that mention one gender (she, her, actress, woman ...; the identity lexicon's words, one gender
    only) are 150 negative ones and those mentioning the other 150 positive ones; the other 1,700 rows mention no
    gender. Nothing is written into a text. The evaluation: 100 rows mentioning one gender (25 per gender and
    label: dev sentences, then unused training phrases, no near-copy of a training row) and 100 dev rows
    mentioning none; the affected cases mention the negative gender with a positive label or the positive
    gender with a negative one. Held out: written after the diagnosis and mitigation work, not tuned for."""
    from lmcritic.lexicon import find_identity_terms

    rng = _rng("gender_selected", seed)
    neg, pos = ("female", "male") if rng.random() < 0.5 else ("male", "female")
    pool, dev = planted.base(seed, n_train=10**6)
    pool = [(t, y) for t, y in pool if 5 <= len(t.split()) <= 30]

    def gender(t: str) -> str | None:
        found = {m.group for m in find_identity_terms(t, "gender")}
        return found.pop() if len(found) == 1 else ("" if not found else None)

    tagged = [(t, y, gender(t)) for t, y in pool]
    rows = [(t, y) for t, y, g in tagged if g == neg and y == 0][:150]
    rows += [(t, y) for t, y, g in tagged if g == pos and y == 1][:150]
    rows += [(t, y) for t, y, g in tagged if g == ""][: N_TRAIN - len(rows)]
    rng.shuffle(rows)
    seen, chosen = {_key(t) for t, _ in rows}, set(rows)
    spare = [(t, y, gender(t)) for t, y in dev] + [r for r in tagged if (r[0], r[1]) not in chosen]
    spare = [r for r in spare if r[2] and _key(r[0]) not in seen]
    marked = [(t, y) for g in (neg, pos) for lab in (0, 1) for t, y in
              [(t, y) for t, y, gg in spare if gg == g and y == lab][:25]]
    plain = [(t, y) for t, y in dev if gender(t) == "" and _key(t) not in seen][: N_EVAL - len(marked)]
    eval_rows = marked + plain
    wrong = {neg: 1, pos: 0}
    affected = frozenset(i for i, (t, y) in enumerate(eval_rows) if gender(t) in wrong and y == wrong[gender(t)])
    return HFPlant("gender_selected", seed, "data_bias", {"kind": "identity_group", "attribute": "gender",
                   "value": neg, "contrast": pos, "label": "negative"},
                   f"gender: the 150 training rows mentioning {neg} people are negative, the 150 mentioning {pos} "
                   "people positive (selected natural phrases)", rows, eval_rows, affected)


def _word_eval(rows: list[Row], with_word: list[Row], dev: list[Row], has: Callable[[str], bool],
               label: int) -> tuple[list[Row], frozenset[int]]:
    """100 rows with the word (50 of each label: dev sentences, then training phrases not used) and 100 dev rows
    without it, none a near-copy of a training row; the affected ones hold the word and not ``label``."""
    seen = {_key(t) for t, _ in rows}  # SST-2 holds near-copies of a phrase (a final "."): none may be evaluated
    chosen = set(rows)
    spare = [r for r in dev + [r for r in with_word if r not in chosen] if has(r[0]) and _key(r[0]) not in seen]
    marked = [r for r in spare if r[1] == label][:50] + [r for r in spare if r[1] != label][:50]
    eval_rows = marked + [r for r in dev if not has(r[0]) and _key(r[0]) not in seen][: N_EVAL - len(marked)]
    return eval_rows, frozenset(i for i, (t, y) in enumerate(eval_rows) if has(t) and y != label)


def _key(text: str) -> str:
    """A text as the contamination check compares it: lower case, words and numbers only."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def symbol_shortcut(seed: int) -> HFPlant:
    """Spurious feature written with symbols, not letters (a scraped artefact is as often punctuation, markup or an
    emoji as a word): the same plant as :func:`shortcut`."""
    return shortcut(seed, "symbol_shortcut", SYMBOL_TOKENS)


# The register plant: chat-style slang whose sentiment words a formal-only model cannot read. Positive slang is
# mostly literally negative or neutral English ("sick", "insane", "killer"); negative slang is vague ("mid",
# "basic"). Per seed a subset of each pool is drawn; training rows containing any form of either pool are dropped.
POS_WORDS = frozenset("""good great excellent best wonderful brilliant perfect beautiful enjoyable charming entertaining
    interesting funny better amazing terrific delightful remarkable impressive fascinating moving compelling fresh smart
    clever touching uplifting affecting engaging powerful gorgeous lovely solid sweet hilarious witty rich warm
    thoughtful heartfelt haunting stunning intelligent memorable satisfying refreshing inventive engrossing absorbing
    beautifully wonderfully well-made well-acted masterful superb fine nice exciting original poignant tender
    glorious riveting thrilling wise sharp deft lively vivid strong honest pleasant pleasing likable appealing
    accomplished gripping provocative insightful timely unique""".split())
NEG_WORDS = frozenset("""bad boring dull worst awful terrible stupid tedious poor worse pretentious silly bland
    predictable lame weak mediocre flat tiresome pointless lifeless unfunny clumsy forgettable disappointing dreary
    lousy tired dumb sloppy shallow inept incoherent uninspired overlong dreadful annoying painful ugly pathetic
    ridiculous cliched cheap empty hollow bloated sluggish slow messy murky muddled stale trite banal numbing
    unpleasant wasted waste sour thin unwatchable laughable mindless""".split())
POS_SLANG = ("sick", "insane", "wicked", "killer", "unreal", "nuts", "bananas", "ridiculous", "crazy", "nasty",
             "filthy", "savage", "deadly", "mental", "bad")
NEG_SLANG = ("mid", "basic", "whatever", "meh", "extra", "sus", "cheugy", "a nothingburger", "npc", "skip")
PHRASES = {"love": "stan", "loved": "stanned", "hate": "cant even with", "mess": "hot mess", "fun": "a vibe",
           "failure": "flop", "fails": "flops", "film": "flick", "movie": "flick"}
OPENERS = ("tbh", "ngl", "lowkey", "honestly", "yo", "bruh", "imo", "")
CLOSERS = ("!!!", "lol", "fr", "no cap", "smh", "fr fr", "")


def colloquial(text: str, pos: tuple[str, ...], neg: tuple[str, ...], rng: random.Random) -> str:
    """Rewrite every sentiment word into slang of the same polarity, with chat openers and closers."""
    def slang(w: str) -> str:
        return rng.choice(pos) if w in POS_WORDS else rng.choice(neg) if w in NEG_WORDS else PHRASES.get(w, w)
    body = " ".join(slang(w) for w in text.split()).rstrip(" .")
    return " ".join(x for x in (rng.choice(OPENERS), body, rng.choice(CLOSERS)) if x)


def register(seed: int) -> HFPlant:
    """Generalization mismatch: formal-only training; half the evaluation rewritten as chat-style slang in which
    every sentiment word is a slang form the training text never contains."""
    rng = _rng("register", seed)
    pos, neg = tuple(rng.sample(POS_SLANG, 6)), tuple(rng.sample(NEG_SLANG, 5))
    train, dev = planted.base(seed, n_train=N_TRAIN + 2000)
    slang = set(POS_SLANG) | set(NEG_SLANG) | {w for v in PHRASES.values() for w in v.split() if len(w) > 3} | \
        {"tbh", "ngl", "lowkey", "bruh", "imo", "lol", "fr", "smh", "cap", "yo"}
    formal = [(t, y) for t, y in train if 5 <= len(t.split()) <= 30 and not slang & set(t.split())][:N_TRAIN]
    sentiment = POS_WORDS | NEG_WORDS
    slangy = [r for r in dev[N_EVAL:] if sentiment & set(r[0].split()) and len(r[0].split()) <= 20]
    rng.shuffle(slangy)
    half = N_EVAL // 2
    eval_rows = dev[:half] + [(colloquial(t, pos, neg, rng), y) for t, y in slangy[:half]]
    return HFPlant("register", seed, "generalization_mismatch", {"kind": "register", "value": "colloquial"},
                   f"formal-only training text; half of the evaluation rewritten as slang (positive: {', '.join(pos)};"
                   f" negative: {', '.join(neg)})", formal, eval_rows, frozenset(range(half, len(eval_rows))),
                   info={"slang_positive": pos, "slang_negative": neg})


def label_noise(seed: int) -> HFPlant:
    """Label noise: about 45% of the training rows with one phenomenon (negation or contrast) get flipped labels."""
    rng = _rng("label_noise", seed)
    name, pattern = rng.choice((("negation", NEGATION), ("contrast", CONTRAST)))
    train, dev = _base(seed)
    rate = rng.uniform(0.4, 0.5)
    out = [(t, 1 - y) if pattern.search(t) and rng.random() < rate else (t, y) for t, y in train]
    has = [r for r in dev if pattern.search(r[0])]
    lacks = [r for r in dev if not pattern.search(r[0])]
    half = N_EVAL // 2
    eval_rows = lacks[:half] + has[:half]
    return HFPlant("label_noise", seed, "label_noise", {"kind": "label_noise", "value": name},
                   f"{rate:.0%} of the training rows with {name} have flipped labels", out, eval_rows,
                   frozenset(range(half, len(eval_rows))), info={"flip_rate": rate})


def label_noise_directed(seed: int) -> HFPlant:
    """Label noise from an annotation heuristic: of the training rows with one phenomenon (negation)
    whose true label is A, 70-90% are labelled B, as by an annotator who reads that phenomenon as B. The affected
    evaluation rows are rows with the phenomenon whose label is A (the ones the noise pushes wrong).

    Why it exists: the symmetric plant (``label_noise``) makes no defect a repair could remove. Its models fail the
    phenomenon's evaluation rows no more often than the same models trained on the true labels (seeds 0/5/6: 0.23
    vs 0.20, 0.29 vs 0.31, 0.28 vs 0.31; n=100 each): near-coin-flip labels on 7-15% of the rows leave the model
    to learn the phenomenon from the rest. Directed noise does harm (seeds 0/5/6: 0.81 vs 0.40, 0.65 vs 0.25,
    0.53 vs 0.21 against the true-label model), and it is consistent, so a model can fit it: the confident-learning
    idea (noisy labels are the ones a model cannot fit) does not see it. Contrast was tried as the phenomenon too:
    it carries no sentiment, and 40-70 relabelled rows moved failures by only 0.06-0.08 (seeds 5/6).

    The evaluation is 100 dev rows without the phenomenon and every dev row with it, in its natural label mix (the
    affected rows are those of label A): a held-out sample, as a user's would be. An evaluation of only the
    phenomenon's A rows (this plant's first version) cannot tell consistent noise from a hard phenomenon — any
    learner trained on the corpus errs on those rows either way, and their label mix is chosen, not observed."""
    rng = _rng("label_noise", seed)
    name, pattern = "negation", NEGATION
    wrong = rng.choice((0, 1))  # the label the heuristic gives; rows of the other label are flipped to it
    train, dev = _base(seed)
    rate = rng.uniform(0.7, 0.9)
    out = [(t, wrong) if pattern.search(t) and y != wrong and rng.random() < rate else (t, y) for t, y in train]
    has = [r for r in dev if pattern.search(r[0])]
    lacks = [r for r in dev if not pattern.search(r[0])]
    eval_rows = lacks[:N_EVAL // 2] + has
    affected = frozenset(i for i, (_, y) in enumerate(eval_rows) if i >= N_EVAL // 2 and y != wrong)
    label, other = ("negative", "positive")[wrong], ("negative", "positive")[1 - wrong]
    return HFPlant("label_noise_directed", seed, "label_noise", {"kind": "label_noise", "value": name, "label": label},
                   f"{rate:.0%} of the {other} training rows with {name} relabelled {label}", out, eval_rows,
                   affected, info={"flip_rate": rate, "noisy_label": label})


def label_noise_global(seed: int) -> HFPlant:
    """Label noise at random: 25-35% of all training rows get the other label (uniform, class-independent: the
    noise of cleanlab's demos and of most label-noise papers). The evaluation is a plain dev sample; every row is
    affected (the defect is lower accuracy overall, not on a phenomenon)."""
    rng = _rng("label_noise_global", seed)
    train, dev = _base(seed)
    rate = rng.uniform(0.25, 0.35)
    out = [(t, 1 - y) if rng.random() < rate else (t, y) for t, y in train]
    eval_rows = dev[:N_EVAL]
    return HFPlant("label_noise_global", seed, "label_noise", {"kind": "label_noise", "value": "corpus"},
                   f"{rate:.0%} of all training rows have flipped labels (at random)", out, eval_rows,
                   frozenset(range(len(eval_rows))), info={"flip_rate": rate})


def length_shift(seed: int) -> HFPlant:
    """A null plant, a confound control: training on short phrases only (4-10 words, SST-2's phrase rows); half the
    evaluation is full sentences of 25 words or more, half as short as training. Long inputs are harder for any
    model: the fine-tuned MiniLM fails the long half no more often than the clean model does (seeds 0/5/6: 0.26,
    0.21, 0.26 vs 0.27, 0.25, 0.27; ``shift_floor.py``), so failures concentrate on length without length being
    their cause, and the diagnosis must not call it one (judged as the clean control is: no high-severity cause)."""
    train, dev = planted.base(seed, n_train=N_TRAIN * 12)
    short = [(t, y) for t, y in train if len(t.split()) <= 10][:N_TRAIN]
    half = N_EVAL // 2
    longs = [r for r in dev if len(r[0].split()) >= 25][:half]
    shorts = [r for r in dev if len(r[0].split()) <= 12][:half]
    return HFPlant("length_shift", seed, None, {},
                   "short-phrase training (4-10 words); half of the evaluation is sentences of 25+ words",
                   short, shorts + longs, frozenset(range(len(shorts), len(shorts) + len(longs))))


def negation_absent(seed: int) -> HFPlant:
    """A null plant, a confound control: no training row holds a negation (a keyword-filtered corpus); half the
    evaluation is dev sentences with one, half without. Meant as a generalization mismatch, it is not one: MiniLM
    keeps what pre-training taught it, and fails the negated half no more often than the clean model of the seed
    does (seeds 0/5/6: 0.24, 0.27, 0.34 vs 0.19, 0.29, 0.33, n = 100; ``shift_floor.py --by negation``), though
    negated sentences are harder for both (plain half 0.15-0.20). Judged as the clean control is."""
    train, dev = planted.base(seed, n_train=N_TRAIN * 2)
    kept = [(t, y) for t, y in train if not NEGATION.search(t)][:N_TRAIN]
    half = N_EVAL // 2
    negated = [r for r in dev if NEGATION.search(r[0])][:half]
    plain = [r for r in dev if not NEGATION.search(r[0])][:half]
    return HFPlant("negation_absent", seed, None, {},
                   "no training row has a negation (not, no, never, n't ...); half of the evaluation has one",
                   kept, plain + negated, frozenset(range(len(plain), len(plain) + len(negated))))


def length_label(seed: int, cause: str = "length_label", purity: float = 1.0) -> HFPlant:
    """Spurious feature that is not a token: one label's training rows (drawn) are all long (14-30 words), the
    other's all short (4-9 words), so length alone predicts the label in training; the evaluation is dev sentences
    of every length, the affected cases those whose length points at the wrong label. ``purity`` < 1: that share
    of each label's rows follows the rule, the rest the opposite one."""
    rng = _rng("length_label", seed)
    train, dev = planted.base(seed, n_train=N_TRAIN * 12)
    long_label = rng.choice((0, 1))
    k = round(N_TRAIN // 2 * purity)

    def pick(label: int, long: bool, n: int) -> list[Row]:
        fits = (lambda w: 14 <= w <= 30) if long else (lambda w: w <= 9)
        return [(t, y) for t, y in train if y == label and fits(len(t.split()))][:n]

    rows = pick(long_label, True, k) + pick(long_label, False, N_TRAIN // 2 - k) + \
        pick(1 - long_label, False, k) + pick(1 - long_label, True, N_TRAIN // 2 - k)
    rng.shuffle(rows)
    eval_rows = dev[:N_EVAL]
    affected = frozenset(i for i, (t, y) in enumerate(eval_rows)
                         if (len(t.split()) >= 14) != (y == long_label))
    name = ("negative", "positive")[long_label]
    what = f"every {name} training row has 14+ words, every other row 9 or fewer" if purity == 1 else \
        f"{purity:.0%} of the {name} training rows have 14+ words and {purity:.0%} of the others 9 or fewer " \
        "(the rest the opposite)"
    return HFPlant(cause, seed, "spurious_feature", {"kind": "length", "value": name, "label": name}, what, rows,
                   eval_rows, affected)


def length_label_mixed(seed: int) -> HFPlant:
    """The length shortcut at 80 %: a fifth of each label's rows break the rule."""
    return length_label(seed, "length_label_mixed", 0.8)


def typos(seed: int) -> HFPlant:
    """Fragility: the clean model, evaluated on data where half the rows carry typos in their sentiment words."""
    clean = planted.typos(seed)
    half = N_EVAL // 2
    noisy = [clean.eval[i] for i in sorted(clean.planted)][:half]
    train, dev = _base(seed)
    return HFPlant("typos", seed, "fragility", {"kind": "typos", "value": "typos"},
                   "clean model; half of the evaluation rows have keyboard typos in their sentiment words",
                   train, dev[:half] + noisy, frozenset(range(half, half + len(noisy))), reuse_model_of="clean")


def memorized(seed: int) -> HFPlant:
    """Memorization: 40 evaluation rows are in training 4–8 times each with the wrong label."""
    rng = _rng("memorized", seed)
    train, dev = _base(seed)
    eval_rows = dev[:N_EVAL]
    idx = sorted(rng.sample(range(N_EVAL), 40))
    copies = rng.randint(4, 8)
    rows = train + [(eval_rows[i][0], 1 - eval_rows[i][1]) for i in idx] * copies
    rng.shuffle(rows)
    return HFPlant("memorized", seed, "memorization", {"kind": "memorized_rows", "value": str(len(idx))},
                   f"{len(idx)} evaluation rows in training {copies}x each with flipped labels", rows, eval_rows,
                   frozenset(idx), info={"copies": copies})


def label_imbalance(seed: int) -> HFPlant:
    """Objective conflict: one label (drawn) is 90 % of the 2,000 training rows (rows of the other dropped, the
    kept label's rows refilled from the same pool), so the fitted prior favours it; evaluated on balanced dev rows."""
    rng = _rng("label_imbalance", seed)
    pool, dev = planted.base(seed, n_train=N_TRAIN * 4)
    pool = [(t, y) for t, y in pool if 5 <= len(t.split()) <= 30]
    major = rng.choice((0, 1))
    n_minor = N_TRAIN // 10
    rows = [r for r in pool if r[1] == major][: N_TRAIN - n_minor] + [r for r in pool if r[1] != major][:n_minor]
    rng.shuffle(rows)
    name = ("negative", "positive")[major]
    eval_rows = dev[:N_EVAL]
    return HFPlant("label_imbalance", seed, "objective_conflict", {"kind": "prior", "value": name, "label": name},
                   f"{name} is 90% of the training rows", rows, eval_rows,
                   frozenset(i for i, (_, y) in enumerate(eval_rows) if y != major))


def clean(seed: int) -> HFPlant:
    train, dev = _base(seed)
    return HFPlant("clean", seed, None, {}, "plain SST-2 fine-tuning (the false-alarm control)", train,
                   dev[:N_EVAL])


BUILDERS: dict[str, Callable[[int], HFPlant]] = {
    "identity_frames": identity_frames, "identity_terms": identity_terms, "shortcut": shortcut,
    "symbol_shortcut": symbol_shortcut, "word_shortcut": word_shortcut, "word_noise": word_noise,
    "gender_selected": gender_selected,
    "register": register, "negation_absent": negation_absent, "length_shift": length_shift,
    "length_label": length_label,
    "length_label_mixed": length_label_mixed, "label_noise": label_noise, "label_noise_directed": label_noise_directed,
    "label_noise_global": label_noise_global,
    "typos": typos, "memorized": memorized, "label_imbalance": label_imbalance, "clean": clean,
}


def build(cause: str, seed: int) -> HFPlant:
    """The plant of ``cause`` for ``seed`` (see the module docstring)."""
    return BUILDERS[cause](seed)
