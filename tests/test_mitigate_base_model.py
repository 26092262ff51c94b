"""``--set base=auto``: the pretrained checkpoint a fine-tuned folder declares (model card, adapter config,
config.json), found on this machine, is where a removal fix retrains from; when it is not, a one-line error."""
from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import pytest

from conftest import sample_lines
from lmcritic.errors import ConfigError
from lmcritic.mitigate import _base_model
from lmcritic.mitigate.trainers import TaskFormat, TrainConfig

LABELS = ("negative", "positive")


def _card(folder, front: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.md").write_text(f"---\n{front}\n---\n# a fine-tuned model\n")


def test_the_declared_base_is_read_from_the_model_card_then_the_adapter_then_config(tmp_path):
    base = tmp_path / "pretrained"
    base.mkdir()
    card = tmp_path / "card"
    _card(card, f"license: mit\nbase_model:\n- {base}\n- other/model")  # a merge lists several: the first
    (card / "config.json").write_text(json.dumps({"_name_or_path": "ignored/because-the-card-says"}))
    assert _base_model.declared_base(card) == _base_model.Base(str(base), "README.md", str(base))
    peft = tmp_path / "adapter"
    peft.mkdir()
    (peft / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "no-such-org/no-such-model"}))
    assert _base_model.declared_base(peft) == _base_model.Base("no-such-org/no-such-model", "adapter_config.json",
                                                               None)  # not on this machine: no path
    own = tmp_path / "own"
    own.mkdir()
    (own / "config.json").write_text(json.dumps({"_name_or_path": str(own)}))  # names itself: no base
    _card(own, "base_model: [")  # malformed YAML is silent, not a crash
    assert _base_model.declared_base(own) is None and _base_model.declared_base(tmp_path / "missing") is None


def test_base_auto_resolves_to_the_local_folder_and_otherwise_names_the_fix(tmp_path):
    base, run = tmp_path / "pretrained", tmp_path / "run"
    base.mkdir()
    _card(run, f"base_model: {base}")
    config, notes = _base_model.resolve(TrainConfig(base="auto"), {"name": str(run)})
    assert config.base == str(base) and notes[0].startswith(f"the fine-tune started from {base} (named by")
    assert _base_model.resolve(TrainConfig(), {"name": str(run)}) == (TrainConfig(), [])
    assert "--set base=auto" in _base_model.hint({"name": str(run)})
    _card(run, "base_model: no-such-org/no-such-model")
    with pytest.raises(ConfigError, match="names 'no-such-org/no-such-model', which is not on this machine") as err:
        _base_model.resolve(TrainConfig(base="auto"), {"name": str(run)})
    assert "--set base=PATH" in (err.value.hint or "") and _base_model.hint({"name": str(run)}) == ""
    (run / "README.md").unlink()
    with pytest.raises(ConfigError, match="declares no base model"):
        _base_model.resolve(TrainConfig(base="auto"), {"name": str(run)})
    with pytest.raises(ConfigError, match="not a local folder"):
        _base_model.resolve(TrainConfig(base="auto"), {"name": "http://api/v1", "backend": "openai"})


def test_the_notes_that_say_rows_are_not_unlearnt_name_base_auto_when_it_would_work(tmp_path):
    from lmcritic.mitigate.base import MitigatedModel
    from lmcritic.mitigate.training import removal_note
    from lmcritic.mitigate.verify import _judged, paired, restart_hint
    from lmcritic.probes.base import Record

    base, run = tmp_path / "pretrained", tmp_path / "run"
    base.mkdir()
    _card(run, f"base_model: {base}")
    (note,) = removal_note(40, "model", _base_model.hint({"name": str(run)}))
    assert note.endswith(f"(its README.md names {base}, found on this machine: --set base=auto)")
    before = {f"c{i}": Record(f"c{i}", {}, {}, {}, passed=i % 2 == 0) for i in range(20)}
    (o,) = _judged([paired("D1", "p", "all", "data_bias", True, tuple(before), before, before)], 0.05)
    made = MitigatedModel("dedup", {}, "training", details={"training": {"init": "model"},
                                                            "base_hint": _base_model.hint({"name": str(run)})})
    assert "retrains from there on the edited corpus (its README.md names" in restart_hint(made, [o])[0]


def test_dedup_with_base_auto_retrains_from_the_declared_checkpoint(tmp_path, tiny_classifier_dir, monkeypatch):
    """The run's model declares the fixture classifier as its base; dedup with base=auto starts from it (init
    'base', the same weights as a fine-tune given --set base=PATH) and says where it started."""
    from lmcritic.mitigate import _heldout
    from lmcritic.mitigate.cleaning import Dedup

    run = tmp_path / "run"
    shutil.copytree(tiny_classifier_dir, run)
    _card(run, f"base_model: {tiny_classifier_dir}")
    lines = sample_lines()[:24]
    corpus = tmp_path / "train.tsv"
    corpus.write_text("text\tlabel\n" + "".join(f"{t}\t{LABELS[i % 2]}\n" for i, t in enumerate(lines + lines[:4])))
    monkeypatch.setattr(_heldout, "task_of", lambda c: TaskFormat(LABELS))

    def ctx(out: str) -> SimpleNamespace:
        return SimpleNamespace(train=corpus, backend_name=lambda: "hf", eval_texts=lambda: set(), run_id="r1",
                               decontaminate=False, target=SimpleNamespace(culprit=None), control=False, seed=0,
                               model_spec={"name": str(run), "backend": "hf"}, out_dir=tmp_path / out,
                               progress=False)

    settings = {"steps": 2, "batch_size": 4, "save_steps": 2, "threads": 1}
    auto = Dedup(base="auto", **settings).apply(ctx("auto"))
    named = Dedup(base=str(tiny_classifier_dir), **settings).apply(ctx("named"))
    assert auto.details["training"]["init"] == "base" and auto.details["base_hint"] == ""
    assert any(n.startswith(f"the fine-tune started from {tiny_classifier_dir}") for n in auto.notes)
    assert auto.details["rows_after"] == named.details["rows_after"] == 24
    from safetensors.torch import load_file

    a, b = (load_file(str(tmp_path / d / "model" / "model.safetensors")) for d in ("auto", "named"))
    assert all((a[k] == b[k]).all() for k in a)
    plain = Dedup(**settings).apply(ctx("plain"))  # the run's weights: the note names base=auto
    assert plain.details["training"]["init"] == "model" and "--set base=auto" in plain.details["base_hint"]
    assert any("--set base=auto" in n for n in plain.notes)
