"""The install's only way out: an HTTPS (CONNECT) proxy on a Unix socket, to allowed hosts only.

The install's commands are the pull request's (`pip install` also runs the setup code of every
sdist), so its sandbox has no network of its own; tunnel.py, inside, relays pip's proxy
connections to this socket. A tunnel opens only to a host and port of the allowlist: by default
PyPI (`DEFAULT_HOSTS`); `MIGRATION_SAFE_INSTALL_HOSTS` (an operator's setting, never the
project's config) replaces it. A host is resolved once and the tunnel goes to the address that
was checked (no second lookup to rebind); an address that is not public (loopback, private,
link-local, multicast, reserved: the metadata endpoint, this machine's Redis and PostgreSQL) is
refused unless the operator listed that host. Plain HTTP is refused: nothing is forwarded that
is not a tunnel.
"""
from __future__ import annotations

import contextlib
import http.server
import ipaddress
import logging
import os
import selectors
import socket
import socketserver
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping
from urllib.parse import urlsplit

HOSTS_ENV = "MIGRATION_SAFE_INSTALL_HOSTS"
DEFAULT_HOSTS = "pypi.org:443,files.pythonhosted.org:443"
SOCKET = "proxy.sock"
CHUNK = 1 << 16
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Allowlist:
    hosts: frozenset[tuple[str, int]]
    internal: bool  # listed by the operator: may resolve to a non-public address (an internal index)


@dataclass(frozen=True)
class EgressLimits:
    tunnels: int = 16  # open at once
    total_bytes: int = 4 << 30  # both ways, over the whole install
    idle_seconds: float = 60


def allowlist(env: Mapping[str, str] | None = None) -> Allowlist:
    """The operator's hosts when set, else PyPI's; a malformed entry raises ValueError naming the setting."""
    listed = ((os.environ if env is None else env).get(HOSTS_ENV) or "").strip()
    entries = [entry.strip() for entry in (listed or DEFAULT_HOSTS).split(",") if entry.strip()]
    try:
        hosts = frozenset(host_and_port(entry) for entry in entries)
    except ValueError as exc:
        raise ValueError(f"{HOSTS_ENV}: {exc}") from None
    return Allowlist(hosts, internal=bool(listed))


def host_and_port(text: str) -> tuple[str, int]:
    """`host[:port]` (port 443 when absent; IPv6 in brackets), the host lower-cased."""
    try:
        parts = urlsplit("//" + text)
        host, port = parts.hostname, parts.port or 443
    except ValueError:
        host = None
    if not host or parts.path or parts.query or parts.username:
        raise ValueError(f"{text!r} is not host[:port]")
    return host, port


def public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved)


class _Proxy(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, allowed: Allowlist, limits: EgressLimits):
        super().__init__(path, _Tunnel)
        self.allowed, self.limits = allowed, limits
        self.slots = threading.BoundedSemaphore(limits.tunnels)
        self.lock = threading.Lock()
        self.remaining = limits.total_bytes
        self.refusals: dict[str, str] = {}  # "host:port" -> why, first reason only

    def process_request(self, request, client_address) -> None:
        if not self.slots.acquire(blocking=False):  # before a thread is spent on it
            self.refuse("(any host)", f"more than {self.limits.tunnels} connections at once")
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def refuse(self, target: str, reason: str) -> None:
        with self.lock:
            if target in self.refusals:
                return  # a loop retrying the same host logs it once
            self.refusals[target] = reason
        logger.warning("install egress: refused %s (%s)", target, reason)

    def handle_error(self, request, client_address) -> None:
        """Not socketserver's traceback on stderr: the install's code closes connections as it likes."""
        logger.debug("install egress: a connection ended in error", exc_info=True)

    def spend(self, size: int) -> bool:
        with self.lock:
            self.remaining -= size
            return self.remaining >= 0


class _Tunnel(http.server.BaseHTTPRequestHandler):
    server: _Proxy
    rbufsize = 0  # nothing of the tunnel's first bytes may stay in a read buffer

    def setup(self) -> None:
        self.timeout = self.server.limits.idle_seconds
        super().setup()

    def do_CONNECT(self) -> None:
        try:
            target = host_and_port(self.path)
        except ValueError:
            self.send_error(400, "CONNECT wants host:port")
            return
        upstream = self.open(*target)
        if upstream is None:
            return
        with upstream:
            self.send_response(200, "Connection established")
            self.end_headers()
            self.pump(upstream)

    def open(self, host: str, port: int) -> socket.socket | None:
        """A connection to one of `host`'s checked addresses, or None with the refusal sent."""
        name = f"{host}:{port}"
        if (host, port) not in self.server.allowed.hosts:
            return self.refused(name, 403, f"not an allowed host ({HOSTS_ENV})")
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            return self.refused(name, 502, "does not resolve")
        if not self.server.allowed.internal and not all(public(info[4][0]) for info in found):
            return self.refused(name, 403, "resolves to a non-public address")
        for family, kind, proto, _name, address in found:
            upstream = socket.socket(family, kind, proto)
            upstream.settimeout(self.server.limits.idle_seconds)
            try:
                upstream.connect(address)
                return upstream
            except OSError:
                upstream.close()
        return self.refused(name, 502, "unreachable")

    def refused(self, target: str, status: int, reason: str) -> None:
        self.server.refuse(target, reason)
        self.send_error(status, f"{target} {reason}")

    def plain(self) -> None:
        self.refused(f"http://{urlsplit(self.path).hostname or '?'}", 405, "plain HTTP: only HTTPS tunnels")

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = plain

    def pump(self, upstream: socket.socket) -> None:
        """Both ways until either side closes, stays idle too long or the install's bytes run out."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.connection, selectors.EVENT_READ, upstream)
            selector.register(upstream, selectors.EVENT_READ, self.connection)
            while True:
                ready = selector.select(self.server.limits.idle_seconds)
                if not ready:
                    return
                for key, _ in ready:
                    try:
                        data = key.fileobj.recv(CHUNK)
                        if not data:
                            return
                        if not self.server.spend(len(data)):
                            self.server.refuse("(any host)", f"the install's {self.server.limits.total_bytes} "
                                                             "bytes of traffic are spent")
                            return
                        key.data.sendall(data)
                    except OSError:
                        return

    def log_message(self, format: str, *args) -> None:
        """Refusals are logged by `refuse`; a request line may carry the project's data."""


@dataclass(frozen=True)
class Gate:
    folder: str  # holds SOCKET
    refusals: dict[str, str]  # what was refused so far, host: why


@contextlib.contextmanager
def gate(parent: Path, uid: int | None, gid: int | None, allowed: Allowlist | None = None,
         limits: EgressLimits = EgressLimits()) -> Iterator[Gate]:
    """The proxy, on a socket in a folder of its own that the sandbox's user may enter, for as long as
    the install runs."""
    allowed = allowed or allowlist()
    folder = Path(tempfile.mkdtemp(prefix="egress-", dir=parent))
    server = _Proxy(str(folder / SOCKET), allowed, limits)
    if uid is not None:
        os.chown(folder, uid, gid)
        os.chown(folder / SOCKET, uid, gid)
    thread = threading.Thread(target=server.serve_forever, name="install-egress", daemon=True)
    thread.start()
    try:
        yield Gate(str(folder), server.refusals)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        with contextlib.suppress(OSError):
            os.unlink(folder / SOCKET)
            os.rmdir(folder)
