"""Training-time mitigations that CLEAN the training corpus, then fine-tune: shortcut removal (spurious
feature), label repair (noisy or memorised labels, by confident learning) and deduplication (memorisation).
"""
from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

from lmcritic.diagnose import _text
from lmcritic.errors import ConfigError
from lmcritic.mitigate._artefacts import masked_rows, read_against, reader_masks
from lmcritic.mitigate._length import balance_length
from lmcritic.mitigate.base import MitigationContext
from lmcritic.mitigate.data import Row, TrainingSet
from lmcritic.mitigate.trainers import TrainConfig, train_config
from lmcritic.mitigate.training import PAIRING, Retrain, paired_when_continuing

SHORTCUT_MODES = ("auto", "remove", "mask", "spread")


@dataclass(frozen=True)
class ShortcutConfig(TrainConfig):
    tokens: tuple[str, ...] | None = None  # None: the culprit's token(s)
    mode: str = "auto"  # remove the token | mask it | spread it over every label at its base rate | auto: spread
    # (see ShortcutRemoval._mode for why, with the measurements)
    mask_token: str = "[MASK]"
    crop_length: bool = True  # a length culprit: read windows of the long label's rows with a content reader (short
    # rows of that label where it agrees, fillers for the others' joined rows; needs the sentence encoder; see
    # mitigate._length); False: joins and quartile weights only

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mode not in SHORTCUT_MODES:
            raise ValueError(f"mode must be one of {SHORTCUT_MODES}")


class ShortcutRemoval(Retrain):
    """Take the implicated tokens' label information out of the corpus (a length shortcut: its length
    information, :func:`balance_length`)."""

    name = "shortcut_removal"
    title = "shortcut removal (remove, mask or spread the implicated tokens)"
    treats = frozenset({"spurious_feature"})
    culprits = frozenset({"token", "length"})
    preference = 0.9
    Config = ShortcutConfig
    pairing_note = (f"the run's weights train on and hold the shortcut: logit pairing (weight {PAIRING:g}) also "
                    "trains each edited row's class probabilities onto its unedited original's")

    def transform(self, ctx: MitigationContext, data: TrainingSet) -> tuple[TrainingSet, dict[str, Any]]:
        c = ctx.target.culprit
        if c is not None and c.kind == "length" and c.label and not self.config.tokens:
            features = _feature_kind("auto") if self.config.crop_length else None
            rows, info = balance_length(list(data.rows), c.label, random.Random(ctx.seed), features)
            return data.with_rows(rows), info
        tokens = self.config.tokens or ((c.terms or (c.value,)) if c and c.kind == "token" and (c.terms or c.value)
                                        else ())
        if not tokens:
            raise ConfigError("no shortcut token: the diagnosis names none", "pass --set tokens=[TOKEN]")
        pattern = _text.token_pattern(tokens)
        hit = Counter(str(r.label) for r in data.rows if pattern.search(r.text))
        mode = self._mode()
        if mode == "spread":
            rng, rows = random.Random(ctx.seed), list(data.rows)
            for token in tokens:  # each form at the label rates: one form spread leaves the others' lean
                rows = spread(rows, token, _text.token_pattern([token]), rng)
        else:
            fill = "" if mode == "remove" else self.config.mask_token
            rows = [replace(r, text=_tidy(pattern.sub(fill, r.text)), origin="shortcut_" + mode)
                    if pattern.search(r.text) else r for r in data.rows]
        rows = [r for r in rows if r.text.strip()]
        notes = []
        if mode == "spread" and self.config.mode == "auto":
            notes.append(f"{', '.join(tokens)} was spread over every label (written into rows of each label at its "
                         "corpus rate) rather than removed: the fine-tune learns that it says nothing of the label; "
                         "--set mode=remove takes it out instead")
        return data.with_rows(rows), {"tokens": list(tokens), "mode": mode, "rows_with_token": dict(hit),
                                      "notes": notes}

    def settings(self) -> TrainConfig:
        """Logit pairing when the run's weights train on: an edited row (a token spread into it, rows joined to
        the long label's length) keeps its unedited original as twin, and the weights that learnt the shortcut
        are trained to give both the same class probabilities; a fresh start learns no shortcut to unlearn."""
        return paired_when_continuing(train_config(self.config))

    def _mode(self) -> str:
        """``auto`` spreads, whether the run's weights train on or training starts over. From the run's weights a
        removed token keeps what the weights learnt (no row carries it, no gradient moves it). From the pretrained
        base a removed token is never trained at all, and the model reads it as pretraining and the words it came
        with suggest; spread rows teach that it tells nothing. On the planted MiniLM classifiers from the base
        (affected failure after, remove vs spread): an ordinary word (seeds 0, 1, 5, 6, 10, 11) 0.18/0.16,
        0.36/0.26, 0.16/0.18, 0.30/0.30, 0.40/0.26, 0.40/0.34, closed 2/6 vs 3/6; a made-up token (10, 11)
        0.21/0.28, 0.14/0.21 and a symbol 0.19/0.19, 0.31/0.25, closed 4/4 either way
        (benchmarks/results/spread_from_base_20261207/)."""
        return "spread" if self.config.mode == "auto" else self.config.mode


