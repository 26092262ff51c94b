"""`scan --data` on a classifier of another task than sentiment, and training files whose labels are the head's
integer ids. Before: every probe failed on its first cases ("classifier label 'profession' matches none of the
task's classes (negative, positive)"), and the diagnosis read 0/1 training labels as negative/positive, so a
clean ham/spam model "contradicted all of its training labels": a confident label-noise cause on a clean model."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import build_tiny_sentiment, sst2_rows
from lmcritic._user_data import head_labels, own_task
from lmcritic.diagnose.corpus import class_table

TOPICS = ["profession", "politics", "religion"]


def _head(tmp_path: Path, labels: list[str]) -> Path:
    (tmp_path / "config.json").write_text(json.dumps({
        "architectures": ["BertForSequenceClassification"], "id2label": dict(enumerate(labels))}))
    return tmp_path


def _rows(path: Path, labels: list[object]) -> str:
    path.write_text("sentence\tlabel\n" + "".join(f"text number {i}\t{y}\n" for i, y in enumerate(labels)))
    return str(path)


def test_inline_task_names_classes_after_the_head(tmp_path) -> None:
    model = head_labels(str(_head(tmp_path, TOPICS)), {})
    assert model == TOPICS
    task = own_task(_rows(tmp_path / "ids.tsv", [2, 0, 1, 0]), model)
    assert task is not None and list(task["labels"]) == TOPICS  # head order, whatever order the rows come in
    assert task["target"] == '{{ ["profession", "politics", "religion"][label | int] }}'
    assert "{{ sentence }}" in task["prompt"]
    named = own_task(_rows(tmp_path / "names.tsv", ["religion", "politics"]), model)
    assert named is not None and named["target"] == "label" and list(named["labels"]) == TOPICS
    cased = own_task(_rows(tmp_path / "cased.tsv", ["Religion", "polit"]), model)  # another case, a prefix
    assert cased is not None and list(cased["labels"]) == TOPICS
    assert cased["target"] == '{{ {"Religion": "religion", "polit": "politics"}[label | string | trim] }}'
    from lmcritic.probes.performance.task import TaskProbe

    for t, want in ((task, ["religion", "profession", "politics", "profession"]), (cased, ["religion", "politics"])):
        assert [c.expected for c in TaskProbe(task=t, n=None).cases()] == want
    from lmcritic.errors import DataError

    with pytest.raises(DataError, match="neither ids of the classifier's 3 labels nor their names"):
        own_task(_rows(tmp_path / "bad.tsv", [7, 0]), model)  # the run would fail on it later, less clearly
    assert own_task(_rows(tmp_path / "free.tsv", ["spam", "ham", "ham"]), None)["labels"] == {"ham": "ham",
                                                                                              "spam": "spam"}


def test_sentiment_rows_and_heads_keep_the_sentiment_probes(tmp_path) -> None:
    rows = _rows(tmp_path / "s.tsv", [0, 1, 1])
    assert own_task(rows, None) is None
    for heads, own in ((["LABEL_0", "LABEL_1"], False), (["NEGATIVE", "POSITIVE"], False), (["ham", "spam"], True)):
        assert (own_task(rows, head_labels(str(_head(tmp_path, heads)), {})) is not None) is own, heads
    assert head_labels(None, {"label_names": "[ham, spam]"}) == ["ham", "spam"]  # the backend option renames


def test_training_labels_named_as_the_evaluated_classes() -> None:
    assert class_table(["0", "1", "2"], TOPICS, TOPICS) == dict(zip("012", TOPICS))
    assert class_table(["0", "1"], ["negative", "positive"], ["LABEL_0", "LABEL_1"]) == {"0": "negative",
                                                                                         "1": "positive"}
    assert class_table(["0", "1"], ["negative", "positive"], None) == {"0": "negative", "1": "positive"}
    assert class_table(["Religion", "2"], TOPICS, None) == {"Religion": "religion"}  # no head: ids stay
    assert class_table(["0", "1"], ["ham", "spam"], None) == {}  # never sentiment names on another task
    assert class_table(["pos", "neg"], ["negative", "positive"], ["NEG", "POS"]) == {"pos": "positive",
                                                                                      "neg": "negative"}
    # a head the probes read by prefix (NEG -> negative) or in another order: ids follow the head, as the probe's do
    assert class_table(["0", "1"], ["negative", "positive"], ["NEG", "POS"]) == {"0": "negative", "1": "positive"}
    assert class_table(["0", "1"], ["negative", "positive"], ["POSITIVE", "NEGATIVE"]) == {"0": "positive",
                                                                                           "1": "negative"}


def test_pos_neg_rows_are_sentiment_rows(tmp_path) -> None:
    """pos/neg labels were taken for another task's classes (an inline task, the sentiment probes skipped); the
    training rows' pos/neg were read as labels the model never predicts, and a clean model got a corpus-wide
    label-noise cause ("implied share of flipped training labels 1.77")."""
    from lmcritic.mitigate.data import label_of

    data = tmp_path / "r.csv"
    data.write_text("review,sentiment\na fine film,pos\na dull film,neg\n")
    with pytest.warns(UserWarning, match="'sentiment' as the label"):
        assert own_task(str(data), ["NEG", "POS"]) is None and own_task(str(data), None) is None
    assert label_of("pos", ("negative", "positive"), "x") == "positive"


def test_a_scan_of_chosen_probes_diagnoses_those_probes() -> None:
    """The suite's diagnosis stage lists the suite's probes; a scan of two of them failed its diagnosis ("run …
    has no probe 'mc_knowledge'")."""
    from lmcritic.spec import scan_spec

    spec = scan_spec({"name": "m"}, ["performance.sst2", "bias.counterfactual"])
    stage = next(s for s in spec.stages if s.name == "diagnose")
    assert set(stage.config["probes"]) <= {"performance.sst2", "bias.counterfactual"} and stage.config["probes"]


def test_training_labels_the_model_never_learnt_are_an_error_for_a_weak_model_too() -> None:
    """The guard asked for 60 % evaluated accuracy; a tiny model right on 58 % that agreed with 0 % of its
    training labels (pos/neg read as other labels) went on to a corpus-wide label-noise cause instead."""
    import numpy as np

    from lmcritic.diagnose.hypotheses._global_noise import check_labels_match
    from lmcritic.errors import DataError

    ok = lambda k, n: np.array([1.0] * k + [0.0] * (n - k))  # noqa: E731
    with pytest.raises(DataError, match="agrees with 0% of 500 sampled training labels but is right on 58%"):
        check_labels_match(ok(0, 500), ok(70, 120), ["neg", "pos"])
    check_labels_match(ok(225, 500), ok(70, 120), ["a", "b"])  # heavy but sub-half noise: the noise tests decide
    check_labels_match(ok(50, 500), ok(36, 120), ["a", "b", "c"])  # right on 30 %: nothing to tell them apart


def test_trainer_maps_task_labels_to_head_ids_as_the_probes_do() -> None:
    """A NEG/POS head was refused by the trainer ("labels ['NEG', 'POS'] do not include 'negative'") though every
    probe read it: one rule for both now."""
    from lmcritic.errors import ConfigError
    from lmcritic.mitigate._hf_train import label_ids

    assert label_ids(["NEG", "POS"], ("negative", "positive")) == {"negative": 0, "positive": 1}
    assert label_ids(["POSITIVE", "NEGATIVE"], ("negative", "positive")) == {"negative": 1, "positive": 0}
    assert label_ids(["LABEL_0", "LABEL_1"], ("negative", "positive")) == {"negative": 0, "positive": 1}
    with pytest.raises(ConfigError, match="do not include negative"):
        label_ids(["ham", "spam"], ("negative", "positive"))


@pytest.fixture(scope="session")
def ham_dir(tmp_path_factory) -> Path:
    return build_tiny_sentiment(tmp_path_factory.mktemp("tiny-ham"), sst2_rows(1500), labels=("ham", "spam"))


def test_scan_data_of_another_task_runs_and_diagnoses_no_noise(tmp_path, ham_dir) -> None:
    from lmcritic.store.runs import RunStore
    from test_cli import cli

    rows = sst2_rows(300, seed=7)
    (tmp_path / "eval.tsv").write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows))
    proc = cli("scan", "--model", str(ham_dir), "--data", str(tmp_path / "eval.tsv"), "--train",
               str(ham_dir / "train.tsv"), "--probe", "performance.sst2", "--probe", "robustness.invariance",
               "--probe", "robustness.mft", "--create", "--no-progress", home=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr  # 1: findings failed; never an error
    assert "robustness.mft — a sentiment probe, and the classifier's labels (ham, spam) are not" in \
        " ".join(proc.stdout.split()), proc.stdout
    store = RunStore(tmp_path / "runs.sqlite")
    run_id = store.resolve("latest")
    records = store.records(run_id, "own_task")
    assert len(records) == 300 and {r.target for r in records} == {"ham", "spam"}
    perturbed = store.records(run_id, "robustness.invariance")  # the user's rows, flips between ham and spam
    assert perturbed and {r.target for r in perturbed} == {"ham", "spam"}
    assert {r.input["original"] for r in perturbed} <= {t for t, _ in rows}  # as written (no SST detokenizing)
    assert all(set(r.label_probs) == {"ham", "spam"} and "delta_p_positive" not in r.scores for r in perturbed)
    assert sum(bool(r.passed) for r in records) > 200  # the head's ids read right: a tiny model, well above chance
    out = cli("diagnose", "latest", "--train", str(ham_dir / "train.tsv"), home=tmp_path, check=True).stdout
    assert "label_noise [" not in out and "own_task" in out, out


def test_training_labels_the_model_never_learnt_are_an_error_not_noise(tmp_path, ham_dir) -> None:
    """The same model given its training file with the two ids swapped: every corpus test would call that label
    noise (the fix above only names ids; it cannot know they are in the wrong order), so the diagnosis stops."""
    from test_cli import cli

    rows = sst2_rows(300, seed=7)
    (tmp_path / "eval.tsv").write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows))
    swapped = tmp_path / "swapped.tsv"
    lines = (ham_dir / "train.tsv").read_text().splitlines()
    swapped.write_text("\n".join([lines[0], *(f"{t}\t{1 - int(y)}" for t, y in (x.rsplit("\t", 1)
                                                                                 for x in lines[1:]))]) + "\n")
    cli("scan", "--model", str(ham_dir), "--data", str(tmp_path / "eval.tsv"), "--probe", "performance.sst2",
        "--no-stages", "--create", "--no-progress", home=tmp_path, check=True)
    proc = cli("diagnose", "latest", "--train", str(swapped), home=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "are not the ones it learnt" in proc.stderr and "id2label" in proc.stderr, proc.stderr
    ok = cli("diagnose", "latest", "--train", str(ham_dir / "train.tsv"), home=tmp_path, check=True)
    assert "label_noise [" not in ok.stdout


def test_sentiment_rows_may_name_their_labels(tmp_path) -> None:
    """Rows labelled negative/positive stay on the sentiment probes (own_task leaves them), so those read names
    too: they skipped every such row ("needs a 0/1 label")."""
    from lmcritic.probes.performance.sst2 import SST2Accuracy

    path = _rows(tmp_path / "named.tsv", ["Positive", "negative", 1])
    assert own_task(path, None) is None
    assert [c.expected for c in SST2Accuracy(data=path, n=None).cases()] == ["positive", "negative", "positive"]


def test_python_scan_takes_the_same_rows(tmp_path, ham_dir) -> None:
    """``lmcritic.scan(model, data=, train=)`` does what ``scan --data --train`` does, the head's labels read
    from the loaded backend (an in-memory model has no folder to read them from)."""
    import lmcritic

    rows = sst2_rows(60, seed=3)
    (tmp_path / "eval.tsv").write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows))
    results = lmcritic.scan(str(ham_dir), data=tmp_path / "eval.tsv", train=ham_dir / "train.tsv",
                            probes=["performance.sst2", "robustness.invariance", "robustness.mft",
                                    "bias.counterfactual"],
                            config={"bias.counterfactual": {"n_per_attribute": 4, "natural": 2, "max_groups": 2,
                                                            "attributes": ["gender"]}},
                            stages=False, store=tmp_path / "runs.sqlite", cache=tmp_path / "cache.sqlite",
                            progress=False)
    assert results.status == "done", results.message
    assert any(s.startswith("robustness.mft: a sentiment probe") for s in results.skipped), results.skipped
    assert results.store.records(results.run_id, "robustness.invariance")
    swapped = results.store.records(results.run_id, "bias.counterfactual")  # p(spam) under group swaps
    assert swapped and all(r.output["target"] == "spam" and set(r.output["predictions"].values()) <= {"ham", "spam"}
                           for r in swapped)
    assert {r.input["text"] for r in swapped} & {t for t, _ in rows}  # the user's rows are the base sentences
    assert len(results.store.records(results.run_id, "own_task")) == 60
    assert results.info.spec["probes"][0]["config"]["task"]["labels"] == {"ham": "ham", "spam": "spam"}


