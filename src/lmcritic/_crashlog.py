"""The last resort: an error lmcritic did not foresee is one line for the user and a traceback in a log
file for whoever fixes it. No traceback is ever printed to the console."""
from __future__ import annotations

import datetime as dt
import os
import traceback
from pathlib import Path


def log_path() -> Path:
    """``$LMCRITIC_HOME/logs/lmcritic-DATE-PID.log``: one file per process, appended to."""
    from lmcritic.runner import lmcritic_home

    return lmcritic_home() / "logs" / f"lmcritic-{dt.date.today():%Y%m%d}-{os.getpid()}.log"


def log_exception(err: BaseException, context: str = "") -> Path | None:
    """Append ``err``'s traceback to the log; returns its path (None when even that cannot be written)."""
    path = log_path()
    text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8", errors="replace") as f:
            f.write(f"--- {dt.datetime.now().isoformat(timespec='seconds')} {context}\n{text}\n")
    except OSError:
        return None
    return path


def one_line(err: BaseException, limit: int = 300) -> str:
    """``Type: first line of the message``, shortened."""
    first = (str(err).strip().splitlines() or [""])[0]
    text = f"{type(err).__name__}: {first}" if first else type(err).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def internal_error(err: BaseException, context: str = "") -> str:
    """The one-line reason for an unforeseen exception, naming the log that holds its traceback."""
    path = log_exception(err, context)
    where = f"; traceback in {path}" if path else ""
    return f"internal error: {one_line(err)}{where}"
