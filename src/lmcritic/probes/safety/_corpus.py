"""Reference corpora for the memorization probe: packaged samples or the user's own files."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from lmcritic.datasets import packaged, read_lines, read_rows, skip_row
from lmcritic.errors import DataError
from lmcritic.probes.safety._common import read_jsonl, safety_file

NAMED = {"public": "public texts (licences, famous passages)", "sst2_train": "SST-2 train sample",
         "sst2_dev": "SST-2 dev sample"}


def load_corpus(spec: str) -> list[dict[str, Any]]:
    """Rows ``{"text", "source", "line"}`` from a named packaged corpus or a .jsonl/.tsv/.csv/.txt path."""
    if spec == "public":
        return [{"text": r["text"], "source": "public_texts", "line": line, "id": r.get("id", line)}
                for line, r in read_jsonl(safety_file("public_texts.jsonl"))]
    if spec in ("sst2_train", "sst2_dev"):
        name = "sst2_train_sentences.tsv" if spec == "sst2_train" else "sst2_dev_sample.tsv"
        return _table(packaged(name), spec)
    path = Path(spec)
    if path.suffix == ".jsonl":
        return [{"text": r.get("text") or r.get("prompt"), "source": str(path), "line": line, "id": line}
                for line, r in read_jsonl(path)]
    if path.suffix in (".tsv", ".csv"):
        return _table(path, str(path))
    if path.suffix == ".txt" and path.is_file():
        return [{"text": t.strip(), "source": str(path), "line": i, "id": i} for i, t in read_lines(path)]
    raise DataError(f"corpus {spec!r} is neither a known name ({', '.join(NAMED)}) nor a .jsonl/.tsv/.csv/.txt file")


def _table(path: Path, source: str) -> list[dict[str, Any]]:
    rows = []
    for line, row in read_rows(path, required=()):
        text = row.get("sentence") or row.get("text")
        if not text:
            skip_row(path, line, "needs a 'sentence' or 'text' column")
            continue
        src_line = int(row.get("train_line") or row.get("dev_line") or line)
        rows.append({"text": str(text).strip(), "source": source, "line": src_line, "id": src_line})
    return rows
