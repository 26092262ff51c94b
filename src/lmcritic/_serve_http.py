"""HTTP plumbing of ``lmcritic serve`` (stdlib ``http.server``): bind, read a bounded body, hand it to the
:class:`~lmcritic.serve.API` (or the ``--upstream`` proxy), write JSON or server-sent events, record the
traffic log (``--log``), log one line per request (never the headers).

Built for real traffic: a listen backlog of :data:`BACKLOG` (``ThreadingHTTPServer``'s default of 5 dropped
connections under a burst of 50 clients), IPv4 and IPv6 hosts, a port checked before binding, a client that
hangs up noticed while its request waits (so its model work is dropped), and no traceback ever: a failure
while handling a request is a 500 with one line, a failure while writing the reply is one log line.
"""
from __future__ import annotations

import json
import select
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lmcritic._serve_parse import APIError
from lmcritic._serve_sse import SSE, write_stream
from lmcritic.errors import ConfigError

BACKLOG = 1024  # pending connections the kernel queues (capped by net.core.somaxconn)


def check_address(host: str, port: object) -> int:
    """The address family for ``host``; a bad port or an unresolvable host is one line naming it."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"--port {port} is not a TCP port", "use 1-65535, or 0 for any free port")
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as err:
        raise ConfigError(f"--host {host!r} is not an address this machine can listen on ({err})",
                          "use 127.0.0.1, ::1, 0.0.0.0 (all IPv4) or :: (all IPv6)") from None
    return infos[0][0]


def bind(api: object, host: str, port: int, *, max_body_bytes: int, quiet: bool,
         traffic_log: object = None) -> "_Server":
    family = check_address(host, port)
    try:
        server = _Server((host, port), _Handler, family)
    except (OSError, OverflowError) as err:
        raise ConfigError(f"cannot listen on {host}:{port}: {getattr(err, 'strerror', None) or err}",
                          "pick another --port, or --port 0 for any free one") from None
    server.api, server.max_body_bytes, server.quiet = api, max_body_bytes, quiet
    server.traffic_log = traffic_log
    return server


class _Server(ThreadingHTTPServer):
    """One thread per connection; a deep listen backlog; the address family of the host."""

    request_queue_size = BACKLOG
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, family: int) -> None:
        self.address_family = family
        self.api: Any = None
        self.traffic_log: Any = None
        self.max_body_bytes, self.quiet = 0, False
        super().__init__(address, handler)

    def server_close(self) -> None:
        super().server_close()
        getattr(self.api, "close", lambda: None)()
        if self.traffic_log is not None:
            self.traffic_log.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that failed outside a request's own handling (reset, broken pipe): one line."""
        err = sys.exc_info()[1]
        if not self.quiet:
            sys.stderr.write(f"{client_address[0]} connection error: {type(err).__name__}: {err}\n")


class _Handler(BaseHTTPRequestHandler):
    server_version = "lmcritic"
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        start = time.perf_counter()
        headers: dict[str, str] = {}
        body = None
        try:
            body = self._read_body() if method == "POST" else None
            status, payload = self._handle(method, body)
        except APIError as err:
            status, payload, headers = err.status, err.body(), err.headers
        except Exception as err:  # noqa: BLE001 - never a traceback, never a dead handler
            status, payload = 500, APIError(500, f"internal error: {type(err).__name__}: {err}").body()
        extra = payload.pop("_guard", None) if isinstance(payload, dict) else getattr(payload, "meta", None)
        if isinstance(payload, SSE):
            size, reply = write_stream(self, payload)
        else:  # 499: the client left, nobody to answer
            size, reply = (self._send(status, payload, headers) if status != 499 else 0), payload
        elapsed = time.perf_counter() - start
        if self.server.traffic_log is not None and method == "POST":
            self.server.traffic_log.record_http(self.path, body, status, reply, elapsed, isinstance(payload, SSE),
                                                extra)
        self._log(f'"{method} {self.path.split("?")[0]}" {status} {size} {elapsed:.3f}s')

    def _handle(self, method: str, body: bytes | None) -> tuple[int, Any]:
        api = self.server.api
        if getattr(api, "cancellable", False):  # lmcritic's own API drops the work of a client that left
            return api.handle(method, self.path, self.headers, body, self._client_gone)
        return api.handle(method, self.path, self.headers, body)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            raise APIError(411, "chunked request bodies are not supported; send Content-Length")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise APIError(400, "bad Content-Length header") from None
        limit = self.server.max_body_bytes
        if length < 0 or length > limit:
            self.close_connection = True
            raise APIError(413, f"request body of {length:,} bytes is over the {limit:,}-byte limit")
        return self.rfile.read(length)

    def _client_gone(self) -> bool:
        """True once the client has closed its end (readable with nothing to read); polled while waiting."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> int:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client left while we answered
            self.close_connection = True
            return 0
        return len(data)

    def _log(self, text: str) -> None:
        if not self.server.quiet:
            sys.stderr.write(f"{self.address_string()} {self.log_date_time_string()} {text}\n")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silenced: ``_dispatch`` logs its own line with the timing."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
        self._log(format % args)
