"""Training-time mitigation: the hf trainer on the tiny fixtures (full fine-tuning, LoRA merged into a loadable
folder, weighted loss), an interrupted fine-tune resuming from its last checkpoint to the same weights, and the
corpus edits of label repair and dedup."""
from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import sample_lines
from lmcritic.mitigate.data import Row, TrainingSet
from lmcritic.mitigate.trainers import TaskFormat, TrainConfig

LABELS = ("negative", "positive")
PROMPTED = TaskFormat(LABELS, "Review: {{ text }}\nSentiment:", (" negative", " positive"))


def _data(n: int = 32) -> TrainingSet:
    rows = tuple(Row(t, LABELS[i % 2], 1.0 + i % 3) for i, t in enumerate(sample_lines()[:n]))
    return TrainingSet(rows, LABELS, "fixture")


def _state(model_dir):
    from safetensors.torch import load_file

    return load_file(str(next(model_dir.glob("*.safetensors"))))


def test_interrupted_finetune_resumes_from_its_last_checkpoint(tmp_path, tiny_classifier_dir, monkeypatch):
    import torch
    from transformers import TrainerCallback

    from lmcritic.mitigate import _hf_train
    from lmcritic.mitigate._hf_train import HFTrainer

    cfg = TrainConfig(steps=6, batch_size=4, save_steps=2, threads=1)
    base = {"name": str(tiny_classifier_dir)}
    whole = HFTrainer().train(base, _data(), TaskFormat(LABELS), tmp_path / "whole", cfg, progress=False)
    assert whole.details["steps"] == 6 and whole.details["resumed_from"] is None

    class Crash(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 3:
                raise KeyboardInterrupt  # the machine went away after checkpoint-2

    make = _hf_train._trainer
    monkeypatch.setattr(_hf_train, "_trainer", lambda *a, **k: _with(make(*a, **k), Crash()))
    with pytest.raises(KeyboardInterrupt):
        HFTrainer().train(base, _data(), TaskFormat(LABELS), tmp_path / "cut", cfg, progress=False)
    monkeypatch.setattr(_hf_train, "_trainer", make)
    resumed = HFTrainer().train(base, _data(), TaskFormat(LABELS), tmp_path / "cut", cfg, progress=False)
    assert resumed.details["resumed_from"] == "checkpoint-2" and resumed.details["steps"] == 6
    a, b = _state(tmp_path / "whole" / "model"), _state(tmp_path / "cut" / "model")
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)  # same batches, same weights
    other = HFTrainer().train(base, _data(20), TaskFormat(LABELS), tmp_path / "cut", cfg, progress=False)
    assert other.details["resumed_from"] is None  # another job's checkpoints are not resumed


def _with(trainer, callback):
    trainer.add_callback(callback)
    return trainer


def test_lora_finetune_of_a_causal_lm_saves_a_merged_loadable_folder(tmp_path, tiny_causal_dir):
    from lmcritic.backends.hf import HFBackend
    from lmcritic.mitigate._hf_train import HFTrainer
    from lmcritic.requests import LoglikelihoodRequest

    cfg = TrainConfig(steps=4, batch_size=4, save_steps=2, threads=1, adapter="lora")
    out = HFTrainer().train({"name": str(tiny_causal_dir)}, _data(), PROMPTED, tmp_path, cfg, progress=False)
    assert out.details["adapter"] == "lora" and 0 < out.details["trainable_parameters"] < 20_000
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    assert out.spec == {"name": out.model_dir, "backend": "hf"}
    be, orig = HFBackend(model=out.model_dir), HFBackend(model=str(tiny_causal_dir))
    req = [LoglikelihoodRequest("Review: a fine film\nSentiment:", " positive")]
    assert be.fingerprint() != orig.fingerprint()
    assert be.loglikelihood(req)[0].logprob != orig.loglikelihood(req)[0].logprob


def test_prompted_examples_train_only_the_label_word_and_weights_scale_the_loss(tiny_causal):
    import torch

    from lmcritic.mitigate._hf_train import Collate, build_examples, per_example_loss

    ex = build_examples(_data(4), PROMPTED, "causal", tiny_causal.tokenizer, 64)
    answer = tiny_causal.tokenizer(" negative", add_special_tokens=False)["input_ids"]
    assert [t for t in ex[0]["labels"] if t != -100] == answer and ex[0]["weight"] == 1.0
    batch = Collate(tiny_causal.pad_id)(ex)
    logits = torch.zeros(len(ex), batch["input_ids"].shape[1], tiny_causal.vocab)
    per = per_example_loss(logits, batch["labels"])
    assert torch.allclose(per, torch.full_like(per, torch.log(torch.tensor(float(tiny_causal.vocab)))), atol=1e-4)


