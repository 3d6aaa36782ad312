"""The socket side: a threaded HTTP/1.1 server, request recording, fault injection.

HTTP/1.1 with keep-alive because PyGithub and git reuse connections; every
response therefore carries a Content-Length. Request bodies may be chunked
(git sends large fetch negotiations that way).
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .core import DOCS, Request, Response


@dataclass
class RecordedRequest:
    """One request as the fake received it, for tests to assert on."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    json: Any
    status: int | None = None  # filled in once answered

    @property
    def text(self) -> str:
        """Everything sent, as one string: handy to check that a secret never left."""
        headers = "\n".join(f"{k}: {v}" for k, v in self.headers.items())
        query = "&".join(f"{k}={v}" for k, values in self.query.items() for v in values)
        return f"{self.method} {self.path}?{query}\n{headers}\n\n{self.body.decode(errors='replace')}"


@dataclass
class FaultRule:
    method: str | None  # None or "*" matches any method
    path: re.Pattern[str]
    status: int
    body: Any
    headers: dict[str, str]
    remaining: int

    def matches(self, method: str, path: str) -> bool:
        method_ok = self.method in (None, "*") or self.method.upper() == method
        return self.remaining > 0 and method_ok and self.path.search(path) is not None

    def response(self) -> Response:
        headers = dict(self.headers)
        if self.body is None:
            phrase = HTTPStatus(self.status).phrase
            data = {"message": phrase, "documentation_url": DOCS, "status": str(self.status)}
            return Response.json(data, self.status, headers)
        if isinstance(self.body, (dict, list)):
            return Response.json(self.body, self.status, headers)
        raw = self.body.encode() if isinstance(self.body, str) else bytes(self.body)
        headers.setdefault("Content-Type", "text/html; charset=utf-8")
        return Response(self.status, raw, headers)


@dataclass
class Faults:
    """Queued failures: the first rule matching a request answers it instead."""

    rules: list[FaultRule] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, rule: FaultRule) -> None:
        with self.lock:
            self.rules.append(rule)

    def take(self, method: str, path: str) -> Response | None:
        with self.lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.remaining -= 1
                    return rule.response()
        return None

    def pending(self) -> int:
        with self.lock:
            return sum(rule.remaining for rule in self.rules)


App = Callable[[Request], Response]


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, app: App) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.app = app
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def close_connections(self) -> None:
        """Drops idle keep-alive connections so that their threads end on stop()."""
        with self.connections_lock:
            for connection in list(self.connections):
                with contextlib.suppress(OSError):  # already closed by the client
                    connection.shutdown(socket.SHUT_RDWR)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the client's
    # delayed ACK adds ~40 ms to every response.
    disable_nagle_algorithm = True
    server: Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = do_GET

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self._read_body(),
        )
        try:
            response = self.server.app(request)
        except Exception as error:  # a bug in the fake: say so instead of hanging the client
            message = f"fake GitHub crashed: {type(error).__name__}: {error}"
            response = Response.json({"message": message}, 500)
        self._write(response, head=self.command == "HEAD")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF after each chunk

    def _write(self, response: Response, head: bool) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            if name.lower() not in ("content-length", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if not head:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read fake.requests instead of stderr noise


def record(request: Request) -> RecordedRequest:
    return RecordedRequest(
        method=request.method,
        path=request.path,
        query=request.query,
        headers=dict(request.headers),
        body=request.body,
        json=request.json,
    )
