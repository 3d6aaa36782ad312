"""MS118: rows changed in the same transaction as DDL that holds ACCESS EXCLUSIVE on their table."""
from __future__ import annotations

from typing import Iterator

from migration_safe.engine.model import Operation, Severity, Statement, StatementKind

from .base import Rule
from .context import MigrationContext


def under_lock(ctx: MigrationContext) -> Iterator[tuple[Operation, Statement, Statement]]:
    """(operation, DML statement, the statement that locked its table) for each change of rows of an
    existing table that runs while the migration's transaction holds ACCESS EXCLUSIVE on it."""
    if not ctx.migration.atomic:
        return  # Django runs each statement on its own: the lock is gone before the update starts
    held: dict[str, Statement] = {}
    for operation, statement in in_execution_order(ctx):
        if statement.kind is StatementKind.DML and statement.table in held \
                and ctx.existing(statement.table):
            yield operation, statement, held[statement.table]
        for table in statement.exclusive_tables:
            held.setdefault(table, statement)


def in_execution_order(ctx: MigrationContext) -> list[tuple[Operation, Statement]]:
    """Django runs the deferred SQL (foreign keys, indexes) after every operation's own."""
    pairs = list(ctx.statements())
    return [p for p in pairs if not p[1].deferred] + [p for p in pairs if p[1].deferred]


def check(ctx: MigrationContext):
    for operation, statement, locker in under_lock(ctx):
        table = statement.table
        yield ctx.finding(RULE, operation, f"{_short(statement.sql)} runs in the same transaction as "
                          f"{_short(locker.sql)}, which holds ACCESS EXCLUSIVE on {table} until the "
                          f"migration commits: every read and write of {table} waits while one statement "
                          "changes every matching row (no batches).",
                          severity=ctx.locking_severity(table))


def _short(sql: str) -> str:
    line = " ".join(sql.split()).rstrip(";")
    return line if len(line) <= 100 else line[:99] + "…"


RULE = Rule(
    id="MS118", name="data-change-under-lock", title="Rows changed while DDL holds ACCESS EXCLUSIVE",
    severity=Severity.ERROR,
    why="Locks last until the transaction ends. In an atomic migration, an UPDATE (or INSERT, DELETE) "
        "that follows an ALTER TABLE of the same table runs under the ALTER's ACCESS EXCLUSIVE lock: the "
        "table can be neither read nor written until the update of every row is over. Django does this "
        "itself when an AlterField makes a nullable column NOT NULL with a default (`SET DEFAULT`, then "
        "`UPDATE … WHERE col IS NULL`, then `SET NOT NULL`); a RunSQL that ALTERs and then UPDATEs does "
        "the same. It is one statement, not a backfill in batches.",
    safe_alternative="Separate the data from the schema: first the schema change that needs no backfill "
                     "(a nullable column, or a `db_default`), pre-deploy; then the backfill in batches in "
                     "a deferred migration of its own (`atomic = False`, one short transaction per batch); "
                     "then, for NOT NULL, the CHECK recipe of MS106.",
    example="# 0008 (pre-deploy): the default in the database, no backfill\n"
            "migrations.AlterField(\"product\", \"legacy_code\", models.CharField(max_length=20, null=True, "
            "db_default=\"x\")),\n"
            "# 0009 (deferred, atomic = False): UPDATE … WHERE id BETWEEN … AND legacy_code IS NULL, in batches\n"
            "# 0010 (post-deploy): NOT NULL through a validated CHECK (MS106)",
    check=check,
)
