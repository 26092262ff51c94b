"""Ingestion and scoring stream in bounded memory: a log 4× longer must not need more peak memory (measured
as the peak RSS of a fresh process, which ingests and scores the whole log)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import resource, sys
from lmcritic.monitor.ingest import ingest
from lmcritic.monitor.scoring import RequestScorer, ScoringConfig, Step, score_store
from lmcritic.store.monitor import MonitorStore
store = MonitorStore(sys.argv[2])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
report = ingest(store, [sys.argv[1]])
scorer = RequestScorer(ScoringConfig((Step("prompt", "length"), Step("response", "pii"))), store)
n = score_store(store, scorer)
print(report.total("stored"), n, before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_kib(tmp_path: Path, n: int) -> tuple[int, int]:
    log = tmp_path / f"log{n}.jsonl"
    with log.open("w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(json.dumps({"timestamp": 1_790_000_000 + i, "prompt": f"request {i} " + "word " * 40,
                                 "response": f"answer {i} " + "text " * 60, "metadata": {"i": i}}) + "\n")
    out = subprocess.run([sys.executable, "-c", CHILD, str(log), str(tmp_path / f"s{n}.sqlite")], check=True,
                         capture_output=True, text=True).stdout.split()
    stored, scored, before, after = map(int, out)
    assert stored == scored == n
    return before, after


def test_peak_memory_does_not_grow_with_the_log(tmp_path: Path) -> None:
    _, small = peak_kib(tmp_path, 5_000)
    _, large = peak_kib(tmp_path, 20_000)  # ~10 MB of log
    assert large - small < 12 * 1024, f"peak RSS grew {(large - small) / 1024:.1f} MiB for 4x the log"
