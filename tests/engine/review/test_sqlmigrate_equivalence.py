"""The child's per-operation SQL, put together, is exactly what `manage.py sqlmigrate` prints."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from migration_safe.cli import build_demo_repository
from migration_safe.engine.sandbox.database import server_from_environment
from migration_safe.engine.sandbox.run import run_child

pytestmark = pytest.mark.slow

TEST_SETTINGS = '''
import os
from .settings import *  # noqa: F401,F403

DATABASES = {"default": {
    "ENGINE": "django.db.backends.postgresql", "NAME": os.environ["T_NAME"], "USER": os.environ["T_USER"],
    "PASSWORD": os.environ["T_PASSWORD"], "HOST": os.environ["T_HOST"], "PORT": os.environ["T_PORT"],
}}
'''


def manage(repo, target, *args):
    env = {**os.environ, "T_NAME": target.name, "T_USER": target.user, "T_PASSWORD": target.password,
           "T_HOST": target.host, "T_PORT": str(target.port or ""),
           "DJANGO_SETTINGS_MODULE": "mysite.ms_test_settings"}
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=repo, env=env, capture_output=True,
                          text=True, check=True)
    return done.stdout


def test_per_operation_sql_matches_sqlmigrate(tmp_path):
    repo, _base = build_demo_repository(tmp_path)
    (repo / "mysite" / "ms_test_settings.py").write_text(TEST_SETTINGS)
    migrations = sorted((repo / "shop" / "migrations").glob("000[2-9]_*.py"))
    server = server_from_environment()
    with server.throwaway() as target:
        answer = run_child(sys.executable, {"root": str(repo), "settings": "mysite.settings",
                                            "database": target.as_child_config(),
                                            "targets": [str(p) for p in migrations]}).answer
    assert answer and "fatal" not in answer, answer
    assert [m["name"] for m in answer["migrations"]] == [p.stem for p in migrations]
    with server.throwaway() as target:
        previous = "0001_initial"
        for record in answer["migrations"]:
            manage(repo, target, "migrate", "shop", previous)
            expected = manage(repo, target, "sqlmigrate", "shop", record["name"]).rstrip("\n")
            ours = "\n".join(record["collected_sql"])
            if record["atomic"]:
                ours = f"BEGIN;\n{ours}\nCOMMIT;"
            assert ours == expected
            sql_lines = [line for line in record["collected_sql"] if not line.startswith("--")]
            per_operation = [s for op in record["operations"] for s in op["statements"]]
            per_operation += [s for op in record["operations"] for s in op["deferred"]]
            assert per_operation == sql_lines
            previous = record["name"]