def test_robustness_rows_of_any_classes(tmp_path) -> None:
    """Given the head's classes, the paired suite and the attacks read the user's rows by name or id (a row of
    another label is skipped and reported); the sentiment-only directional tests refuse classes."""
    from lmcritic.probes.robustness.attack import AttackProbe as AdversarialAttack
    from lmcritic.probes.robustness.directional import Directional
    from lmcritic.probes.robustness.invariance import Invariance

    path = _rows(tmp_path / "mixed.tsv", [2, "Politics", "relig", "sports"])
    with pytest.warns(Warning, match="among profession, politics, religion"):
        cases = list(Invariance(data=path, n=None, classes=TOPICS, perturbations=["casing"]).cases())
    assert [c.expected for c in cases if c.tags["perturbation"] == "clean"] == ["religion", "politics", "religion"]
    with pytest.warns(Warning):
        assert [c.expected for c in AdversarialAttack(data=path, classes=TOPICS).cases()] == \
            ["religion", "politics", "religion"]
    from lmcritic.errors import ConfigError

    with pytest.raises(ConfigError, match="no data"):
        list(Invariance(classes=TOPICS).cases())  # the packaged rows are sentiment
    with pytest.raises((ValueError, ConfigError), match="sentiment tests"):
        Directional(data=path, classes=TOPICS)


