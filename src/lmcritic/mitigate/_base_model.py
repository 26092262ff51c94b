"""The checkpoint a fine-tuned model started from, as its own files declare it (``--set base=auto``).

A fix that takes rows out of the corpus (dedup, label repair's drop, shortcut removal) is not learnt by weights
that already hold those rows: it needs the fine-tune to start again from the pretrained checkpoint. Hugging Face
folders usually say which one: the model card's ``base_model`` (the Hub's metadata field, written by the
``Trainer``'s model card), a PEFT adapter's ``base_model_name_or_path``, or ``_name_or_path`` in ``config.json``
when it names another model. The base must be on this machine (a folder, or the local Hugging Face cache):
nothing is downloaded.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from lmcritic.errors import ConfigError

AUTO = "auto"


class Base(NamedTuple):
    name: str  # as declared (a hub id or a path)
    source: str  # which file said so
    path: str | None  # the local folder that holds it, or None when it is not on this machine


def declared_base(folder: str | Path) -> Base | None:
    """The base a model folder declares, first found of: model card, adapter config, config.json."""
    folder = Path(folder).expanduser()
    for source, name in ((f.name, _read(f)) for f in (folder / "README.md", folder / "adapter_config.json",
                                                      folder / "config.json")):
        if name and Path(name).expanduser().resolve() != folder.resolve():
            return Base(name, source, local_folder(name))
    return None


def _read(file: Path) -> str | None:
    """The base a file names, or None (missing, unreadable, or silent)."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if file.suffix == ".md":
        return _first(_front_matter(text).get("base_model"))
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    return _first(data.get("base_model_name_or_path") if file.name == "adapter_config.json"
                  else data.get("_name_or_path"))


def _front_matter(text: str) -> dict[str, Any]:
    """The YAML block between the leading ``---`` lines of a model card ({} when absent or malformed)."""
    if not text.startswith("---"):
        return {}
    end = text.find("\n---", 3)
    try:
        data = yaml.safe_load(text[3:end]) if end > 0 else None
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def _first(value: Any) -> str | None:
    """A declared name (the first of a list: a merge lists several)."""
    if isinstance(value, list):
        value = value[0] if value else None
    return (value.strip() or None) if isinstance(value, str) else None


def local_folder(name: str) -> str | None:
    """The folder on this machine that holds ``name``: the path itself, or its snapshot in the Hugging Face cache."""
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if path.is_absolute() or name.startswith((".", "~")) or name.count("/") > 1:
        return None
    from huggingface_hub import try_to_load_from_cache

    try:
        hit = try_to_load_from_cache(name, "config.json")
    except ValueError:  # not a valid repo id
        return None
    return str(Path(hit).parent) if isinstance(hit, str) else None


def model_folder(spec: dict[str, Any]) -> Path | None:
    """The local folder of a run's model spec (its name, when that is a folder), else None."""
    name = spec.get("name")
    found = local_folder(name) if isinstance(name, str) else None
    return Path(found) if found else None


def _declared(spec: dict[str, Any]) -> tuple[Path | None, Base | None]:
    """The run's model folder and the base it declares (either None when absent)."""
    folder = model_folder(spec)
    return folder, declared_base(folder) if folder is not None else None


def resolve(config: Any, spec: dict[str, Any]) -> tuple[Any, list[str]]:
    """``config`` with ``base=auto`` replaced by the declared base's local folder, and a note saying so; a one-line
    error when the model declares none or its base is not on this machine. Other configs are returned as given."""
    if getattr(config, "base", None) != AUTO:
        return config, []
    folder, found = _declared(spec)
    if found is None or found.path is None:
        why = ("the run's model is not a local folder" if folder is None else
               f"{folder} declares no base model (model card base_model, adapter config, config.json _name_or_path)"
               if found is None else f"its {found.source} names {found.name!r}, which is not on this machine")
        raise ConfigError(f"base=auto: {why}", "pass --set base=PATH, the folder of the pretrained model the "
                          "run's model was fine-tuned from")
    return replace(config, base=found.path), [f"the fine-tune started from {found.name} (named by the model's "
                                              f"{found.source}, found at {found.path}), not from the run's weights"]


def hint(spec: dict[str, Any]) -> str:
    """What to pass to retrain from the base, when the model declares one that is on this machine ('' otherwise)."""
    _, found = _declared(spec)
    if found is None or found.path is None:
        return ""
    return f" (its {found.source} names {found.name}, found on this machine: --set base=auto)"


__all__ = ["AUTO", "Base", "declared_base", "hint", "local_folder", "model_folder", "resolve"]
