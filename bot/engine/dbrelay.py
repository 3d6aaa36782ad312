"""An external PostgreSQL server, shown to the child as a Unix socket: the child keeps no network.

The child's libpq connects to `<folder>/.s.PGSQL.<port>`; each connection is relayed, byte for
byte, to the one host and port of the review's server, and nowhere else. libpq does not use TLS
over a Unix socket, so the server must accept the review role without it (pg_hba `host`).
"""
from __future__ import annotations

import contextlib
import os
import selectors
import socket
import socketserver
import tempfile
import threading
from pathlib import Path
from typing import Iterator

CHUNK = 1 << 16


class _Relay(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    target: tuple[str, int]


class _Connection(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            upstream = socket.create_connection(self.server.target, timeout=10)
        except OSError:
            return
        with upstream:
            upstream.settimeout(None)
            pump(self.request, upstream)


def pump(one: socket.socket, other: socket.socket) -> None:
    """Copy both ways until either side closes."""
    with selectors.DefaultSelector() as selector:
        selector.register(one, selectors.EVENT_READ, other)
        selector.register(other, selectors.EVENT_READ, one)
        while True:
            for key, _ in selector.select():
                try:
                    data = key.fileobj.recv(CHUNK)
                except OSError:
                    return
                if not data:
                    return
                key.data.sendall(data)


@contextlib.contextmanager
def relay(host: str, port: int, parent: Path, uid: int | None, gid: int | None) -> Iterator[str]:
    """A folder holding the socket that reaches `host:port`, for as long as the review runs."""
    folder = Path(tempfile.mkdtemp(prefix="db-", dir=parent))
    path = folder / f".s.PGSQL.{port}"
    server = _Relay(str(path), _Connection)
    server.target = (host, port)
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