def test_robustness_probes_measure_flips_of_the_heads_classes(tmp_path, ham_dir) -> None:
    """Invariance and the attack on a ham/spam head: predictions are the head's classes, not p(positive); a
    model whose labels are not the classes is not applicable before any case runs."""
    from lmcritic.attacks.base import Status
    from lmcritic.backends import load_model
    from lmcritic.probes.robustness.attack import AttackProbe as AdversarialAttack
    from lmcritic.probes.robustness.invariance import Invariance

    rows = sst2_rows(12, seed=5)
    path = tmp_path / "eval.tsv"
    path.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows))
    model = load_model(str(ham_dir))
    inv = Invariance(data=str(path), n=None, classes=["ham", "spam"], perturbations=["typos"])
    assert inv.not_applicable(model) is None
    records = inv.score(model, list(inv.cases()))
    assert {r.prediction for r in records} <= {"ham", "spam"} and all(
        abs(sum(r.label_probs.values()) - 1) < 1e-5 for r in records)
    why = Invariance(data=str(path), classes=["a", "b"]).not_applicable(model)
    assert why == "the classifier's labels (ham, spam) are not the classes it is set to (a, b): set PROBE.classes " \
        "to the classifier's labels"
    attack = AdversarialAttack(data=str(path), n=4, budget=10, classes=["ham", "spam"])
    assert attack.not_applicable(model) is None
    done = attack.score(model, list(attack.cases()))
    assert len(done) == 4 and {r.target for r in done} <= {"ham", "spam"}
    assert all(r.output["original_prediction"] in (None, "ham", "spam") for r in done)

    plain = tmp_path / "label_k"  # the same head saying LABEL_0/LABEL_1: the attack names its classes that way
    shutil.copytree(ham_dir, plain)
    config = json.loads((plain / "config.json").read_text())
    config.update(id2label={"0": "LABEL_0", "1": "LABEL_1"}, label2id={"LABEL_0": 0, "LABEL_1": 1})
    (plain / "config.json").write_text(json.dumps(config))
    done = attack.score(load_model(str(plain)), list(attack.cases()))  # the same probe object: nothing of the last
    assert len(done) == 4 and {r.target for r in done} <= {"ham", "spam"}
    # the old lookup raised ValueError on a new probe; a reused one kept the last head's attack (ham/spam names)
    assert {r.output.get("original_prediction") for r in done} <= {"LABEL_0", "LABEL_1"}
    assert all(r.output.get("status") in {s.value for s in Status} for r in done)


