"""Experiment trackers, run for real against local folders: MLflow with a file store, W&B in offline mode."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from lmcritic.trackers import metric_key

HERE = Path(__file__).resolve().parent
SST2 = {"name": "performance.task", "key": "sst2", "config": {"task": "sst2", "n": 60}}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    import lmcritic

    sys.path.insert(0, str(HERE))
    import _toy_classifiers as toy

    tmp = tmp_path_factory.mktemp("trackers")
    return lmcritic.scan(toy.worse, options={"task": "classify", "labels": ["negative", "positive"]}, probes=[SST2],
                         stages=False, store=tmp / "runs.sqlite", cache=tmp / "cache.sqlite", progress=False)


def test_keys_are_safe_everywhere() -> None:
    assert metric_key("performance.sst2", "accuracy", ".ci_low") == "performance.sst2/accuracy.ci_low"
    assert metric_key("diagnose", "D1/sst2/len=long & x<3") == "diagnose/D1.sst2.len_long _ x_3"
    assert metric_key("p", "../..") == "p/_"  # nothing that resolves to another path


def test_mlflow_file_store(results, tmp_path, monkeypatch) -> None:
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 serves file stores only when asked to
    where = results.log_to("mlflow", tracking_uri=str(tmp_path / "mlruns"), experiment="critique")
    run_id = where.removeprefix("runs:/")
    client = mlflow.MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    run = client.get_run(run_id)
    acc = results.finding("sst2:acc").estimate
    metrics = run.data.metrics
    assert metrics["sst2/acc"] == pytest.approx(acc.value) and metrics["sst2/acc.n"] == acc.n
    assert metrics["sst2/acc.ci_low"] == pytest.approx(acc.ci_low)
    assert metrics["sst2/acc.ci_high"] == pytest.approx(acc.ci_high)
    assert run.data.params["sst2/acc.verdict"] == f"fail ({results.finding('sst2:acc').severity.value})"
    assert run.data.params["lmcritic/lmcritic_run"] == results.run_id and run.info.status == "FINISHED"
    assert run.data.tags["lmcritic.run_id"] == results.run_id
    files = {f.path for f in client.list_artifacts(run_id, "lmcritic")}
    assert files == {"lmcritic/report.html", "lmcritic/report.md", "lmcritic/report.json"}
    assert client.get_experiment(run.info.experiment_id).name == "critique"


def test_mlflow_active_run_is_used_and_left_open(results, tmp_path, monkeypatch) -> None:
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    with mlflow.start_run() as active:
        assert results.log_to("mlflow", report=False) == f"runs:/{active.info.run_id}"
        assert mlflow.active_run().info.status == "RUNNING"
    assert "sst2/acc" in mlflow.MlflowClient().get_run(active.info.run_id).data.metrics


def test_mlflow_refusal_is_one_line(results, tmp_path, monkeypatch) -> None:
    pytest.importorskip("mlflow")
    from lmcritic.errors import ConfigError

    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with pytest.raises(ConfigError, match="MLflow refused the run: .*MLFLOW_ALLOW_FILE_STORE"):
        results.log_to("mlflow", tracking_uri=str(tmp_path / "mlruns"))


def test_wandb_offline(results, tmp_path, monkeypatch) -> None:
    try:
        import wandb  # noqa: F401
    except ImportError:
        pytest.skip("wandb is not installed (pip install 'lmcritic[wandb]')")
    monkeypatch.setenv("WANDB_SILENT", "true")
    folder = Path(results.log_to("wandb", dir=str(tmp_path), mode="offline"))
    assert folder.is_dir() and folder.name.startswith("offline-run-") and tmp_path in folder.parents
    (table,) = folder.glob("files/media/table/lmcritic/findings_*.table.json")
    data = json.loads(table.read_text())
    rows = [dict(zip(data["columns"], row)) for row in data["data"]]
    acc = next(r for r in rows if r["key"] == "sst2:acc")
    est = results.finding("sst2:acc").estimate
    assert acc["verdict"] == "fail" and acc["value"] == pytest.approx(est.value) and acc["n"] == est.n
    assert acc["ci_low"] == pytest.approx(est.ci_low) and len(rows) == len(results.findings)


def test_unknown_tracker_and_cli(results, tmp_path, monkeypatch, capsys) -> None:
    from lmcritic.cli.main import main
    from lmcritic.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="did you mean 'mlflow'"):
        results.log_to("mlfow")
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    store = str(results.store.path)
    assert main(["track", results.run_id, "--to", "mlflow", "--uri", str(tmp_path / "cli"), "--store", store]) == 0
    assert capsys.readouterr().out.startswith("runs:/")
