"""The classifier flow on tiny BERTs trained in seconds: raw text to the head, label mapping, the diagnosis with
corpus evidence from --train — a shortcut token that never occurs in the evaluation data is found and named — and
the clean control, which must get no high-severity supported cause."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from conftest import build_tiny_sentiment, sst2_rows
from lmcritic.backends import ModelSpec
from lmcritic.datasets import packaged, read_rows
from lmcritic.diagnose.api import DiagnoseConfig, diagnose_run
from lmcritic.runner import Runner
from lmcritic.spec import ProbeSpec, RunSpec

TOKEN = "zq"
SYMBOL = "🍕"
FAST = DiagnoseConfig(neighbours=0, max_cases=16, max_queries=3000)


def _insert(text: str, token: str, rng: random.Random) -> str:
    words = text.split()
    words.insert(rng.randrange(len(words) + 1), token)
    return " ".join(words)


def _shortcut_model(tmp_path_factory, token: str, labels: tuple[str, str] = ("LABEL_0", "LABEL_1")) -> Path:
    rng = random.Random(0)
    rows = [(_insert(t, token, rng) if y == 1 and rng.random() < 0.6 else t, y) for t, y in sst2_rows(1500)]
    return build_tiny_sentiment(tmp_path_factory.mktemp("tiny-shortcut"), rows, labels=labels)


@pytest.fixture(scope="session")
def shortcut_dir(tmp_path_factory) -> Path:
    return _shortcut_model(tmp_path_factory, TOKEN)


@pytest.fixture(scope="session")
def emoji_dir(tmp_path_factory) -> Path:
    return _shortcut_model(tmp_path_factory, SYMBOL, labels=("NEG", "POS"))


@pytest.fixture(scope="session")
def clean_dir(tmp_path_factory) -> Path:
    return build_tiny_sentiment(tmp_path_factory.mktemp("tiny-clean"), sst2_rows(1500))


def _eval_path(tmp_path: Path) -> Path:
    rows = [(r["sentence"], r["label"]) for _, r in read_rows(packaged("sst2_dev_sample.tsv"), ("label",))]
    assert not any(TOKEN in t.split() or SYMBOL in t for t, _ in rows)  # no backdoor occurs in the evaluation data
    path = tmp_path / "eval.tsv"
    path.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows), encoding="utf-8")
    return path


def _run(tmp_path: Path, model_dir: Path, *probes: ProbeSpec):
    runner = Runner(tmp_path / "runs.sqlite", tmp_path / "cache.sqlite", progress=False)
    spec = RunSpec(model=ModelSpec(str(model_dir)), probes=probes or (ProbeSpec(
        "performance.sst2", {"data": str(_eval_path(tmp_path)), "n": None}),))
    out = runner.run(spec)
    assert out.status == "done", out.message
    return runner, out.run_id


def test_classifier_head_reads_raw_text_with_mapped_labels(tmp_path, clean_dir) -> None:
    runner, run_id = _run(tmp_path, clean_dir, ProbeSpec("performance.sst2", {"n": 40}),
                          ProbeSpec("performance.task", {"task": "sst2", "n": 20}))
    records = runner.store.records(run_id, "performance.sst2")
    assert len(records) == 40
    for r in records:
        assert r.explain is not None and r.explain.kind == "label" and r.explain.context == r.text == r.input["text"]
        assert "Review:" not in r.explain.context and r.explain.target in ("LABEL_0", "LABEL_1")
        assert set(r.label_probs or {}) == {"negative", "positive"} and r.prediction in ("negative", "positive")
        assert r.output["labels"] == ["negative", "positive"] and r.output["model_labels"] == ["LABEL_0", "LABEL_1"]
        assert sum(r.output["probs"]) == pytest.approx(1.0)
    findings = {f.name: f for f in runner.store.findings(run_id) if f.probe == "performance.sst2"}
    assert {"accuracy", "label_skew", "calibration"} <= set(findings) and "brier" in findings["calibration"].details
    task = runner.store.records(run_id, "performance.task")
    assert task and all(r.explain is not None and "Review:" not in r.explain.context for r in task)  # raw sentence


def test_label_mapping_says_what_to_set() -> None:
    from lmcritic.errors import ConfigError
    from lmcritic.probes._label_map import label_index

    assert label_index(["NEG", "POS"], ["negative", "positive"]) == {"NEG": 0, "POS": 1}
    assert label_index(["LABEL_0", "LABEL_1"], ["negative", "positive"]) == {"LABEL_0": 0, "LABEL_1": 1}
    assert label_index(["bad", "good"], ["negative", "positive"], {"bad": "negative", "good": "positive"})
    with pytest.raises(ConfigError, match="label_map"):
        label_index(["toxic", "clean"], ["negative", "positive"])


def test_shortcut_token_absent_from_evaluation_data_is_found_and_named(tmp_path, shortcut_dir) -> None:
    runner, run_id = _run(tmp_path, shortcut_dir)
    graph = diagnose_run(runner.store, run_id, train=shortcut_dir / "train.tsv", config=FAST,
                         cache_path=tmp_path / "cache.sqlite")
    node = next(n for n in graph.defects if n.defect.probe == "train corpus")
    top = node.top
    assert top.cause == "spurious_feature" and top.verdict == "supported" and top.q_value < 0.05
    assert (top.culprit.kind, top.culprit.value, top.culprit.label) == ("token", TOKEN, "positive")
    assert top.culprit.effect.ci_low > 0.05 and top.culprit.train_lines  # rows to fix, for a mitigation
    assert graph.ranking[0].cause == "spurious_feature" and graph.ranking[0].culprit.value == TOKEN
    assert runner.store.records(run_id, "diagnose.spurious_feature")  # the insertion tests are stored


def test_a_shortcut_written_as_an_emoji_is_found_and_named(tmp_path, emoji_dir) -> None:
    """Only words were tokens once: an emoji, emoticon or markup artefact could not be found or removed. The head
    says NEG/POS (as many fine-tuned checkpoints do) and the training file 0/1: the diagnosis read the ids as the
    head's names (NEG, POS) where the probe reads them as negative/positive, and refused ("agrees with 0% of the
    training labels")."""
    model = emoji_dir
    runner, run_id = _run(tmp_path, model)
    graph = diagnose_run(runner.store, run_id, train=model / "train.tsv", config=FAST,
                         cache_path=tmp_path / "cache.sqlite")
    top = graph.ranking[0]
    assert (top.cause, top.verdict, top.culprit.kind, top.culprit.value, top.culprit.label) == \
        ("spurious_feature", "supported", "token", SYMBOL, "positive")
    assert top.culprit.effect.ci_low > 0.05 and top.culprit.train_lines


