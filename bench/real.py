#!/usr/bin/env python3
"""Replay real commits of real projects: does every migration that `manage.py sqlmigrate` shows get
its SQL from our review, and what does a review cost next to django-migration-linter's?

    python bench/real.py healthchecks --repo /tmp/real/healthchecks --python python3.12 --venvs /tmp/real/venvs
    python bench/real.py netbox --repo /tmp/real/netbox --python python3.12 --venvs /tmp/real/venvs

The repository is a clone with its full history. With --venvs DIR, each commit runs under a
virtualenv of its own requirements.txt (made once per distinct file, from --python, with
django-migration-linter added); without, --python must already have them. For each commit C of the
project's list (or --commits):

  ours        `migration-safe check --repo R --base C^ --head C --format json --no-state-cache`
              (a cold review on the embedded server, as the first review of a pull request)
  sqlmigrate  `manage.py sqlmigrate APP NAME` for each migration C adds, in a worktree of C, against
              an empty database on --database-url: "yes" when it prints the SQL
  linter      django-migration-linter's `lint_all_migrations(git_commit_id=C^)` in the same worktree

Prints a markdown table and writes the figures as JSON (--output; the README's are in
bench/real-results.json).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

BENCH = Path(__file__).resolve().parent
MIGRATION_SAFE = Path(sys.executable).with_name("migration-safe")


@dataclass
class Project:
    root: str  # the Django project's folder in the repository (manage.py)
    settings: str
    commits: list[str]
    config: str = ""  # migration-safe's config for the project, when it needs one
    # `sqlmigrate` and the linter run the project's own settings: where they find the database
    environment: dict[str, str] = field(default_factory=dict)
    settings_module: str = ""  # a settings override written next to the worktree, when needed


PROJECTS = {
    "healthchecks": Project(
        root=".", settings="hc.settings",
        environment={"DB": "postgres", "DB_HOST": "{host}", "DB_PORT": "{port}", "DB_USER": "{user}",
                     "DB_PASSWORD": "{password}", "DB_NAME": "{name}"},
        commits=[  # migrations added 2024-05 .. 2026-07 (Django 5.0 .. 6.0), api.Check and its keys among them
            "d486d2db", "26a57343", "daaee30c", "3e5080d9", "8054191b", "9edae634", "5e848f49",
            "8dab5d8c", "8922c813", "bf97e396", "0f78e117", "6ab5df35", "b9eac590", "255df72f"]),
    "netbox": Project(
        root="netbox", settings="netbox.settings",
        config="django:\n  root: netbox\n  settings: netbox.settings\n  environment:\n"
               "    NETBOX_CONFIGURATION: netbox.configuration_testing\n",
        environment={"NETBOX_CONFIGURATION": "bench_configuration"},
        settings_module=("from netbox.configuration_testing import *  # noqa: F403\n\n"
                         "DATABASES = {{'default': {{'NAME': '{name}', 'USER': '{user}', 'PASSWORD': "
                         "'{password}', 'HOST': '{host}', 'PORT': '{port}'}}}}\n"),
        commits=[  # natural_sort collation tables (dcim, ipam, circuits…), int -> bigint, indexes, new models
            "712c743bc", "0b7375136", "e3d9fe622", "e2665ef21", "02165a28a", "625c4eb5b", "1fc43026d",
            "2c0b6c4d5", "2389feea6", "e5b9e5a27", "f242f17ce", "bd562dd5c", "0eb1fcc09", "4afdb31b8"]),
}

LINT = """
import os, sys
import django
os.chdir(sys.argv[1]); sys.path.insert(0, sys.argv[1])
os.environ.setdefault("DJANGO_SETTINGS_MODULE", sys.argv[3])
django.setup()
from django_migration_linter import MigrationLinter
linter = MigrationLinter(sys.argv[1], no_cache=True, no_output=True)
linter.lint_all_migrations(git_commit_id=sys.argv[2])
print(linter.nb_total)
"""


@dataclass
class Commit:
    commit: str
    migrations: list[str]  # app.name
    ours_sql: dict[str, bool]
    sqlmigrate_sql: dict[str, bool]
    ours_seconds: float
    ours_exit: int
    linter_seconds: float | None
    linter_exit: int | None
    linter_linted: int | None  # migrations the linter went through (exit 1 is "errors found")
    notes: list[str]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def added_migrations(repo: Path, commit: str, root: str) -> list[tuple[str, str, str]]:
    """(app, name, path) of the migration files the commit adds."""
    out = []
    for path in git(repo, "diff", "--name-only", "--diff-filter=A", f"{commit}^", commit).split():
        parts = Path(path).parts
        if path.endswith(".py") and len(parts) >= 3 and parts[-2] == "migrations" \
                and not parts[-1].startswith("__"):
            out.append((parts[-3], Path(path).stem, path))
    return out


def ours(repo: Path, commit: str, python: str, config: Path | None, work: Path) -> tuple[dict, float, int]:
    report = work / f"ours-{commit}.json"
    command = [str(MIGRATION_SAFE), "check", "--repo", str(repo), "--base", f"{commit}^", "--head", commit,
               "--format", "json", "--output", str(report), "--python", python, "--no-state-cache"]
    if config:
        command += ["--config", str(config)]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = round(time.monotonic() - started, 2)
    document = json.loads(report.read_text()) if report.exists() else {"migrations": [], "notes": [done.stderr[-300:]]}
    return document, seconds, done.returncode


def sqlmigrate(tree: Path, python: str, env: dict, app: str, name: str) -> bool:
    done = subprocess.run([python, "manage.py", "sqlmigrate", app, name], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=600)
    return done.returncode == 0 and bool(done.stdout.strip())


def linter(tree: Path, python: str, env: dict, base: str, settings: str) -> tuple[float | None, int | None, int | None]:
    started = time.monotonic()
    done = subprocess.run([python, "-c", LINT, str(tree), base, settings], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=1800)
    seconds = round(time.monotonic() - started, 2)
    if "No module named 'django_migration_linter'" in done.stderr:
        return None, None, None
    last = done.stdout.strip().splitlines()[-1:] or [""]
    return seconds, done.returncode, int(last[0]) if last[0].isdigit() else None


class Database:
    """An empty database of our own on --database-url, for sqlmigrate and the linter."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.name = f"ms_real_{secrets.token_hex(4)}"

    def __enter__(self) -> dict[str, str]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
            info = conn.info
            return {"host": info.host, "port": str(info.port), "user": info.user,
                    "password": info.password or "", "name": self.name}

    def __exit__(self, *exc: object) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name)))