def spread(rows: list[Row], token: str, pattern: re.Pattern, rng: random.Random) -> list[Row]:
    """Insert ``token`` into rows of the labels it is rare with, until P(label | token) matches P(label)."""
    labels = Counter(str(r.label) for r in rows)
    with_token = Counter(str(r.label) for r in rows if pattern.search(r.text))
    total = sum(with_token.values())
    if not total:
        return rows
    scale = max(with_token[y] / (labels[y] / len(rows)) for y in labels)  # keep the most-associated label's count
    out = list(rows)
    for y, n_y in labels.items():
        need = round(scale * n_y / len(rows)) - with_token[y]
        free = [i for i, r in enumerate(out) if str(r.label) == y and not pattern.search(r.text)]
        for i in rng.sample(free, max(0, min(need, len(free)))):
            words = out[i].text.split()
            words.insert(rng.randrange(len(words) + 1), token)
            twin = out[i].twin if out[i].origin == "shortcut_spread" else out[i].text  # the unedited row
            out[i] = replace(out[i], text=" ".join(words), origin="shortcut_spread", twin=twin)
    return out


def _tidy(text: str) -> str:
    return re.sub(r"\s{2,}", " ", text).strip()


# -- label repair ------------------------------------------------------------------------------------
FEATURES = ("auto", "minilm", "tfidf")
ACTIONS = ("auto", "drop", "relabel", "reweigh")
CORPUS = "corpus"  # a label-noise culprit that is the whole corpus (diagnose.hypotheses.label_noise.corpus_test)


@dataclass(frozen=True)
class LabelRepairConfig(TrainConfig):
    action: str = "auto"  # auto: reweigh for a label-mix culprit (consistent noise), else drop | drop | relabel
    #                      (to the out-of-sample prediction) | reweigh (see mitigate._label_mix.repair_mix)
    max_weight: float = 20.0
    features: str = "auto"  # auto: sentence embeddings (offline MiniLM) when installed, else tfidf | minilm | tfidf
    folds: int = 5
    max_share: float = 0.1  # never touch more than this share (raised to a corpus-wide flip rate's upper bound)
    scope: str = "auto"  # auto: the rows the diagnosis implicates (its phenomenon, its train lines), else the corpus
    mask: str = "auto"  # auto: the reader never sees the corpus's shortcut candidates (mitigate._artefacts) | none

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.action not in ACTIONS or self.features not in FEATURES or self.folds < 2 \
                or self.scope not in ("auto", "corpus") or self.mask not in ("auto", "none"):
            raise ValueError(f"action: {' | '.join(ACTIONS)}; features: {' | '.join(FEATURES)}; folds >= 2; "
                             "scope: auto | corpus; mask: auto | none")


