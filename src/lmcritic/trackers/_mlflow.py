"""MLflow: every finding's estimate, CI bounds and n as metrics, its verdict as a param, the report as artifacts.

Keys are ``PROBE/NAME`` (``performance.sst2/accuracy``, ``...accuracy.ci_low``, ``.ci_high``, ``.n``), so a
metric and its interval sort together in the MLflow UI. Logging goes through an explicit
``MlflowClient`` (the user's global tracking URI and active run are left as they are), into the active run
when there is one and no ``tracking_uri`` was given, else into a new run named after the lmcritic run.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmcritic._crashlog import one_line
from lmcritic.errors import ConfigError
from lmcritic.trackers import Tracker, finding_rows, metric_key, missing_client, run_params

if TYPE_CHECKING:
    from lmcritic.results import Results

MAX_PARAMS = 100  # per log_batch call (MLflow's limit)
MAX_METRICS = 1000
MAX_PARAM_CHARS = 6000


class MlflowTracker(Tracker):
    """``tracking_uri``: an MLflow URI, or a folder (a file store, which MLflow 3 serves only with
    ``MLFLOW_ALLOW_FILE_STORE=true``); None: MLflow's own default (``MLFLOW_TRACKING_URI``, else
    ``sqlite:///mlflow.db``). ``experiment``: the experiment of a new run."""

    name = "mlflow"

    def __init__(self, tracking_uri: str | None = None, experiment: str = "lmcritic",
                 run_name: str | None = None, report: bool = True) -> None:
        try:
            import mlflow
        except ImportError:
            raise missing_client("mlflow", "mlflow") from None
        self.mlflow = mlflow
        self.uri = _uri(tracking_uri) if tracking_uri else None
        self.experiment, self.run_name, self.report = experiment, run_name, report

    def log(self, results: "Results") -> str:
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.exceptions import MlflowException

        try:
            client = self.mlflow.MlflowClient(tracking_uri=self.uri)
            run_id, owned = self._run(client, results)
            now = int(time.time() * 1000)
            metrics = [Metric(k, float(v), now, 0) for k, v in _metrics(results).items()]
            params = [Param(k, v[:MAX_PARAM_CHARS]) for k, v in _params(results).items()]
            tags = [RunTag("lmcritic.run_id", results.run_id), RunTag("lmcritic.status", results.status)]
            client.log_batch(run_id, tags=tags)
            for i in range(0, len(params), MAX_PARAMS):
                client.log_batch(run_id, params=params[i:i + MAX_PARAMS])
            for i in range(0, len(metrics), MAX_METRICS):
                client.log_batch(run_id, metrics=metrics[i:i + MAX_METRICS])
            if self.report:
                self._artifacts(client, run_id, results)
            if owned:
                client.set_terminated(run_id, "FINISHED" if results.status == "done" else "FAILED")
        except MlflowException as err:
            raise ConfigError(f"MLflow refused the run: {one_line(err)}",
                              "check tracking_uri (e.g. sqlite:///mlflow.db, or a folder with "
                              "MLFLOW_ALLOW_FILE_STORE=true)") from None
        return f"runs:/{run_id}"

    def _run(self, client: Any, results: "Results") -> tuple[str, bool]:
        """(the MLflow run to log into, whether this tracker started it)."""
        active = self.mlflow.active_run()
        if active is not None and self.uri is None:
            return active.info.run_id, False
        exp = client.get_experiment_by_name(self.experiment)
        exp_id = exp.experiment_id if exp is not None else client.create_experiment(self.experiment)
        run = client.create_run(exp_id, run_name=self.run_name or f"lmcritic {results.run_id}")
        return run.info.run_id, True

    def _artifacts(self, client: Any, run_id: str, results: "Results") -> None:
        with tempfile.TemporaryDirectory(prefix="lmcritic-mlflow-") as tmp:
            results.report(Path(tmp))  # report.html, report.md, report.json
            client.log_artifacts(run_id, tmp, "lmcritic")


def _metrics(results: "Results") -> dict[str, float]:
    out: dict[str, float] = {}
    for row in finding_rows(results):
        if row["value"] is None:
            continue
        for field, suffix in (("value", ""), ("ci_low", ".ci_low"), ("ci_high", ".ci_high"), ("n", ".n")):
            if row[field] is not None:
                out[_unique(out, metric_key(row["probe"], row["name"], suffix))] = row[field]
    return out


def _params(results: "Results") -> dict[str, str]:
    out = {f"lmcritic/{k}": v for k, v in run_params(results).items()}
    for row in finding_rows(results):
        out[_unique(out, metric_key(row["probe"], row["name"], ".verdict"))] = f"{row['verdict']} ({row['severity']})"
    return out


def _unique(taken: dict[str, Any], key: str) -> str:
    """Two findings whose names differ only in characters MLflow refuses must not overwrite each other."""
    candidate, i = key, 2
    while candidate in taken:
        candidate, i = f"{key}_{i}", i + 1
    return candidate


def _uri(value: str) -> str:
    """A folder becomes a ``file:`` URI; anything with a scheme is used as it is."""
    if "://" in value or value.startswith(("file:", "databricks")):
        return value
    return Path(value).expanduser().resolve().as_uri()

