"""A stored run as a Python object: what ``lmcritic.scan`` and ``lmcritic.run`` return.

Everything is read from the run store, so a :class:`Results` says exactly what ``lmcritic show`` and the
report say, and ``Results.load(run)`` gives the same object for any stored run (from the command line or
from Python). In a notebook it displays itself as the report's scorecard (``_repr_html_``); the full
report, the cases as a DataFrame, the diagnosis, trackers and mitigation are one method each.
"""
from __future__ import annotations

from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmcritic.errors import UnknownNameError, did_you_mean

if TYPE_CHECKING:
    from lmcritic.backends.base import Backend
    from lmcritic.probes.base import Finding, Record
    from lmcritic.runner import RunOutcome
    from lmcritic.store.runs import RunInfo, RunStore

REPORT_FORMATS = {".html": "html", ".htm": "html", ".md": "md", ".json": "json"}


class Results:
    """One run of a store. ``model`` (the backend it ran on, when it is still loaded) lets ``diagnose``,
    ``resume`` and ``mitigate`` reuse it instead of loading it again."""

    def __init__(self, store: "RunStore", run_id: str, *, model: "Backend | None" = None,
                 outcome: "RunOutcome | None" = None, cache_path: str | Path | None = None) -> None:
        self.store = store
        self.run_id = store.resolve(run_id)
        self.model = model
        self.outcome = outcome
        self.cache_path = Path(cache_path) if cache_path else None

    @classmethod
    def load(cls, run: str = "latest", store: "str | Path | RunStore | None" = None) -> "Results":
        """A stored run: its id, a unique prefix, ``latest`` or ``latest~N``, from ``store`` (a path or an open
        :class:`RunStore`; default ``$LMCRITIC_HOME/runs.sqlite``, which must exist)."""
        return cls(open_store(store, create=False), run)

    # -- the run ----------------------------------------------------------------------------------------
    @property
    def info(self) -> "RunInfo":
        return self.store.get_run(self.run_id)

    @property
    def status(self) -> str:
        """``done``, ``partial``, ``failed``, ``interrupted`` (or ``running`` while another process runs it)."""
        return self.info.status

    @property
    def message(self) -> str:
        """Why the run did not end ``done`` (empty when it did)."""
        return self.info.error or ""

    @property
    def errors(self) -> list[str]:
        """``KEY: reason`` for each probe or stage that failed or had failing cases."""
        return [f"{p.probe_key}: {p.reason}" for p in self.store.probe_runs(self.run_id)
                if p.status in ("failed", "partial")]

    @property
    def skipped(self) -> list[str]:
        """``KEY: reason`` for each probe that could not run on this model (decided before running)."""
        return [f"{p.probe_key}: {p.reason}" for p in self.store.probe_runs(self.run_id) if p.status == "skipped"]

    @property
    def model_name(self) -> str:
        model = self.info.spec.get("model") or {}
        return str(model.get("name", "?")) if isinstance(model, dict) else str(model)

    # -- findings and cases -----------------------------------------------------------------------------
    @property
    def findings(self) -> list["Finding"]:
        """Every finding, in plan order (``failing()`` ranks the failures)."""
        return self.store.findings(self.run_id)

    def failing(self, min_severity: str = "info") -> list["Finding"]:
        """Failing findings at or above ``min_severity`` (info < low < medium < high < critical), worst first."""
        from lmcritic.probes.base import Severity

        floor = Severity(min_severity).rank
        fails = [f for f in self.findings if f.verdict.value == "fail" and f.severity.rank >= floor]
        return sorted(fails, key=lambda f: -f.severity.rank)

    def finding(self, key: str) -> "Finding":
        """The finding ``PROBE:NAME`` (e.g. ``performance.sst2:accuracy``), with a did-you-mean when absent."""
        by_key = {finding_key(f): f for f in self.findings}
        if key in by_key:
            return by_key[key]
        hint = did_you_mean(key, by_key, f"{len(by_key)} findings: see .findings", n=3, cutoff=0.5)
        raise UnknownNameError(f"run {self.run_id} has no finding {key!r}", hint)

    def cases(self, probe: str) -> Any:
        """The stored cases of ``probe`` (a probe key, or a stage output such as ``interpret.explanations``):
        a pandas DataFrame, one row per case and one column per field (``text``, ``prediction``,
        ``scores.correct``, ``tags.group``, ...), when pandas is installed; else the list of :class:`Record`."""
        keys = self.store.record_keys(self.run_id)
        if probe not in keys:
            hint = did_you_mean(probe, keys, f"stored: {', '.join(keys) or 'none'}", n=3, cutoff=0.5)
            raise UnknownNameError(f"run {self.run_id} has no cases for {probe!r}", hint)
        records = self.store.records(self.run_id, probe)
        try:
            import pandas as pd
        except ImportError:
            return records
        return pd.DataFrame([flat_record(r) for r in records])

    # -- more work on the run ------------------------------------------------------------------------------
    def diagnose(self, train: str | Path | None = None, reference: str | Path | None = None,
                 **config: Any) -> Any:
        """Why the model fails (``lmcritic diagnose``): defects, tested causes with evidence, mitigations,
        stored in this run, so the report and ``lmcritic diagnose RUN --stored`` show them. ``config``:
        :class:`~lmcritic.diagnose.api.DiagnoseConfig` fields. Returns the
        :class:`~lmcritic.diagnose.graph.DefectGraph` (``lmcritic.diagnose.graph.render_text(graph)`` prints it)."""
        from lmcritic.diagnose.api import DiagnoseConfig, diagnose_run

        model = self._cached_model()
        return diagnose_run(self.store, self.run_id, model=model, train=train, reference=reference,
                            config=DiagnoseConfig(**config), cache_path=self.cache_path)

    def mitigate(self, method: str = "auto", **kwargs: Any) -> Any:
        """Mitigate a diagnosed defect and re-verify it: ``lmcritic.mitigate.apply`` on this run (``kwargs``: its
        options, e.g. ``train=``, ``defect=``); returns its ``MitigationOutcome``."""
        from lmcritic.mitigate.api import apply

        return apply(self.store, self.run_id, method=method, **kwargs)

    def resume(self, model: object = None, *, budget: int | dict[str, Any] | None = None, progress: bool = True,
               strict: bool = False) -> "Results":
        """Continue this run where it stopped: failed probes and cases are retried, finished work is reused
        (``budget``: a new one, e.g. after a budget stop; else the run's own)."""
        from lmcritic.api import run

        return run(resume=self.run_id, model=model if model is not None else self.model, budget=budget,
                   store=self.store, cache=self.cache_path, progress=progress, strict=strict)

    def compare(self, other: "Results | str") -> Any:
        """Paired per-metric changes from this run (A) to ``other`` (B), as ``lmcritic diff`` computes them
        (both runs must be in this store)."""
        from lmcritic.report.compare import compare_runs

        return compare_runs(self.store, self.run_id, other.run_id if isinstance(other, Results) else other)

    def log_to(self, tracker: str, **config: Any) -> str:
        """Send the findings (estimates with CIs) and the report to an experiment tracker (``mlflow``,
        ``wandb``); ``config`` builds the tracker. Returns where it went (a run URI or folder)."""
        from lmcritic.trackers import TRACKERS

        return TRACKERS.get(tracker)(**config).log(self)

    # -- reports ----------------------------------------------------------------------------------------
    def report(self, path: str | Path | None = None, max_cases: int = 200) -> Path:
        """Write the report; returns the file. No ``path``: ``report.html`` (with its ``.md``/``.json`` twins)
        under ``$LMCRITIC_HOME/reports/RUN/``; a ``.html``/``.md``/``.json`` path: that format there; a folder:
        all three in it."""
        from lmcritic.report.markdown import render_report, write_file, write_reports

        target = Path(path).expanduser() if path is not None else None
        if target is None or target.suffix.lower() not in REPORT_FORMATS:
            return write_reports(self.store, self.run_id, target, max_cases=max_cases)["html"]
        return write_file(target, render_report(self.store, self.run_id, REPORT_FORMATS[target.suffix.lower()],
                                                max_cases))

    def to_dict(self, max_cases: int = 200) -> dict[str, Any]:
        """The report document (``lmcritic report --format json``): header, scorecard, findings, cases."""
        from lmcritic.report.document import run_document

        return run_document(self.store, self.run_id, max_cases=max_cases)

    def to_json(self, max_cases: int = 200) -> str:
        from lmcritic.report.markdown import render_json

        return render_json(self.to_dict(max_cases))

    def _repr_html_(self) -> str:
        from lmcritic.report.inline import render_inline_html

        return render_inline_html(self.to_dict(max_cases=0))

    def _repr_markdown_(self) -> str:
        from lmcritic.report.inline import render_inline_markdown

        return render_inline_markdown(self.to_dict(max_cases=0))

    def __repr__(self) -> str:
        findings = self.findings
        fails = sum(f.verdict.value == "fail" for f in findings)
        return (f"<lmcritic Results run {self.run_id}: {self.model_name}, {self.status}, "
                f"{fails} of {len(findings)} findings fail>")

    def _cached_model(self) -> Any:
        """The live model behind the shared call cache (so diagnosis reuses the run's answers), or None: then
        diagnosis loads the run's model from its spec, or skips the tests that need it."""
        if self.model is None:
            return None
        from lmcritic.runner import lmcritic_home
        from lmcritic.store.cache import CachedBackend

        return CachedBackend(self.model, self.cache_path or lmcritic_home() / "cache.sqlite")


