"""MS104: a column default PostgreSQL must compute per row: the table is rewritten."""
from migration_safe.engine.model import Severity

from .base import Rule
from .context import MigrationContext, alter_actions


def check(ctx: MigrationContext):
    for operation, statement, action in alter_actions(ctx, "add_column"):
        if action.default_volatile and ctx.existing(statement.table):
            rewritten = statement.table in statement.rewrites
            yield ctx.finding(RULE, operation, f"Column {action.column} is added to {statement.table} with "
                              f"a volatile default ({action.default or action.type_name}): PostgreSQL "
                              f"fills every row under ACCESS EXCLUSIVE"
                              + (" (the sandbox saw the table rewritten)." if rewritten else "."),
                              severity=ctx.locking_severity(statement.table))


RULE = Rule(
    id="MS104", name="volatile-default", title="Volatile database default rewrites the table",
    severity=Severity.ERROR,
    why="Since PostgreSQL 11, ADD COLUMN with a constant default is instant. A volatile default "
        "(gen_random_uuid(), random(), clock_timestamp(), a serial) must be computed for every existing "
        "row: the whole table is rewritten while an ACCESS EXCLUSIVE lock blocks reads and writes.",
    safe_alternative="Add the column nullable (or with a constant db_default), backfill it in batches in a "
                     "deferred migration, then set the volatile default for new rows only "
                     "(ALTER COLUMN … SET DEFAULT does not touch existing rows).",
    example="migrations.AddField(\"order\", \"token\", models.UUIDField(null=True)),\n"
            "# later, deferred: backfill in batches\n"
            "# then: migrations.AlterField(\"order\", \"token\", models.UUIDField(db_default=GenRandomUUID()))",
    check=check,
)
