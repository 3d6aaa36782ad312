"""MS115: ACCESS EXCLUSIVE on an existing table: the deploy must set lock_timeout."""
from migration_safe.engine.model import Severity

from .base import Rule
from .context import MigrationContext


def check(ctx: MigrationContext):
    if ctx.config.lock_timeout_managed:
        return
    tables = set()
    first = None
    for operation, statement in ctx.statements():
        for lock in statement.locks:
            table = lock.table or lock.relation
            if lock.mode == "AccessExclusiveLock" and lock.kind == "table" and ctx.existing(table):
                tables.add(table)
                first = first or operation
    if tables:
        yield ctx.finding(RULE, first, f"Takes ACCESS EXCLUSIVE on {', '.join(sorted(tables))}. Behind a "
                          "long-running query it waits, and every query queues behind it: run it with a "
                          "short lock_timeout and retries.")


RULE = Rule(
    id="MS115", name="lock-timeout", title="Deploy must set lock_timeout",
    severity=Severity.NOTICE,
    why="Even an instant ALTER needs ACCESS EXCLUSIVE. While it waits for a long transaction to finish, "
        "all other queries on the table queue behind it: a short statement becomes an outage.",
    safe_alternative="Run migrations with `SET lock_timeout = '2s'` (and retry on timeout), e.g. from the "
                     "deploy script or with django-pg-migration-tools; then set "
                     "`postgres.lock_timeout: managed` in .github/migration-safe.yml.",
    example="postgres:\n  lock_timeout: managed",
    check=check,
)
