"""Errors that tell the user what was wrong and how to fix it, in one line."""
from __future__ import annotations

from typing import Iterable


class LmcriticError(Exception):
    """Base error: a message naming the thing that is wrong, plus a hint on the fix.

    The CLI prints ``str(err)`` as the one-line reason and exits non-zero.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} ({hint})" if hint else message)


class ConfigError(LmcriticError):
    """A run spec, task spec or argument is malformed."""


class UnknownNameError(ConfigError):
    """A registry lookup failed; the message lists close matches."""


class ModelLoadError(LmcriticError):
    """A model could not be loaded (missing file, corrupt weights, offline hub)."""


class CapabilityError(LmcriticError):
    """A backend was asked for something it does not declare."""


class BackendError(LmcriticError):
    """A backend failed while serving a request (server down, bad response)."""


class BudgetExceeded(LmcriticError):
    """The query or token budget of a run is spent; finished work is kept."""


class InputError(LmcriticError):
    """A request carries text the backend cannot take (empty, too long, not UTF-8)."""


class DataError(LmcriticError):
    """A dataset row is malformed; the message names file and line."""


class BackendTimeout(BackendError):
    """A backend call passed its deadline. ``index`` is the request (within the call) that was running,
    when the backend can tell, so the cache can refuse that request again at once instead of waiting."""

    def __init__(self, message: str, hint: str | None = None, index: int | None = None) -> None:
        super().__init__(message, hint)
        self.index = index


class StoreError(LmcriticError):
    """The run store or the call cache cannot be used (damaged file, read-only, missing); a run stops."""


class Terminated(KeyboardInterrupt):
    """SIGTERM/SIGHUP during a run: handled like Ctrl-C, so the run is marked interrupted and resumable."""


class RegistryError(LmcriticError):
    """A registry name was taken twice, or resolves to the wrong kind of object (a plugin or coding error)."""


class RunFailed(LmcriticError):
    """A run from Python (``lmcritic.scan``/``lmcritic.run``) measured nothing (status ``failed``), or, with
    ``strict=True``, did not finish cleanly. ``results`` is the stored run, for its errors and what did run."""

    def __init__(self, message: str, hint: str | None = None, results: object = None) -> None:
        super().__init__(message, hint)
        self.results = results


class RunWarning(UserWarning):
    """A run from Python ended ``partial`` (some probes, stages or cases failed) or ``interrupted`` by its budget:
    what ran is stored and returned; the warning names what did not."""


def did_you_mean(name: object, options: Iterable[str], fallback: str | None = None, *, n: int = 1,
                 cutoff: float = 0.6) -> str:
    """The hint for an unknown name: ``did you mean 'x'?`` (up to ``n`` close matches), else ``fallback``
    (default: ``known: a, b, …``; ``known: none`` when there are no options). One wording everywhere."""
    import difflib

    options = list(options)
    close = difflib.get_close_matches(str(name), options, n=n, cutoff=cutoff)
    if close:
        return f"did you mean {', '.join(repr(c) for c in close)}?"
    return fallback if fallback is not None else f"known: {', '.join(options) or 'none'}"
