"""Counterfactual augmentation from the run's weights in rounds, gauged on copies held out of training: the gauge
reads the swap's effect on the label, rounds go on while it shrinks, and a fresh start trains once."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from lmcritic.mitigate import _rounds
from lmcritic.mitigate._rounds import MIN_PAIRS, Pair, hold_out, stop_reason, swap_gap
from lmcritic.mitigate.base import MitigationContext, Target
from lmcritic.mitigate.data import Row, TrainingSet
from lmcritic.mitigate.trainers import TaskFormat, TrainConfig, Trained
from lmcritic.probes.base import Estimate

LABELS = ("negative", "positive")


def _corpus(n_copies: int) -> TrainingSet:
    rows = [Row(f"he liked film {i}", "positive", line=i + 1) for i in range(n_copies)]
    rows += [Row(f"she liked film {i}", "positive", origin="counterfactual", twin=f"he liked film {i}")
             for i in range(n_copies)]
    return TrainingSet(tuple(rows + [Row("a plain row", "negative", line=999)]), LABELS, "t")


def test_a_share_of_the_swapped_rows_is_held_out_with_their_copies_so_the_balance_stays():
    data = _corpus(100)
    train, pairs = hold_out(data, 0.2, seed=3)
    assert len(pairs) == 20 and len(train) == len(data) - 40
    assert all(p.copy.startswith("she") and p.original == p.copy.replace("she", "he", 1) for p in pairs)
    held = {t for p in pairs for t in (p.copy, p.original)}
    assert held.isdisjoint(r.text for r in train.rows)
    kinds = [r.text.split()[0] for r in train.rows if r.label == "positive"]
    assert kinds.count("he") == kinds.count("she") == 80  # one of each group per pair left out
    assert [r for r in train.rows if r.line == 999]  # rows without a copy stay
    assert hold_out(data, 0.2, seed=3) == (train, pairs)  # seeded
    small = _corpus(MIN_PAIRS * 5 - 5)  # 0.2 of them is under MIN_PAIRS: nothing held out
    assert hold_out(small, 0.2, seed=3) == (small, ())


def test_the_gauge_is_the_drop_in_the_labels_log_odds_when_the_terms_are_swapped():
    class Head:
        def classify(self, requests):
            return [SimpleNamespace(labels=("NEG", "POS"), probs=(0.1, 0.9) if r.text.startswith("he ") else (0.5, 0.5))
                    for r in requests]

    pos = [Pair(f"he is good {i}", f"she is good {i}", "positive") for i in range(30)]
    neg = [Pair(f"he is dull {i}", f"she is dull {i}", "negative") for i in range(30)]
    assert swap_gap(Head(), pos, LABELS).value == pytest.approx(math.log(9))
    assert swap_gap(Head(), neg, LABELS).value == pytest.approx(-math.log(9))  # against the skew
    mixed = swap_gap(Head(), pos + neg, LABELS)
    assert mixed.n == 60 and mixed.ci_low < mixed.value < mixed.ci_high


def _est(value: float, half: float = 0.1) -> Estimate:
    return Estimate(value, 50, value - half, value + half)


def test_rounds_stop_when_no_gap_is_left_or_a_round_no_longer_pays():
    assert stop_reason([_est(2.0), _est(0.05)]).startswith("no gap left")
    assert stop_reason([_est(2.0), _est(1.0), _est(0.8)]).startswith("levelled off")
    assert stop_reason([_est(2.0), _est(1.0)]) is None  # halved: another round
    assert stop_reason([_est(2.0)]) is None


class FakeTrainer:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int, str]] = []

    def train(self, base, data, task, out, config, seed=0, progress=True):
        self.calls.append((base["name"], len(data), config.steps, out.name))
        return Trained({"name": f"w{len(self.calls)}", "backend": "hf"}, str(out / "model"),
                       {"steps": config.steps, "wall_s": 1.0, "resumed_from": None})


def _ctx(tmp_path, monkeypatch, gaps: dict[str, float]) -> MitigationContext:
    class Model:
        name = "run"

        def supports(self, capability):
            return capability.value == "classify"

    monkeypatch.setattr(_rounds, "swap_gap", lambda model, pairs, classes: _est(gaps[model.name]))
    monkeypatch.setattr(_rounds, "_gap_of", lambda trained, pairs, classes: _est(gaps[trained.spec["name"]]))
    return MitigationContext(None, "r", {"model": {"name": "run"}}, Target("D1", "p", "all", (), ()), tmp_path / "o",
                             progress=False, _model=Model())


def test_training_goes_on_round_by_round_from_the_last_weights_while_the_held_out_gap_shrinks(tmp_path, monkeypatch):
    ctx = _ctx(tmp_path, monkeypatch, {"run": 2.0, "w1": 1.0, "w2": 0.5, "w3": 0.45, "w4": 0.1})
    trainer, data = FakeTrainer(), _corpus(100)
    out, rows = _rounds.fit_in_rounds(ctx, trainer, data, TaskFormat(LABELS), TrainConfig(steps=30), 4, 0.2)
    assert [c[0] for c in trainer.calls] == ["run", "w1", "w2"]  # levelled off after round 3
    assert [c[3] for c in trainer.calls] == ["o", "round2", "round3"]  # round 1 where a single fine-tune goes
    assert {c[1] for c in trainer.calls} == {len(data) - 40} and len(rows) == len(data) - 40
    assert out.spec["name"] == "w3" and out.details["steps"] == 90 and out.details["wall_s"] == 3.0
    assert out.details["gauge"]["before"]["mean"] == 2.0 and out.details["gauge"]["after"]["mean"] == 0.45
    assert out.details["gauge"]["stopped"].startswith("levelled off")
    note = _rounds.gauge_note(out.details)[0]
    assert "3 round(s), 90 steps" in note and "20 held-out" in note and "+2.000" in note and "+0.450" in note

    ctx = _ctx(tmp_path, monkeypatch, {"run": 2.0, "w1": 1.0, "w2": 0.5, "w3": 0.25})
    trainer = FakeTrainer()
    out, _ = _rounds.fit_in_rounds(ctx, trainer, data, TaskFormat(LABELS), TrainConfig(steps=30), 3, 0.2)
    assert len(trainer.calls) == 3 and "3 rounds allowed" in out.details["gauge"]["stopped"]

    ctx = _ctx(tmp_path, monkeypatch, {"run": 2.0, "w1": 0.05})
    trainer = FakeTrainer()
    out, _ = _rounds.fit_in_rounds(ctx, trainer, data, TaskFormat(LABELS), TrainConfig(steps=30), 4, 0.2)
    assert len(trainer.calls) == 1 and out.details["gauge"]["stopped"].startswith("no gap left")


def test_one_fine_tune_on_every_copy_without_a_usable_gauge_or_from_a_fresh_start(tmp_path, monkeypatch):
    from lmcritic.mitigate.counterfactual import CounterfactualAugmentation

    ctx = _ctx(tmp_path, monkeypatch, {"run": 2.0, "w1": 1.0, "w2": 0.4, "w3": 0.35})
    for data in (_corpus(MIN_PAIRS * 5 - 5), _corpus(100)):
        trainer = FakeTrainer()
        rounds = 4 if len(data) < 200 else 1
        out, rows = _rounds.fit_in_rounds(ctx, trainer, data, TaskFormat(LABELS), TrainConfig(steps=30), rounds, 0.2)
        assert trainer.calls == [("run", len(data), 30, "o")] and rows == data and "gauge" not in out.details
    for settings in ({"base": "pretrained"}, {"from_scratch": True}, {"rounds": 1}, {"gauge": 0.0}):
        trainer = FakeTrainer()
        out, rows = CounterfactualAugmentation(steps=30, **settings).fit(ctx, trainer, _corpus(100), TaskFormat(LABELS))
        assert len(trainer.calls) == 1 and len(rows) == len(_corpus(100)) and "gauge" not in out.details
    trainer = FakeTrainer()
    out, _ = CounterfactualAugmentation(steps=30).fit(ctx, trainer, _corpus(100), TaskFormat(LABELS))
    assert len(trainer.calls) == 3 and out.details["gauge"]["pairs"] == 20  # the default: rounds from the run's weights
    from lmcritic.errors import ConfigError

    with pytest.raises(ConfigError, match="rounds >= 1"):
        CounterfactualAugmentation(rounds=0)
