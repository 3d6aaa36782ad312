"""Shared fixtures: small real Django projects as git repositories, a real PostgreSQL."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from projects import DEMO, GitProject


def pytest_configure(config):
    """A private base temp dir: concurrent pytest runs on one machine must not prune each other's."""
    if config.option.basetemp or hasattr(config, "workerinput"):
        return
    parent = Path(tempfile.gettempdir()) / "migration-safe-tests"
    parent.mkdir(exist_ok=True)
    for old in parent.iterdir():  # keep a day of runs for post-mortems
        if time.time() - old.stat().st_mtime > 86400:
            shutil.rmtree(old, ignore_errors=True)
    config.option.basetemp = tempfile.mkdtemp(prefix="run-", dir=parent)


@pytest.fixture
def shop(tmp_path: Path) -> GitProject:
    """The demo's base project (apps: contenttypes, auth, shop with 0001_initial), committed."""
    root = tmp_path / "project"
    shutil.copytree(DEMO / "base", root, ignore=shutil.ignore_patterns("__pycache__"))
    project = GitProject(root)
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    project.base = project.commit("base")
    return project


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory):
    """A cache (embedded server, sandboxes) of this session's own, outside /tmp: the sandbox
    gives the child a private /tmp, so nothing it needs may live there."""
    if "MIGRATION_SAFE_CACHE" not in os.environ:
        parent = Path.home() / ".cache" / "migration-safe-tests"
        parent.mkdir(parents=True, exist_ok=True)
        for old in parent.iterdir():
            if time.time() - old.stat().st_mtime > 86400:
                shutil.rmtree(old, ignore_errors=True)
        os.environ["MIGRATION_SAFE_CACHE"] = tempfile.mkdtemp(prefix="session-", dir=parent)
    yield


REQUIRE_REDIS = os.environ.get("MIGRATION_SAFE_REQUIRE_REDIS") == "1"


REDIS_CLAIM = "migration-safe-tests:claimed-by"


@pytest.fixture
def redis_url():
    """A real Redis database of our own, emptied before the test.

    Several test runs may share one server (pytest processes started side by side, each with
    its xdist workers): a test claims a free database (1-15) with SET NX, starting from its
    worker's, so that no other run's worker takes its jobs or flushes its keys.
    Skips when no Redis answers; with MIGRATION_SAFE_REQUIRE_REDIS=1 (CI) that is a failure.
    """
    import redis

    base = os.environ.get("MIGRATION_SAFE_TEST_REDIS", "redis://127.0.0.1:6379")
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    claim = f"{os.getpid()}:{time.time()}"
    try:
        for offset in range(15):
            url = f"{base}/{1 + (worker + offset) % 15}"
            client = redis.Redis.from_url(url, socket_connect_timeout=2)
            if client.set(REDIS_CLAIM, claim, nx=True, ex=3600):  # expires if this run is killed
                break
        else:
            pytest.fail(f"every Redis database (1-15) at {base} is claimed by another test run")
        client.flushdb()
        client.set(REDIS_CLAIM, claim, ex=3600)
    except redis.RedisError as exc:
        message = f"no Redis at {base} ({exc}); set MIGRATION_SAFE_TEST_REDIS"
        if REQUIRE_REDIS:
            pytest.fail(message + " — Redis is mandatory here (MIGRATION_SAFE_REQUIRE_REDIS=1)")
        pytest.skip(message)
    yield url
    client.flushdb()  # the claim goes with it
