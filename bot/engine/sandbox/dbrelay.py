"""An external PostgreSQL server, shown to the child as a Unix socket: the child keeps no network.

The child's libpq connects to `<folder>/.s.PGSQL.<port>`; each connection is relayed, byte for
byte, to the one host and port of the review's server, and nowhere else, and only as the review's
role to the review's database: the relay reads the startup message and closes any other (a server
that trusts local connections would otherwise hand the child its superuser). libpq does not use
TLS over a Unix socket, so the server must accept the review role without it (pg_hba `host`).
"""
from __future__ import annotations

import contextlib
import os
import socket
import socketserver
import struct
import tempfile
import threading
from pathlib import Path
from typing import Iterator

from migration_safe.engine.sandbox.tunnel import pump

PROTOCOL_3 = 196608
CANCEL_REQUEST = 80877102
MAX_STARTUP = 10_000  # PostgreSQL's own limit on a startup packet


class _Relay(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    target: tuple[str, int]
    allowed: dict[str, str]  # startup parameters a connection must carry: user, database


class _Connection(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(10)
        try:
            startup = read_startup(self.request)
        except (OSError, ValueError):
            return
        if startup is None or not allowed(startup, self.server.allowed):
            return
        try:
            upstream = socket.create_connection(self.server.target, timeout=10)
        except OSError:
            return
        with upstream:
            upstream.settimeout(None)
            self.request.settimeout(None)
            upstream.sendall(startup)
            pump(self.request, upstream)


def read_startup(connection: socket.socket) -> bytes | None:
    """The client's first message, whole: length, protocol code, then its parameters."""
    head = receive(connection, 8)
    length = struct.unpack("!I", head[:4])[0]
    if not 8 <= length <= MAX_STARTUP:
        return None
    return head + receive(connection, length - 8)


def allowed(startup: bytes, wanted: dict[str, str]) -> bool:
    """A protocol 3 start as the review's role to its database (a cancel request carries only a secret key)."""
    code = struct.unpack("!I", startup[4:8])[0]
    if code == CANCEL_REQUEST:
        return True
    if code != PROTOCOL_3:
        return False  # no SSL or GSS negotiation over a Unix socket, no older protocol
    fields = startup[8:].split(b"\0")
    parameters = dict(zip(fields[0::2], fields[1::2]))
    user = parameters.get(b"user", b"").decode(errors="replace")
    database = parameters.get(b"database", user.encode()).decode(errors="replace")
    return user == wanted["user"] and database == wanted["database"]


def receive(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise ValueError("closed during the startup message")
        data += chunk
    return data


@contextlib.contextmanager
def relay(host: str, port: int, user: str, database: str, parent: Path, uid: int | None,
          gid: int | None) -> Iterator[str]:
    """A folder holding the socket that reaches `host:port` as `user` to `database`, for as long
    as the review runs."""
    folder = Path(tempfile.mkdtemp(prefix="db-", dir=parent))
    path = folder / f".s.PGSQL.{port}"
    server = _Relay(str(path), _Connection)
    server.target, server.allowed = (host, port), {"user": user, "database": database}
    if uid is not None:
        os.chown(folder, uid, gid)
        os.chown(path, uid, gid)
    thread = threading.Thread(target=server.serve_forever, name="db-relay", daemon=True)
    thread.start()
    try:
        yield str(folder)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
