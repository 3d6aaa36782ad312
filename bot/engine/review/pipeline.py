"""The pipeline: discover -> parse -> sandbox -> rules -> verdict. No GitHub, no Flask."""
from __future__ import annotations

import ast
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from migration_safe.config import Config, load_config
from migration_safe.engine.model import Acknowledgement, ColumnInfo, MigrationFile, PhaseOverride, Review, TableInfo
from migration_safe.engine.review import aliases, discover, squashes
from migration_safe.engine.review.assemble import operations_from_child, operations_from_file
from migration_safe.engine.review.hints import runsql_tables
from migration_safe.engine.review.parse import declared_app_label, parse_migration
from migration_safe.engine.review.verdict import Analysed, decide
from migration_safe.engine.sandbox import confined, install, statecache
from migration_safe.engine.sandbox.database import DatabaseError, Server, server_from_environment
from migration_safe.engine.sandbox.protocol import MigrationRecord, ReviewAnswer
from migration_safe.engine.sandbox.run import ChildResult, Limits, run_child

log = logging.getLogger(__name__)


class SetupError(RuntimeError):
    """The review cannot start: a usage or configuration problem (exit status 2)."""


@dataclass
class ReviewRequest:
    repo: Path
    base: str
    head: str = "HEAD"
    config_path: str | None = None
    database_url: str | None = None
    python: str | None = None
    limits: Limits = field(default_factory=Limits)
    acknowledgements: list[Acknowledgement] = field(default_factory=list)
    overrides: dict[str, PhaseOverride] = field(default_factory=dict)  # label -> override
    install: bool = False  # run the config's `install:` commands into a cached virtualenv first
    state_cache: bool = True  # reuse the pre-state an earlier review of this repository left
    cache_namespace: str | None = None  # whose reviews may share it (default: this repository's path)


def run_review(request: ReviewRequest) -> Review:
    repo = request.repo.resolve()
    try:
        changes = discover.python_changes(repo, request.base, request.head)
        with discover.checkout(repo, request.head) as tree:
            config = load_config(tree, request.config_path)
            files = read_migrations(tree, changes.changed, config)
            files = squashes.with_deletions(repo, request.base, request.head, changes.deleted, tree, files,
                                            lambda path: app_label(tree, path))
            if not files:
                return Review(migrations=[], notes=["no migration added or modified"])
            return review_files(tree, files, config, request)
    except discover.GitError as exc:
        raise SetupError(str(exc)) from exc


def read_migrations(tree: Path, changed: list[discover.ChangedFile], config: Config) -> list[MigrationFile]:
    files = []
    for change in changed:
        if config.ignores(change.path):
            continue
        try:
            text = confined.read_text(tree, change.path)
        except confined.Refused as exc:
            if "migrations" in PurePosixPath(change.path).parts:
                files.append(refused_migration(change, str(exc)))
            continue
        except (OSError, UnicodeDecodeError) as exc:
            text = f"# unreadable: {exc}"
        if discover.looks_like_migration(change.path, text):
            file = parse_migration(text, change.path, app_label(tree, change.path),
                                   PurePosixPath(change.path).stem, change.status)
            file.source = text
            files.append(file)
    return files


def app_label(tree: Path, path: str) -> str:
    """The label the app's apps.py declares (what Django and other migrations call it), else its
    folder; the sandbox, when it runs, has the last word."""
    folder = discover.guess_app_label(path)
    apps_py = PurePosixPath(path).parent.parent / "apps.py"
    try:
        declared = declared_app_label(confined.read_text(tree, str(apps_py), cap=APPS_PY_CAP), folder)
    except (OSError, confined.Refused, UnicodeDecodeError):
        declared = None
    return declared or folder


APPS_PY_CAP = 256 * 1024


def refused_migration(change: discover.ChangedFile, reason: str) -> MigrationFile:
    """A migration the review will not open (a link out of the checkout, a device, a huge file):
    an error, never a file silently skipped."""
    file = parse_migration("", change.path, discover.guess_app_label(change.path),
                           PurePosixPath(change.path).stem, change.status)
    file.parse_error = f"{reason}; the review does not follow it"
    return file


def review_files(tree: Path, files: list[MigrationFile], config: Config, request: ReviewRequest) -> Review:
    added = [f for f in files if f.status == "added" and f.parse_error is None]
    result, server, notes = None, None, []
    if added:
        result, server, notes = run_sandbox(tree, added, config, request)
        broken = [f.path for f in files if f.parse_error]
        if broken and any(n.startswith("graph:") for n in notes):
            # Django imports every migration module: the unparsable file (MS001) is the cause.
            notes = [f"Django cannot load the migrations while {', '.join(broken)} does not parse"]
    answer: ReviewAnswer | None = (result.answer if result and result.answer and "fatal" not in result.answer
                                   else None)
    pg_major = config.postgres_version or (server.major if server else 16)
    django_version = answer.get("django_version") if answer else None
    if aliases.several(answer):  # routers choose the databases: each alias is judged on its own
        verdicts = aliases.decide_each(files, analysed_per_alias(files, answer, notes, tree), config, pg_major,
                                       request.acknowledgements, request.overrides, django_version)
    else:
        verdicts = decide(analyse(files, answer, notes, tree), config, pg_major, request.acknowledgements,
                          request.overrides, django_version)
    review = Review(migrations=verdicts, notes=notes,
                    django_version=django_version,
                    postgres_version=answer.get("postgres_version") if answer else None,
                    state_cache=answer.get("state_cache") if answer else None)
    if answer:  # objects of older migrations the pre-state lacks: later SQL may fail for that
        review.notes.extend(f"pre-state: {note}" for note in answer.get("pre_state", []))
    review.notes.extend(squashes.notes(answer))
    if result is not None and not result.isolated:
        review.notes.append("sandbox: " + "; ".join(result.isolation))
    return review


