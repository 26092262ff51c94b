"""The run store's SQLite schema as migration steps (``lmcritic.store._sqlite.migrate`` applies them in order).

Step i upgrades schema version i to i + 1. Append steps; never edit a shipped one.
"""
from __future__ import annotations

from lmcritic.store import _sqlite

_V1 = """
CREATE TABLE runs (id TEXT PRIMARY KEY, name TEXT, created REAL NOT NULL, finished REAL, status TEXT NOT NULL,
    spec_json TEXT NOT NULL, model_json TEXT NOT NULL, model_fingerprint TEXT NOT NULL,
    versions_json TEXT NOT NULL, timings_json TEXT, summary_json TEXT, error TEXT);
CREATE INDEX runs_created ON runs (created);
CREATE TABLE probe_runs (run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE, probe_key TEXT NOT NULL,
    probe_name TEXT NOT NULL, status TEXT NOT NULL, reason TEXT, started REAL, finished REAL, elapsed_s REAL,
    n_cases INTEGER, PRIMARY KEY (run_id, probe_key));
CREATE TABLE cases (run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE, probe_key TEXT NOT NULL,
    case_id TEXT NOT NULL, seq INTEGER NOT NULL, input_json TEXT NOT NULL, output_json TEXT NOT NULL,
    scores_json TEXT NOT NULL, tags_json TEXT NOT NULL, passed INTEGER, created REAL NOT NULL,
    PRIMARY KEY (run_id, probe_key, case_id));
CREATE INDEX cases_seq ON cases (run_id, probe_key, seq);
CREATE TABLE case_tags (run_id TEXT NOT NULL, probe_key TEXT NOT NULL, case_id TEXT NOT NULL, key TEXT NOT NULL,
    value, PRIMARY KEY (run_id, probe_key, case_id, key),
    FOREIGN KEY (run_id, probe_key, case_id) REFERENCES cases (run_id, probe_key, case_id) ON DELETE CASCADE);
CREATE INDEX case_tags_key_value ON case_tags (key, value);
CREATE TABLE findings (run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE, probe_key TEXT NOT NULL,
    seq INTEGER NOT NULL, probe TEXT NOT NULL, name TEXT NOT NULL, verdict TEXT NOT NULL, severity TEXT NOT NULL,
    summary TEXT NOT NULL, estimate_json TEXT, evidence_json TEXT NOT NULL, details_json TEXT NOT NULL,
    PRIMARY KEY (run_id, probe_key, seq))
"""
# Production monitoring (lmcritic.store.monitor): ingested requests, read progress per log file, row errors,
# per-request scores and the per-text score/embedding caches.
_MONITOR_V1 = """
CREATE TABLE monitor_sources (path TEXT PRIMARY KEY, format TEXT NOT NULL, offset INTEGER NOT NULL,
    line INTEGER NOT NULL, head_hash TEXT NOT NULL, header_json TEXT, updated REAL NOT NULL);
CREATE TABLE monitor_requests (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, ts REAL NOT NULL,
    prompt TEXT NOT NULL, response TEXT, model TEXT, version TEXT, conversation_id TEXT, request_id TEXT,
    thumb INTEGER, feedback_score REAL, feedback_comment TEXT, expected TEXT, metadata_json TEXT NOT NULL,
    source TEXT, line INTEGER, ingested REAL NOT NULL);
CREATE INDEX monitor_requests_ts ON monitor_requests (ts);
CREATE TABLE monitor_errors (source TEXT NOT NULL, line INTEGER NOT NULL, kind TEXT NOT NULL,
    message TEXT NOT NULL, excerpt TEXT, created REAL NOT NULL, PRIMARY KEY (source, line, kind));
CREATE TABLE monitor_scores (request_id INTEGER PRIMARY KEY REFERENCES monitor_requests (id) ON DELETE CASCADE,
    config TEXT NOT NULL, scores_json TEXT NOT NULL);
CREATE INDEX monitor_scores_config ON monitor_scores (config);
CREATE TABLE monitor_text_cache (scorer TEXT NOT NULL, text_hash TEXT NOT NULL, value_json TEXT NOT NULL,
    PRIMARY KEY (scorer, text_hash));
CREATE TABLE monitor_embeddings (text_hash TEXT PRIMARY KEY, vector BLOB NOT NULL)
"""
# Step 3: the process that runs a run (pid, host, process start time), so a dead run is not left "running"
_OWNER_V3 = """
ALTER TABLE runs ADD COLUMN pid INTEGER;
ALTER TABLE runs ADD COLUMN host TEXT;
ALTER TABLE runs ADD COLUMN pid_start TEXT
"""
# Step 4: the typed record fields (text, target, prediction, ...) as one JSON column; NULL on rows stored before,
# whose fields ``_compat.legacy_fields`` derives when they are read.
_FIELDS_V4 = "ALTER TABLE cases ADD COLUMN fields_json TEXT"
# Step 5: stages in their own table (they were probe rows keyed "stage:NAME"; their data-quality findings move to
# "stage.NAME"), and a kind on probe rows: "probe" for the spec's probes, "stage" for the records and findings a
# stage (or its command) wrote.
_STAGES_V5 = """
CREATE TABLE stage_runs (run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE, stage TEXT NOT NULL,
    status TEXT NOT NULL, reason TEXT, started REAL, finished REAL, elapsed_s REAL, PRIMARY KEY (run_id, stage));
INSERT INTO stage_runs SELECT run_id, substr(probe_key, 7), status, reason, started, finished, elapsed_s
    FROM probe_runs WHERE probe_key LIKE 'stage:%' ORDER BY rowid;
DELETE FROM probe_runs WHERE probe_key LIKE 'stage:%';
UPDATE findings SET probe_key = 'stage.' || substr(probe_key, 7), probe = 'stage.' || substr(probe, 7)
    WHERE probe_key LIKE 'stage:%';
ALTER TABLE probe_runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'probe';
UPDATE probe_runs SET kind = 'stage' WHERE probe_key IN ('interpret.explanations', 'diagnose')
    OR probe_key LIKE 'diagnose.%'
"""
# The migration hook: step i upgrades schema version i to i + 1. Append steps; never edit a shipped one.
# Step 2 adds the production-monitoring tables (``lmcritic.store.monitor``), step 3 the run's process, step 4 the
# typed record fields, step 5 the stage table.
MIGRATIONS: tuple[_sqlite.Migration, ...] = (_V1, _MONITOR_V1, _OWNER_V3, _FIELDS_V4, _STAGES_V5)
SCHEMA_VERSION = len(MIGRATIONS)