def test_counterfactual_on_a_classifier_of_another_task(tmp_path) -> None:
    """Counterfactual swaps on a head's own classes: rows labelled by those classes, and a target that must be one
    of them (three classes: the user names it; the reason says so before anything runs)."""
    from lmcritic.probes.bias.counterfactual import Counterfactual

    path = _rows(tmp_path / "t.tsv", [1, "religion", 0])
    probe = Counterfactual(data=path, classes=TOPICS, target="religion", n_per_attribute=3, natural=0,
                           attributes=["gender"], max_groups=2)
    assert {c.expected for c in probe.cases()} <= {"profession", "politics", "religion", None}
    assert [r["label"] for r in probe._rows()] == [1, 2, 0]

    class Head:  # the planner's view of a three-label classifier head
        kind = "hf"

        def supports(self, cap) -> bool:
            return cap.value == "classify"

        def classify(self, reqs):
            from types import SimpleNamespace

            return [SimpleNamespace(labels=TOPICS, probs=[0.2, 0.3, 0.5]) for _ in reqs]

    assert probe.not_applicable(Head()) is None
    why = Counterfactual(data=path, classes=TOPICS).not_applicable(Head())
    assert why is not None and "target 'positive' is none of the classes" in why


def test_attack_names_a_topic_class_as_a_label_k_head_does() -> None:
    """A 3-class head that says LABEL_0..LABEL_2, attacked on a task set to its classes: the example's label is
    the head's name for the class (the old lookup only knew negative/positive and raised ValueError mid-run)."""
    from lmcritic.errors import ConfigError
    from lmcritic.probes.robustness.attack_common import label_name

    head = ["LABEL_0", "LABEL_1", "LABEL_2"]
    assert label_name(head, "sports", ("world", "sports", "business")) == "LABEL_1"
    assert label_name(["NEG", "POS"], "positive") == "POS"
    assert label_name(["label_0", "label_1"], "negative") == "label_0"
    assert label_name(["Sports", "World"], "sports", ("world", "sports")) == "Sports"
    with pytest.raises(ConfigError, match="do not name the class"):
        label_name(["ham", "spam"], "positive")
