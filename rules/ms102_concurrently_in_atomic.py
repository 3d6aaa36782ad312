"""MS102: CONCURRENTLY inside a transaction: it cannot run at all."""
from migration_safe.engine.model import Operation, Severity

from .base import Rule
from .context import MigrationContext

CONCURRENT_TYPES = {"AddIndexConcurrently", "RemoveIndexConcurrently"}


def explains(ctx: MigrationContext, operation: Operation) -> bool:
    """The operation's failure is that it needs to run outside a transaction."""
    return ctx.migration.atomic and (
        operation.type in CONCURRENT_TYPES
        or any(not s.transactional for s in operation.statements))


def check(ctx: MigrationContext):
    for operation in ctx.operations:
        if explains(ctx, operation):
            yield ctx.finding(RULE, operation, f"{operation.description} must run outside a transaction, "
                              "but the migration is atomic: PostgreSQL refuses it and the migration fails.")


RULE = Rule(
    id="MS102", name="concurrently-in-atomic", title="CONCURRENTLY inside an atomic migration",
    severity=Severity.ERROR,
    why="CREATE/DROP INDEX CONCURRENTLY (and VACUUM, REINDEX CONCURRENTLY…) cannot run inside a "
        "transaction block. Django wraps a migration in one unless it says `atomic = False`, so the "
        "migration fails at deploy time.",
    safe_alternative="Set `atomic = False` on the migration and keep the concurrent operation alone in it "
                     "(a failure half-way must not leave other changes applied).",
    example="class Migration(migrations.Migration):\n    atomic = False\n    operations = [\n"
            "        AddIndexConcurrently(\"product\", models.Index(fields=[\"sku\"], name=\"product_sku_idx\")),\n"
            "    ]",
    check=check,
)
