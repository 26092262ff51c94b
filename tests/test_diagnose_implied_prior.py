"""The label-share test of class-conditional label noise (black-box shift estimation on the corpus model)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from lmcritic.diagnose.crossfit import CorpusFit
from lmcritic.diagnose.hypotheses._implied_prior import PriorTest, prior_test


def _fit(train_pos: float, flip: float, eval_pos: float, seed: int = 0, n: int = 2000, n_eval: int = 300,
         weights: np.ndarray | None = None, eval_pos_read: float = 0.85) -> CorpusFit:
    """A corpus whose texts are ``train_pos`` positive, ``flip`` of the positives labelled negative, and a corpus
    model that reads each text's true class right 85 % of the time (the evaluated positives: ``eval_pos_read``)."""
    rng = np.random.default_rng(seed)
    true = np.where(rng.random(n) < train_pos, "pos", "neg")
    y = np.where((true == "pos") & (rng.random(n) < flip), "neg", true)
    pred = _read(true, rng)
    gold = np.where(rng.random(n_eval) < eval_pos, "pos", "neg")
    read = _read(gold, rng, {"neg": 0.85, "pos": eval_pos_read})
    votes = np.stack([read == "neg", read == "pos"], axis=1).astype(float)
    return CorpusFit(((pred == y).astype(float), np.full(n, 0.9)), ((read == gold).astype(float), np.full(n_eval, 0.9)),
                     labels=(y, gold), texts=tuple(f"t{i}" for i in range(n)), predicted=pred, eval_votes=votes,
                     balanced=pred, weights=np.ones(n) if weights is None else weights)


def _read(true: np.ndarray, rng: np.random.Generator, right: dict[str, float] | None = None) -> np.ndarray:
    p = np.array([(right or {}).get(t, 0.85) for t in true])
    return np.where(rng.random(len(true)) < p, true, np.where(true == "pos", "neg", "pos"))


def _run(cf: CorpusFit) -> PriorTest | str:
    return prior_test(SimpleNamespace(seed=0, profile=SimpleNamespace(_cache={"label_noise.crossfit_all:0": cf})))


def test_positives_filed_as_negative_inflate_the_negative_share() -> None:
    """Half the texts positive, 35 % of the positives labelled negative: the training rule gives the evaluated
    texts (half positive by gold) about 0.5 + 0.5 * 0.35 = 0.675 negatives."""
    t = _run(_fit(0.5, 0.35, 0.5))
    assert isinstance(t, PriorTest) and t.label == "neg" and t.p < 1e-3
    assert t.did.value == pytest.approx(0.175, abs=0.07) and t.did.ci_low > 0 and t.did.n == 300
    assert t.rate is not None and t.rate.value == pytest.approx(0.175 / 0.675, abs=0.09)
    assert t.shares["neg"][0] == pytest.approx(0.675, abs=0.03)  # the corpus's own label share
    # the flipped positives sit among the rows labelled negative: read as positive 85 % of the time
    assert t.excess.value == pytest.approx((0.5 * 0.15 + 0.175 * 0.85) / 0.675 - 0.15, abs=0.05)
    assert "'neg' inflated by" in t.describe()


@pytest.mark.parametrize(("seed", "eval_pos"), [(0, 0.52), (1, 0.75), (2, 0.3)])
def test_a_label_shift_with_clean_labels_is_not_noise(seed: int, eval_pos: float) -> None:
    """36 % positives in the corpus, 30-75 % among the evaluated texts, every label right: the corpus's label
    shares differ from the gold ones, but the rule they follow gives the evaluated texts their gold shares. (The
    corpus model's raw prediction shares would not: at 75 % positives it reads only 0.75 * 0.85 + 0.25 * 0.15.)"""
    t = _run(_fit(0.36, 0.0, eval_pos, seed=seed))
    assert isinstance(t, PriorTest) and t.p > 0.05
    assert abs(t.did.value) < 0.07 and t.did.ci_low < 0 < t.did.ci_high
    assert t.shares["neg"][0] == pytest.approx(0.64, abs=0.03)


def test_too_little_of_the_corpus_resembling_the_evaluated_texts_is_a_reason() -> None:
    w = np.full(2000, 1e-4)
    w[:100] = 1.0  # 100 rows carry the reweighted corpus
    got = _run(_fit(0.5, 0.35, 0.5, weights=w))
    assert isinstance(got, str) and "too little of the corpus resembles the evaluated texts" in got


def test_a_corpus_model_that_cannot_tell_the_labels_apart_is_a_reason() -> None:
    cf = _fit(0.5, 0.0, 0.5)
    rng = np.random.default_rng(3)
    coin = np.where(rng.random(2000) < 0.5, "pos", "neg")  # predictions unrelated to the labels
    got = _run(CorpusFit(cf.train, cf.evaluated, labels=cf.labels, texts=cf.texts, predicted=coin, balanced=coin,
                         eval_votes=cf.eval_votes, weights=cf.weights))
    assert isinstance(got, str) and "barely tells the labels apart" in got


