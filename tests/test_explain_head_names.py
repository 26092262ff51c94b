"""Explanations of classifier records when the head names its classes otherwise (LABEL_k, NEG/POS).

A model fine-tuned without ``id2label`` says LABEL_0/LABEL_1. Records name classes (negative, ham); the gradient
and black-box explainers need the head's own name. Before, every explanation of such a head raised "label
'positive' is not one of the classifier's labels" and a default scan of it ended partial (exit 6)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import build_tiny_sentiment, sst2_rows
from lmcritic.errors import InputError
from lmcritic.interpret.types import label_position


@pytest.fixture(scope="module")
def label_k_dir(tmp_path_factory) -> Path:
    return build_tiny_sentiment(tmp_path_factory.mktemp("tiny-label-k"), sst2_rows(800), steps=120)


def _relabel(src: Path, dst: Path, labels: tuple[str, str]) -> Path:
    shutil.copytree(src, dst)
    config = json.loads((dst / "config.json").read_text())
    config.update(id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)})
    (dst / "config.json").write_text(json.dumps(config))
    return dst


def test_label_position_reads_sentiment_classes_on_any_head() -> None:
    assert label_position(("LABEL_0", "LABEL_1"), "positive") == 1
    assert label_position(("NEG", "POS"), "negative") == 0
    assert label_position(("POSITIVE", "NEGATIVE"), "negative") == 1
    assert label_position(("ham", "spam"), "spam") == 1
    with pytest.raises(InputError, match="'positive' is not one of the classifier's labels"):
        label_position(("ham", "spam"), "positive")


def test_sentiment_records_of_a_label_k_head_are_explained(label_k_dir) -> None:
    from lmcritic.backends import load_model
    from lmcritic.interpret.cases import explain_record
    from lmcritic.interpret.gradients import IntegratedGradients
    from lmcritic.interpret.occlusion import Occlusion
    from lmcritic.probes.robustness.invariance import Invariance

    model = load_model(str(label_k_dir))
    probe = Invariance(n=4, perturbations=["typos"])
    records = probe.score(model, list(probe.cases()))
    assert records and {r.explain.target for r in records} <= {"negative", "positive"}
    ce = explain_record(model, records[0], [Occlusion(), IntegratedGradients(n_steps=4)], faithfulness=False)
    scores = [e.word_scores for e in ce.original.explanations]
    assert len(scores) == 2 and all(len(s) > 0 for s in scores)


def test_own_class_records_of_a_label_k_head_name_the_head(tmp_path, label_k_dir) -> None:
    """Invariance, the attack and counterfactual swaps set to ham/spam on a head saying LABEL_0/LABEL_1: their
    explanation targets are the head's names, and every one explains."""
    from lmcritic.backends import load_model
    from lmcritic.interpret.cases import explain_record
    from lmcritic.interpret.occlusion import Occlusion
    from lmcritic.probes.bias.counterfactual import Counterfactual
    from lmcritic.probes.robustness.attack import AttackProbe
    from lmcritic.probes.robustness.invariance import Invariance

    path = tmp_path / "eval.tsv"
    path.write_text("text\tlabel\n" + "".join(f"{t}\t{['ham', 'spam'][y]}\n" for t, y in sst2_rows(12, seed=5)))
    model = load_model(str(label_k_dir))
    probes = [Invariance(data=str(path), n=None, classes=["ham", "spam"], perturbations=["typos"]),
              AttackProbe(data=str(path), n=2, budget=5, classes=["ham", "spam"]),
              Counterfactual(data=str(path), classes=["ham", "spam"], target="spam", n_per_attribute=2,
                             natural=0, attributes=["gender"], max_groups=2)]
    for probe in probes:
        assert probe.not_applicable(model) is None, probe.name
        records = probe.score(model, list(probe.cases()))
        assert records and {r.explain.target for r in records} <= {"LABEL_0", "LABEL_1"}, probe.name
        ce = explain_record(model, records[0], [Occlusion()], faithfulness=False)
        assert ce.original.explanations[0].word_scores, probe.name


def test_a_default_scan_of_a_label_k_head_explains_its_failures(tmp_path, label_k_dir) -> None:
    from test_cli import cli

    proc = cli("scan", "--model", str(label_k_dir), "--probe", "robustness.invariance", "--create",
               "--no-progress", "--set", "robustness.invariance.n=20", home=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr  # 6 (partial) before: the explain stage failed
    assert "interpret.explain" not in proc.stderr
