"""Slow clients against the Procfile's web line: /healthz keeps answering, and each is cut off in time."""
from __future__ import annotations

import select
import socket
import threading
import time

import pytest
import requests
from fakegithub import sign

from migration_safe.app.serving import READ_TIMEOUT

from .procfile import web

pytestmark = pytest.mark.slow

SECRET = "slow-clients-secret"
ENV = {"GITHUB_APP_ID": "1", "GITHUB_WEBHOOK_SECRET": SECRET, "GITHUB_API_URL": "http://127.0.0.1:9"}
HEADERS = b"POST /webhook HTTP/1.1\r\nHost: localhost\r\nX-GitHub-Event: ping\r\nX-GitHub-Delivery: slow\r\n"


class SlowClient(threading.Thread):
    """Connects, sends `opening` at once, then a byte of `drip` every half second, never finishing."""

    def __init__(self, address: tuple[str, int], opening: bytes, drip: bytes) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection(address)
        self.opening, self.drip = opening, drip
        self.started = time.monotonic()
        self.closed_after: float | None = None  # seconds until the server hung up

    def run(self) -> None:
        drip = iter(self.drip * 1000)
        try:
            self.sock.sendall(self.opening)
            while time.monotonic() - self.started < READ_TIMEOUT + 20:
                readable, _, _ = select.select([self.sock], [], [], 0.5)
                if readable and not self.sock.recv(65536):
                    break  # the server hung up (after an answer, if any)
                if not readable and self.drip:
                    self.sock.send(bytes([next(drip)]))
        except OSError:  # reset by the server
            pass
        self.closed_after = time.monotonic() - self.started
        self.sock.close()


@pytest.fixture
def service(tmp_path, app_private_key):
    with web({**ENV, "GITHUB_APP_PRIVATE_KEY": app_private_key, "MIGRATION_SAFE_CACHE": str(tmp_path / "cache")},
             tmp_path) as served:
        yield served


@pytest.fixture
def app_private_key():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def test_slow_clients_neither_starve_healthz_nor_hold_on_forever(service):
    port = int(service.url.rsplit(":", 1)[1])
    address = ("127.0.0.1", port)
    clients = ([SlowClient(address, b"", b"") for _ in range(4)]  # connect, say nothing
               + [SlowClient(address, HEADERS, b"User-Agent: slow\r\n") for _ in range(4)]  # headers, a byte at a time
               + [SlowClient(address, HEADERS + b"Content-Length: 100000\r\n\r\n", b"{}")  # a body that never ends
                  for _ in range(4)])
    for client in clients:
        client.start()
    time.sleep(1)  # every slow client is connected and has started

    for _ in range(3):
        assert requests.get(f"{service.url}/healthz", timeout=5).status_code == 200
        body = b'{"zen": "Keep it logically awesome."}'
        ping = requests.post(f"{service.url}/webhook", data=body, timeout=5, headers={
            "X-GitHub-Event": "ping", "X-GitHub-Delivery": f"ping-{time.monotonic()}",
            "X-Hub-Signature-256": sign(body, SECRET)})
        assert ping.status_code == 200
    assert all(c.closed_after is None for c in clients)  # all of them still holding on meanwhile

    for client in clients:
        client.join(READ_TIMEOUT + 15)
    # Cut off by the server within the read timeout (idle ones sooner), never served to the end.
    assert all(c.closed_after is not None and c.closed_after < READ_TIMEOUT + 5 for c in clients), \
        ([round(c.closed_after or -1, 1) for c in clients], service.log.read_text()[-4000:])
    # One line for each client that began a request and never finished it; the idle ones gthread closes itself.
    assert service.log.read_text().count("no complete request within") == 8