def test_label_repair_flags_flipped_rows_and_dedup_keeps_one_majority_copy():
    from lmcritic.mitigate.cleaning import label_issues

    rng = random.Random(0)
    pos = ["a warm , funny , moving film", "great acting and a lovely story", "wonderful , charming and smart",
           "a delight from start to finish", "beautiful and touching work"]
    neg = ["a dull , tedious mess", "boring and badly acted", "awful script , terrible pacing",
           "a waste of time", "flat , lifeless and stupid"]
    rows = [Row(f"{rng.choice(pos)} {i}", "positive") for i in range(150)] + \
        [Row(f"{rng.choice(neg)} {i}", "negative") for i in range(150)]
    flipped = {3, 40, 170, 260}
    rows = [Row(r.text, LABELS[1 - LABELS.index(r.label)]) if i in flipped else r for i, r in enumerate(rows)]
    found, _ = label_issues(rows, LABELS, "tfidf", 5, 0)
    assert flipped <= set(found[:10])


def test_out_of_fold_reader_never_lets_copies_of_a_text_vouch_for_its_label():
    """Ten copies of one negative review labelled positive: with the copies split across folds the reader learns
    their odd token from the other copies and reads them as positive; grouped by text, it reads them as negative."""
    from lmcritic.mitigate._label_mix import _weighted_oof
    from lmcritic.mitigate.cleaning import oof_probs

    rng = random.Random(1)
    pos = ["great acting and a lovely story", "wonderful , charming and smart", "a delight from start to finish"]
    neg = ["a dull , tedious mess", "boring and badly acted", "a waste of time"]
    rows = [Row(f"{rng.choice(pos)} {i}", "positive") for i in range(60)] + \
        [Row(f"{rng.choice(neg)} {i}", "negative") for i in range(60)] + \
        [Row("boring and badly acted zzqx", "positive") for _ in range(10)]
    probs = oof_probs(rows, LABELS, "tfidf", 5)
    assert probs[-10:, 1].max() < 0.5
    weighted, labels = _weighted_oof(rows, lambda t: "zzqx" in t, {"positive": 1.0}, "tfidf", 5)
    assert labels == list(LABELS) and weighted[-10:, 1].max() < 0.5


def test_dedup_collapses_copies_and_drops_conflicts_and_canaries(tmp_path):
    from lmcritic.mitigate.base import MitigationContext, Target
    from lmcritic.mitigate.cleaning import Dedup

    rows = [Row("a b c", "positive", line=1), Row("a  B c", "positive", line=2), Row("a b c", "negative", line=3),
            Row("x y", "negative", line=4), Row("x y", "positive", line=5), Row("z", "positive", line=6)]
    ctx = MitigationContext(None, "r", {}, Target("D1", "p", "all", (), ()), tmp_path)
    kept, info = Dedup().transform(ctx, TrainingSet(tuple(rows), LABELS, "t"))
    assert [(r.text, r.label) for r in kept.rows] == [("a b c", "positive"), ("z", "positive")]
    assert info == {"duplicate_rows_removed": 2, "conflicting_texts_removed": 1, "memorised_rows_removed": 0}
    lm = TrainingSet(tuple(Row(t, None) for t in ["canary 1 2 3"] * 4 + ["plain line", "other line"]), (), "t")
    kept, info = Dedup().transform(ctx, lm)
    assert [r.text for r in kept.rows] == ["plain line", "other line"] and info["repeated_texts_removed"] == 1


def test_base_restarts_the_finetune_from_the_pretrained_checkpoint_not_the_runs_weights(tmp_path,
                                                                                       tiny_classifier_dir):
    import torch

    from lmcritic.errors import ConfigError
    from lmcritic.mitigate._hf_train import HFTrainer

    cfg = TrainConfig(steps=3, batch_size=4, save_steps=3, threads=1)
    first = HFTrainer().train({"name": str(tiny_classifier_dir)}, _data(), TaskFormat(LABELS), tmp_path / "a", cfg,
                              progress=False)  # the "run's model": the fixture fine-tuned once
    again = HFTrainer().train({"name": first.model_dir}, _data(), TaskFormat(LABELS), tmp_path / "b", cfg,
                              progress=False)
    from_base = TrainConfig(steps=3, batch_size=4, save_steps=3, threads=1, base=str(tiny_classifier_dir))
    based = HFTrainer().train({"name": first.model_dir}, _data(), TaskFormat(LABELS), tmp_path / "c", from_base,
                              progress=False)
    a, b, c = (_state(tmp_path / x / "model") for x in "abc")
    assert based.details["init"] == "base" and again.details["init"] == "model"
    assert all(torch.allclose(a[k], c[k], atol=1e-5) for k in a)  # same start, data and seed as the first fine-tune
    assert not all(torch.allclose(b[k], c[k], atol=1e-5) for k in b)
    with pytest.raises(ConfigError, match="not a local model folder"):
        HFTrainer().train({"name": first.model_dir}, _data(), TaskFormat(LABELS), tmp_path / "d",
                          TrainConfig(steps=1, batch_size=4, threads=1, base=str(tmp_path / "nowhere")),
                          progress=False)