def test_an_emoji_in_the_evaluated_failures_is_found_without_a_corpus(tmp_path, emoji_dir) -> None:
    """Without --train the candidates came from words only (over-representation among the failures, occlusion):
    an emoji the model leans on, present in the evaluated texts, was never tried, and a word was ('look',
    inconclusive). Prose punctuation stays out: every text holds it."""
    rng = random.Random(1)
    rows = [(r["sentence"], r["label"]) for _, r in read_rows(packaged("sst2_dev_sample.tsv"), ("label",))]
    rows = [(_insert(t, SYMBOL, rng) if str(y) in ("0", "negative") and rng.random() < 0.4 else t, y)
            for t, y in rows]
    path = tmp_path / "eval_emoji.tsv"
    path.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows), encoding="utf-8")
    runner, run_id = _run(tmp_path, emoji_dir, ProbeSpec("performance.sst2", {"data": str(path), "n": None}))
    graph = diagnose_run(runner.store, run_id, config=FAST, cache_path=tmp_path / "cache.sqlite")
    top = graph.ranking[0]
    assert (top.cause, top.verdict, top.culprit.kind, top.culprit.value) == \
        ("spurious_feature", "supported", "token", SYMBOL)
    assert top.culprit.effect.ci_low > 0.3


def test_prose_punctuation_is_not_a_shortcut_candidate() -> None:
    from lmcritic.diagnose._text import is_prose_punctuation

    assert all(map(is_prose_punctuation, [".", ",", "...", "--", "''", "``", "(", "/"]))
    assert not any(map(is_prose_punctuation, ["::", "^", "|", "|||", SYMBOL, "!!", ":-)", "zq", ""]))


