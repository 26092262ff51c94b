"""Honest wall-clock and memory measurement of backend calls, shared by the efficiency probes.

Timings must hit the real model: the run's ``CachedBackend`` would answer a repeated request from
SQLite in microseconds, so :func:`real_backend` unwraps it. Nothing heavy is imported here; torch is
only touched when a white-box model is on CUDA.
"""
from __future__ import annotations

import re
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from lmcritic.backends.base import Backend

MB = 1024 * 1024
_PROC_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def real_backend(model: Backend) -> Backend:
    """The backend under any wrappers that expose ``.inner`` (the cache): what actually computes. Only the
    efficiency and quantization probes use it (they time or copy the model itself, not cached answers)."""
    seen = set()
    inner: Backend | None = getattr(model, "inner", None)
    while inner is not None and id(model) not in seen:
        seen.add(id(model))
        model, inner = inner, getattr(inner, "inner", None)
    return model


def torch_module(backend: Backend) -> Any | None:
    """The torch module of a local backend, or None (remote or python backends): what quantization copies
    and CUDA memory is read from. Gradient access goes through ``Backend.white_box()``, not this."""
    module = getattr(backend, "model", None)
    return module if module is not None and hasattr(module, "parameters") else None


def device_type(backend: Backend) -> str:
    """'cpu', 'cuda', 'mps', ... of a white-box backend; 'unknown' for black boxes."""
    device = getattr(backend, "device", None)
    return str(getattr(device, "type", device or "unknown"))


def max_rss_mb() -> float:
    """The process's peak resident set size so far (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MB if sys.platform == "darwin" else peak / 1024


def _status_mb(field: str) -> float | None:
    try:
        match = re.search(rf"^{field}:\s+(\d+) kB", _PROC_STATUS.read_text(), re.M)
    except OSError:
        return None
    return int(match.group(1)) / 1024 if match else None


def reset_peak_rss() -> bool:
    """Reset Linux's RSS high-water mark (VmHWM) so a later peak is this measurement's, not model loading's.

    ``ru_maxrss`` never goes down, so after loading (which usually peaks higher than inference) its delta
    reads 0; writing 5 to ``/proc/self/clear_refs`` is the kernel's documented way to restart VmHWM.
    """
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


@dataclass
class MemoryWatch:
    """Peak memory over a stretch of calls: ru_maxrss delta, Linux VmHWM over the start RSS, CUDA peak."""

    cuda: bool = False
    reset: bool = True
    rss_start_mb: float = 0.0
    maxrss_start_mb: float = 0.0
    hwm_reset: bool = False

    def start(self) -> "MemoryWatch":
        self.maxrss_start_mb = max_rss_mb()
        self.hwm_reset = self.reset and reset_peak_rss()
        self.rss_start_mb = _status_mb("VmRSS") or 0.0
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        return self

    def read(self) -> dict[str, float | None]:
        """Figures in MiB since :meth:`start`; None where the platform cannot say."""
        hwm = _status_mb("VmHWM") if self.hwm_reset else None
        out: dict[str, float | None] = {
            "maxrss_delta_mb": max(0.0, max_rss_mb() - self.maxrss_start_mb),
            "rss_peak_over_start_mb": max(0.0, hwm - self.rss_start_mb) if hwm is not None else None,
            "rss_start_mb": self.rss_start_mb or None,
            "cuda_peak_mb": None,
        }
        if self.cuda:
            import torch

            out["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / MB
        return out


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """(result, seconds) of one call, on the monotonic high-resolution clock."""
    t0 = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0
