"""Apply one migration, retrying lock timeouts only from a state known to be safe.

An atomic migration that fails is rolled back whole: any retry starts clean. A non-atomic one
commits operation by operation, so it runs here one operation at a time: after a failure the
applied operations are known exactly, and a retry resumes at the failed operation when that
operation cannot have left anything half done (one statement, a transaction of its own, or an
idempotent Safer* operation of django-pg-migration-tools). A concurrent index build that was
interrupted leaves an INVALID index behind, which is dropped before the build runs again.
"""
from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.postgres import operations as postgres_operations
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.migration import Migration
from django.db.migrations.state import ProjectState

from migration_safe.deploy import locks
from migration_safe.deploy.retry import Backoff

# Each runs one statement, which fails whole; a half-dropped index is dropped again (IF EXISTS).
ONE_STATEMENT = (postgres_operations.AddIndexConcurrently, postgres_operations.RemoveIndexConcurrently,
                 postgres_operations.AddConstraintNotValid, postgres_operations.ValidateConstraint)
IDEMPOTENT_MODULE = "django_pg_migration_tools."


@dataclass
class Applied:
    """How one migration went."""

    ok: bool
    seconds: float
    retries: int
    error: str | None = None  # what failed, and what to do


@dataclass(frozen=True)
class RetryPolicy:
    retries: int
    backoff: Backoff
    sleep: Callable[[float], None] = time.sleep


class Applier:
    def __init__(self, executor: MigrationExecutor, policy: RetryPolicy, log: Callable[[str], None],
                 statement_timeout: float | None) -> None:
        self.executor = executor
        self.connection = executor.connection
        self.policy = policy
        self.log = log
        self.statement_timeout = statement_timeout

    def apply(self, state: ProjectState, migration: Migration) -> tuple[ProjectState, Applied]:
        """The state after the migration (unchanged if it failed) and how it went."""
        started = time.monotonic()
        if migration.atomic:
            state_after, retries, error = self._atomic(state, migration)
        else:
            state_after, retries, error = self._operation_by_operation(state, migration)
        outcome = Applied(error is None, time.monotonic() - started, retries, error)
        return (state if error else state_after), outcome

    def _atomic(self, state: ProjectState, migration: Migration):
        retries = 0
        while True:
            try:
                return self.executor.apply_migration(state.clone(), migration), retries, None
            except Exception as exc:  # rolled back whole, whatever it was
                if not self._retry(migration, exc, retries):
                    return state, retries, (f"{self._failure(exc, retries)}. The migration was rolled "
                                            f"back: nothing of it is applied.")
                retries += 1

    def _operation_by_operation(self, state: ProjectState, migration: Migration):
        operations = migration.operations
        done, state_done, retries = 0, state, 0
        while True:
            try:
                for index in range(done, len(operations)):
                    state_done = self._operation(state_done, migration, operations[index])
                    done = index + 1
            except Exception as exc:
                known = leaves_nothing_half_done(operations[done])
                if not (known and self._retry(migration, exc, retries)):
                    return state, retries, self._stopped(migration, done, known, exc, retries)
                retries += 1
                continue
            try:
                self.executor.record_migration(migration)
            except Exception as exc:
                return state, retries, (f"{self._failure(exc, retries)}. Every operation is applied but "
                                        f"the migration could not be recorded: record it with `manage.py "
                                        f"migrate --fake {migration.app_label} {migration.name}`.")
            return state_done, retries, None

    def _operation(self, state: ProjectState, migration: Migration, operation) -> ProjectState:
        if isinstance(operation, postgres_operations.AddIndexConcurrently):
            self._drop_invalid_index(operation.index.name)
        part = copy.copy(migration)
        part.operations = [operation]
        with self.connection.schema_editor(atomic=False) as editor:
            return part.apply(state.clone(), editor)

    def _drop_invalid_index(self, name: str) -> None:
        found = locks.invalid_index(self.connection, name)
        if found is None:
            return
        schema, index, building = found
        if building:
            raise RuntimeError(f"index {index} is being built by another session: wait for that build "
                               f"to finish or cancel it, then run again")
        locks.drop_index_concurrently(self.connection, schema, index)
        self.log(f"dropped INVALID index {schema}.{index}, left by an interrupted concurrent build")

    def _retry(self, migration: Migration, exc: Exception, retries: int) -> bool:
        """Wait and say so if the failure is a lock timeout and retries are left."""
        if locks.sqlstate(exc) != locks.LOCK_NOT_AVAILABLE or retries >= self.policy.retries:
            return False
        delay = self.policy.backoff.delay(retries + 1)
        self.log(f"lock timeout in {label(migration)}; retry {retries + 1} of {self.policy.retries} "
                 f"in {delay:.1f} s")
        self.policy.sleep(delay)
        return True

    def _failure(self, exc: Exception, retries: int) -> str:
        code = locks.sqlstate(exc)
        text = " ".join(str(exc).split()) or type(exc).__name__
        if code == locks.LOCK_NOT_AVAILABLE:
            after = f" after {retries} {'retry' if retries == 1 else 'retries'}" if retries else ""
            return (f"lock timeout{after} ({text}): a long transaction holds a lock it needs; find it "
                    f"in pg_stat_activity, or run again later")
        if code == locks.QUERY_CANCELED and self.statement_timeout:
            return (f"statement timeout ({text}): a statement ran longer than --statement-timeout "
                    f"{self.statement_timeout:g} s; long-running work belongs to the deferred phase")
        return f"{type(exc).__name__}: {text}"

    def _stopped(self, migration: Migration, done: int, known: bool, exc: Exception, retries: int) -> str:
        operations = migration.operations
        failed = f"operation {done + 1} of {len(operations)} ({describe(operations[done])})"
        if done == 0 and known:
            leftover = (" (an INVALID index it leaves is dropped by the next run before it builds again)"
                        if isinstance(operations[done], postgres_operations.AddIndexConcurrently) else "")
            return (f"{self._failure(exc, retries)}. It is not atomic; {failed} failed whole: nothing of it "
                    f"is applied{leftover}.")
        applied = ", ".join(f"{n + 1} ({describe(op)})" for n, op in enumerate(operations[:done]))
        state = (f"operation{'s' if done > 1 else ''} {applied} {'are' if done > 1 else 'is'} applied; "
                 if done else "")
        half = "" if known else " and may be half done: check what it left in the database"
        app, name = migration.app_label, migration.name
        return (f"{self._failure(exc, retries)}. It is not atomic: {state}{failed} failed{half}. The "
                f"migration is not recorded as applied, and a new run starts again from operation 1: undo "
                f"what was applied by hand, or finish the rest by hand and record it with "
                f"`manage.py migrate --fake {app} {name}`.")


def leaves_nothing_half_done(operation) -> bool:
    # An exact class: a subclass may run more than the one statement.
    return (bool(operation.atomic) or type(operation) in ONE_STATEMENT
            or type(operation).__module__.startswith(IDEMPOTENT_MODULE))


def describe(operation) -> str:
    try:
        return operation.describe()
    except Exception:  # a project's own operation may not describe itself
        return type(operation).__name__


def label(migration: Migration) -> str:
    return f"{migration.app_label}.{migration.name}"
