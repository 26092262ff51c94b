"""The command line: happy path on a tiny model, and one clear line plus a non-zero exit on bad input."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def cli(*args: str, home: Path, check: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "LMCRITIC_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "lmcritic.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def _one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("lmcritic: error")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def test_models_lists_default(tmp_path) -> None:
    out = cli("models", home=tmp_path, check=True).stdout
    assert "smollm2-135m" in out and "(default)" in out


def test_scan_show_runs_end_to_end(tmp_path, tiny_causal_dir) -> None:
    proc = cli("scan", "--model", str(tiny_causal_dir), "--set", "performance.sst2.n=8",
               "--set", "performance.perplexity.docs=2", "--set", "performance.perplexity.window=32",
               "--set", "performance.perplexity.stride=32", "--set", "safety.jailbreak.n=4",
               "--set", "safety.hallucination.n=8", "--no-progress", home=tmp_path, check=True)
    report = Path(proc.stdout.strip().splitlines()[-1].removeprefix("report: "))
    assert report.is_file() and report.with_suffix(".json").is_file()
    assert "accuracy" in proc.stdout
    runs = cli("runs", home=tmp_path, check=True).stdout
    assert "done" in runs
    doc = json.loads(cli("show", "latest", "--format", "json", home=tmp_path, check=True).stdout)
    assert {f["name"] for f in doc["findings"]} >= {"accuracy", "perplexity", "label_skew"}
    md = cli("show", "latest", "--format", "md", home=tmp_path, check=True).stdout
    assert "## Scorecard" in md
    text = cli("show", "latest", "--cases", "performance.sst2", home=tmp_path, check=True).stdout
    assert "sst2-" in text
    # the whole default suite (every area) and its stages ran on the tiny model: none failed
    from lmcritic.spec import default_suite

    probes, stages = default_suite()
    status = {p["probe_key"]: p["status"] for p in doc["probes"]}
    assert all(status.get(p.key) in ("done", "skipped") for p in probes), status
    stage_status = {s["stage"]: s["status"] for s in doc["stages"]}
    assert stage_status == {s.name: "done" for s in stages}, stage_status


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (("scan", "--model", "smollm3-135m"), "did you mean 'smollm2-135m'"),
        (("run", "nope.yaml"), "not found"),
        (("show", "no-such-run"), "no-such-run"),
        (("scan", "--model", "/nonexistent/model/dir"), "/nonexistent/model/dir"),
        (("scan", "--probe", "performance.ssst2"), "did you mean 'performance.sst2'"),
        (("scan", "--set", "performance.sst2.shot=1"), "did you mean 'shots'"),
    ],
)
def test_bad_input_one_line(tmp_path, args, expect) -> None:
    line = _one_line_error(cli(*args, home=tmp_path))
    assert expect in line


def test_corrupt_gguf_one_line(tmp_path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + os.urandom(256))
    line = _one_line_error(cli("scan", "--model", str(bad), home=tmp_path))
    assert "broken.gguf" in line


def test_malformed_spec_one_line(tmp_path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("model: smollm2-135m\nprobes:\n  - name: performance.sst2\n    config: {n: -3}\n")
    line = _one_line_error(cli("run", str(spec), home=tmp_path))
    assert "performance.sst2" in line


def test_sigterm_during_any_command_is_an_interrupt(monkeypatch, capsys) -> None:
    """SIGTERM used to kill `lmcritic diagnose` (or mitigate, explain, ...) silently with exit 143; only `run`
    and `serve` handled it. Every command now stops as on Ctrl-C: one line, exit 3."""
    import argparse
    import signal
    import time

    from lmcritic.cli import main as cli_main

    def slow(args) -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        return 0

    real = cli_main.build_parser

    def parser():
        p = real()
        p.parse_args = lambda argv=None: argparse.Namespace(func=slow, command="slow")  # type: ignore[method-assign]
        return p

    monkeypatch.setattr(cli_main, "build_parser", parser)
    before = signal.getsignal(signal.SIGTERM)
    assert cli_main.main(["models"]) == 3
    assert capsys.readouterr().err.strip() == "lmcritic: terminated by SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is before  # restored