def finding_key(f: "Finding") -> str:
    """How tests, trackers and ``Results.finding`` name a finding: ``PROBE:NAME``."""
    return f"{f.probe}:{f.name}"


# the typed fields every later stage reads come first; the probe's own payloads (input, output) last
COLUMN_ORDER = ("case_id", "passed", "text", "target", "prediction", "group", "label_probs", "scores", "tags",
                "explain", "explain_variant", "input", "output")


def flat_record(r: "Record") -> dict[str, Any]:
    """One record as one flat row: plain fields as they are, mappings (and typed values) as ``field.key``;
    the typed fields (``text``, ``target``, ``prediction``, ...) first."""
    from lmcritic._serde import to_jsonable

    names = [f.name for f in fields(r)]
    row: dict[str, Any] = {}
    for name in [n for n in COLUMN_ORDER if n in names] + [n for n in names if n not in COLUMN_ORDER]:
        value = getattr(r, name)
        value = to_jsonable(value) if is_dataclass(value) else value
        if isinstance(value, dict):
            row.update({f"{name}.{k}": v for k, v in value.items()})
        else:
            row[name] = value
    return row


def open_store(store: "str | Path | RunStore | None", create: bool = True) -> "RunStore":
    """An open store from a path (``create=False``: it must exist), or the store itself, or the default one."""
    from lmcritic.runner import lmcritic_home
    from lmcritic.store.runs import RunStore

    if isinstance(store, RunStore):
        return store
    if store is None:
        return RunStore(lmcritic_home() / "runs.sqlite", create=create)
    return RunStore(store, create=create)