def test_evaluated_texts_the_model_reads_worse_are_not_noise() -> None:
    """Typos in the evaluated positives (read right 55 % of the time, not 85 %): the label shares alone would call
    the negatives inflated, but the corpus model contradicts its negative rows no more than it errs on gold
    negatives, so the intersection-union p stays large."""
    t = _run(_fit(0.5, 0.0, 0.5, eval_pos_read=0.55))
    assert isinstance(t, PriorTest) and t.p > 0.05
    assert t.shares["neg"][1] - t.shares["neg"][2] > 0.15  # statistic 1 alone fires


def _cue_fit(seed: int = 0, n: int = 2000, n_eval: int = 300) -> tuple[CorpusFit, SimpleNamespace]:
    """Labels all right. A word 'zz' selected into 30 % of the training rows, every one positive (the corpus model
    learns it); half the evaluated texts hold it under both labels and are read positive. The rest of the corpus
    is harder to read than the evaluated texts (75 % vs 85 %: short phrases against dev sentences)."""
    rng = np.random.default_rng(seed)
    cue = rng.random(n) < 0.3
    y = np.where(cue | (rng.random(n) < 0.5), "pos", "neg")
    pred = np.where(cue | (rng.random(n) < 0.75), y, np.where(y == "pos", "neg", "pos"))
    texts = tuple(f"t{i} zz" if c else f"t{i}" for i, c in enumerate(cue))
    e_cue, gold = rng.random(n_eval) < 0.5, np.where(rng.random(n_eval) < 0.5, "pos", "neg")
    read = np.where(e_cue, "pos", _read(gold, rng))
    votes = np.stack([read == "neg", read == "pos"], axis=1).astype(float)
    eval_texts = tuple(f"e{i} zz" if c else f"e{i}" for i, c in enumerate(e_cue))
    cf = CorpusFit(((pred == y).astype(float), np.full(n, 0.9)), ((read == gold).astype(float), np.full(n_eval, 0.9)),
                   labels=(y, gold), texts=texts, eval_texts=eval_texts, predicted=pred, eval_votes=votes,
                   balanced=pred, weights=np.ones(n))
    return cf, SimpleNamespace(_cache={"label_noise.crossfit_all:0": cf})


def test_a_confirmed_shortcut_token_is_left_out_of_the_label_share_test() -> None:
    """The selected word breaks the label-shift assumption: it inflates the positives the corpus rule implies
    (statistic 1) and lowers the error on gold positives (statistic 2), so labels that are right read as noise.
    Once the diagnosis has confirmed the token by insertion, its rows and texts are left out, and the rest shows
    no noise."""
    _, profile = _cue_fit()
    blind = prior_test(SimpleNamespace(seed=0, profile=profile))
    assert isinstance(blind, PriorTest) and blind.label == "pos" and blind.p < 0.05 and not blind.left_out
    confirmed = SimpleNamespace(token=SimpleNamespace(token="zz"), p_value=1e-4, effect=SimpleNamespace(value=0.3))
    t = prior_test(SimpleNamespace(seed=0, profile=profile, token_tests=[confirmed]))
    assert isinstance(t, PriorTest) and t.p > 0.05, t.describe()
    assert "holding 'zz'" in t.left_out and t.left_out in t.describe() and t.did.n < 200
    unconfirmed = SimpleNamespace(token=SimpleNamespace(token="zz"), p_value=0.3, effect=SimpleNamespace(value=0.3))
    same = prior_test(SimpleNamespace(seed=0, profile=profile, token_tests=[unconfirmed]))
    assert isinstance(same, PriorTest) and same.p == blind.p


def _directed_fit(noise_outside: float, seed: int = 0, n: int = 2000, n_eval: int = 300) -> SimpleNamespace:
    """Half the texts positive; 30 % of the rows say 'not', and 70 % of their positives are labelled negative (an
    annotation heuristic); ``noise_outside`` of the other positives are labelled negative too."""
    rng = np.random.default_rng(seed)
    neg_rows, true = rng.random(n) < 0.3, np.where(rng.random(n) < 0.5, "pos", "neg")
    flip = np.where(neg_rows, 0.7, noise_outside)
    y = np.where((true == "pos") & (rng.random(n) < flip), "neg", true)
    pred = _read(true, rng)
    e_neg, gold = rng.random(n_eval) < 0.3, np.where(rng.random(n_eval) < 0.5, "pos", "neg")
    read = _read(gold, rng)
    votes = np.stack([read == "neg", read == "pos"], axis=1).astype(float)
    cf = CorpusFit(((pred == y).astype(float), np.full(n, 0.9)), ((read == gold).astype(float), np.full(n_eval, 0.9)),
                   labels=(y, gold), texts=tuple(f"t{i} not" if c else f"t{i}" for i, c in enumerate(neg_rows)),
                   eval_texts=tuple(f"e{i} not" if c else f"e{i}" for i, c in enumerate(e_neg)), predicted=pred,
                   eval_votes=votes, balanced=pred, weights=np.ones(n))
    return SimpleNamespace(_cache={"label_noise.crossfit_all:0": cf})