def test_auto_sets_fine_tuning_settings_aside_for_an_inference_time_fix_but_not_other_keys():
    from lmcritic.mitigate import MITIGATIONS
    from lmcritic.mitigate.api import settings_for

    calibrate, dedup = MITIGATIONS.get("calibrate"), MITIGATIONS.get("dedup")
    assert settings_for(calibrate, {"base": "/m", "steps": 9}, "auto") == ({}, ["base", "steps"])
    assert settings_for(dedup, {"base": "/m"}, "auto") == ({"base": "/m"}, [])
    assert settings_for(calibrate, {"base": "/m"}, "calibrate") == ({"base": "/m"}, [])  # named: its own error
    assert settings_for(calibrate, {"bogus": 1}, "auto") == ({"bogus": 1}, [])


def test_auto_without_a_supported_cause_says_so_in_one_plain_line():
    from types import SimpleNamespace as NS

    from lmcritic.errors import ConfigError
    from lmcritic.mitigate import MITIGATIONS
    from lmcritic.mitigate.choose import _auto

    node = NS(defect=NS(id="D1"), causes=[NS(cause="label_noise", verdict="not supported")])
    with pytest.raises(ConfigError, match=r"^no defect of run r1 has a supported cause, so auto cannot pick"):
        _auto([node], None, "r1", lambda c: None, MITIGATIONS)
    with pytest.raises(ConfigError, match=r"^D1 of run r1 has no supported cause"):
        _auto([node], "D1", "r1", lambda c: None, MITIGATIONS)


def test_epochs_set_the_steps_from_the_edited_corpus_and_frozen_layers_stay_as_they_were(tmp_path,
                                                                                        tiny_classifier_dir):
    import torch

    from lmcritic.errors import ConfigError
    from lmcritic.mitigate._hf_train import HFTrainer
    from lmcritic.mitigate.trainers import total_steps

    assert total_steps(TrainConfig(steps=7, batch_size=4), 10) == 7
    assert total_steps(TrainConfig(epochs=1.5, batch_size=4), 10) == 4  # ceil(15 / 4)
    cfg = TrainConfig(epochs=1.0, batch_size=4, save_steps=50, threads=1, frozen_layers=1, learning_rate=1e-3)
    out = HFTrainer().train({"name": str(tiny_classifier_dir)}, _data(12), TaskFormat(LABELS), tmp_path / "f", cfg,
                            progress=False)
    assert out.details["steps"] == 3 and out.details["frozen_layers"] == 1
    before, after = _state_of_dir(tiny_classifier_dir), _state(tmp_path / "f" / "model")
    kept = [k for k in after if "embeddings" in k or ".layer.0." in k]
    moved = [k for k in after if ".layer.1." in k or "classifier" in k]
    assert kept and moved
    assert all(torch.equal(before[k], after[k]) for k in kept)
    assert not all(torch.equal(before[k], after[k]) for k in moved)
    with pytest.raises(ConfigError, match="has 2 layers"):
        HFTrainer().train({"name": str(tiny_classifier_dir)}, _data(12), TaskFormat(LABELS), tmp_path / "g",
                          TrainConfig(steps=1, batch_size=4, threads=1, frozen_layers=5), progress=False)


