"""MS116: DROP INDEX without CONCURRENTLY on an existing table."""
from migration_safe.engine.model import Severity, StatementKind

from .base import Rule
from .context import MigrationContext


def check(ctx: MigrationContext):
    for operation, statement in ctx.statements():
        if statement.kind is not StatementKind.DROP_INDEX or statement.concurrently:
            continue
        tables = {lock.table for lock in statement.locks if lock.kind == "index" and lock.table}
        if any(ctx.existing(t) for t in tables) or (not tables and not statement.locks):
            yield ctx.finding(RULE, operation, f"DROP INDEX {statement.index_name} takes ACCESS EXCLUSIVE on "
                              f"{', '.join(sorted(tables)) or 'its table'}.")


RULE = Rule(
    id="MS116", name="drop-index-lock", title="Index dropped without CONCURRENTLY",
    severity=Severity.WARNING,
    why="DROP INDEX takes ACCESS EXCLUSIVE on the table; queued behind a long query it blocks every "
        "other query on the table.",
    safe_alternative="Use RemoveIndexConcurrently in a migration with `atomic = False`, post-deploy.",
    example="from django.contrib.postgres.operations import RemoveIndexConcurrently\n\n"
            "class Migration(migrations.Migration):\n    atomic = False\n"
            "    operations = [RemoveIndexConcurrently(\"product\", \"product_sku_idx\")]",
    check=check,
)
