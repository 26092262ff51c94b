"""``lmcritic monitor ingest``: every line ends up stored, a counted duplicate, a named error with file:line, or
held back (an unterminated last line) — never silently lost; re-runs add nothing twice; appends add only the new."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmcritic.errors import ConfigError
from lmcritic.monitor.ingest import ingest
from lmcritic.monitor.schema import RowError, normalize, parse_map, parse_timestamp
from lmcritic.store.monitor import MonitorStore


def row(i: int, **extra) -> dict:
    return {"timestamp": 1_790_000_000 + i, "prompt": f"question {i}", "response": f"answer {i}", **extra}


def write(path: Path, lines: list[bytes | dict]) -> Path:
    with path.open("wb") as f:
        for line in lines:
            f.write(line if isinstance(line, bytes) else (json.dumps(line) + "\n").encode())
    return path


@pytest.fixture
def store(tmp_path: Path) -> MonitorStore:
    with MonitorStore(tmp_path / "runs.sqlite") as s:
        yield s


def test_every_bad_line_is_counted_named_and_located(tmp_path: Path, store: MonitorStore) -> None:
    log = write(tmp_path / "log.jsonl", [
        row(1),
        b'{"timestamp": 1790000002, "prompt": "cut here", "respo\n',  # truncated JSON line (line 2)
        row(3, response=7),  # wrong type
        {"timestamp": 1790000004, "prompt": "no response field"},  # missing field
        b'{"timestamp": 1790000005, "prompt": "' + b"x" * 5000 + b'", "response": "y"}\n',  # huge line
        b'{"timestamp": 1790000006, "prompt": "caf\xe9", "response": "y"}\n',  # invalid UTF-8 (latin-1 byte)
        b"[1, 2, 3]\n",  # not an object
        row(8, timestamp="last tuesday"),  # bad timestamp
        b"{not json at all}\n",  # invalid JSON
        row(1),  # the same request again: a duplicate
        row(11),
    ])
    report = ingest(store, [log], max_line_bytes=2000)
    f = report.files[0]
    assert f.accounted and f.read == 11 and f.stored == 2 and f.duplicates == 1
    assert f.errors == {"truncated_json": 1, "wrong_type": 1, "missing_field": 1, "line_too_long": 1,
                        "invalid_utf8": 1, "not_an_object": 1, "bad_timestamp": 1, "invalid_json": 1}
    located = {(x.line, x.kind) for x in store.failures(None)}
    assert {(2, "truncated_json"), (3, "wrong_type"), (4, "missing_field"), (5, "line_too_long"),
            (6, "invalid_utf8"), (7, "not_an_object"), (8, "bad_timestamp"), (9, "invalid_json"),
            (10, "duplicate")} == located
    assert all(x.source == str(log.resolve()) for x in store.failures(None))
    assert store.count() == 2
    assert any("log.jsonl:2: truncated_json" in line for line in report.lines())


def test_rerun_adds_nothing_and_an_append_adds_only_new_lines(tmp_path: Path, store: MonitorStore) -> None:
    log = write(tmp_path / "log.jsonl", [row(i) for i in range(5)])
    assert ingest(store, [log]).total("stored") == 5
    again = ingest(store, [log])
    assert again.total("read") == 0 and store.count() == 5
    with log.open("ab") as fh:
        fh.write((json.dumps(row(5)) + "\n").encode())
    more = ingest(store, [log])
    assert more.total("read") == 1 and more.total("stored") == 1 and store.count() == 6


def test_a_copy_of_a_file_is_all_duplicates(tmp_path: Path, store: MonitorStore) -> None:
    rows = [row(i) for i in range(4)]
    a, b = write(tmp_path / "a.jsonl", rows), write(tmp_path / "b.jsonl", rows)
    ingest(store, [a])
    report = ingest(store, [b])
    assert report.total("duplicates") == 4 and report.total("stored") == 0 and store.count() == 4
    assert store.failure_counts() == {"duplicate": 4}


def test_unterminated_last_line_is_held_until_complete(tmp_path: Path, store: MonitorStore) -> None:
    log = write(tmp_path / "log.jsonl", [row(0), b'{"timestamp": 1790000001, "prompt": "p", "resp'])
    first = ingest(store, [log])
    assert first.files[0].held == 1 and first.files[0].stored == 1 and not store.failures(None)
    with log.open("ab") as fh:
        fh.write(b'onse": "r"}\n')
    second = ingest(store, [log])
    assert second.total("stored") == 1 and store.count() == 2 and not second.files[0].restarted
    write(tmp_path / "t.jsonl", [b'{"timestamp": 1, "prompt": "p", "resp'])
    final = ingest(store, [tmp_path / "t.jsonl"], final=True)
    assert final.errors == {"truncated_json": 1}


def test_rotated_file_is_read_again_and_old_rows_are_duplicates(tmp_path: Path, store: MonitorStore) -> None:
    log = write(tmp_path / "log.jsonl", [row(i) for i in range(3)])
    ingest(store, [log])
    write(log, [row(9)] + [row(i) for i in range(3)])  # a new head: rotated/rewritten
    report = ingest(store, [log])
    assert report.files[0].restarted and report.total("stored") == 1 and report.total("duplicates") == 3


def test_csv_with_quoted_newlines_map_and_metadata(tmp_path: Path, store: MonitorStore) -> None:
    csv_path = tmp_path / "log.csv"
    csv_path.write_text('ts,question,answer,thumb,region\n'
                        '2026-11-01T10:00:00Z,"line one\nline two","ok",up,eu\n'
                        '2026-11-01T10:01:00Z,plain,"with ""quotes""",down,us\n'
                        '2026-11-01T10:02:00Z,too,many,fields,here,extra\n', encoding="utf-8")
    report = ingest(store, [csv_path], parse_map(["timestamp=ts", "prompt=question", "response=answer",
                                                  "feedback=thumb"]))
    assert report.total("stored") == 2 and report.errors == {"bad_csv_row": 1}
    assert store.failures(None)[0].line == 5  # the record after a two-line one starts on line 5
    (first, second), = list(store.iter_requests())
    assert first.record.prompt == "line one\nline two" and first.record.thumb == 1
    assert first.record.metadata == {"region": "eu"} and second.record.response == 'with "quotes"'
    assert second.record.thumb == -1 and first.record.timestamp == parse_timestamp("2026-11-01T10:00:00+00:00")