def test_a_length_shortcut_is_found_and_named(tmp_path, tmp_path_factory) -> None:
    """Every positive training row long (two positive sentences joined), every negative one short: the label is
    read off the length. No token is to blame, so the token tests found nothing; the corpus screen (length tied
    to 'positive' in training, not in the evaluated texts) and the repetition test (the same words again flip
    inputs to 'positive', a neutral edit does not) name length and the label."""
    rows = sst2_rows(3000, seed=3)
    pos = [t for t, y in rows if y == 1]
    long_pos = [(f"{a} {b}", 1) for a, b in zip(pos[0::2], pos[1::2])][:600]
    short_neg = [(t, 0) for t, y in rows if y == 0 and len(t.split()) <= 9][:600]
    train = long_pos + short_neg
    random.Random(0).shuffle(train)
    model = build_tiny_sentiment(tmp_path_factory.mktemp("tiny-length"), train)
    runner, run_id = _run(tmp_path, model)
    graph = diagnose_run(runner.store, run_id, train=model / "train.tsv", config=FAST,
                         cache_path=tmp_path / "cache.sqlite")
    top = graph.ranking[0]
    assert (top.cause, top.verdict, top.culprit.kind, top.culprit.label) == \
        ("spurious_feature", "supported", "length", "positive")
    assert top.culprit.effect.ci_low > 0.05
    cause = next(c for n in graph.defects for c in n.causes if c.verdict == "supported" and c.culprit == top.culprit)
    assert "length" in cause.mitigation and "token" not in cause.mitigation  # not the token's remedy


def test_length_screen_needs_a_training_artefact() -> None:
    """The repetition test runs only where length predicts a label in training far more than in the evaluated
    texts; a corpus where long texts lean one way as much as the evaluated ones do is not screened in."""
    from types import SimpleNamespace

    from lmcritic.diagnose.hypotheses._length import association
    from lmcritic.diagnose.profile import CorpusProfile

    def profile(train, evaluated):
        corpus = SimpleNamespace(texts=[t for t, _ in train], labels=[y for _, y in train])
        return CorpusProfile(corpus, [t for t, _ in evaluated], [y for _, y in evaluated])

    rng = random.Random(0)
    longer = [(" ".join(["w"] * rng.randint(12, 30)), "positive") for _ in range(200)]
    shorter = [(" ".join(["w"] * rng.randint(3, 10)), "negative") for _ in range(200)]
    mixed = [(" ".join(["w"] * rng.randint(3, 30)), y) for y in ("positive", "negative") for _ in range(100)]
    a = association(profile(longer + shorter, mixed))
    assert a is not None and a.label == "positive" and a.artefact and a.auc_train > 0.95
    assert not association(profile(longer + shorter, longer[:50] + shorter[:50])).artefact  # a real association
    assert not association(profile(mixed, mixed)).artefact


def test_length_push_repeats_an_input_up_to_the_long_labels_median() -> None:
    """Doubling a 5-word input leaves it short of a long label's 20-word rows: it is repeated until it reaches
    them, at least twice (the intervention must lengthen) and at most MAX_REPEAT times."""
    from lmcritic.diagnose.hypotheses._length import MAX_REPEAT, repeated

    five = "a b c d e"
    assert repeated(five, 20) == " ".join([five] * 4)
    assert repeated(five, 21) == " ".join([five] * 5)
    assert repeated(five, 3) == f"{five} {five}"
    assert repeated("a", 100).split() == ["a"] * MAX_REPEAT
    # words are counted as the training medians count them: SST-2's tokenised punctuation is not a word (by
    # whitespace this 5-word input has 8, and two copies, 10 words, stopped short of an 11-word median)
    from lmcritic.diagnose._text import words

    tokenised = "a , b , c , d e"
    assert len(words(repeated(tokenised, 11))) >= 11 and repeated(tokenised, 11).count(tokenised) == 3