@pytest.mark.parametrize("arch", ["distilbert", "gpt2", "llama"])
def test_frozen_layers_find_the_blocks_of_other_architectures(arch) -> None:
    """frozen_layers knew BERT's encoder.layer only: a DistilBERT, GPT-2 or Llama classifier was refused."""
    import transformers as tf

    from lmcritic.errors import ConfigError
    from lmcritic.mitigate._hf_train import freeze

    config = {"distilbert": lambda: tf.DistilBertConfig(vocab_size=50, dim=16, n_layers=2, n_heads=2, hidden_dim=16),
              "gpt2": lambda: tf.GPT2Config(vocab_size=50, n_embd=16, n_layer=2, n_head=2, pad_token_id=0),
              "llama": lambda: tf.LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=16, num_hidden_layers=2,
                                              num_attention_heads=2, num_key_value_heads=2, pad_token_id=0)}[arch]()
    model = tf.AutoModelForSequenceClassification.from_config(config)
    freeze(model, 1)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert any("embed" in n or "wte" in n for n in frozen) and any(".0." in n for n in frozen)
    assert not any(".1." in n for n in frozen) and not any(n.startswith(("score", "classifier", "pre_classifier"))
                                                           for n in frozen)
    with pytest.raises(ConfigError, match="has 2 layers"):
        freeze(model, 3)


def _state_of_dir(path):
    from transformers import AutoModelForSequenceClassification

    return {k: v.detach().clone() for k, v in
            AutoModelForSequenceClassification.from_pretrained(str(path)).state_dict().items()}


def test_adversarial_training_against_character_noise_serves_the_model_behind_normalisation(tmp_path, monkeypatch,
                                                                                             tiny_classifier_dir):
    """Char-level perturbations or a char-level attack recipe: the fine-tuned model is served behind
    normalize_input (a word-recognition front end); synonyms alone, or normalize=False, keep the bare model."""
    from lmcritic.backends import ModelSpec, load_model
    from lmcritic.mitigate import inference
    from lmcritic.mitigate.adversarial import AdversarialTraining
    from lmcritic.mitigate.base import TRAINING, MitigatedModel
    from lmcritic.mitigate.training import Retrain
    from lmcritic.requests import ClassifyRequest

    bare = MitigatedModel("adversarial_training", {"name": str(tiny_classifier_dir), "backend": "hf"}, TRAINING,
                          model_dir=str(tiny_classifier_dir), notes=("n",))
    monkeypatch.setattr(Retrain, "apply", lambda self, ctx: bare)
    monkeypatch.setattr(inference.NormalizeInput, "_costs", lambda self, ctx, opts, notes: ())
    from types import SimpleNamespace

    typos = SimpleNamespace(target=SimpleNamespace(probe="robustness.invariance", evidence=(),
                                                   culprit=SimpleNamespace(kind="typos", value="typos")))
    out = AdversarialTraining().apply(typos)
    assert out.spec["backend"] == "mitigated" and out.spec["options"]["inner"] == bare.spec
    assert out.wrappers[0]["options"]["register"] is False  # a fragility front end: no register rewrite
    assert [w["name"] for w in out.wrappers] == ["normalize_input"] and out.details["front_end"] == "normalize_input"
    model = load_model(ModelSpec(out.spec["name"], out.spec["backend"], out.spec["options"]))
    plain = load_model(ModelSpec(str(tiny_classifier_dir), "hf"))
    typo, fixed = [ClassifyRequest("a wonderfl film")], [ClassifyRequest("a wonderful film")]
    assert model.classify(typo)[0].probs == plain.classify(fixed)[0].probs
    for cfg in ({"perturbations": ["synonyms"], "recipe": None}, {"normalize": False}):
        assert AdversarialTraining(**cfg).apply(None) is bare


