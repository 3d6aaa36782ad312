"""gunicorn's gthread worker with a deadline on reading each request (the Procfile's worker class).

gthread parks idle connections in its poller, but a client that sends part of a request and
then trickles or stalls holds one of the worker's threads while gunicorn reads the rest, with
no timeout: a few such clients starve /webhook and /healthz. Here each request must arrive
in full within READ_TIMEOUT; past it the connection is closed as if the client had hung up.
"""
from __future__ import annotations

import contextlib
import logging
import socket
import time

from gunicorn.workers.gthread import ThreadWorker

log = logging.getLogger("gunicorn.error")

# GitHub delivers from its data centres: 25 MB (its largest payload) needs 2.5 MB/s here.
READ_TIMEOUT = 10.0


class DeadlineSocket(socket.socket):
    """A client socket whose blocking reads share one deadline per request."""

    __slots__ = ("deadline",)

    def __init__(self, fileno: int) -> None:
        super().__init__(fileno=fileno)
        self.deadline: float | None = time.monotonic() + READ_TIMEOUT

    def setblocking(self, flag: bool) -> None:
        # gthread switches to blocking mode as it starts reading each request: the clock starts.
        if flag:
            self.deadline = time.monotonic() + READ_TIMEOUT
            self.settimeout(READ_TIMEOUT)
        else:
            super().setblocking(False)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if self.gettimeout() == 0.0 or self.deadline is None:  # the poller's non-blocking mode, or cut off
            return super().recv(bufsize, flags)
        left = self.deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError
            self.settimeout(left)
            return super().recv(bufsize, flags)
        except TimeoutError:
            log.warning("closing a connection from %s: no complete request within %.0f s",
                        self._peer(), READ_TIMEOUT)
            # End of stream, now and for every later read: gunicorn answers what it can and closes,
            # rather than keep the connection alive for the rest of the trickle.
            with contextlib.suppress(OSError):
                self.shutdown(socket.SHUT_RD)
            self.deadline = None  # the kernel answers every later read at once, and it is said once
            return b""

    def sendall(self, data, flags: int = 0) -> None:
        if self.gettimeout() != 0.0:  # a response gets a fresh bound, whatever the read left of it
            self.settimeout(READ_TIMEOUT)
        super().sendall(data, flags)

    def _peer(self) -> str:
        try:
            return str(self.getpeername()[0])
        except OSError:
            return "a closed socket"


class BoundedThreadWorker(ThreadWorker):
    def handle(self, conn):
        if not isinstance(conn.sock, DeadlineSocket):  # a new connection, before gunicorn reads from it
            conn.sock = DeadlineSocket(conn.sock.detach())
        return super().handle(conn)
