"""Hostile PR code in the real sandbox: the worst it can do is fail its own review."""
from __future__ import annotations

import json
import os
import sys
import textwrap

import pytest

from migration_safe.engine.isolation import available
from migration_safe.engine.review import ReviewRequest, run_review
from migration_safe.engine.sandbox import Limits
from migration_safe.report import json_report

pytestmark = pytest.mark.slow
ISOLATED = available().complete
needs_isolation = pytest.mark.skipif(not ISOLATED, reason="needs root (another user, namespaces)")

SECRETS = {"GITHUB_APP_PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----\nSECRET-KEY-BODY-42\n",
           "GITHUB_WEBHOOK_SECRET": "whsec-SECRET-9931", "REDIS_URL": "redis://:SECRET-redis-pw@host/0",
           "INSTALLATION_TOKEN": "ghs_SECRETtoken0000"}


def hostile(project, code: str, limits: Limits | None = None, operations: str = "[]"):
    body = ("import os, sys, socket\n" + textwrap.dedent(code)
            + "\nfrom django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
            + '    dependencies = [("shop", "0001_initial")]\n'
            + f"    operations = {' '.join(operations.split())}\n")
    project.write("shop/migrations/0002_hostile.py", body)
    project.commit("hostile")
    review = run_review(ReviewRequest(repo=project.root, base=project.base, limits=limits or Limits()))
    [migration] = review.migrations
    return review, migration


@pytest.fixture
def secrets_around(monkeypatch, tmp_path):
    key = tmp_path / "app.pem"
    key.write_text("KEYFILE-SECRET-7777")
    key.chmod(0o600)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GITHUB_APP_PRIVATE_KEY_PATH", str(key))
    return [*SECRETS.values(), "KEYFILE-SECRET-7777", "SECRET-KEY-BODY-42"]


def assert_no_secret(review, secrets):
    text = json_report.render(review) + json.dumps(review.notes)
    for secret in secrets:
        assert secret not in text


PROBE = '''
found = []
found.append("env:" + repr(dict(os.environ)))
for path in [os.environ.get("GITHUB_APP_PRIVATE_KEY_PATH") or "{key}", "/proc/%d/environ" % os.getppid(),
             "/proc/1/environ"]:
    try:
        found.append(path + ":" + open(path, errors="replace").read())
    except OSError as exc:
        found.append(path + ": denied " + type(exc).__name__)
for host, port in [("127.0.0.1", 6379), ("1.1.1.1", 443)]:
    try:
        socket.create_connection((host, port), timeout=3).close()
        found.append(f"{{host}}:{{port}} CONNECTED")
    except OSError as exc:
        found.append(f"{{host}}:{{port}} blocked " + type(exc).__name__)
raise RuntimeError("PROBE " + " | ".join(found))
'''


@needs_isolation
def test_no_secret_file_proc_or_network_reaches_the_child(shop, secrets_around, tmp_path):
    review, migration = hostile(shop, PROBE.format(key=tmp_path / "app.pem"))
    assert migration.sql_status == "unavailable" and "PROBE" in migration.sql_error
    error = migration.sql_error
    assert "/environ: denied" in error and "app.pem: denied" in error
    assert "127.0.0.1:6379 blocked" in error and "1.1.1.1:443 blocked" in error
    assert "CONNECTED" not in error
    assert_no_secret(review, secrets_around)


def test_settings_printing_the_environment_show_nothing_secret(shop, secrets_around):
    settings = (shop.root / "mysite" / "settings.py").read_text()
    shop.write("mysite/settings.py", settings + "import os\nprint(dict(os.environ))\n"
               "raise SystemExit('leaking ' + repr(dict(os.environ)))\n")
    review, migration = hostile(shop, "")
    assert migration.sql_status == "unavailable"
    assert_no_secret(review, secrets_around)


@needs_isolation
def test_fork_bomb_is_contained(shop):
    review, migration = hostile(shop, '''
        while True:
            try:
                os.fork()
            except OSError:
                pass
    ''', Limits(wall_seconds=8, cpu_seconds=8))
    assert migration.sql_status == "unavailable"
    assert "limit" in migration.sql_error
    assert not leftovers()


def leftovers() -> list[str]:
    """Processes of this test session's sandboxes (other sessions may run reviews meanwhile)."""
    cache = os.environ["MIGRATION_SAFE_CACHE"].encode()
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                command = fh.read()
                if cache in command and b"child.py" in command:
                    out.append(pid)
        except OSError:
            pass
    return out


def test_infinite_loop_hits_the_cpu_or_wall_limit(shop):
    review, migration = hostile(shop, "while True:\n    pass\n", Limits(wall_seconds=20, cpu_seconds=3))
    assert migration.sql_status == "unavailable" and "cpu time limit" in migration.sql_error


def test_wall_clock_limit_kills_a_sleeping_child(shop):
    review, migration = hostile(shop, "import time\ntime.sleep(600)\n", Limits(wall_seconds=3))
    assert "wall time (3 s) limit" in migration.sql_error


def test_ten_gigabytes_allocation_fails_inside_the_child(shop):
    review, migration = hostile(shop, "hog = bytearray(10 * 1024 ** 3)\n")
    assert migration.sql_status == "unavailable" and "MemoryError" in migration.sql_error


def test_huge_file_and_stdout_flood_hit_the_file_size_limit(shop):
    review, migration = hostile(shop, '''
        with open("big.bin", "wb") as fh:
            while True:
                fh.write(b"x" * (1 << 20))
    ''', Limits(file_bytes=8 << 20))
    # Python ignores SIGXFSZ: the write fails with EFBIG and the import with it
    assert "File too large" in migration.sql_error
    review, migration = hostile(shop, "while True:\n    print('spam' * 1000)\n", Limits(file_bytes=8 << 20))
    assert "File too large" in migration.sql_error


def test_copy_to_program_is_refused_by_postgresql(shop):
    review, migration = hostile(shop, "", operations='''[
        migrations.RunSQL("COPY (SELECT 1) TO PROGRAM 'touch /tmp/pwned-by-migration'"),
    ]''')
    assert migration.sql_status == "ok"
    [finding] = [f for f in migration.findings if f.rule == "MS004"]
    assert "permission denied to COPY to or from an external program" in finding.message
    assert not os.path.exists("/tmp/pwned-by-migration")


@needs_isolation
@pytest.mark.skipif(os.path.realpath(sys.executable).startswith("/tmp/") or sys.prefix.startswith("/tmp/"),
                    reason="the interpreter lives in /tmp, so the sandbox cannot give the child a private /tmp")
def test_child_writes_leave_nothing_behind(shop):
    marker = "/tmp/migration-safe-hostile-marker"
    review, migration = hostile(shop, f"open({marker!r}, 'w').write('x')\n")
    assert migration.sql_status == "ok"
    assert not os.path.exists(marker)
    cache = os.environ["MIGRATION_SAFE_CACHE"]
    assert os.listdir(os.path.join(cache, "sandbox")) == []