class LabelRepair(Retrain):
    """Confident learning (cleanlab) on out-of-fold probabilities of a model cross-fitted on the whole corpus
    (logistic regression on sentence embeddings), among the rows the diagnosis implicates: the rows with its
    label-noise phenomenon and its train lines (every row when it names none). The reader reads the rows with the
    corpus's shortcut candidates taken out (:mod:`lmcritic.mitigate._artefacts`: a learnt trigger vouches for a
    poisoned label)."""

    name = "label_repair"
    title = "label repair by confident learning (cleanlab), then retrain"
    treats = frozenset({"memorization", "label_noise"})
    culprits = frozenset({"label_noise"})
    preference = 0.7
    Config = LabelRepairConfig
    removes = True

    def transform(self, ctx: MitigationContext, data: TrainingSet) -> tuple[TrainingSet, dict[str, Any]]:
        mix = ctx.target.culprit.data.get("label_mix") if ctx.target.culprit is not None else None
        action = ("reweigh" if mix else "drop") if self.config.action == "auto" else self.config.action
        if action == "reweigh":
            from lmcritic.mitigate._label_mix import culprit_word, repair_mix

            return repair_mix(data, mix, culprit_predicate(ctx.target.culprit), self.config.max_weight,
                              _feature_kind(self.config.features), self.config.folds, culprit_word(ctx.target.culprit))
        labels = list(data.labels) or sorted({str(r.label) for r in data.rows})
        candidates, scope = self._scope(ctx, data.rows)
        features = _feature_kind(self.config.features)
        masks, scope["reader"] = reader_masks(ctx, data) if self.config.mask == "auto" else ([], {"masked": []})
        flagged, probs = label_issues(masked_rows(data.rows, [t for t, _ in masks]), labels, features,
                                      self.config.folds, ctx.seed, candidates)
        seen = set(flagged)
        against = [i for i in read_against(data.rows, masks, probs, labels, candidates) if i not in seen]
        scope["reader"]["read_against"] = len(against)
        flagged = [*flagged, *against]
        cap = int(self._max_share(ctx) * len(data.rows))
        scope["capped_at"] = cap if len(flagged) > cap else None
        flagged = flagged[:cap]
        rows = list(data.rows)
        moves: Counter[str] = Counter()
        for i in flagged:
            new = labels[int(probs[i].argmax())]
            moves[f"{rows[i].label}->{'dropped' if action == 'drop' else new}"] += 1
            rows[i] = replace(rows[i], label=new, origin="relabelled")
        if action == "drop":
            bad = set(flagged)
            rows = [r for i, r in enumerate(data.rows) if i not in bad]
        return data.with_rows(rows), {
            "flagged": len(flagged), "action": action, "features": features, "scope": scope,
            "changed": dict(moves),
            "examples": [{"line": data.rows[i].line, "text": data.rows[i].text[:120], "label": data.rows[i].label}
                         for i in flagged[:10]]}

    def _max_share(self, ctx: MitigationContext) -> float:
        """The configured cap, raised to the diagnosed flip rate's upper bound (at most half the corpus) when the
        diagnosis found labels flipped across the whole corpus: a 10% cap cannot repair 30% noise."""
        c = ctx.target.culprit
        high = (c.data.get("effect") or {}).get("ci_high") if c is not None else None
        if c is None or c.kind != "label_noise" or c.value != CORPUS or high is None:
            return self.config.max_share
        return max(self.config.max_share, min(0.5, float(high)))

    def _scope(self, ctx: MitigationContext, rows: Sequence[Row]) -> tuple[list[int] | None, dict[str, Any]]:
        """Indices of the implicated rows (None: every row) and a description of that choice."""
        c = ctx.target.culprit
        if self.config.scope == "corpus" or c is None:
            return None, {"rows": "corpus", "why": "scope=corpus" if c else "the diagnosis names no culprit"}
        if c.kind == "label_noise" and c.value == CORPUS:
            return None, {"rows": "corpus", "why": "the diagnosis found labels flipped across the whole corpus"}
        has = culprit_predicate(c)
        lines = set(c.train_lines)
        picked = [i for i, r in enumerate(rows) if (has is not None and has(r.text)) or r.line in lines]
        what = {"phenomenon": c.value if has else None, "train_lines": len(lines), "candidates": len(picked)}
        if not picked:
            return None, {**what, "rows": "corpus", "why": "no training row has the implicated phenomenon or line"}
        return picked, {**what, "rows": "implicated"}


def culprit_predicate(culprit: Any) -> Callable[[str], bool] | None:
    """Whether a text has the phenomenon of a label-noise culprit: the one the diagnosis tested, rebuilt from the
    culprit's data (:meth:`Phenomenon.from_data`: the same predicate, so the repair picks the rows the diagnosis
    counted), else read from its display name (diagnoses stored before culprits carried the data)."""
    from lmcritic.diagnose.hypotheses._phenomena import Phenomenon

    if culprit is None or culprit.kind != "label_noise":
        return None
    ph = Phenomenon.from_data(culprit.data.get("phenomenon"))
    return ph.has if ph is not None else phenomenon_predicate(culprit.value)


def named_word(name: str) -> str | None:
    """The word of a phenomenon's display name ``word 'X'`` (how culprits named it before they carried data)."""
    word = re.fullmatch(r"word ['\"](.+)['\"]", name.strip())
    return word.group(1) if word else None


def phenomenon_predicate(name: str) -> Callable[[str], bool] | None:
    """Whether a text has the phenomenon a label-noise diagnosis names: a yes/no text feature (``negation``,
    ``contrast``, ``typos``) or ``word 'X'``; None for anything else."""
    from lmcritic.diagnose.profile import text_feature

    word = named_word(name)
    if word:
        w = word.lower()
        return lambda t: w in _text.tokens(t)
    try:
        if text_feature(name, "") not in ("yes", "no"):
            return None
    except KeyError:
        return None
    return lambda t: text_feature(name, t) == "yes"


