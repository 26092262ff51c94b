"""Fault tests of runs (issue 21): exit codes that tell the truth, no traceback, no run left "running",
bad rows skipped and counted, configs checked before any model call, timeouts instead of hangs.

Models are Python callables from ``_faulty`` (imported by the subprocesses through PYTHONPATH), so every
test here is fast; each CLI check runs the real ``lmcritic`` entry point."""
from __future__ import annotations

import enum
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from lmcritic.errors import BackendTimeout, ConfigError, DataError

HERE = Path(__file__).resolve().parent
EXIT = {"ok": 0, "internal": 1, "bad_input": 2, "interrupted": 3, "gate": 4, "partial": 6, "failed": 7}


def cli(*args: str, home: Path, timeout: float = 120, **popen) -> subprocess.CompletedProcess:
    env = {**os.environ, "LMCRITIC_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(HERE)}
    return subprocess.run([sys.executable, "-m", "lmcritic.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, **popen)


def no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr


def task(tmp: Path, rows: list, name: str = "rt", raw: bytes | None = None) -> Path:
    """A generate task whose answer is the prompt's last word (what ``_faulty.echo`` says)."""
    data = tmp / f"{name}.jsonl"
    data.write_bytes(raw if raw is not None else "".join(json.dumps(r) + "\n" for r in rows).encode())
    spec = tmp / f"{name}.yaml"
    spec.write_text(f"name: {name}\noutput_type: generate\ndata: {{path: {data.name}}}\nprompt: '{{{{ q }}}}'\n"
                    "target: a\nmetrics: [exact_match]\ngeneration: {max_new_tokens: 4, stop: []}\n")
    return spec


def rows(n: int, bad: set[int] = frozenset()) -> list[dict]:
    return [{"q": f"say {'bad' if i in bad else 'w'}{i}", "a": f"{'bad' if i in bad else 'w'}{i}"} for i in range(n)]


def run_spec(tmp: Path, fn: str, spec: Path, **extra) -> Path:
    out = tmp / "run.yaml"
    body = {"model": {"name": fn, "backend": "python", "options": {"fn": fn, **extra}},
            "probes": [{"name": "performance.task", "config": {"task": str(spec)}}]}
    out.write_text(json.dumps(body))
    return out


def runs_json(home: Path) -> dict:
    proc = cli("show", "latest", "--format", "json", home=home)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# -- exit status that tells the truth -------------------------------------------------------------
def test_every_probe_failing_exits_7_and_prints_the_reason(tmp_path) -> None:
    spec = run_spec(tmp_path, "_faulty:boom", task(tmp_path, rows(6)))
    proc = cli("run", str(spec), "--no-progress", home=tmp_path)
    no_traceback(proc)
    assert proc.returncode == EXIT["failed"], (proc.returncode, proc.stderr)
    assert "boom: the model is down" in proc.stderr  # the one-line reason, even with --no-progress
    assert ": failed" in proc.stdout and "done" not in proc.stdout.split("run ")[-1].split("\n")[0]
    doc = runs_json(tmp_path)
    assert doc["run"]["status"] == "failed"


def test_some_cases_failing_is_partial_exit_6_and_resume_retries_them(tmp_path) -> None:
    spec = run_spec(tmp_path, "_faulty:fails_on_bad", task(tmp_path, rows(12, bad={3, 7})))
    proc = cli("run", str(spec), "--no-progress", home=tmp_path)
    no_traceback(proc)
    assert proc.returncode == EXIT["partial"], proc.stderr
    assert "2 of 12 cases failed" in proc.stderr and "cannot answer" in proc.stderr
    doc = runs_json(tmp_path)
    assert doc["run"]["status"] == "partial"
    names = {f["name"]: f for f in doc["findings"]}
    assert names["case_errors"]["verdict"] == "fail" and names["case_errors"]["estimate"]["n"] == 12
    assert {e["case"] for e in names["case_errors"]["details"]["errors"]} == {"rt-4", "rt-8"}  # lines 4 and 8
    assert names["exact_match"]["estimate"]["n"] == 10  # the good cases were scored and summarized
    run_id = doc["run"]["id"]
    again = cli("run", "--resume", run_id, "--no-progress", home=tmp_path)
    assert again.returncode == EXIT["partial"] and "2 of 12 cases failed" in again.stderr  # retried, still bad


def test_a_bad_case_is_isolated_not_the_chunk(tmp_path) -> None:
    from lmcritic.backends.python import PythonBackend
    from lmcritic.runner import Runner
    from lmcritic.spec import RunSpec

    sys.path.insert(0, str(HERE))
    import _faulty

    spec = RunSpec.from_dict({"model": "x", "probes": [{"name": "performance.task",
                                                        "config": {"task": str(task(tmp_path, rows(40, {17})))}}]})
    runner = Runner(tmp_path / "runs.sqlite", tmp_path / "cache.sqlite", progress=False)
    out = runner.run(spec, model=PythonBackend(_faulty.fails_on_bad))
    assert out.status == "partial" and len(runner.store.records(out.run_id, "performance.task")) == 39
    assert runner.store.get_run(out.run_id).status == "partial"


def test_unexpected_exception_in_a_probe_is_one_line_with_a_logged_traceback(tmp_path, monkeypatch) -> None:
    from lmcritic.backends.python import PythonBackend
    from lmcritic.probes.performance.task import TaskProbe
    from lmcritic.runner import Runner
    from lmcritic.spec import RunSpec

    monkeypatch.setenv("LMCRITIC_HOME", str(tmp_path))

    def broken(self, model, cases):
        raise KeyError("label")

    monkeypatch.setattr(TaskProbe, "score", broken)
    spec = RunSpec.from_dict({"model": "x", "probes": [{"name": "performance.task",
                                                        "config": {"task": str(task(tmp_path, rows(3)))}}]})
    runner = Runner(tmp_path / "runs.sqlite", tmp_path / "cache.sqlite", progress=False)
    out = runner.run(spec, model=PythonBackend(lambda p: p))
    assert out.status == "failed"
    (reason,) = [p.reason for p in runner.store.probe_runs(out.run_id)]
    assert reason.startswith("every case failed") and "internal error: KeyError" in reason
    log = Path(reason.split("traceback in ")[1].split(";")[0].rstrip(")"))
    assert log.is_file() and "Traceback" in log.read_text()


def test_a_crash_outside_the_probes_still_marks_the_run(tmp_path, monkeypatch) -> None:
    from lmcritic.backends.python import PythonBackend
    from lmcritic.runner import Runner
    from lmcritic.spec import RunSpec

    def crash(self, run_id):
        raise MemoryError("out of memory while summarizing")

    monkeypatch.setattr(Runner, "_verdict", crash)
    spec = RunSpec.from_dict({"model": "x", "probes": [{"name": "performance.task",
                                                        "config": {"task": str(task(tmp_path, rows(3)))}}]})
    runner = Runner(tmp_path / "runs.sqlite", tmp_path / "cache.sqlite", progress=False)
    with pytest.raises(MemoryError):
        runner.run(spec, model=PythonBackend(lambda p: p))
    (info,) = runner.store.list_runs()
    assert info.status == "failed" and "MemoryError" in info.error and "--resume" in info.error


def test_sigterm_marks_the_run_interrupted_and_resumable(tmp_path) -> None:
    spec = run_spec(tmp_path, "_faulty:slow", task(tmp_path, rows(40)))
    env = {**os.environ, "LMCRITIC_HOME": str(tmp_path), "PYTHONPATH": str(HERE)}
    proc = subprocess.Popen([sys.executable, "-m", "lmcritic.cli.main", "run", str(spec), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    _wait_for_records(tmp_path / "runs.sqlite")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT["interrupted"], err
    assert "Traceback" not in err and "terminated by SIGTERM" in out + err
    doc = runs_json(tmp_path)
    assert doc["run"]["status"] == "interrupted"
    done = cli("run", "--resume", doc["run"]["id"], "--no-progress", home=tmp_path)
    assert done.returncode == 0, done.stderr


def test_a_killed_run_is_never_left_running(tmp_path) -> None:
    spec = run_spec(tmp_path, "_faulty:slow", task(tmp_path, rows(40)))
    env = {**os.environ, "LMCRITIC_HOME": str(tmp_path), "PYTHONPATH": str(HERE)}
    proc = subprocess.Popen([sys.executable, "-m", "lmcritic.cli.main", "run", str(spec), "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _wait_for_records(tmp_path / "runs.sqlite")
    proc.kill()
    proc.wait(timeout=30)
    listing = cli("runs", home=tmp_path)
    assert "interrupted" in listing.stdout and "running" not in listing.stdout
    doc = runs_json(tmp_path)
    assert "pid" in doc["run"]["error"] and "--resume" in doc["run"]["error"]
    assert cli("run", "--resume", doc["run"]["id"], "--no-progress", home=tmp_path).returncode == 0


def _wait_for_records(db: Path, timeout: float = 60) -> None:
    import sqlite3

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if db.exists():
            try:
                with sqlite3.connect(db) as conn:
                    if conn.execute("SELECT count(*) FROM cases").fetchone()[0] > 0:
                        return
            except sqlite3.Error:
                pass
        time.sleep(0.1)
    raise AssertionError("the run stored nothing")


def test_a_python_backend_without_model_is_labelled_by_its_callable(tmp_path) -> None:
    spec = task(tmp_path, rows(3))
    proc = cli("scan", "--backend", "python", "--option", "fn=_faulty:echo", "--probe", "mc_knowledge",
               "--set", f"mc_knowledge.task={spec}", "--no-stages", "--no-progress", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "smollm2" not in proc.stderr + proc.stdout
    assert runs_json(tmp_path)["run"]["model"]["name"] == "_faulty:echo"


# -- the command line never shows a traceback ---------------------------------------------------
def test_show_into_a_closed_pipe_is_quiet(tmp_path) -> None:
    spec = run_spec(tmp_path, "_faulty:echo", task(tmp_path, rows(30)))
    assert cli("run", str(spec), "--no-progress", home=tmp_path).returncode == 0
    env = {**os.environ, "LMCRITIC_HOME": str(tmp_path)}
    piped = subprocess.run(f"{sys.executable} -m lmcritic.cli.main show latest --format json | head -c 20",
                           shell=True, capture_output=True, text=True, env=env, timeout=60)
    assert len(piped.stdout) == 20 and "Error" not in piped.stderr and "Traceback" not in piped.stderr


def test_report_to_an_unwritable_path_is_one_line(tmp_path) -> None:
    spec = run_spec(tmp_path, "_faulty:echo", task(tmp_path, rows(3)))
    assert cli("run", str(spec), "--no-progress", home=tmp_path).returncode == 0
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = cli("report", "latest", "-o", str(blocker / "report.html"), home=tmp_path)
    no_traceback(proc)
    assert proc.returncode == EXIT["bad_input"] and "cannot write" in proc.stderr


def test_last_resort_handler_logs_the_traceback(tmp_path, monkeypatch, capsys) -> None:
    from lmcritic.cli import main as cli_main
    from lmcritic.cli import runs as runs_cli

    monkeypatch.setenv("LMCRITIC_HOME", str(tmp_path))

    def explode(args):
        raise ZeroDivisionError("division by zero somewhere deep")

    monkeypatch.setattr(runs_cli, "runs_cmd", explode)
    assert cli_main.main(["runs"]) == EXIT["internal"]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: ZeroDivisionError" in err and "Traceback" not in err
    log = next((tmp_path / "logs").glob("*.log"))
    assert "ZeroDivisionError" in log.read_text() and "Traceback" in log.read_text()


# -- row-level isolation --------------------------------------------------------------------------
def test_bad_rows_are_skipped_counted_and_reported(tmp_path) -> None:
    good = [json.dumps(r).encode() for r in rows(6)]
    raw = b"\n".join([good[0], b"\xff\xfe not utf-8 \x80", good[1], b"{broken json", good[2], b"[1, 2]",
                      good[3], json.dumps({"q": "x" * 2_100_000, "a": "x"}).encode(), good[4], b"\x00\x01\x02",
                      good[5]]) + b"\n"
    spec = run_spec(tmp_path, "_faulty:echo", task(tmp_path, [], raw=raw))
    proc = cli("run", str(spec), "--no-progress", home=tmp_path)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert "skipped 5 of 11 data rows" in proc.stderr  # the warning reaches the console
    doc = runs_json(tmp_path)
    quality = next(f for f in doc["findings"] if f["name"] == "data_quality")
    where = {(Path(s["path"]).name, s["line"]): s["reason"] for s in quality["details"]["skipped"]}
    assert set(where) == {("rt.jsonl", n) for n in (2, 4, 6, 8, 10)}
    assert "UTF-8" in where[("rt.jsonl", 2)] and "JSON" in where[("rt.jsonl", 4)]
    assert "object" in where[("rt.jsonl", 6)] and "row limit" in where[("rt.jsonl", 8)]
    assert next(f for f in doc["findings"] if f["name"] == "exact_match")["estimate"]["n"] == 6


def test_all_rows_bad_fails_the_probe_with_one_line(tmp_path) -> None:
    spec = run_spec(tmp_path, "_faulty:echo", task(tmp_path, [], raw=os.urandom(4000)))
    proc = cli("run", str(spec), "--no-progress", home=tmp_path)
    no_traceback(proc)
    assert proc.returncode == EXIT["failed"] and "no usable rows" in proc.stderr


def test_readers_take_any_bytes_and_any_field_size(tmp_path) -> None:
    from lmcritic.datasets import collect_issues, read_lines, read_rows

    tsv = tmp_path / "big.tsv"
    tsv.write_bytes(b"text\tlabel\n" + b"a" * 300_000 + b"\t1\nok\t0\nbad\xff\t1\nshort\n")
    with collect_issues() as issues:
        got = list(read_rows(tsv, required=("label",)))
    assert [(n, len(r["text"])) for n, r in got] == [(2, 300_000), (3, 2)]  # a 300 KB field is data
    assert [(i.line, i.reason.split(" (")[0]) for i in issues.issues] == [(4, "not valid UTF-8"),
                                                                          (5, "1 fields, expected 2")]
    gz = tmp_path / "rows.jsonl.gz"
    import gzip

    gz.write_bytes(gzip.compress(b'{"text": "a"}\n\xc3\x28\n{"text": "b"}\n'))
    with collect_issues() as issues:
        assert [r["text"] for _, r in read_rows(gz)] == ["a", "b"] and len(issues.issues) == 1
    txt = tmp_path / "c.txt"
    txt.write_bytes(b"one\n\xff\xfe\ntwo\n")
    with pytest.warns(UserWarning, match="skipped 1 row"):
        assert [t for _, t in read_lines(txt)] == ["one", "two"]
    with pytest.raises(DataError, match="header"):
        list(read_rows(_write(tmp_path / "h.csv", b"\xff\xfe,a\n1,2\n")))


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_data_skew_and_diagnosis_corpora_skip_bad_rows(tmp_path) -> None:
    from lmcritic.diagnose.corpus import Corpus

    corpus = tmp_path / "c.tsv"
    lines = ["sentence\tlabel"] + [f"the woman said it was {'great' if i % 2 else 'awful'} {i}\t{i % 2}"
                                   for i in range(60)]
    corpus.write_bytes("\n".join(lines).encode() + b"\n\xff\xfe broken\t1\nonly-one-field\n")
    proc = cli("data-skew", str(corpus), home=tmp_path)
    no_traceback(proc)
    assert proc.returncode == 0 and "skipped 2 row" in proc.stderr
    binary = _write(tmp_path / "bin.jsonl", os.urandom(3000))
    proc = cli("data-skew", str(binary), home=tmp_path)
    no_traceback(proc)
    assert proc.returncode == EXIT["bad_input"] and "no usable rows" in proc.stderr
    with pytest.warns(UserWarning):
        assert len(Corpus(corpus)) == 60


# -- config checked before any model call ---------------------------------------------------------
@pytest.mark.parametrize(("config", "expect"), [
    ({"n": 1.5}, "n must be an integer"), ({"n": True}, "n must be an integer"),
    ({"n": "abc"}, "n must be an integer or null, got 'abc'"), ({"shots": [1]}, "shots must be an integer"),
    ({"label_words": "neg"}, "label_words must be a list of text"), ({"min_accuracy": "high"}, "a number"),
])
def test_probe_config_types_are_checked(config, expect) -> None:
    from lmcritic.spec import RunSpec

    with pytest.raises(ConfigError, match=expect):
        RunSpec.from_dict({"probes": [{"name": "performance.sst2", "config": config}]})


def test_cli_option_text_is_converted_by_annotation(tmp_path) -> None:
    from lmcritic.cli.run import _pairs
    from lmcritic.probes import PROBES

    config = PROBES.get("performance.sst2")(**_pairs(["n=8", "label_words=[' a', ' b']", "data=null"], "--set"))
    assert config.config.n == 8 and config.config.label_words == (" a", " b") and config.config.data is None
    stage = {"k": "3", "methods": "[leave_one_out]", "faithfulness": "no"}
    from lmcritic.stages import check_config

    assert check_config("interpret.explain", stage) == {"k": 3, "methods": ["leave_one_out"], "faithfulness": False}


def test_the_scans_diagnosis_budget_follows_what_a_re_scored_case_costs() -> None:
    """The default scan gave a topic classifier's diagnosis 1,500 re-scored cases (sized for generating models) and
    its later defects went untested; ``auto`` gives a model that only classifies the diagnose command's 4,000."""
    from types import SimpleNamespace

    from lmcritic.requests import Capability as C
    from lmcritic.spec import default_suite
    from lmcritic.stages import _queries, check_config

    head = SimpleNamespace(capabilities=frozenset({C.CLASSIFY, C.GRADIENTS, C.EMBEDDINGS}))
    chat = SimpleNamespace(capabilities=frozenset({C.GENERATE, C.CHAT, C.LOGLIKELIHOOD, C.CLASSIFY}))
    assert (_queries("auto", head), _queries("auto", chat)) == (4000, 1500)
    assert _queries(800, head) == 800 and _queries(None, chat) is None  # a number (or no cap) is taken as given
    (diagnose,) = [s for s in default_suite()[1] if s.name == "diagnose"]
    assert check_config("diagnose", dict(diagnose.config))["max_queries"] == "auto"
    with pytest.raises(ConfigError, match="max_queries must be an integer or one of .auto."):
        check_config("diagnose", {"max_queries": "lots"})


@pytest.mark.parametrize(("args", "expect"), [
    (("--model", "smollm2-135m", "--set", "safety.pii.max_elicitation_rate=high"),
     "max_elicitation_rate must be a number"),
    (("--backend", "python", "--option", "fn=_faulty:echo", "--option", "timeout=soon"), "timeout must be a number"),
])
def test_bad_options_fail_before_the_model_loads(tmp_path, args, expect) -> None:
    proc = cli("scan", *args, "--no-progress", home=tmp_path)
    no_traceback(proc)
    assert proc.returncode == EXIT["bad_input"] and expect in proc.stderr, proc.stderr
    assert not (tmp_path / "runs.sqlite").exists() or "timeout" in expect  # nothing ran


def test_backend_options_are_checked_before_loading() -> None:
    from lmcritic.backends import ModelSpec, load_model
    from lmcritic.spec import RunSpec

    with pytest.raises(ConfigError, match="max_new_tokens must be an integer"):
        RunSpec.from_dict({"probes": [{"name": "performance.generation", "config": {"max_new_tokens": "abc"}}]})
    with pytest.raises(ConfigError, match="did you mean 'batch_size'"):
        load_model(ModelSpec("/nonexistent/dir", "hf", {"batch_sise": "4"}))  # refused before the path is read
    with pytest.raises(ConfigError, match="timeout must be a number"):
        load_model(ModelSpec("builtins:str.upper", "python", {"timeout": "soon"}))
    assert load_model(ModelSpec("builtins:str.upper", "python", {"timeout": "2.5"})).timeout == 2.5


class Mode(enum.Enum):
    FAST = "fast"
    EXACT = "exact"


@dataclass(frozen=True)
class Cfg:
    mode: Mode = Mode.FAST
    kind: Literal["a", "b"] = "a"
    pair: tuple[int, float] = (1, 2.0)


def test_stage_config_and_enum_values_are_checked() -> None:
    from lmcritic._typecheck import build_dataclass
    from lmcritic.spec import RunSpec

    with pytest.raises(ConfigError, match="stage interpret.explain: k must be an integer"):
        RunSpec.from_dict({"probes": ["performance.sst2"], "stages": [{"name": "interpret.explain",
                                                                       "config": {"k": "many"}}]})

    assert build_dataclass(Cfg, {"mode": "exact", "kind": "b", "pair": "[3, 4]"}, "x") == Cfg(Mode.EXACT, "b", (3, 4.0))
    with pytest.raises(ConfigError, match="did you mean 'exact'"):
        build_dataclass(Cfg, {"mode": "exakt"}, "x")
    with pytest.raises(ConfigError, match="kind must be one of 'a', 'b'"):
        build_dataclass(Cfg, {"kind": "c"}, "x")


# -- timeouts --------------------------------------------------------------------------------------
def test_a_callable_that_never_returns_times_out() -> None:
    from lmcritic.backends.python import PythonBackend
    from lmcritic.requests import GenerateRequest

    sys.path.insert(0, str(HERE))
    import _faulty

    be = PythonBackend(_faulty.hangs_on_bad, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(BackendTimeout, match="did not return within 0.3 s") as err:
        be.generate([GenerateRequest(prompt="ok"), GenerateRequest(prompt="bad")])
    assert err.value.index == 1 and time.monotonic() - started < 5


def test_a_hanging_case_becomes_a_case_error_not_a_hang(tmp_path) -> None:
    spec = run_spec(tmp_path, "_faulty:hangs_on_bad", task(tmp_path, rows(16, bad={5})), timeout=0.5)
    started = time.monotonic()
    proc = cli("run", str(spec), "--no-progress", home=tmp_path, timeout=120)
    no_traceback(proc)
    assert proc.returncode == EXIT["partial"] and "did not return within 0.5 s" in proc.stderr
    assert time.monotonic() - started < 60  # one wait for the hung case, not one per retry


def test_hf_generation_stops_at_its_deadline(tiny_causal) -> None:
    from lmcritic.requests import GenerateRequest, GenParams

    # Each forward pass is made slower than the deadline, so the test does not depend on the machine's speed
    # (a fast CI machine finished the tiny model's 240 tokens within 0.05 s).
    slow = tiny_causal.model.register_forward_pre_hook(lambda *_: time.sleep(0.1))
    tiny_causal.timeout = 0.05
    started = time.monotonic()
    try:
        with pytest.raises(BackendTimeout, match="generate did not finish within 0.05 s"):
            tiny_causal.generate([GenerateRequest(prompt="a", params=GenParams(max_new_tokens=240))] * 16)
    finally:
        tiny_causal.timeout = None
        slow.remove()
    assert time.monotonic() - started < 10  # stopped after a token or two, not 240 slow steps
