"""One run of `migrate_phase`: lock, read what is pending, plan, apply, report."""
from __future__ import annotations

import io
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal
from django.db import DatabaseError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.exceptions import InconsistentMigrationHistory
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.migration import Migration

from migration_safe.deploy import locks
from migration_safe.deploy.apply import Applier, RetryPolicy
from migration_safe.deploy.phase import LoadedOperation, PhaseAnswer, phase_of
from migration_safe.deploy.plan import Pending, Plan, make_plan
from migration_safe.engine.model import MigrationFile, Phase
from migration_safe.engine.review.parse import parse_migration

MAX_MIGRATION_BYTES = 2_000_000  # a generated migration of thousands of operations stays far below


@dataclass(frozen=True)
class Options:
    phase: Phase
    database: str
    lock_timeout: float
    statement_timeout: float | None
    wait_for_lock: float
    retry: RetryPolicy
    plan_only: bool = False
    declared: dict[str, Phase] = field(default_factory=dict)  # settings.MIGRATION_SAFE_DEPLOY_PHASES


@dataclass
class Step:
    """One migration of the run and how it went."""

    pending: Pending
    status: str  # "applied" | "failed" | "not run" | "would apply"
    seconds: float = 0.0
    retries: int = 0
    error: str | None = None


@dataclass
class Result:
    options: Options
    outcome: str  # "done" | "nothing to do" | "planned" | "refused" | "failed" | "locked"
    exit_code: int
    plan: Plan | None = None
    steps: list[Step] = field(default_factory=list)
    message: str | None = None


def run(options: Options, connection: BaseDatabaseWrapper, on_step: Callable[[Step], None],
        log: Callable[[str], None], verbosity: int = 1) -> Result:
    if options.plan_only:
        return _plan_and_apply(options, connection, on_step, log, verbosity)
    if not locks.acquire_runner_lock(connection, options.wait_for_lock):
        holder = locks.runner_lock_holder(connection)
        return Result(options, "locked", 3, message=(
            f"another migrate_phase run holds the runner lock on database {options.database!r}"
            + (f" ({holder})" if holder else "") + f"; waited {options.wait_for_lock:g} s "
            "(--wait-for-lock). Nothing was applied."))
    try:
        return _plan_and_apply(options, connection, on_step, log, verbosity)
    finally:
        try:
            locks.release_runner_lock(connection)
        except DatabaseError:
            pass  # the session is gone, and its lock with it: what failed is the error to show


def _plan_and_apply(options: Options, connection: BaseDatabaseWrapper, on_step: Callable[[Step], None],
                log: Callable[[str], None], verbosity: int) -> Result:
    # Read after taking the lock: a runner that waited sees what the other one applied.
    executor = MigrationExecutor(connection)
    problem = _history_problem(executor, connection)
    if problem:
        return Result(options, "failed", 1, message=problem)
    migrations = {(m.app_label, m.name): m for m, _ in
                  executor.migration_plan(executor.loader.graph.leaf_nodes())}
    pending = [_pending(executor, migration, options.declared) for migration in migrations.values()]
    plan = make_plan(options.phase, pending)
    if not plan.runnable:
        return Result(options, "refused", 1, plan, message="nothing was applied")
    if options.plan_only:
        return Result(options, "planned", 0, plan, [Step(p, "would apply") for p in plan.run])
    if not plan.run:
        return Result(options, "nothing to do", 0, plan)
    return _apply(options, executor, plan, [migrations[_key(p.label)] for p in plan.run], on_step, log,
                  verbosity)


