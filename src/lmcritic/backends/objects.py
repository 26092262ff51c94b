"""Models given as Python objects (``lmcritic.scan(model)``): a transformers model with its tokenizer, a
``transformers.pipeline``, a callable, a backend, or a name/path/:class:`ModelSpec`.

Each becomes a backend plus the :class:`ModelSpec` stored with the run. A backend built by ``load_model``
(a name, a folder, a .gguf, a server, an importable function) keeps the spec it came from, so the command
line can replay the run. An object that exists only in this process gets a ``memory`` spec naming its
content fingerprint: while the object lives, ``load_model`` of that spec returns it (diagnosis, resume and
mitigation re-load a run's model that way); in another process it is a one-line error saying what to do.

A transformers model held in memory is fingerprinted over every byte of its weights, not the strided sample
used for folders: notebooks edit models in place (a few fine-tuning steps, a pruned row), and a fingerprint
that missed the edit would serve the old model's cached answers.
"""
from __future__ import annotations

import os
import sys
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from lmcritic.backends import ModelSpec, load_model
from lmcritic.backends.base import Backend
from lmcritic.errors import ConfigError, ModelLoadError

if TYPE_CHECKING:
    from transformers import Pipeline, PreTrainedModel, PreTrainedTokenizerBase
from lmcritic.registry import import_string

MEMORY = "memory"  # the backend name of a model that exists only as a Python object
PIPELINE_KINDS = {"text-generation": "causal", "text-classification": "seq-classification",
                  "sentiment-analysis": "seq-classification", "fill-mask": "masked"}
_LIVE: "weakref.WeakValueDictionary[str, Backend]" = weakref.WeakValueDictionary()


def as_backend(model: object, tokenizer: object = None, options: Mapping[str, Any] | None = None,
               name: str | None = None) -> tuple[Backend, ModelSpec]:
    """The backend for ``model`` and the spec to store with its run (see the module docstring).

    ``options`` go to the backend: for a name or path, the backend's constructor options (``--option``);
    for a transformers model, :meth:`HFBackend.from_objects` options (``batch_size``, ``kind``, ...); for a
    callable, :class:`PythonBackend` options (``task="classify"``, ``labels=[...]``, ``batched``, ``chat``).
    """
    opts = dict(options or {})
    if isinstance(model, (str, os.PathLike, ModelSpec, dict)):
        spec = _named_spec(model, opts, name)
        return load_model(spec), spec
    if isinstance(model, tuple) and len(model) == 2 and tokenizer is None:
        model, tokenizer = model
    for accepts, build in _ADAPTERS:
        if accepts(model):
            backend = build(model, tokenizer, opts, name)
            return backend, spec_of(backend, name)
    raise ConfigError(f"cannot critique a {type(model).__name__} object",
                      "pass a transformers model with its tokenizer, a pipeline, a function, a backend, "
                      "or a model name/path")


def spec_of(backend: Backend, name: str | None = None) -> ModelSpec:
    """How to get ``backend`` back: the spec ``load_model`` built it from, else a ``memory`` spec (registered
    here, so ``load_model`` of it returns this object while it lives)."""
    loaded = getattr(backend, "loaded_from", None)
    if isinstance(loaded, ModelSpec):
        return loaded
    fingerprint = backend.fingerprint()
    _LIVE[fingerprint] = backend
    label = name or str(backend.describe().get("name") or backend.kind)
    return ModelSpec(name=label, backend=MEMORY, options={"fingerprint": fingerprint})


class MemoryBackend(Backend):
    """The ``memory`` backend: ``load_model`` of a run's ``memory`` spec gives back the live object it names.

    ``__new__`` returns that object itself (an :class:`HFBackend`, a :class:`PythonBackend`, ...), so it keeps
    every capability and white-box access of its own class; no ``MemoryBackend`` instance is ever made. When
    the object is gone (another process, a restarted kernel) it raises a one-line :class:`ModelLoadError`.
    """

    kind = MEMORY

    def __new__(cls, model: str = "", fingerprint: str = "") -> Backend:  # type: ignore[misc]
        live = _LIVE.get(fingerprint)
        if live is None:
            raise ModelLoadError(
                f"model {model!r} was a Python object (fingerprint {fingerprint[:12]}) that is not loaded in "
                "this process",
                "from Python pass it again (lmcritic.run(spec, model=obj), lmcritic.scan(obj)); for the command "
                "line save it (model.save_pretrained(DIR)) and use DIR")
        return live

    def __init__(self, model: str = "", fingerprint: str = "") -> None:  # pragma: no cover - never reached
        """Declares the options (``model``: the label, ``fingerprint``: which object); see ``__new__``."""


