"""MS105: a column type change that rewrites the table."""
from migration_safe.engine.model import Severity

from .base import Rule
from .context import MigrationContext, alter_actions


def check(ctx: MigrationContext):
    for operation, statement, action in alter_actions(ctx, "alter_type"):
        if not ctx.existing(statement.table):
            continue
        if statement.table in statement.rewrites:
            yield ctx.finding(RULE, operation, f"Changing {statement.table}.{action.column} to "
                              f"{action.type_name} rewrites the whole table under ACCESS EXCLUSIVE "
                              "(seen in the sandbox).", severity=ctx.locking_severity(statement.table))


RULE = Rule(
    id="MS105", name="type-change-rewrite", title="Column type change rewrites the table",
    severity=Severity.ERROR,
    why="ALTER COLUMN … TYPE rewrites the table and its indexes unless the old type converts to the new "
        "one without a change on disk (varchar(n) to a larger n or to text, numeric(p,s) to a larger p). "
        "The table is locked for reads and writes for the whole rewrite, and old code may not handle the "
        "new type.",
    safe_alternative="Expand and contract: add a new column of the new type (pre-deploy), write both from "
                     "the code, backfill in batches (deferred), switch reads, then drop the old column "
                     "(post-deploy).",
    example="migrations.AddField(\"product\", \"price_cents\", models.BigIntegerField(null=True))",
    check=check,
)
