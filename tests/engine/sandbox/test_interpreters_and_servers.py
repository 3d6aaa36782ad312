"""The project's own interpreter (`python:`), another Django, and an external PostgreSQL by URL."""
from __future__ import annotations

import contextlib
import json
import os

import psycopg
import pytest

from migration_safe.cli import build_demo_repository, main

pytestmark = pytest.mark.slow

DJANGO42 = os.environ.get("MIGRATION_SAFE_TEST_DJANGO42_PYTHON")
EXTERNAL = os.environ.get("MIGRATION_SAFE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def review(tmp_path, *args):
    return check(*build_demo_repository(tmp_path), *args)


def check(repo, base, *args):
    out = repo.parent / "report.json"
    code = main(["check", "--repo", str(repo), "--base", base, "--format", "json", "--output", str(out), *args])
    return code, json.loads(out.read_text())


def summary(report):
    return {m["name"]: (m["phase"], m["needs_split"], sorted({f["rule"] for f in m["findings"]
                                                              if f["severity"] == "error"}))
            for m in report["migrations"]}


@pytest.mark.skipif(not DJANGO42, reason="set MIGRATION_SAFE_TEST_DJANGO42_PYTHON to a Python with Django 4.2 "
                                         "(.ci/run builds one)")
def test_django_42_project_through_its_own_interpreter(tmp_path):
    repo, base = build_demo_repository(tmp_path / "a")
    code, report = check(repo, base, "--python", DJANGO42)
    _, reference = review(tmp_path / "b")
    assert report["django_version"].startswith("4.2.") and reference["django_version"].startswith("5.")
    assert code == 1 and summary(report) == summary(reference)
    assert all(m["sql_status"] == "ok" for m in report["migrations"])
    # the state cache works under Django 4.2 too, and a warm review says what the cold one said
    _, warm = check(repo, base, "--python", DJANGO42)
    assert report["state_cache"].endswith("stored") and warm["state_cache"].startswith("hit ")
    assert {**warm, "state_cache": None} == {**report, "state_cache": None}



def external_reachable() -> bool:
    try:
        with psycopg.connect(EXTERNAL, connect_timeout=3) as conn:
            return conn.execute("SELECT rolcreaterole FROM pg_roles WHERE rolname = current_user").fetchone()[0]
    except psycopg.Error:
        return False


@pytest.mark.skipif(not external_reachable(), reason=f"no PostgreSQL that may create roles at {EXTERNAL} "
                                                     "(MIGRATION_SAFE_TEST_POSTGRES_URL)")
def test_external_server_by_url(tmp_path, monkeypatch):
    monkeypatch.setenv("MIGRATION_SAFE_DATABASE_URL", EXTERNAL)
    created = record_throwaways(monkeypatch)
    code, report = review(tmp_path)
    with psycopg.connect(EXTERNAL) as conn:
        version = int(conn.execute("SHOW server_version_num").fetchone()[0])
        names, roles = [t.name for t in created], [t.user for t in created]
        databases = conn.execute("SELECT count(*) FROM pg_database WHERE datname = ANY(%s)", (names,)).fetchone()[0]
        left_roles = conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = ANY(%s)", (roles,)).fetchone()[0]
    assert report["postgres_version"] == version and code == 1
    assert all(m["sql_status"] == "ok" for m in report["migrations"])  # through the relay: the child has no network
    assert len(created) == 1 and databases == 0 and left_roles == 0  # this review's own, whatever else runs


def record_throwaways(monkeypatch) -> list:
    """The throwaway databases this test's reviews create: other reviews may share the server."""
    from migration_safe.engine.sandbox.database import Server

    created, original = [], Server.throwaway

    @contextlib.contextmanager
    def recording(self):
        with original(self) as target:
            created.append(target)
            yield target
    monkeypatch.setattr(Server, "throwaway", recording)
    return created
