"""The install's network: none of its own, only the egress proxy, to the allowed hosts only."""
from __future__ import annotations

import functools
import http.server
import os
import socket
import ssl
import subprocess
import textwrap
import threading
import zipfile
from pathlib import Path

import pytest

from migration_safe.engine.sandbox import egress, install
from migration_safe.engine.sandbox.isolation import available
from migration_safe.engine.review.pipeline import ReviewRequest, run_review

ISOLATED = available().complete
REQUIRED = os.environ.get("MIGRATION_SAFE_REQUIRE_ISOLATION") == "1"
needs_isolation = pytest.mark.skipif(not ISOLATED and not REQUIRED, reason="needs root and bubblewrap")


# ---------------------------------------------------------------- the proxy alone


@pytest.fixture
def echo():
    """A TCP service on this machine's loopback, as an internal index or Redis would be."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            with connection:
                connection.sendall(connection.recv(100).upper())

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


def ask(gate: egress.Gate, request: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as client:
        client.settimeout(10)
        client.connect(os.path.join(gate.folder, egress.SOCKET))
        client.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(1000)
            if not chunk:
                break
            head += chunk
        status = head.split(b"\r\n", 1)[0]
        if status.split()[1:2] == [b"200"]:
            client.sendall(b"ping")
            return (status + b" " + client.recv(100)).strip()
        return status


def connect(target: str) -> bytes:
    return f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode()


def test_the_hosts_are_pypi_unless_the_operator_lists_others():
    assert egress.allowlist({}) == egress.Allowlist(
        frozenset({("pypi.org", 443), ("files.pythonhosted.org", 443)}), internal=False)
    listed = egress.allowlist({egress.HOSTS_ENV: "Index.Internal, [fd00::1]:8443 ,pypi.org:443"})
    assert listed == egress.Allowlist(frozenset({("index.internal", 443), ("fd00::1", 8443), ("pypi.org", 443)}),
                                      internal=True)
    with pytest.raises(ValueError, match=f"{egress.HOSTS_ENV}: 'https://pypi.org/simple' is not host"):
        egress.allowlist({egress.HOSTS_ENV: "https://pypi.org/simple"})


def test_a_host_off_the_list_is_refused_and_recorded(tmp_path, echo):
    with egress.gate(tmp_path, None, None, egress.allowlist({})) as gate:
        assert ask(gate, connect("127.0.0.1:6379")).startswith(b"HTTP/1.0 403")
        assert ask(gate, connect(f"127.0.0.1:{echo}")).startswith(b"HTTP/1.0 403")
        assert ask(gate, connect("github.com:443")).startswith(b"HTTP/1.0 403")
    assert set(gate.refusals) == {"127.0.0.1:6379", f"127.0.0.1:{echo}", "github.com:443"}
    assert "not an allowed host" in gate.refusals["github.com:443"]


def test_an_allowed_host_resolving_to_an_internal_address_is_refused(tmp_path, echo):
    """A default host whose name now points at this machine (or the metadata endpoint) stays shut."""
    allowed = egress.Allowlist(frozenset({("localhost", echo)}), internal=False)
    with egress.gate(tmp_path, None, None, allowed) as gate:
        assert ask(gate, connect(f"localhost:{echo}")).startswith(b"HTTP/1.0 403")
    assert gate.refusals == {f"localhost:{echo}": "resolves to a non-public address"}
    assert not egress.public("169.254.169.254") and not egress.public("::ffff:127.0.0.1")
    assert not egress.public("10.1.2.3") and not egress.public("224.0.0.1") and egress.public("151.101.0.223")


def test_a_host_the_operator_listed_is_reached_even_internal(tmp_path, echo):
    with egress.gate(tmp_path, None, None, egress.allowlist({egress.HOSTS_ENV: f"localhost:{echo}"})) as gate:
        assert ask(gate, connect(f"localhost:{echo}")) == b"HTTP/1.0 200 Connection established PING"
    assert gate.refusals == {}


def test_only_tunnels_pass(tmp_path, echo):
    with egress.gate(tmp_path, None, None, egress.allowlist({egress.HOSTS_ENV: f"localhost:{echo}"})) as gate:
        plain = f"GET http://localhost:{echo}/simple/ HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
        assert ask(gate, plain).startswith(b"HTTP/1.0 405")
        assert ask(gate, b"DELETE / HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.0 405")
        assert ask(gate, b"BREW /pot HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.0 501")
    assert "plain HTTP" in gate.refusals["http://localhost"]


def test_the_install_bytes_are_capped(tmp_path, echo):
    allowed = egress.allowlist({egress.HOSTS_ENV: f"localhost:{echo}"})
    with egress.gate(tmp_path, None, None, allowed, egress.EgressLimits(total_bytes=3)) as gate:
        assert ask(gate, connect(f"localhost:{echo}")) == b"HTTP/1.0 200 Connection established"
    assert "bytes of traffic are spent" in gate.refusals["(any host)"]


def test_tunnels_at_once_are_capped(tmp_path, echo):
    allowed = egress.allowlist({egress.HOSTS_ENV: f"localhost:{echo}"})
    with egress.gate(tmp_path, None, None, allowed, egress.EgressLimits(tunnels=1)) as gate, \
            socket.socket(socket.AF_UNIX) as held:
        held.connect(os.path.join(gate.folder, egress.SOCKET))
        held.sendall(connect(f"localhost:{echo}"))
        assert held.recv(100).startswith(b"HTTP/1.0 200")  # open, and kept open
        with socket.socket(socket.AF_UNIX) as second:
            second.settimeout(10)
            second.connect(os.path.join(gate.folder, egress.SOCKET))
            assert second.recv(100) == b""  # closed at once, before a thread is spent on it
    assert gate.refusals == {"(any host)": "more than 1 connections at once"}


# ---------------------------------------------------------------- installs in the real sandbox


PROBE = '''
import os, socket
from urllib.parse import urlsplit

seen = []
for host, port in [("127.0.0.1", 6379), ("169.254.169.254", 80)]:
    try:
        socket.create_connection((host, port), timeout=3).close()
        seen.append(f"direct {host}:{port} CONNECTED")
    except OSError as exc:
        seen.append(f"direct {host}:{port} {type(exc).__name__}")
proxy = urlsplit(os.environ["HTTPS_PROXY"])
with socket.create_connection((proxy.hostname, proxy.port), timeout=10) as tunnel:
    tunnel.sendall(b"CONNECT 127.0.0.1:6379 HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n\\r\\n")
    seen.append("proxy 127.0.0.1:6379 " + tunnel.recv(200).split(b"\\r\\n")[0].decode())
print("ERROR probe: " + "; ".join(seen))
raise SystemExit(1)
'''


def project(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    return root


@needs_isolation
@pytest.mark.slow
def test_a_hostile_install_reaches_neither_this_machine_nor_the_metadata_endpoint(tmp_path):
    environment = install.prepare(project(tmp_path, {"probe.py": PROBE}), ["python probe.py"])
    assert environment.python is None
    error = environment.error
    assert "direct 127.0.0.1:6379 ConnectionRefusedError" in error  # the sandbox's own loopback: nothing there
    assert "direct 169.254.169.254:80 OSError" in error  # no route at all
    assert "proxy 127.0.0.1:6379 HTTP/1.0 403" in error and "CONNECTED" not in error
    assert "The install's network proxy refused: 127.0.0.1:6379 (not an allowed host" in error


def wheel(folder: Path, name: str, version: str, modules: dict[str, str], requires: tuple[str, ...] = ()) -> None:
    """A pure-Python wheel, written by hand: the index must not need the network to be built."""
    dist = f"{name.replace('-', '_')}-{version}"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires)
    files = {**modules, f"{dist}.dist-info/METADATA": metadata,
             f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{dist}.dist-info/RECORD"] = "".join(f"{path},,\n" for path in [*files, f"{dist}.dist-info/RECORD"])
    page = folder / "simple" / name
    page.mkdir(parents=True)
    with zipfile.ZipFile(page / f"{dist}-py3-none-any.whl", "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    (page / "index.html").write_text(f'<a href="{dist}-py3-none-any.whl">{dist}-py3-none-any.whl</a>\n')


def printed(environment: install.Environment, value: str) -> str:
    """`value` (module.attribute) as the installed virtualenv sees it."""
    assert environment.python, environment.error
    code = f"import {value.split('.')[0]}; print({value})"
    return subprocess.run([environment.python, "-c", code], capture_output=True, text=True).stdout.strip()


@pytest.fixture
def https_index(tmp_path):
    """A package index on this machine's loopback, over HTTPS: an operator's internal index."""
    folder = tmp_path / "index"
    wheel(folder, "shop-utils", "1.0", {"shop_utils.py": "CURRENCY = 'EUR'\n"}, requires=("psycopg",))
    wheel(folder, "psycopg", "3.1.99", {"psycopg/__init__.py": ""})  # the driver step's, offline
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], cert.read_text()
    server.shutdown()
    server.server_close()


@needs_isolation
@pytest.mark.slow
def test_an_install_from_a_host_the_operator_listed_works_end_to_end(tmp_path, https_index, monkeypatch):
    port, cert = https_index
    monkeypatch.setenv(egress.HOSTS_ENV, f"127.0.0.1:{port}")
    root = project(tmp_path, {"ca.pem": cert, "requirements.txt": "shop-utils==1.0\n"})
    command = f"pip install --cert ca.pem --index-url https://127.0.0.1:{port}/simple/ -r requirements.txt"
    assert printed(install.prepare(root, [command]), "shop_utils.CURRENCY") == "EUR"


@needs_isolation
@pytest.mark.slow
def test_the_same_index_unlisted_is_refused_and_the_error_says_so(tmp_path, https_index, monkeypatch):
    port, cert = https_index
    monkeypatch.delenv(egress.HOSTS_ENV, raising=False)
    root = project(tmp_path, {"ca.pem": cert})
    environment = install.prepare(root, [f"pip install --retries 0 --cert ca.pem "
                                         f"--index-url https://127.0.0.1:{port}/simple/ shop-utils"])
    assert environment.python is None
    assert f"127.0.0.1:{port} (not an allowed host" in environment.error


def pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


@needs_isolation
@pytest.mark.slow
@pytest.mark.skipif(not pypi_reachable(), reason="needs PyPI")
def test_a_real_pip_install_from_pypi_goes_through_the_proxy(tmp_path, monkeypatch):
    """The machine's own pip configuration (/etc/pip.conf) applies inside, as it would to the operator's pip."""
    monkeypatch.setenv(egress.HOSTS_ENV, "pypi.org,files.pythonhosted.org")  # see test_install.pypi_listed
    environment = install.prepare(project(tmp_path, {}), [
        "pip install six==1.16.0 'psycopg[binary]>=3.1' --no-cache-dir --index-url https://pypi.org/simple"])
    assert printed(environment, "six.__version__") == "1.16.0"


@needs_isolation
@pytest.mark.slow
def test_a_git_dependency_on_an_unlisted_host_blocks_the_review_naming_the_host(shop):
    shop.write(".github/migration-safe.yml", "install: pip install --quiet -r requirements.txt\n")
    shop.write("requirements.txt", "shoputils @ git+https://github.com/example/shoputils@v1\n")
    shop.migration("shop", "0002_title", '''
        from django.db import migrations, models


        class Migration(migrations.Migration):
            dependencies = [("shop", "0001_initial")]
            operations = [migrations.AlterField("product", "title", models.CharField(max_length=200))]
    ''')
    shop.commit()
    review = run_review(ReviewRequest(repo=shop.root, base=shop.base, install=True))
    [migration] = review.migrations
    [found] = [f for f in migration.findings if f.rule == "MS002"]
    assert found.blocks and migration.blocking
    assert "github.com:443 (not an allowed host" in found.message
    assert "a git+https dependency or another index needs its host listed there" in found.message
