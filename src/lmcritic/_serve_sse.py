"""Server-sent events for ``stream=true``: OpenAI-style chunks, the ``data: [DONE]`` end, and reassembly.

lmcritic's backends produce a whole answer per call, so ``serve`` streams the finished answer as one chunk
per generated token (per word when no token split is known); the proxy passes an upstream's chunks through as
they arrive. Either way :class:`Reassembler` rebuilds the full reply from the chunks for the traffic log.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

_PIECE = re.compile(r"\s*\S+|\s+")


@dataclass
class SSE:
    """A streamed reply: ``events`` are JSON chunks; ``on_done`` gets the reassembled reply (for logging)."""

    events: Iterable[dict[str, Any] | bytes]
    on_done: Any = None
    raw: bool = False  # events are upstream bytes, passed through as they come
    meta: dict[str, Any] | None = None  # what a guard did, for the traffic log


def encode(event: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(event, ensure_ascii=False).encode("utf-8") + b"\n\n"


DONE = b"data: [DONE]\n\n"


def chunks(reply: dict[str, Any], include_usage: bool = False) -> Iterator[dict[str, Any]]:
    """The chunks of a finished (non-streamed) reply, as an OpenAI server would have streamed it."""
    chat = reply["object"] == "chat.completion"
    base = {"id": reply["id"], "object": "chat.completion.chunk" if chat else "text_completion",
            "created": reply["created"], "model": reply["model"]}
    for choice in reply["choices"]:
        yield from _choice_chunks(base, choice, chat)
    if include_usage:
        yield {**base, "choices": [], "usage": reply.get("usage")}


def _choice_chunks(base: dict, choice: dict, chat: bool) -> Iterator[dict[str, Any]]:
    i = choice["index"]
    if chat:
        yield {**base, "choices": [{"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                                    "finish_reason": None}]}
    for piece, lp in _pieces(choice, chat):
        if chat:
            c = {"index": i, "delta": {"content": piece}, "logprobs": {"content": lp} if lp else None,
                 "finish_reason": None}
        else:
            c = {"index": i, "text": piece, "logprobs": lp, "finish_reason": None}
        yield {**base, "choices": [c]}
    end = {"index": i, "delta": {}, "logprobs": None} if chat else {"index": i, "text": "", "logprobs": None}
    yield {**base, "choices": [{**end, "finish_reason": choice.get("finish_reason")}]}


def _pieces(choice: dict, chat: bool) -> Iterator[tuple[str, Any]]:
    text = choice["message"]["content"] if chat else choice["text"]
    lps = choice.get("logprobs")
    if chat and lps and lps.get("content"):
        for entry in lps["content"]:
            yield entry["token"], [entry]
        return
    if not chat and lps and lps.get("tokens"):
        for j, tok in enumerate(lps["tokens"]):
            yield tok, {k: [v[j]] for k, v in lps.items() if isinstance(v, list) and len(v) == len(lps["tokens"])}
        return
    for m in _PIECE.finditer(text or ""):
        yield m.group(0), None


@dataclass
class Reassembler:
    """Feed it chunks (dicts); ``reply()`` is the non-streamed equivalent (text per choice, finish reasons)."""

    texts: dict[int, list[str]] = field(default_factory=dict)
    finish: dict[int, Any] = field(default_factory=dict)
    head: dict[str, Any] = field(default_factory=dict)
    usage: Any = None

    def feed(self, chunk: dict[str, Any]) -> None:
        if not self.head:
            self.head = {k: chunk.get(k) for k in ("id", "created", "model", "object")}
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for c in chunk.get("choices") or ():
            i = int(c.get("index", 0))
            piece = (c.get("delta") or {}).get("content") if "delta" in c else c.get("text")
            if isinstance(piece, str):
                self.texts.setdefault(i, []).append(piece)
            if c.get("finish_reason") is not None:
                self.finish[i] = c["finish_reason"]

    def feed_bytes(self, data: bytes, buffer: bytearray) -> None:
        """Parse upstream SSE bytes (``data: {...}`` lines; partial lines wait in ``buffer``)."""
        buffer.extend(data)
        while b"\n" in buffer:
            line, _, rest = bytes(buffer).partition(b"\n")
            buffer[:] = rest
            line = line.strip()
            if line.startswith(b"data:") and line[5:].strip() not in (b"", b"[DONE]"):
                try:
                    self.feed(json.loads(line[5:]))
                except ValueError:
                    continue

    def reply(self) -> dict[str, Any]:
        chat = str(self.head.get("object", "")).startswith("chat")
        choices = []
        for i in sorted(self.texts.keys() | self.finish.keys()):
            text = "".join(self.texts.get(i, []))
            choices.append({"index": i, "finish_reason": self.finish.get(i),
                            **({"message": {"role": "assistant", "content": text}} if chat else {"text": text})})
        obj = "chat.completion" if chat else "text_completion"
        return {**self.head, "object": obj, "choices": choices, "usage": self.usage}


def write_stream(handler: Any, sse: SSE) -> tuple[int, dict[str, Any]]:
    """Write server-sent events on an ``http.server`` handler as they come; returns bytes sent and the
    reassembled reply (a client that hangs up ends the stream; what it got is still logged)."""
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Cache-Control", "no-cache")
    handler.end_headers()
    handler.close_connection = True
    whole, buffer, size = Reassembler(), bytearray(), 0
    try:
        for event in sse.events:
            data = event if isinstance(event, bytes) else encode(event)
            if isinstance(event, bytes):
                whole.feed_bytes(event, buffer)
            else:
                whole.feed(event)
            handler.wfile.write(data)
            handler.wfile.flush()
            size += len(data)
        if not sse.raw:
            handler.wfile.write(DONE)
            size += len(DONE)
    except (BrokenPipeError, ConnectionResetError):
        handler.log_message("%s", "client disconnected during a stream")
    reply = whole.reply()
    if sse.on_done is not None:
        sse.on_done(reply)
    return size, reply
