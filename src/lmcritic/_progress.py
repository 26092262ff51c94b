"""Progress for long work: rich bars with ETA on stderr, one per probe, plus lines that always reach the
console (errors and warnings print with or without bars, so ``--no-progress`` in CI still shows them)."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Any, Iterator


class Bar:
    """rich progress bars (silent when disabled); :meth:`error` and :meth:`warn` always print."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Any = None

    def __enter__(self) -> "Bar":
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                      console=Console(stderr=True))
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    @contextmanager
    def task(self, name: str, total: int, completed: int) -> Iterator:
        if self._progress is None:
            yield lambda n: None
            return
        tid = self._progress.add_task(name, total=total, completed=completed)
        yield lambda n: self._progress.advance(tid, n)

    def track(self, name: str, total: int) -> Any:
        """A bar set from outside (a sharded scan reads progress from the store): returns ``set(completed)``."""
        if self._progress is None:
            return lambda completed: None
        tid = self._progress.add_task(name, total=total, completed=0)
        return lambda completed: self._progress.update(tid, completed=completed)

    def note(self, text: str) -> None:
        """Chatter (a skip, a stage starting): only with bars."""
        if self._progress is not None:
            self._progress.console.print(f"[dim]{_escape(text)}[/dim]")

    def error(self, text: str) -> None:
        self._always(f"lmcritic: error: {text}", "red")

    def warn(self, text: str) -> None:
        self._always(f"lmcritic: warning: {text}", "yellow")

    def _always(self, text: str, style: str) -> None:
        if self._progress is not None:
            self._progress.console.print(f"[{style}]{_escape(text)}[/{style}]", highlight=False)
        else:
            print(text, file=sys.stderr, flush=True)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