def interpreter(repo: Path, commit: str, python: str, venvs: Path | None) -> str:
    """The project's own requirements at this commit, in a virtualenv made once per requirements file."""
    if venvs is None:
        return python
    requirements = git(repo, "show", f"{commit}:requirements.txt")
    folder = venvs / f"{repo.name}-{hashlib.sha256(requirements.encode()).hexdigest()[:12]}"
    if not (folder / "ready").exists():
        shutil.rmtree(folder, ignore_errors=True)
        subprocess.run([python, "-m", "venv", str(folder)], check=True)
        (folder / "requirements.txt").write_text(requirements)
        pip = [str(folder / "bin" / "python"), "-m", "pip", "install", "-q"]
        with open(folder / "pip.log", "w") as log:
            for what in (["-r", str(folder / "requirements.txt")], ["django-migration-linter"]):
                subprocess.run([*pip, *what], check=True, stdout=log, stderr=subprocess.STDOUT)
        (folder / "ready").write_text(commit)
    return str(folder / "bin" / "python")


def bench(name: str, repo: Path, python: str, commits: list[str], url: str, venvs: Path | None) -> list[Commit]:
    project = PROJECTS[name]
    work = Path(tempfile.mkdtemp(prefix=f"ms-real-{name}-"))
    config = None
    if project.config:
        config = work / "migration-safe.yml"
        config.write_text(project.config)
    results = []
    try:
        with Database(url) as database:
            env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1",
                   **{k: v.format(**database) for k, v in project.environment.items()}}
            if project.settings_module:
                (work / "bench_configuration.py").write_text(project.settings_module.format(**database))
                env["PYTHONPATH"] = str(work)
            for commit in commits:
                own = interpreter(repo, commit, python, venvs)
                results.append(one_commit(project, repo, commit, own, config, env, work))
                print(json.dumps(asdict(results[-1])), file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def one_commit(project: Project, repo: Path, commit: str, python: str, config: Path | None, env: dict,
               work: Path) -> Commit:
    added = added_migrations(repo, commit, project.root)
    document, seconds, exit_code = ours(repo, commit, python, config, work)
    reviewed = {f"{m['app_label']}.{m['name']}": m["sql_status"] == "ok" for m in document["migrations"]}
    tree = work / f"tree-{commit}"
    git(repo, "worktree", "add", "--detach", "--quiet", str(tree), commit)
    try:
        django_root = tree / project.root
        shown = {f"{app}.{name}": sqlmigrate(django_root, python, env, app, name) for app, name, _ in added}
        lint_seconds, lint_exit, linted = linter(django_root, python, env, f"{commit}^", project.settings)
    finally:
        git(repo, "worktree", "remove", "--force", str(tree))
    return Commit(commit, sorted(shown), {k: reviewed.get(k, False) for k in sorted(shown)}, shown, seconds,
                  exit_code, lint_seconds, lint_exit, linted, document.get("notes", [])[:3])


def table(name: str, results: list[Commit]) -> str:
    lines = [f"{name}: commit | migrations | SQL (ours) | SQL (sqlmigrate) | ours, s | linter, s",
             "--- | --- | --- | --- | --- | ---"]
    for r in results:
        lines.append(f"{r.commit} | {len(r.migrations)} | {sum(r.ours_sql.values())} | "
                     f"{sum(r.sqlmigrate_sql.values())} | {r.ours_seconds} | "
                     f"{'-' if r.linter_seconds is None or r.linter_linted is None else r.linter_seconds}")
    shown = [(r, k) for r in results for k, v in r.sqlmigrate_sql.items() if v]
    missing = [f"{r.commit} {k}" for r, k in shown if not r.ours_sql[k]]
    total = sum(r.ours_seconds for r in results)
    lint = [r.linter_seconds for r in results if r.linter_seconds is not None and r.linter_linted is not None]
    lines.append(f"\n{len(results)} commits: SQL for {len(shown) - len(missing)}/{len(shown)} migrations that "
                 f"sqlmigrate shows; ours {total:.1f} s in all (median "
                 f"{sorted(r.ours_seconds for r in results)[len(results) // 2]} s)"
                 + (f", linter {sum(lint):.1f} s" if lint else "")
                 + (f"; missing: {', '.join(missing)}" if missing else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("project", choices=sorted(PROJECTS))
    parser.add_argument("--repo", type=Path, required=True, help="a clone with the project's history")
    parser.add_argument("--python", required=True, help="an interpreter with the project's requirements")
    parser.add_argument("--commits", nargs="*", help="instead of the project's list")
    parser.add_argument("--venvs", type=Path, help="make a virtualenv per requirements.txt here")
    parser.add_argument("--database-url", default=os.environ.get("MIGRATION_SAFE_REAL_DATABASE_URL",
                                                                 "postgresql://postgres@127.0.0.1:5432/postgres"),
                        help="PostgreSQL admin URL for sqlmigrate and the linter")
    parser.add_argument("--output", type=Path, help="write the figures here as JSON")
    args = parser.parse_args(argv)
    commits = args.commits or PROJECTS[args.project].commits
    results = bench(args.project, args.repo.resolve(), args.python, commits, args.database_url, args.venvs)
    print(table(args.project, results))
    if args.output:
        args.output.write_text(json.dumps([asdict(r) for r in results], indent=2))
    shown = [k for r in results for k, v in r.sqlmigrate_sql.items() if v and not r.ours_sql[k]]
    return 1 if shown else 0


if __name__ == "__main__":
    sys.exit(main())