def model_dir(name: str) -> Path:
    """The local folder of a known model (``smollm2-135m``: its safetensors copy, built on first use) or of a
    path, so it can be loaded with ``transformers``' own ``from_pretrained``."""
    from lmcritic.backends import MODELS

    if name in MODELS and MODELS.get(name).options.get("source"):
        from lmcritic.backends._hf_cache import cached_package_model
        from lmcritic.backends._hf_loading import _load_gguf

        return cached_package_model(name, MODELS.get(name).options["source"], _load_gguf)
    path = Path(name).expanduser()
    if not path.is_dir():
        raise ModelLoadError(f"{name!r} is neither a known model with a local copy nor a folder",
                             "see `lmcritic models`, or give a folder saved with save_pretrained")
    return path


# -- adapters: (does it accept this object?, build the backend) -----------------------------------------
def _named_spec(model: str | os.PathLike[str] | ModelSpec | dict[str, Any], options: dict[str, Any],
                name: str | None) -> ModelSpec:
    if isinstance(model, ModelSpec):
        return ModelSpec(model.name, model.backend, {**model.options, **options})
    if isinstance(model, dict):
        from lmcritic.spec import _model

        spec = _model(model, "model")
        return ModelSpec(spec.name, spec.backend, {**spec.options, **options})
    backend = options.pop("backend", None)
    return ModelSpec(os.fspath(model), backend, options)


def _is_backend(obj: object) -> bool:
    return isinstance(obj, Backend)


def _transformers_instance(obj: object, cls_name: str) -> bool:
    """``isinstance(obj, transformers.<cls_name>)`` without importing transformers (an object of it exists
    only if it was imported)."""
    module = sys.modules.get("transformers")
    return module is not None and isinstance(obj, getattr(module, cls_name))


def _is_pipeline(obj: object) -> bool:
    return _transformers_instance(obj, "Pipeline")


def _is_hf_model(obj: object) -> bool:
    return _transformers_instance(obj, "PreTrainedModel")


def _keep(backend: Backend, tokenizer: object, options: dict[str, Any], name: str | None) -> Backend:
    if options or tokenizer is not None:
        raise ConfigError("options and tokenizer= do not apply to a backend object",
                          "configure the backend when you build it")
    return backend


def _from_pipeline(pipe: Pipeline, tokenizer: PreTrainedTokenizerBase | None, options: dict[str, Any],
                   name: str | None) -> Backend:
    kind = PIPELINE_KINDS.get(pipe.task)
    if kind is None:
        raise ConfigError(f"a {pipe.task!r} pipeline cannot be critiqued as it is",
                          f"use one of {', '.join(PIPELINE_KINDS)}, or pass pipe.model with pipe.tokenizer, "
                          "or wrap it in a function")
    return _from_hf(pipe.model, tokenizer or pipe.tokenizer, {"kind": kind, **options}, name)


def _from_hf(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase | None, options: dict[str, Any],
             name: str | None) -> Backend:
    if tokenizer is None:
        raise ConfigError(f"a {type(model).__name__} needs its tokenizer",
                          "lmcritic.scan((model, tokenizer)) or lmcritic.scan(model, tokenizer=tokenizer)")
    from lmcritic._typecheck import check_kwargs
    from lmcritic.backends._hf_memory import InMemoryHFBackend

    label = name or _label(getattr(model, "name_or_path", "")) or type(model).__name__
    opts = check_kwargs(InMemoryHFBackend.from_objects, options, "option", skip=("model", "tokenizer", "name"))
    return InMemoryHFBackend.from_objects(model, tokenizer, name=str(label), **opts)


def _label(name_or_path: str) -> str:
    """A local folder by its name (``smollm2-135m``, not the machine's path to it); a hub id as it is."""
    path = Path(name_or_path).expanduser() if name_or_path else None
    return path.name if path is not None and path.is_dir() else name_or_path


def _from_callable(fn: Callable[..., Any], tokenizer: object, options: dict[str, Any], name: str | None) -> Backend:
    """A function importable by name is stored as a ``python`` spec (replayable anywhere); one defined in a
    notebook or a closure lives in memory."""
    if tokenizer is not None:
        raise ConfigError("tokenizer= is for transformers models, not functions")
    path = _import_path(fn)
    if path is not None:
        return load_model(ModelSpec(name or path, "python", {"fn": path, **options}))
    from lmcritic.backends import check_backend_options
    from lmcritic.backends.python import PythonBackend

    return PythonBackend(fn=fn, name=name, **check_backend_options(PythonBackend, options, "python"))


def _import_path(fn: object) -> str | None:
    """``module:qualname`` when that import gives back ``fn`` itself, else None."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<" in qualname:
        return None
    path = f"{module}:{qualname}"
    try:
        return path if import_string(path) is fn else None
    except Exception:  # noqa: BLE001 - anything that does not import back is not importable
        return None


_ADAPTERS: tuple[tuple[Callable[[object], bool], Callable[..., Backend]], ...] = (
    (_is_backend, _keep),
    (_is_pipeline, _from_pipeline),
    (_is_hf_model, _from_hf),
    (callable, _from_callable),
)

__all__ = ["MEMORY", "MemoryBackend", "as_backend", "model_dir", "spec_of"]
