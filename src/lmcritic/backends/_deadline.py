"""Deadlines for backend calls, so nothing waits forever.

* :func:`call_with_timeout` runs user code (a Python callable that may never return) in a worker thread and
  gives up at the deadline: the call becomes a :class:`BackendTimeout` naming the request, and the stuck
  thread is abandoned (a thread cannot be killed; it is a daemon, so it does not keep the process alive).
* :func:`deadline` sets a per-thread deadline for a whole backend call; batching loops check it between
  batches (:func:`check`) and text generation stops between tokens (:func:`passed`), so an hf call ends
  within about one batch or one token of its deadline.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from lmcritic.errors import BackendTimeout, ConfigError

_LOCAL = threading.local()


def check_timeout(value: float | None, owner: str) -> float | None:
    """A timeout option: seconds > 0, or None/0 for none."""
    if value is None or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{owner}: timeout must be a number of seconds > 0 (or null for none), got {value!r}")
    return float(value)


def call_with_timeout(fn: Callable[[], Any], timeout: float | None, what: str, index: int | None = None) -> Any:
    """``fn()``, or :class:`BackendTimeout` after ``timeout`` seconds (None: wait as long as it takes)."""
    if timeout is None:
        return fn()
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = err
        finally:
            done.set()

    threading.Thread(target=target, name="lmcritic-call", daemon=True).start()
    if not done.wait(timeout):
        raise BackendTimeout(f"{what} did not return within {timeout:g} s", "raise the backend's timeout "
                             "option, or fix the model so it answers", index=index)
    if "error" in box:
        raise box["error"]
    return box["value"]


@contextmanager
def deadline(seconds: float | None, what: str) -> Iterator[None]:
    """Within the block (this thread), :func:`check` raises and :func:`passed` is True after ``seconds``."""
    previous = getattr(_LOCAL, "state", None)
    _LOCAL.state = (time.monotonic() + seconds, what, seconds) if seconds else None
    try:
        yield
    finally:
        _LOCAL.state = previous


def passed() -> bool:
    state = getattr(_LOCAL, "state", None)
    return state is not None and time.monotonic() > state[0]


def check() -> None:
    """Raise :class:`BackendTimeout` if this thread's deadline has passed."""
    if passed():
        _, what, seconds = _LOCAL.state
        raise BackendTimeout(f"{what} did not finish within {seconds:g} s",
                             "raise the backend's timeout option, or send smaller requests")
