"""Fault tests of stores, diff and gate (issue 21): a typo'd --store is an error, a read-only store can be
browsed, a damaged database is one line naming the fix, outputs are capped before storage, and the gate never
passes on NaN tolerances, bad alphas, unrelated pairs or a crashed candidate."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lmcritic.errors import StoreError
from test_reliability_run import EXIT, cli, no_traceback, rows, run_spec, task


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, str, str]:
    """A home with a good run (baseline) and a run whose only probe crashed (candidate)."""
    home = tmp_path_factory.mktemp("home")
    spec = task(home, rows(30))
    good = cli("run", str(run_spec(home, "_faulty:echo", spec)), "--no-progress", home=home)
    bad = cli("run", str(run_spec(home, "_faulty:boom", spec)), "--no-progress", home=home)
    assert good.returncode == 0 and bad.returncode == EXIT["failed"], (good.stderr, bad.stderr)
    ids = [line.split()[1].rstrip(":") for line in (good.stdout + bad.stdout).splitlines() if line.startswith("run ")]
    return home, ids[0], ids[1]


# -- stores ---------------------------------------------------------------------------------------
def test_a_typoed_store_is_an_error_unless_create(two_runs, tmp_path) -> None:
    home, base, _ = two_runs
    proc = cli("runs", "--store", str(home / "run.sqlite"), home=home)
    no_traceback(proc)
    assert proc.returncode == EXIT["bad_input"] and "no run store at" in proc.stderr
    assert "did you mean" in proc.stderr and "runs.sqlite" in proc.stderr
    assert not (home / "run.sqlite").exists()
    spec = run_spec(tmp_path, "_faulty:echo", task(tmp_path, rows(3)))
    new = tmp_path / "new.sqlite"
    assert cli("run", str(spec), "--store", str(new), "--no-progress", home=tmp_path).returncode == EXIT["bad_input"]
    assert cli("run", str(spec), "--store", str(new), "--create", "--no-progress", home=tmp_path).returncode == 0


def test_a_read_only_store_can_be_browsed(two_runs, tmp_path, monkeypatch, capsys) -> None:
    from lmcritic.cli.main import main
    from lmcritic.store import _sqlite
    from lmcritic.store.runs import RunStore

    home, base, _ = two_runs
    monkeypatch.setenv("LMCRITIC_HOME", str(home))
    monkeypatch.setattr(_sqlite, "writable", lambda path: False)  # as a folder the user may not write
    assert main(["runs"]) == 0 and base in capsys.readouterr().out
    assert main(["show", base, "--format", "json"]) == 0 and json.loads(capsys.readouterr().out)["run_id"] == base
    assert main(["report", base, "-o", str(tmp_path / "r.html")]) == 0 and (tmp_path / "r.html").is_file()
    store = RunStore(home / "runs.sqlite")
    assert store.read_only
    with pytest.raises(StoreError, match="cannot be written"):
        store.set_status(base, "done")


def test_a_damaged_run_store_names_the_recovery(tmp_path) -> None:
    spec = run_spec(tmp_path, "_faulty:echo", task(tmp_path, rows(60)))
    assert cli("run", str(spec), "--no-progress", home=tmp_path).returncode == 0
    _damage(tmp_path / "runs.sqlite")
    proc = cli("report", "latest", home=tmp_path)
    no_traceback(proc)
    assert proc.returncode == EXIT["bad_input"] and "is damaged" in proc.stderr and ".recover" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_damaged_cache_stops_the_run_cleanly_and_can_be_rebuilt(tmp_path) -> None:
    spec = run_spec(tmp_path, "_faulty:echo", task(tmp_path, rows(60)))
    assert cli("run", str(spec), "--no-progress", home=tmp_path).returncode == 0
    _damage(tmp_path / "cache.sqlite")
    proc = cli("run", str(spec), "--no-progress", home=tmp_path)
    no_traceback(proc)
    assert proc.returncode == EXIT["bad_input"] and "--rebuild-cache" in proc.stderr
    listing = cli("runs", home=tmp_path).stdout
    assert "running" not in listing and "failed" in listing
    again = cli("run", str(spec), "--rebuild-cache", "--no-progress", home=tmp_path)
    assert again.returncode == 0, again.stderr
    assert list(tmp_path.glob("cache.sqlite.damaged-*"))


def _damage(db: Path) -> None:
    """Overwrite every page but the header page with garbage (what a bad disk sector does)."""
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size, page = db.stat().st_size, 4096
    with db.open("r+b") as f:
        for offset in range(page, size, page):
            f.seek(offset)
            f.write(os.urandom(page))


def test_outputs_are_capped_before_storage(tmp_path) -> None:
    spec = run_spec(tmp_path, "_faulty:huge", task(tmp_path, rows(3)))
    proc = cli("run", str(spec), "--max-output-chars", "1000", "--no-progress", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(cli("show", "latest", "--format", "json", home=tmp_path).stdout)
    text = doc["cases"]["performance.task"]["records"][0]["output"]["raw"]
    assert len(text) <= 1000 and text.endswith("1,000,000 characters in all]")
    report = next((tmp_path / "reports").glob("*/report.json"))
    assert report.stat().st_size < 200_000
    assert (tmp_path / "cache.sqlite").stat().st_size < 1_000_000  # not 3 x 1 MB


# -- diff and gate ----------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [("--max-regression", "pass_rate=nan"), ("--max-regression", "pass_rate=-1"),
                                  ("--max-regression", "pass_rate=inf"), ("--alpha", "-1"), ("--alpha", "0"),
                                  ("--alpha", "1.5")])
def test_gate_refuses_tolerances_and_alphas_that_would_pass_anything(two_runs, args) -> None:
    home, base, cand = two_runs
    extra = ("--max-regression", "pass_rate=0.1") if args[0] == "--alpha" else ()
    proc = cli("gate", base, "--baseline", base, *args, *extra, home=home)
    no_traceback(proc)
    assert proc.returncode == EXIT["bad_input"], proc.stderr
    assert cli("diff", base, base, "--alpha", "0", home=home).returncode == EXIT["bad_input"]


def test_a_crashed_candidate_fails_the_gate(two_runs) -> None:
    home, base, cand = two_runs
    proc = cli("gate", cand, "--baseline", base, "--fail-on-new-findings", home=home)
    assert proc.returncode == EXIT["gate"] and "failed in the candidate" in proc.stdout, proc.stdout + proc.stderr
    proc = cli("gate", cand, "--baseline", base, "--max-regression", "performance.task:pass_rate=0.5", home=home)
    assert proc.returncode == EXIT["gate"] and "performance.task (performance.task:pass_rate): failed" in proc.stdout
    assert cli("gate", base, "--baseline", base, "--fail-on-new-findings", home=home).returncode == 0


def test_diff_pairs_cases_by_input_not_by_id_alone(tmp_path) -> None:
    first = task(tmp_path, rows(20), name="rt")
    assert cli("run", str(run_spec(tmp_path, "_faulty:echo", first)), "--no-progress", home=tmp_path).returncode == 0
    other = tmp_path / "other"
    other.mkdir()
    second = task(other, [{"q": f"tell x{i}", "a": f"y{i}"} for i in range(20)], name="rt")  # same ids, other data
    assert cli("run", str(run_spec(other, "_faulty:echo", second)), "--no-progress", home=tmp_path).returncode == 0
    doc = json.loads(cli("diff", "latest~1", "latest", "--format", "json", home=tmp_path).stdout)
    (rate,) = [m for m in doc["metrics"] if m["metric"] == "pass_rate"]
    assert rate["n_paired"] == 0 and rate["n_mismatched"] == 20 and rate["n_unpaired"] == 40
    assert rate["test"] == "two-sample-bootstrap"