def _apply(options: Options, executor: MigrationExecutor, plan: Plan, migrations: list[Migration],
           on_step: Callable[[Step], None], log: Callable[[str], None], verbosity: int) -> Result:
    connection = executor.connection
    executor.recorder.ensure_schema()
    # Built from what is applied, as `migrate` does: the database's own state, whatever the order.
    state = executor._create_project_state(with_applied_migrations=True)
    state.apps  # noqa: B018  render once, as `migrate` does: each attempt's clone then copies the models
    signal_output = {"stdout": io.StringIO() if verbosity == 0 else sys.stdout}
    emit_pre_migrate_signal(verbosity, False, connection.alias, apps=state.clone().apps,
                            plan=[(m, False) for m in migrations], **signal_output)
    previous = locks.set_timeouts(connection, options.lock_timeout, options.statement_timeout)
    applier = Applier(executor, options.retry, log, options.statement_timeout)
    steps = [Step(p, "not run") for p in plan.run]
    try:
        for step, migration in zip(steps, migrations):
            state, applied = applier.apply(state, migration)
            step.status = "applied" if applied.ok else "failed"
            step.seconds, step.retries, step.error = applied.seconds, applied.retries, applied.error
            on_step(step)
            if not applied.ok:
                done = sum(s.status == "applied" for s in steps)
                return Result(options, "failed", 1, plan, steps,
                              f"stopped at {step.pending.label}: {done} applied before it, "
                              f"{len(steps) - done - 1} not run")
    finally:
        locks.restore_timeouts(connection, previous)
    emit_post_migrate_signal(verbosity, False, connection.alias, apps=state.clone().apps,
                             plan=[(m, False) for m in migrations], **signal_output)
    return Result(options, "done", 0, plan, steps)


def _history_problem(executor: MigrationExecutor, connection: BaseDatabaseWrapper) -> str | None:
    try:
        executor.loader.check_consistent_history(connection)
    except InconsistentMigrationHistory as exc:
        return str(exc)
    conflicts = executor.loader.detect_conflicts()
    if conflicts:
        names = "; ".join(f"{app}: {', '.join(sorted(n))}" for app, n in sorted(conflicts.items()))
        return f"conflicting migrations ({names}): run `manage.py makemigrations --merge`"
    return None


def _pending(executor: MigrationExecutor, migration: Migration, declared: dict[str, Phase]) -> Pending:
    key = (migration.app_label, migration.name)
    label = f"{migration.app_label}.{migration.name}"
    answer = (PhaseAnswer(declared[label], "MIGRATION_SAFE_DEPLOY_PHASES") if label in declared
              else _phase(migration))
    parents = sorted(parent.key for parent in executor.loader.graph.node_map[key].parents)
    return Pending(label, answer.phase, answer.source, tuple(f"{app}.{name}" for app, name in parents),
                   answer.problem)


def _phase(migration: Migration) -> PhaseAnswer:
    path, source, problem = _source(migration)
    if source is None:
        file = MigrationFile(path=path, name=migration.name, app_label=migration.app_label,
                             parse_error=problem)
    else:
        file = parse_migration(source, path, migration.app_label, migration.name)
    return phase_of(file, [LoadedOperation.of(op) for op in migration.operations],
                    getattr(migration, "deploy_phase", None), _third_party(path))


def _source(migration: Migration) -> tuple[str, str | None, str | None]:
    """(path to show, the file's text, why there is none)."""
    module = sys.modules.get(type(migration).__module__)
    filename = getattr(module, "__file__", None)
    if not filename or not filename.endswith(".py"):
        return filename or type(migration).__module__, None, "no Python source"
    path = Path(filename)
    try:
        shown = str(path.relative_to(Path.cwd()))
    except ValueError:
        shown = str(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_MIGRATION_BYTES + 1)
    except OSError as exc:
        return shown, None, exc.strerror or type(exc).__name__
    if len(data) > MAX_MIGRATION_BYTES:
        return shown, None, f"larger than {MAX_MIGRATION_BYTES:,} bytes"
    return shown, data.decode("utf-8", errors="replace"), None


def _third_party(path: str) -> bool:
    return bool({"site-packages", "dist-packages"} & set(Path(path).parts))


def _key(label: str) -> tuple[str, str]:
    app, name = label.split(".", 1)
    return app, name