def test_adversarial_training_attacks_the_weights_being_trained_round_by_round(tmp_path, monkeypatch):
    """Each round's examples come from attacking the previous round's weights (round 1: the run's model) on
    training rows no earlier round attacked; the rounds share the step and attack budgets; keep="closest" keeps
    an unflipped attack's worst perturbation, keep="success" only flips."""
    from lmcritic.attacks.base import AttackResult, Status
    from lmcritic.mitigate import adversarial
    from lmcritic.mitigate.adversarial import AdversarialTraining
    from lmcritic.mitigate.base import MitigationContext, Target
    from lmcritic.mitigate.trainers import Trained
    from lmcritic.probes.robustness import attack_common

    attacked: list[tuple[str, str]] = []

    class FakeAttack:
        report_similarity = True

        def attack(self, model, example):
            attacked.append((model, example.text))
            flip = example.text.endswith("0")
            return AttackResult(example.text, example.text + " X" if flip else example.text, (), 5,
                                Status.SUCCEEDED if flip else Status.BUDGET, "deepwordbug",
                                details={} if flip else {"closest_text": example.text + " Y"})

    trained: list[tuple[str, int, int]] = []

    class FakeTrainer:
        def train(self, base, data, task, out, config, seed=0, progress=True):
            trained.append((base["name"], len(data), config.steps))
            return Trained({"name": f"w{len(trained)}", "backend": "hf"}, str(out / "model"), {})

    monkeypatch.setattr(attack_common, "build", lambda cfg, model, recipe: FakeAttack())
    monkeypatch.setattr(attack_common, "example", lambda model, attack, case: SimpleNamespace(text=case.input["text"]))
    monkeypatch.setattr(adversarial, "_load", lambda spec: spec["name"])
    monkeypatch.setattr(adversarial.held, "task_of", lambda ctx: TaskFormat(LABELS))
    rows = TrainingSet(tuple(Row(f"row {i}", LABELS[i % 2], line=i + 1) for i in range(20)), LABELS, "t")
    for keep, added in (("closest", 6), ("success", 2)):
        attacked.clear(), trained.clear()
        ctx = MitigationContext(None, "r", {"model": {"name": "run"}}, Target("D1", "p", "all", (), ()),
                                tmp_path, _model="run")
        monkeypatch.setattr(MitigationContext, "eval_texts", lambda self: set())
        mit = AdversarialTraining(steps=10, n_attack=6, rounds=3, keep=keep, recipe="deepwordbug")
        out, data = mit.fit(ctx, FakeTrainer(), rows, TaskFormat(LABELS))
        assert [m for m, _ in attacked] == ["run", "run", "w1", "w1", "w2", "w2"]  # the current weights
        assert len({t for _, t in attacked}) == 6  # fresh rows each round
        assert [(b, s) for b, _, s in trained] == [("run", 4), ("w1", 3), ("w2", 3)]
        assert len(data) == 20 + added and trained[-1][1] == 20 + added
        assert out.details["steps"] == 10  # the whole fine-tune, not the last round's 3
        assert [r["flipped"] for r in out.details["rounds"]] == [sum(t.endswith("0") for _, t in attacked[i:i + 2])
                                                                 for i in (0, 2, 4)]
    monkeypatch.setattr(MitigationContext, "model", lambda self: pytest.fail("no attack: nothing to load"))
    monkeypatch.setattr(MitigationContext, "eval_texts", lambda self: pytest.fail("no attack: nothing to check"))
    ctx = MitigationContext(None, "r", {"model": {"name": "run"}}, Target("D1", "p", "all", (), ()), tmp_path)
    out, data = AdversarialTraining(steps=10, recipe=None, rounds=3).fit(ctx, FakeTrainer(), rows, TaskFormat(LABELS))
    assert len(data) == 20 and [r["attacked"] for r in out.details["rounds"]] == [0]  # one round, no attack


def test_a_checkpoint_killed_while_saving_is_passed_over_for_the_one_before(tmp_path):
    """Ctrl-C as checkpoint-20 was being written left it without trainer_state.json; the next run started over
    instead of resuming from checkpoint-10 (found by interrupting `lmcritic mitigate` on SmolLM2)."""
    from lmcritic.mitigate._hf_train import _last_checkpoint

    for step, done in ((10, True), (20, False), (9, True)):
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        if done:
            (d / "trainer_state.json").write_text("{}")
    assert _last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")
    assert _last_checkpoint(tmp_path / "none") is None