def test_parquet_log(tmp_path: Path, store: MonitorStore) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.table({"timestamp": [1_790_000_000 + i for i in range(5)], "prompt": [f"p{i}" for i in range(5)],
                      "response": [f"r{i}" for i in range(4)] + [None], "score": [1.0, 2.0, None, 4.0, 5.0]})
    pq.write_table(table, tmp_path / "log.parquet")
    report = ingest(store, [tmp_path / "log.parquet"], parse_map(["feedback_score=score"]))
    assert report.total("stored") == 5 and ingest(store, [tmp_path / "log.parquet"]).total("read") == 0
    scores = [r.record.feedback_score for chunk in store.iter_requests() for r in chunk]
    assert scores == [1.0, 2.0, None, 4.0, 5.0]


def test_openai_chat_rows() -> None:
    rec = normalize({"created": 1_790_000_000, "messages": [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": [{"type": "text", "text": "hi?"}]},
        {"role": "assistant", "content": "hello"}], "feedback": {"thumbs": False, "comment": "rude"},
        "metadata": {"app": "x"}}, parse_map(["timestamp=created"]))
    assert (rec.prompt, rec.response, rec.thumb, rec.feedback_comment) == ("hi?", "hello", -1, "rude")
    assert rec.metadata == {"app": "x"}
    reply = normalize({"timestamp": "1790000000000", "messages": [{"role": "user", "content": "q"}],
                       "response": {"choices": [{"message": {"role": "assistant", "content": "a"}}]}})
    assert reply.response == "a" and reply.timestamp == 1_790_000_000.0  # milliseconds
    with pytest.raises(RowError) as err:
        normalize({"timestamp": 1, "messages": [{"role": "system", "content": "only"}], "response": "x"})
    assert err.value.kind == "missing_field"


def test_bad_map_and_missing_file(tmp_path: Path, store: MonitorStore) -> None:
    with pytest.raises(ConfigError, match="did you mean 'prompt'"):
        parse_map(["promt=question"])
    with pytest.raises(ConfigError, match="not found"):
        ingest(store, [tmp_path / "nope.jsonl"])


def test_gzipped_jsonl(tmp_path: Path, store: MonitorStore) -> None:
    import gzip

    path = tmp_path / "log.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(row(i)) + "\n" for i in range(7))
    assert ingest(store, [path]).total("stored") == 7
    assert ingest(store, [path]).total("read") == 0 and store.count() == 7
