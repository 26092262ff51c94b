"""Models for the sharded-scan tests, importable by spawned worker processes and Ray actors (tests/ is on their
path). ``$LMCRITIC_TEST_DIE_ON`` = ``TEXT<TAB>FLAG<TAB>WHO``: the first call on TEXT writes FLAG (the pid) and
kills the worker (WHO=worker) or its parent, the driver (WHO=driver)."""
from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path

POSITIVE = ("good", "great", "fun", "best", "love", "moving", "beautiful", "funny", "charming", "delight")
NEGATIVE = ("bad", "dull", "worst", "boring", "mess", "fails", "flat", "tedious", "awful", "never")


def sentiment(text: str) -> dict[str, float]:
    """A deterministic toy sentiment classifier: word cues plus a hash of the text."""
    _maybe_die(text)
    words = text.lower().split()
    cue = sum(w.strip(".,!?") in POSITIVE for w in words) - sum(w.strip(".,!?") in NEGATIVE for w in words)
    noise = int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF - 0.5
    p = min(0.97, max(0.03, 0.5 + 0.2 * cue + 0.3 * noise))
    return {"negative": 1 - p, "positive": p}


def _maybe_die(text: str) -> None:
    rule = os.environ.get("LMCRITIC_TEST_DIE_ON")
    if not rule:
        return
    target, flag, who = rule.split("\t")
    if text != target or Path(flag).exists():
        return
    Path(flag).write_text(str(os.getpid()))
    if who == "driver":
        os.kill(os.getppid(), signal.SIGKILL)
        time.sleep(60)  # the parent-death signal ends this worker now
    os.kill(os.getpid(), signal.SIGKILL)
