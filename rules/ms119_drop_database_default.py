"""MS119: the database default of a NOT NULL column is dropped: after the deploy only."""
from migration_safe.engine.model import Severity
from migration_safe.engine.review.phases import dropped_defaults

from .base import Rule
from .context import MigrationContext


def check(ctx: MigrationContext):
    for operation in ctx.operations:
        for table, column in dropped_defaults(operation.statements, ctx.tables_before):
            if ctx.existing(table):
                yield ctx.finding(RULE, operation, f"DROP DEFAULT on {table}.{column}, which stays NOT NULL: "
                                  "old code that leaves the column to its database default (a `db_default` "
                                  "field) fails on every INSERT from then on. It runs post-deploy, once only "
                                  "code that sets the column runs.")


RULE = Rule(
    id="MS119", name="drop-database-default", title="Database default dropped from a NOT NULL column",
    severity=Severity.NOTICE,
    why="Django leaves a field with `db_default` out of its INSERTs and lets the database fill it. Once "
        "the default is gone, such an INSERT writes NULL into a NOT NULL column and fails. `makemigrations` "
        "writes exactly this `ALTER COLUMN … DROP DEFAULT` when a field goes from `db_default=` to "
        "`default=`, e.g. after a migration was rewritten to `db_default` but models.py still says "
        "`default=`. Before the deploy it breaks the old code; after it, the new code sets the column.",
    safe_alternative="Run it post-deploy (migration-safe places it there), or keep the database default: "
                     "say `db_default=` in models.py too, so the next `makemigrations` writes nothing.",
    example="stock = models.IntegerField(db_default=0)  # models.py agrees with the migration",
    check=check,
)
