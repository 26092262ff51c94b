"""Let glibc keep freed large blocks for reuse instead of unmapping them (CPU inference only).

glibc serves every allocation above ~32 MiB with a fresh ``mmap`` and returns it to the OS on free, so each
forward's activations and each slice of logits (tens to hundreds of MiB) are page-faulted and zeroed by the
kernel again: on a 124M model that cost ~6% of rolling perplexity and ~10% of multiple choice (measured in
``benchmarks/``). PyTorch's CPU tuning guide answers this with jemalloc/tcmalloc through ``LD_PRELOAD``; the
same effect without a preload is two ``mallopt`` calls: no mmap for large blocks, and no trimming of the heap.
A third keeps threads off new arenas (at most one): a thread of its own gets a new arena otherwise, whose
small heaps glibc still grows and trims around each large block, so work done in other threads (the lockstep
attack's gradient passes) page-faulted again. In a default scan's ``robustness.attack`` on SmolLM2, 17 backward
passes took 18.5 s in the lockstep threads against 5.7 s in the main thread, 11.4 s with this setting (threads
started before it keep their arenas; 7.8 s with ``MALLOC_ARENA_MAX=1`` from the start), and the probe 41.0 s →
29.4 s. The price is that the process keeps the peak heap it reached. It is process-wide, so it is done once,
only on Linux/glibc, and ``LMCRITIC_MALLOC_REUSE=0`` (or ``HFBackend(malloc_reuse=False)``) turns it off.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from functools import lru_cache

_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8  # glibc's <malloc.h> parameter numbers
_TRIM_NEVER = 2**31 - 1  # mallopt takes an int: keep up to 2 GiB of free heap


@lru_cache(maxsize=None)
def reuse_freed_memory() -> bool:
    """Apply the three settings once per process; True when they are in effect."""
    if os.environ.get("LMCRITIC_MALLOC_REUSE", "1").strip().lower() in {"0", "false", "no", "off"}:
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in
               ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _TRIM_NEVER), (_M_ARENA_MAX, 1)))
