"""MS110: dropping a column or a table, correctly placed after the deploy."""
from migration_safe.engine.model import Severity, StatementKind

from .base import Rule
from .context import MigrationContext, alter_actions


def check(ctx: MigrationContext):
    seen = set()
    for operation, statement, action in alter_actions(ctx, "drop_column"):
        if ctx.existing(statement.table) and operation.index not in seen:
            seen.add(operation.index)
            yield finding(ctx, operation, f"drops column {statement.table}.{action.column}")
    for operation, statement in ctx.statements():
        if statement.kind is StatementKind.DROP_TABLE and ctx.existing(statement.table) \
                and operation.index not in seen:
            seen.add(operation.index)
            yield finding(ctx, operation, f"drops table {statement.table}")


def finding(ctx, operation, what):
    return ctx.finding(RULE, operation, f"{operation.description} {what}: it must run post-deploy, once no "
                       "running code reads or writes it. Data is gone for good.")


RULE = Rule(
    id="MS110", name="destructive-step", title="Column or table dropped (post-deploy)",
    severity=Severity.NOTICE,
    why="Old code keeps using a column or table until every old process is gone; dropping it before then "
        "breaks it. Placed post-deploy, the drop is safe, but irreversible.",
    safe_alternative="Remove every use from the code first (a release earlier, or in this deploy with the "
                     "drop post-deploy), and make sure nothing else (reports, replicas) reads it.",
    example="class Migration(migrations.Migration):\n    deploy_phase = \"post-deploy\"\n"
            "    operations = [migrations.RemoveField(\"product\", \"legacy_code\")]",
    check=check,
)
