"""MS112: an ACCESS EXCLUSIVE lock stays held while slow work runs in the same transaction."""
from migration_safe.engine.model import Severity, StatementKind

from .base import Rule
from .context import MigrationContext
from .ms106_set_not_null import proven_by_check


def slow(ctx: MigrationContext, operation, statement) -> str | None:
    """Why the statement takes long on a big table, or None."""
    if statement.rewrites:
        return f"rewrites {', '.join(statement.rewrites)}"
    if statement.kind is StatementKind.DML and ctx.existing(statement.table):
        return f"changes rows of {statement.table}"
    if statement.kind is StatementKind.CREATE_INDEX and ctx.existing(statement.table):
        return f"builds an index on {statement.table}"
    for action in statement.actions:
        if action.action == "set_not_null" and ctx.existing(statement.table) \
                and not proven_by_check(ctx, statement.table, action.column):
            return f"scans {statement.table} for NULLs"
        if action.action == "add_constraint" and action.constraint_type in ("unique", "exclusion"):
            # what takes time is building the constraint's index (none with USING INDEX), not a scan
            if not action.using_index and ctx.existing(statement.table):
                return f"builds an index on {statement.table}"
            continue
        if action.action in ("add_constraint", "validate_constraint") and not action.not_valid \
                and action.constraint_type != "primary_key" and ctx.existing(statement.table):
            return f"validates a constraint on {statement.table}"
    return None


def check(ctx: MigrationContext):
    if not ctx.migration.atomic:
        return
    held: dict[str, int] = {}  # existing table -> operation index that locked it
    reported: set[int] = set()  # one finding per operation: its slow statements share one line
    for operation, statement in ctx.statements():
        reason = slow(ctx, operation, statement) if held else None
        others = {t for t in held if t not in (statement.table, *statement.rewrites)}
        if reason and others and operation.index not in reported:
            reported.add(operation.index)
            yield ctx.finding(RULE, operation, f"While this statement {reason}, the migration's transaction "
                              f"still holds ACCESS EXCLUSIVE on {', '.join(sorted(others))}: every query "
                              "on it waits until the migration commits.",
                              severity=ctx.worst_locking_severity(others))
        for lock in statement.locks:
            table = lock.table or lock.relation
            if lock.mode == "AccessExclusiveLock" and lock.kind == "table" and ctx.existing(table):
                held.setdefault(table, operation.index)


RULE = Rule(
    id="MS112", name="exclusive-lock-held", title="ACCESS EXCLUSIVE held while slow work runs",
    severity=Severity.ERROR,
    why="Locks are kept until the transaction ends. An atomic migration that first takes ACCESS "
        "EXCLUSIVE on a table (even a quick ALTER) and then rewrites, scans, indexes or updates another "
        "table keeps the first table unreadable for the whole slow step.",
    safe_alternative="Put the slow step in its own migration (deferred if it is a backfill or a build on "
                     "a large table), so each transaction holds its strong lock only for an instant.",
    example="# 0008: the quick ALTER alone\n# 0009 (deferred, atomic = False): the backfill or index build",
    check=check,
)