@pytest.mark.parametrize("outside, explained", [(0.0, True), (0.35, False)])
def test_noise_on_a_phenomenon_explains_the_corpus_wide_reading_only_when_the_rest_is_clean(
        outside: float, explained: bool) -> None:
    """Directed noise on negation rows inflates the corpus's negative share, so the corpus-wide test reads it too.
    Without the negation rows (a cause of their own), clean labels elsewhere show nothing; noise elsewhere still
    shows."""
    from lmcritic.diagnose.hypotheses._phenomena import Phenomenon

    profile = _directed_fit(outside)
    blind = prior_test(SimpleNamespace(seed=0, profile=profile))
    assert isinstance(blind, PriorTest) and blind.label == "neg" and blind.p < 0.05
    negation = Phenomenon("negation", lambda t: t.endswith(" not"))
    t = prior_test(SimpleNamespace(seed=0, profile=profile, left_out=(negation,)))
    assert isinstance(t, PriorTest) and (t.p > 0.05) is explained, t.describe()
    assert t.did.n < blind.did.n


def test_a_phenomenon_round_trips_through_a_culprits_data() -> None:
    from lmcritic.diagnose.hypotheses._phenomena import Phenomenon

    word = Phenomenon.from_data(Phenomenon.of_word("director's").data)
    assert word is not None and word.has("The Director's cut") and not word.has("the director cut")
    neg = Phenomenon.from_data({"name": "negation", "word": None})
    assert neg is not None and neg.has("it is not good") and not neg.has("it is good")
    assert Phenomenon.from_data({"name": "length", "word": None}) is None and Phenomenon.from_data(None) is None


def _slang_fit(seed: int = 0, n: int = 2000, n_eval: int = 300) -> CorpusFit:
    """Labels all right, formal training rows. Half the evaluated texts are slang ('lol ...'), which the corpus
    model reads as negative whatever their gold label (the register plant: words no training row has; held-out
    seed 10 read as label noise at p = 0.0087)."""
    rng = np.random.default_rng(seed)
    y = np.where(rng.random(n) < 0.5, "pos", "neg")
    pred = _read(y, rng)
    slang, gold = rng.random(n_eval) < 0.5, np.where(rng.random(n_eval) < 0.5, "pos", "neg")
    read = np.where(slang, "neg", _read(gold, rng))
    votes = np.stack([read == "neg", read == "pos"], axis=1).astype(float)
    return CorpusFit(((pred == y).astype(float), np.full(n, 0.9)), ((read == gold).astype(float), np.full(n_eval, 0.9)),
                     labels=(y, gold), texts=tuple(f"the film {i} was fine" for i in range(n)),
                     eval_texts=tuple(f"lol the film {i} was fine" if s else f"the film {i} was fine"
                                      for i, s in enumerate(slang)),
                     predicted=pred, eval_votes=votes, balanced=pred, weights=np.ones(n))


def test_evaluated_texts_of_a_register_the_corpus_lacks_are_left_out_of_the_label_share_test() -> None:
    """Slang read one way moves both statistics (gold negatives among it become easy), so right labels read as
    noise; the corpus profile shows the register shift, and without those texts the rest shows none."""
    from lmcritic.diagnose.profile import _shift

    cf = _slang_fit()
    cache = {"label_noise.crossfit_all:0": cf}
    blind = prior_test(SimpleNamespace(seed=0, profile=SimpleNamespace(_cache=cache, shifts={})))
    assert isinstance(blind, PriorTest) and blind.label == "neg" and blind.p < 0.05
    shift = _shift("register", "colloquial", [False] * 2000, ["lol" in t for t in cf.eval_texts])
    profile = SimpleNamespace(_cache=cache, shifts={("register", "colloquial"): shift})
    t = prior_test(SimpleNamespace(seed=0, profile=profile))
    assert isinstance(t, PriorTest) and t.p > 0.05, t.describe()
    assert "register=colloquial" in t.left_out and t.did.n < 200
    rare = _shift("register", "colloquial", [False] * 2000, [False] * 300)  # no shift: nothing left out
    none = SimpleNamespace(_cache=cache, shifts={("register", "colloquial"): rare})
    same = prior_test(SimpleNamespace(seed=0, profile=none))
    assert isinstance(same, PriorTest) and same.p == blind.p and not same.left_out