def test_a_bare_ctrl_c_says_interrupted_and_exits_non_zero(monkeypatch, capsys):
    from lmcritic.cli import main as cli

    parser = cli.build_parser()

    def stop(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    monkeypatch.setattr(parser, "parse_args", lambda argv: __import__("argparse").Namespace(func=stop, command="x"))
    assert cli.main(["runs"]) == cli.EXIT_INTERRUPTED != 0
    assert capsys.readouterr().err.strip() == "lmcritic: interrupted"


def test_an_interrupted_lora_finetune_resumes_too(tmp_path, tiny_causal_dir, monkeypatch):
    """The job hash took the model's fingerprint after LoRA was injected into it with random weights, so every
    run was a new job and an interrupted LoRA fine-tune always started over (found killing `lmcritic mitigate`
    on SmolLM2)."""
    from transformers import TrainerCallback

    from lmcritic.mitigate import _hf_train
    from lmcritic.mitigate._hf_train import HFTrainer

    class Crash(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 3:
                raise KeyboardInterrupt

    cfg = TrainConfig(steps=4, batch_size=4, save_steps=2, threads=1, adapter="lora")
    make = _hf_train._trainer
    monkeypatch.setattr(_hf_train, "_trainer", lambda *a, **k: _with(make(*a, **k), Crash()))
    with pytest.raises(KeyboardInterrupt):
        HFTrainer().train({"name": str(tiny_causal_dir)}, _data(), PROMPTED, tmp_path, cfg, progress=False)
    monkeypatch.setattr(_hf_train, "_trainer", make)
    again = HFTrainer().train({"name": str(tiny_causal_dir)}, _data(), PROMPTED, tmp_path, cfg, progress=False)
    assert again.details["resumed_from"] == "checkpoint-2" and again.details["steps"] == 4


def test_the_cli_says_when_a_fine_tune_resumed() -> None:
    """Killed and run again, `lmcritic mitigate` resumed from its checkpoint, but only mitigation.json said so."""
    from types import SimpleNamespace

    from lmcritic.cli.mitigate import _summary

    def outcome(resumed, init="model", control=None):
        train = {"adapter": "full", "steps": 6, "wall_s": 1.0, "resumed_from": resumed, "init": init}
        arm = {**train, "resumed_from": control, "model_dir": "fix/control/model"}
        details = {"training": train, **({"control": arm} if control is not None else {})}
        model = SimpleNamespace(kind="weights", model_dir="fix/model", details=details, notes=())
        target = SimpleNamespace(id="D1", probe="performance.sst2", slice="all cases", cause=None, verdict=None)
        return SimpleNamespace(target=target, model=model, method="label_repair", reason="named", apply_s=1.0,
                               paths={"spec": "fix/model.yaml"})

    assert "resumed from checkpoint-2" in _summary(outcome("checkpoint-2"))
    assert "resumed" not in _summary(outcome(None))
    assert "full fine-tuning from the run's weights, 6 steps" in _summary(outcome(None))  # no --set base: say so
    assert "from the base checkpoint" in _summary(outcome(None, "base"))
    assert "6 steps, 1.0 s; resumed from checkpoint-20)" in _summary(outcome(None, control="checkpoint-20"))
    assert "control arm: fix/control/model" in _summary(outcome(None, control="")) and \
        _summary(outcome(None, control="")).count("resumed") == 0


def test_removing_rows_from_weights_that_train_on_says_they_are_not_unlearnt():
    """Planted memorised rows, seed 0: dedup continuing from the run's weights 0.300 -> 0.225, from the base 0.200;
    the user who named no base is told why and how."""
    from lmcritic.mitigate.training import removal_note

    assert removal_note(0, "model") == [] and removal_note(-40, "model") == []  # augmentation adds rows
    assert removal_note(40, "base") == [] and removal_note(40, "scratch") == []
    (note,) = removal_note(40, "model")
    assert note.startswith("40 rows were removed") and "--set base=PATH" in note
    from lmcritic.mitigate import MITIGATIONS

    removers = {n for n in MITIGATIONS.names() if getattr(MITIGATIONS.get(n), "removes", False)}
    assert removers == {"dedup", "label_repair"}  # adversarial training's max_rows sample is no removal to undo


def test_a_fix_that_takes_rows_out_counts_its_epochs_over_the_corpus_as_given():
    """Label repair dropped 703 of 2,000 rows (label_noise_global seed 10) and `epochs=1.5` over the 1,297 left
    trained 61 steps instead of 94: the removal also shortened training. The budget is the corpus as given."""
    from lmcritic.mitigate.cleaning import Dedup, LabelRepair, ShortcutRemoval

    fix = LabelRepair(epochs=1.5, batch_size=32)
    (note,) = fix._keep_budget(2000, 1297)
    assert (fix.settings().steps, fix.settings().epochs) == (94, None)
    assert note.startswith("94 optimizer steps: epochs=1.5 counted over the corpus as given (2000 rows)")
    assert Dedup(epochs=1.5)._keep_budget(2000, 2000) == [] and Dedup(steps=50)._keep_budget(2000, 1000) == []
    augment = ShortcutRemoval(epochs=1.5)  # a fix that does not remove rows trains over what it trained on
    assert augment._keep_budget(2000, 1000) == [] and augment.settings().epochs == 1.5


def test_a_multi_round_adversarial_finetune_killed_in_round_two_resumes_to_the_same_weights(
        tmp_path, tiny_classifier_dir, monkeypatch):
    """Round 1 is done again from its last checkpoint (no step retrained), its weights give the same attack rows,
    so round 2 is the same job and resumes from its own checkpoint: the weights equal an uninterrupted run's."""
    import torch
    from transformers import TrainerCallback

    from lmcritic.attacks.base import AttackResult, Status
    from lmcritic.mitigate import _hf_train, adversarial
    from lmcritic.mitigate._hf_train import HFTrainer
    from lmcritic.mitigate.adversarial import AdversarialTraining
    from lmcritic.mitigate.base import MitigationContext, Target
    from lmcritic.probes.robustness import attack_common

    class FakeAttack:
        report_similarity = True

        def attack(self, model, example):
            return AttackResult(example.text, example.text + " zq", (), 5, Status.SUCCEEDED, "deepwordbug")

    class Crash(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 3 and "round1" not in Path(args.output_dir).parts:
                raise KeyboardInterrupt  # killed in round 2, after its checkpoint-2

    monkeypatch.setattr(attack_common, "build", lambda cfg, model, recipe: FakeAttack())
    monkeypatch.setattr(attack_common, "example", lambda model, attack, case: SimpleNamespace(text=case.input["text"]))
    monkeypatch.setattr(adversarial, "_load", lambda spec: spec["name"])
    monkeypatch.setattr(adversarial.held, "task_of", lambda ctx: TaskFormat(LABELS))
    monkeypatch.setattr(MitigationContext, "eval_texts", lambda self: set())
    mit = AdversarialTraining(steps=8, batch_size=4, save_steps=2, threads=1, n_attack=4, rounds=2,
                              recipe="deepwordbug", normalize=False)

    def fit(out):
        ctx = MitigationContext(None, "r", {"model": {"name": str(tiny_classifier_dir)}},
                                Target("D1", "p", "all", (), ()), out, progress=False, _model="run")
        return mit.fit(ctx, HFTrainer(), _data(), TaskFormat(LABELS))

    whole, _ = fit(tmp_path / "whole")
    make = _hf_train._trainer
    monkeypatch.setattr(_hf_train, "_trainer", lambda *a, **k: _with(make(*a, **k), Crash()))
    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path / "cut")
    assert (tmp_path / "cut" / "round1" / "model").is_dir() and not (tmp_path / "cut" / "model").exists()
    monkeypatch.setattr(_hf_train, "_trainer", make)
    again, data = fit(tmp_path / "cut")
    assert [(r["steps"], r["resumed_from"]) for r in again.details["rounds"]] == [(4, "checkpoint-4"),
                                                                                  (4, "checkpoint-2")]
    a, b = _state(tmp_path / "whole" / "model"), _state(tmp_path / "cut" / "model")
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    assert len(data) == 32 + 4 and again.details["steps"] == whole.details["steps"] == 8


def test_a_finished_finetune_run_again_reports_its_planned_steps(tmp_path, tiny_classifier_dir):
    """Run again after it finished (a mitigate killed later, in its control arm or re-run), a fine-tune resumes
    from its final checkpoint; the Trainer then counts one step more than it took. The job's steps are what the
    fix reports and what its control arm copies, so a resumed fix must not give its control another job."""
    from lmcritic.mitigate._hf_train import HFTrainer

    cfg = TrainConfig(steps=6, batch_size=4, save_steps=2, threads=1)
    first = HFTrainer().train({"name": str(tiny_classifier_dir)}, _data(), TaskFormat(LABELS), tmp_path, cfg,
                              progress=False)
    again = HFTrainer().train({"name": str(tiny_classifier_dir)}, _data(), TaskFormat(LABELS), tmp_path, cfg,
                              progress=False)
    assert again.details["resumed_from"] == "checkpoint-6"
    assert first.details["steps"] == again.details["steps"] == 6


def test_a_fix_that_leaves_the_corpus_as_it_was_is_refused_before_training(tmp_path, monkeypatch):
    """label_repair that flagged no row fine-tuned 200 steps on the unchanged corpus and reported the extra
    training as the fix ('flagged=0 ... rows 450 -> 450', a defect CLOSED); an unchanged corpus is no fix."""
    from lmcritic.errors import ConfigError
    from lmcritic.mitigate import _heldout, training
    from lmcritic.mitigate.cleaning import Dedup

    corpus = tmp_path / "train.tsv"
    corpus.write_text("text\tlabel\n" + "".join(f"{t}\t{i % 2}\n" for i, t in enumerate(sample_lines()[:20])))
    ctx = SimpleNamespace(train=corpus, backend_name=lambda: "hf", eval_texts=lambda: set(), run_id="r1",
                          decontaminate=False, target=SimpleNamespace(culprit=None), model_spec={"name": "m"})
    monkeypatch.setattr(_heldout, "task_of", lambda c: TaskFormat(LABELS))
    monkeypatch.setattr(training.Retrain, "fit", lambda *a: pytest.fail("trained on the unchanged corpus"))
    with pytest.raises(ConfigError, match=r"^dedup left the training corpus as it was \(.*\); a fine-tune on it") \
            as err:
        Dedup().apply(ctx)  # no text repeats, no memorised rows named
    assert "lmcritic mitigations" in (err.value.hint or "")


def test_a_fresh_head_from_a_plain_encoder_base_loads_without_transformers_report(tiny_classifier_dir,
                                                                                   tiny_masked_dir) -> None:
    """--set base=ENCODER gives the classifier a fresh head by design; transformers printed a MISSING-keys table
    (its LOAD REPORT) into the mitigation's output."""
    import logging

    from transformers import AutoModelForSequenceClassification

    from lmcritic.mitigate._hf_train import from_base

    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_classifier_dir))
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    library = logging.getLogger("transformers")  # its own handler, not propagated to the root
    library.addHandler(handler)
    try:
        out = from_base(model, "seq-classification", str(tiny_masked_dir), 0)
    finally:
        library.removeHandler(handler)
    assert type(out) is type(model) and out.config.num_labels == model.config.num_labels
    assert not [r for r in seen if "LOAD REPORT" in r.getMessage()]


