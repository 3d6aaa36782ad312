"""A small Django project whose settings point at a throwaway database, and a way to run
`manage.py migrate_phase` on it in a subprocess, as a deploy pipeline does."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from migration_safe.engine.sandbox.database import Target, server_from_environment

SETTINGS = '''
import os

SECRET_KEY = "test-only"
INSTALLED_APPS = ["migration_safe.deploy", "shop"]
DATABASES = {"default": {
    "ENGINE": "django.db.backends.postgresql", "NAME": os.environ["T_NAME"], "USER": os.environ["T_USER"],
    "PASSWORD": os.environ["T_PASSWORD"], "HOST": os.environ["T_HOST"], "PORT": os.environ["T_PORT"],
}}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
'''

MANAGE = '''
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    from django.core.management import execute_from_command_line
    execute_from_command_line(sys.argv)
'''

INITIAL = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel("Product", [
            ("id", models.BigAutoField(primary_key=True)),
            ("name", models.CharField(max_length=100)),
        ]),
    ]
'''


@dataclass
class DeployProject:
    root: Path
    target: Target

    def migration(self, name: str, body: str) -> "DeployProject":
        (self.root / "shop" / "migrations" / f"{name}.py").write_text(textwrap.dedent(body).lstrip("\n"))
        return self

    def settings(self, extra: str) -> "DeployProject":
        (self.root / "mysite" / "settings.py").write_text(SETTINGS + textwrap.dedent(extra))
        return self

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=self.root, env=self.env(),
                              capture_output=True, text=True, timeout=120)

    def env(self) -> dict[str, str]:
        t = self.target
        environment = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # as a pipeline has it
        return {**environment, "T_NAME": t.name, "T_USER": t.user, "T_PASSWORD": t.password,
                "T_HOST": t.host, "T_PORT": str(t.port or ""), "PYTHONDONTWRITEBYTECODE": "1"}

    def start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "manage.py", "migrate_phase", *args], cwd=self.root,
                                env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return self.manage("migrate_phase", *args)

    def connect(self) -> psycopg.Connection:
        t = self.target
        return psycopg.connect(host=t.host, port=t.port, dbname=t.name, user=t.user, password=t.password,
                               autocommit=True)

    def applied(self) -> list[str]:
        """Every row of django_migrations for the app (a migration applied twice shows twice)."""
        with self.connect() as conn:
            if conn.execute("SELECT to_regclass('django_migrations')").fetchone()[0] is None:
                return []
            rows = conn.execute("SELECT app, name FROM django_migrations WHERE app = 'shop' ORDER BY id")
            return [f"{app}.{name}" for app, name in rows]

    def columns(self, table: str) -> set[str]:
        with self.connect() as conn:
            rows = conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s",
                                [table])
            return {name for (name,) in rows}


@pytest.fixture
def project(tmp_path: Path):
    root = tmp_path / "project"
    for package in ("mysite", "shop", "shop/migrations"):
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
    (root / "mysite" / "settings.py").write_text(SETTINGS)
    (root / "manage.py").write_text(MANAGE)
    (root / "shop" / "models.py").write_text("")
    (root / "shop" / "migrations" / "0001_initial.py").write_text(textwrap.dedent(INITIAL).lstrip("\n"))
    with server_from_environment().throwaway() as target:
        yield DeployProject(root, target)
