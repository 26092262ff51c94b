"""Which process runs a run, so a run whose process is gone is never left "running".

A run records the pid, the host and the process's start time (Linux ``/proc``) when it starts or resumes.
Opening the store checks the runs still marked ``running`` on this host: if the process is gone, or the
pid now belongs to a process that started later (pid reuse), the run is marked ``interrupted`` and stays
resumable. A run started on another host cannot be checked from here and is left alone.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


@dataclass(frozen=True)
class Owner:
    pid: int
    host: str
    started: str | None  # the process's start time in clock ticks since boot, when the OS tells


def current() -> Owner:
    pid = os.getpid()
    return Owner(pid, socket.gethostname(), start_time(pid))


def alive(owner: Owner) -> bool | None:
    """True/False for a process on this host; None when it ran elsewhere (cannot tell)."""
    if owner.host != socket.gethostname():
        return None
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    except OSError:
        return False
    started = start_time(owner.pid)
    return owner.started is None or started is None or started == owner.started


def start_time(pid: int) -> str | None:
    """Field 22 of ``/proc/PID/stat`` (after the parenthesised command name, which may hold spaces)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


class Ownership:
    """The run store's part that knows which process runs a run (mixed into ``RunStore``, which provides
    ``_conn``, ``_lock`` and ``set_status``)."""

    _conn: Any
    _lock: Any
    set_status: Callable[..., None]

    def running_elsewhere(self, run_id: str) -> Owner | None:
        """The live process (other than this one) that is running ``run_id``, if any."""
        with self._lock:
            row = self._conn.execute("SELECT status, pid, host, pid_start FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None or row[0] != "running" or row[1] is None:
            return None
        owner = Owner(int(row[1]), str(row[2]), row[3])
        return None if owner == current() or alive(owner) is False else owner

    def reap_stale(self) -> list[str]:
        """Mark ``interrupted`` every run left ``running`` by a process of this host that is gone."""
        with self._lock:
            rows = self._conn.execute("SELECT id, pid, host, pid_start FROM runs WHERE status = 'running' AND "
                                      "pid IS NOT NULL").fetchall()
        stale = [r[0] for r in rows if alive(Owner(int(r[1]), str(r[2]), r[3])) is False]
        for run_id in stale:
            pid = next(r[1] for r in rows if r[0] == run_id)
            self.set_status(run_id, "interrupted", f"its process (pid {pid}) ended without finishing; finished "
                            f"work is stored: continue with `lmcritic run --resume {run_id}`")
        return stale
