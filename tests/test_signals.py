"""SIGTERM handled like Ctrl-C in the process that asked for it, and only there."""
from __future__ import annotations

import multiprocessing
import signal
import sys
import time

import pytest

from lmcritic._signals import terminate_as_interrupt


@pytest.mark.skipif(sys.platform == "win32", reason="fork start method")
def test_a_forked_worker_dies_quietly_on_sigterm(capfd: pytest.CaptureFixture[str]) -> None:
    """A library's process pool (cleanlab's, during label_repair) forks workers that inherit the handler and ends
    them with SIGTERM: each printed a Terminated traceback to the user's terminal. A forked child now dies of the
    signal as it would have without the handler."""
    with terminate_as_interrupt():
        child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(30,))
        child.start()
        time.sleep(0.3)
        child.terminate()
        child.join(10)
    assert child.exitcode == -signal.SIGTERM
    assert "Terminated" not in capfd.readouterr().err
