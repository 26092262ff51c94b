"""Models for the ray backend's tests, importable by Ray's worker processes (tests/ is put on their path)."""
from __future__ import annotations

import os
from pathlib import Path


def echo_or_die(prompt: str) -> str:
    """The prompt reversed; a prompt ``die:PATH`` kills the replica's process the first time (PATH marks it)."""
    if prompt.startswith("die:"):
        flag = Path(prompt[4:])
        if not flag.exists():
            flag.write_text(str(os.getpid()))
            os._exit(1)
    return prompt[::-1]