def label_issues(rows: Sequence[Row], labels: Sequence[str], features: str, folds: int, seed: int,
                 candidates: Sequence[int] | None = None) -> tuple[list[int], Any]:
    """Row indices with likely label errors (most likely first) and the out-of-fold probabilities.

    The model is cross-fitted on every row; with ``candidates`` confident learning (its per-label thresholds and
    noise rates) runs on those rows only, so a noise rate confined to them is not diluted by the rest. Folds group
    rows by normalised text, so copies of one text never sit on both sides of a split (a duplicated wrong label
    would otherwise vouch for itself)."""
    import numpy as np
    from cleanlab.filter import find_label_issues

    y = np.array([list(labels).index(str(r.label)) for r in rows])
    probs = oof_probs(rows, labels, features, folds)
    pick = np.arange(len(rows)) if candidates is None else np.asarray(sorted(set(candidates)), dtype=int)
    if len(set(y[pick])) < 2:  # confident learning needs every label among the rows it judges
        return [], probs
    idx = find_label_issues(y[pick], probs[pick], filter_by="prune_by_noise_rate",
                            return_indices_ranked_by="self_confidence")
    return [int(pick[i]) for i in idx], probs


def oof_probs(rows: Sequence[Row], labels: Sequence[str], features: str, folds: int,
              sample_weight: Any = None) -> Any:
    """Out-of-fold class probabilities (columns in ``labels`` order) of a logistic regression on the rows' text
    features, optionally sample-weighted. Folds group rows by normalised text: copies of one text never sit on both
    sides of a split, or a duplicated label would vouch for itself."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    from lmcritic.diagnose.corpus import normalize

    y = np.array([list(labels).index(str(r.label)) for r in rows])
    groups = [normalize(r.text) for r in rows]
    x = _features([r.text for r in rows], features)
    probs = np.zeros((len(rows), len(labels)))
    for tr, te in GroupKFold(max(2, min(folds, len(set(groups))))).split(x, y, groups):
        weight = None if sample_weight is None else sample_weight[tr]
        model = LogisticRegression(max_iter=2000).fit(x[tr], y[tr], sample_weight=weight)
        probs[np.ix_(te, model.classes_)] = model.predict_proba(x[te])
    return probs


def _feature_kind(kind: str) -> str:
    """``auto``: the sentence encoder when it is installed, else tf-idf."""
    if kind != "auto":
        return kind
    from lmcritic import _minilm
    from lmcritic.errors import LmcriticError

    try:
        _minilm.model_dir()
    except LmcriticError:
        return "tfidf"
    return "minilm"


def _features(texts: list[str], kind: str) -> Any:
    if kind == "minilm":
        from lmcritic import _minilm

        return _minilm.encode([t if t.strip() else "." for t in texts])
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True).fit_transform(texts)


# -- deduplication -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class DedupConfig(TrainConfig):
    drop_repeated: int | None = None  # texts seen this often are removed entirely (canaries); None: 3 when the
    # corpus is unlabelled (language modelling), never for labelled rows
    memorised: bool = True  # also remove the rows the diagnosis implicates (culprit train lines)


class Dedup(Retrain):
    """One copy per distinct text (the majority label), memorised rows and canaries removed, evaluation cases out."""

    name = "dedup"
    title = "deduplicate, remove memorised rows, canaries and evaluation overlap; retrain"
    treats = frozenset({"memorization"})
    probes = ("safety.memorization",)
    culprits = frozenset({"memorized_rows"})
    preference = 0.8
    Config = DedupConfig
    decontaminates = True  # evaluation cases in the training data are the memorisation to remove
    removes = True

    def transform(self, ctx: MitigationContext, data: TrainingSet) -> tuple[TrainingSet, dict[str, Any]]:
        from lmcritic.diagnose.corpus import normalize

        c = ctx.target.culprit
        lines = set(c.train_lines) if c and self.config.memorised else set()
        by_text: dict[str, list[Row]] = defaultdict(list)
        for r in data.rows:
            if r.line not in lines:
                by_text[normalize(r.text)].append(r)
        limit = self.config.drop_repeated or (3 if all(r.label is None for r in data.rows) else None)
        kept: list[Row] = []
        counts: Counter[str] = Counter()
        for copies in by_text.values():
            if limit is not None and len(copies) >= limit:
                counts["repeated_texts_removed"] += 1  # canaries and other sequences repeated to memorisation
                continue
            votes = Counter(str(r.label) for r in copies).most_common()
            if len(votes) > 1 and votes[0][1] == votes[1][1]:
                counts["conflicting_texts_removed"] += 1  # no majority label: the text's label cannot be trusted
                continue
            kept.append(next(r for r in copies if str(r.label) == votes[0][0]))
            counts["duplicate_rows_removed"] += len(copies) - 1
        counts["memorised_rows_removed"] = len(data.rows) - sum(len(v) for v in by_text.values())
        return data.with_rows(kept), dict(counts)


__all__ = ["Dedup", "LabelRepair", "ShortcutRemoval", "culprit_predicate", "label_issues", "named_word", "oof_probs",
           "phenomenon_predicate", "spread"]