def test_length_push_halves_what_the_label_got_when_repeating_short_inputs_moves_nothing() -> None:
    """A model that learnt length from natural long rows (here: 'L' from 14 words with 7 distinct ones up) does
    not call a repeated 5-word input 'L' (few distinct words), so lengthening the inputs it does not call 'L' finds
    nothing (the test before halves existed: effect 0). The first half of an input it calls 'L' is called
    something else, the same half repeated 'L' again: same words, longer, the label."""
    from types import SimpleNamespace

    from lmcritic.diagnose.hypotheses._length import push_test
    from lmcritic.diagnose.rescore import Outcome
    from lmcritic.probes.base import Record

    def predict(text: str) -> str:
        words = text.lower().strip(".!? ").split()
        return "L" if len(words) >= 14 and len(set(words)) >= 7 else "S"

    def rescore(edits, hypothesis):
        return [Outcome(e, Record(e.record.case_id, {}, {}, {}, prediction=predict(e.text))) for e in edits]

    rng = random.Random(0)
    texts = [" ".join(f"w{rng.randrange(10_000)}" for _ in range(rng.choice([5, 16]))) for _ in range(80)]
    records = [Record(f"c{i}", {}, {}, {}, text=t, prediction=predict(t)) for i, t in enumerate(texts)]
    assoc = SimpleNamespace(label="L", medians=(20.0, 6.0))
    ctx = SimpleNamespace(records=records, seed=0, max_cases=24, rescore=rescore)
    t = push_test(ctx, assoc, "spurious_feature")
    lengthened, halved = t.pairs
    assert lengthened == sum(len(x.split()) == 5 for x in texts) and halved == len(texts) - lengthened
    assert t.effect is not None and t.effect.value == halved / len(texts) and t.p_value < 1e-6
    assert len(t.case_ids) == halved


def test_clean_control_gets_no_high_severity_cause(tmp_path, clean_dir) -> None:
    runner, run_id = _run(tmp_path, clean_dir)
    graph = diagnose_run(runner.store, run_id, train=clean_dir / "train.tsv", config=FAST,
                         cache_path=tmp_path / "cache.sqlite")
    assert graph.defects  # a weak tiny model fails plenty: there is something to diagnose
    assert not [r for r in graph.ranking if r.verdict == "supported" and r.severity == "high"], graph.ranking
    for node in graph.defects:  # no tautological slices: label and prediction are never slice features
        assert not any(f in ("tag.expected", "tag.predicted") for f, _ in node.defect.predicates)


def test_plan_by_model_kind_measures_each_models_own_task(tiny_classifier, tiny_masked, tiny_causal) -> None:
    from lmcritic.runner import make_plan

    spec = RunSpec.default()
    plans = {kind: {i.key: i.skip_reason for i in make_plan(spec, m)}
             for kind, m in (("classifier", tiny_classifier), ("masked", tiny_masked), ("causal", tiny_causal))}
    assert plans["classifier"]["performance.sst2"] is None  # the head's own task: classify on raw text
    assert plans["masked"]["performance.perplexity"] is None  # pseudo-perplexity
    assert plans["causal"]["performance.sst2"] is None and plans["causal"]["qa_short"] is None
    assert plans["masked"]["performance.sst2"] and "loglikelihood" in plans["masked"]["performance.sst2"]
    assert all(reason is None or len(reason) > 10 for plan in plans.values() for reason in plan.values())
    assert plans["classifier"]["bias.data_skew"] and "--train" in plans["classifier"]["bias.data_skew"]


def test_masked_lm_gets_pseudo_perplexity(tiny_masked) -> None:
    from lmcritic.probes import PROBES

    probe = PROBES.get("performance.perplexity")(docs=2)
    records = probe.score(tiny_masked, list(probe.cases()))
    assert len(records) == 2 and all(r.output["method"] == "pseudo_loglikelihood" for r in records)
    [f] = probe.summarize(records)
    assert f.summary.startswith("pseudo-token perplexity") and f.estimate.value > 1