def run_sandbox(tree: Path, files: list[MigrationFile], config: Config,
                request: ReviewRequest) -> tuple[ChildResult | None, Server | None, list[str]]:
    root = confined.resolve_inside(tree, config.django_root)
    settings = config.django_settings or settings_from_manage_py(root)
    if settings is None:
        return None, None, ["no Django settings module: set django.settings in .github/migration-safe.yml "
                            "or keep a manage.py that sets DJANGO_SETTINGS_MODULE"]
    python = request.python or resolve_python(config.python, tree)
    if request.install and config.install and not request.python and not config.python:
        environment = install.prepare(root, config.install)
        if environment.python is None:
            return None, None, [f"the project's dependencies could not be installed: {environment.error}"]
        python = environment.python
    try:
        server = server_from_environment(request.database_url)
        with server.throwaway() as target:
            child_request = {"root": str(root), "settings": settings, "database": target.as_child_config(),
                             "targets": [str(tree / f.path) for f in files], "trace": True,
                             "runsql_tables": runsql_tables(files),
                             "environment": dict(config.django_environment),
                             "deleted": squashes.deleted_migrations(files)}
            result = run_child(python, child_request, request.limits, cache=state_cache_folder(request, python))
    except DatabaseError as exc:
        return None, None, [f"sandbox database unavailable: {exc}"]
    return result, server, sandbox_notes(result)


def state_cache_folder(request: ReviewRequest, python: str) -> Path | None:
    if not request.state_cache:
        return None
    return statecache.namespace_folder(request.cache_namespace or f"local:{request.repo.resolve()}", python)


def sandbox_notes(result: ChildResult) -> list[str]:
    if result.answer is None:
        tail = result.log_tail.strip().splitlines()[-1:] if result.log_tail.strip() else []
        return [result.error + (f" ({tail[0]})" if tail else "")]
    fatal = result.answer.get("fatal")
    if fatal and fatal["stage"] == "graph":
        return [f"graph: Django cannot build the migration graph: {fatal['error']}"]
    if fatal:
        return [f"the project could not be loaded ({fatal['stage']}): {fatal['error']}"]
    notes = [f"conflict: app {app} has several leaf migrations: {', '.join(names)}; "
             f"run `makemigrations --merge`" for app, names in result.answer.get("conflicts", {}).items()]
    return notes


def analyse(files: list[MigrationFile], answer: ReviewAnswer | None, notes: list[str],
            tree: Path) -> list[Analysed]:
    by_path = {}
    if answer:
        for record in answer["migrations"]:
            path = answer["migration_files"].get(f"{record['app_label']}.{record['name']}")
            by_path[path] = record
    out = []
    for file in files:
        record = by_path.get(str((tree / file.path).resolve())) if answer else None
        out.append(squashes.resolve(analysed(file, record, answer, notes), answer, tree))
    return out


def analysed_per_alias(files: list[MigrationFile], answer: ReviewAnswer, notes: list[str],
                       tree: Path) -> list[tuple[str | None, Analysed]]:
    """Each migration as reviewed on every alias it runs on, alias by alias; alias None: on none (from
    the file alone)."""
    out: list[tuple[str | None, Analysed]] = []
    for alias in answer["aliases"]:
        run = aliases.on_alias(answer, alias)
        paths = aliases.reviewed_paths(run)
        out += [(alias, item) for item in analyse(files, run, notes, tree)
                if str((tree / item.file.path).resolve()) in paths]
    reviewed = {id(item.file) for _alias, item in out}
    elsewhere = [file for file in files if id(file) not in reviewed]
    return out + [(None, item) for item in analyse(elsewhere, {**answer, "migrations": []}, notes, tree)]


def analysed(file: MigrationFile, record: MigrationRecord | None, answer: ReviewAnswer | None,
             notes: list[str]) -> Analysed:
    if file.status == "modified" or file.parse_error:
        return Analysed(file, operations_from_file(file), sql_known=True)
    if record is None:
        reason = notes[0] if notes else (
            "Django does not know this migration (is its app in INSTALLED_APPS?)" if answer else
            "the sandbox did not run")
        return Analysed(file, operations_from_file(file), sql_known=False, sql_error=reason,
                        notes=notes or [reason])
    file.app_label = record["app_label"]
    operations = operations_from_child(file, record)
    collect_error = next((op["error"] for op in record["operations"] if op["error"]), None)
    conflict_notes = [n for n in notes if n.startswith("conflict:") and f"app {file.app_label} " in n]
    return Analysed(file, operations, sql_known=collect_error is None,
                    sql_error=collect_error, notes=conflict_notes,
                    tables_before=tables_before(record))


def tables_before(record: MigrationRecord) -> dict[str, TableInfo]:
    return {name: TableInfo(name=name, valid_checks=info["valid_checks"],
                            columns={c: ColumnInfo(**col) for c, col in info["columns"].items()})
            for name, info in record.get("tables_before", {}).items()}


def settings_from_manage_py(root: Path) -> str | None:
    """DJANGO_SETTINGS_MODULE as manage.py sets it (read, not run)."""
    try:
        tree = ast.parse(confined.read_text(root, "manage.py"))
    except (OSError, confined.Refused, SyntaxError, UnicodeDecodeError, ValueError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and len(node.args) == 2 and all(
                isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args) \
                and node.args[0].value == "DJANGO_SETTINGS_MODULE":
            return node.args[1].value
    return None


def resolve_python(configured: str | None, tree: Path) -> str:
    """The config's interpreter, inside the checkout (the config refuses anything else)."""
    return str(confined.resolve_inside(tree, configured)) if configured else sys.executable