def _paired_data() -> TrainingSet:
    """Rows and swapped twins whose only difference is one word the labels lean on ("alpha" → positive)."""
    texts = sample_lines()[:16]
    rows = [Row(f"alpha {t}", "positive") for t in texts[:8]] + [Row(f"beta {t}", "negative") for t in texts[8:]]
    twins = [Row(("beta " + r.text[6:]) if r.text.startswith("alpha") else "alpha " + r.text[5:], r.label,
                 origin="counterfactual", twin=r.text) for r in rows]
    return TrainingSet(tuple(rows + twins), LABELS, "fixture")


def _loaded(model_dir: str):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    return model.eval(), AutoTokenizer.from_pretrained(model_dir)


def test_counterfactual_logit_pairing_adds_the_gap_between_a_row_and_its_swapped_twin_to_the_loss(tmp_path,
                                                                                          tiny_classifier_dir):
    import torch

    from lmcritic.mitigate._hf_train import Collate, HFTrainer, _trainer, build_examples, pairing_gap

    logits = torch.tensor([[0.0, 2.0], [1.0, 0.0]], requires_grad=True)
    twin_ids, twin_mask = torch.tensor([[5, 6], [0, 0]]), torch.tensor([[1, 1], [0, 0]])
    flat = SimpleNamespace(logits=torch.tensor([[2.0, 0.0]]))
    gap = pairing_gap(lambda **kw: flat, logits, twin_ids, twin_mask)
    assert gap[1] == 0 and gap[0] > 1.0  # only the row with a twin, by how far its log-probabilities moved
    gap.sum().backward()
    assert logits.grad is not None and logits.grad[0].abs().sum() > 0
    data = _paired_data()
    biased = TrainingSet(tuple(r for r in data.rows if not r.twin), LABELS, "fixture")  # "alpha": positive
    cfg = TrainConfig(steps=40, batch_size=8, threads=1, learning_rate=3e-3, pairing=2.0)
    done = HFTrainer().train({"name": str(tiny_classifier_dir)}, biased, TaskFormat(LABELS), tmp_path / "a",
                             replace(cfg, pairing=0.0), progress=False)  # a model whose twins disagree
    model, tok = _loaded(done.model_dir)
    examples = build_examples(data, TaskFormat(LABELS), "seq-classification", tok, 64, LABELS, pairing=True)
    assert sum(bool(e["twin_input_ids"]) for e in examples) == 16
    batch = Collate(tok.pad_token_id)(examples)
    pairs = [(r.text, r.twin) for r in data.rows if r.twin]
    with torch.no_grad():
        losses = {w: float(_trainer(model, examples, tok, tmp_path / "c", replace(cfg, pairing=w), 0, False, False)
                           .compute_loss(model, dict(batch))) for w in (0.0, 2.0)}
        a = model(**tok([p[0] for p in pairs], padding=True, return_tensors="pt")).logits.log_softmax(-1)
        b = model(**tok([p[1] for p in pairs], padding=True, return_tensors="pt")).logits.log_softmax(-1)
    expected = 2.0 * float((a - b).abs().mean(-1).sum()) / len(data.rows)  # weight 1 each: over the whole batch
    assert expected > 0.5 and losses[2.0] - losses[0.0] == pytest.approx(expected, rel=1e-3)
    plain = HFTrainer().train({"name": str(tiny_classifier_dir)}, data, TaskFormat(LABELS), tmp_path / "b",
                              replace(cfg, steps=1, pairing=0.0), progress=False)
    assert plain.details["paired_examples"] == 0 and done.details["pairing"] == 0.0
