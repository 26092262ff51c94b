"""The library versions a run is stored with, so a replay can say what changed since."""
from __future__ import annotations

import importlib.metadata
import platform
import sys

VERSIONED_PACKAGES = ("numpy", "torch", "transformers", "tokenizers")


def versions() -> dict[str, str]:
    """Python, lmcritic and the heavy libraries' versions, read from metadata so nothing gets imported."""
    from lmcritic import __version__

    out = {"python": platform.python_version(), "lmcritic": __version__}
    for name in VERSIONED_PACKAGES:
        module = sys.modules.get(name)
        version = getattr(module, "__version__", None) if module is not None else None
        try:
            out[name] = str(version or importlib.metadata.version(name))
        except importlib.metadata.PackageNotFoundError:
            continue
    return out
