"""``serve --log PATH``: one JSON line per request, in the format ``lmcritic monitor ingest`` reads.

Each line carries the timestamp, the prompt (``prompt`` for /v1/completions, the chat ``messages`` otherwise),
the response (``null`` when the request failed), the model, the reply id as ``request_id``, and metadata:
endpoint, HTTP status, latency, whether it was streamed, token usage and what a guard did. A line is written
with one ``write`` under a lock and flushed, so a concurrent ``monitor ingest`` sees whole lines (or holds back
an unterminated last one). Authorization headers are never logged.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any


class TrafficLog:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._fh = self.path.open("a", encoding="utf-8")

    def record(self, endpoint: str, request: dict[str, Any] | None, status: int, reply: dict[str, Any] | None,
               latency_s: float, stream: bool = False, extra: dict[str, Any] | None = None) -> None:
        if not isinstance(request, dict):
            return
        row: dict[str, Any] = {"timestamp": round(time.time(), 6)}
        if "messages" in request:
            row["messages"] = request.get("messages")
        else:
            prompt = request.get("prompt")
            row["prompt"] = prompt if isinstance(prompt, str) else json.dumps(prompt, ensure_ascii=False)
        row["response"] = _text(reply) if status < 400 else None
        row["model"] = (reply or {}).get("model") or request.get("model")
        row["request_id"] = (reply or {}).get("id")
        meta = {"endpoint": endpoint, "status": status, "latency_s": round(latency_s, 6), "stream": stream,
                "usage": (reply or {}).get("usage")}
        if status >= 400:
            meta["error"] = ((reply or {}).get("error") or {}).get("message")
        row["metadata"] = {**meta, **(extra or {})}
        line = json.dumps(row, ensure_ascii=False) + "\n"
        with self._lock:
            self._fh.write(line)
            self._fh.flush()

    def record_http(self, url_path: str, body: bytes | None, status: int, reply: object, latency_s: float,
                    stream: bool, extra: dict[str, Any] | None) -> None:
        """Log a POST to /v1/completions or /v1/chat/completions (other paths are not traffic)."""
        path = url_path.split("?", 1)[0].rstrip("/")
        if path not in ("/v1/completions", "/v1/chat/completions"):
            return
        try:
            request = json.loads(body or b"")
        except ValueError:
            request = None
        self.record(path, request, status, reply if isinstance(reply, dict) else None, latency_s, stream, extra)

    def close(self) -> None:
        with self._lock:
            self._fh.close()


def _text(reply: dict[str, Any] | None) -> str | None:
    choices = (reply or {}).get("choices") or []
    if not choices:
        return None
    first = choices[0]
    msg = first.get("message")
    text = msg.get("content") if isinstance(msg, dict) else first.get("text")
    return text if isinstance(text, str) else None
