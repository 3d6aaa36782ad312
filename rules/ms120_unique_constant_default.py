"""MS120: a UNIQUE column added with one default value for every existing row."""
from migration_safe.engine.model import Severity

from .base import Rule
from .context import MigrationContext


def check(ctx: MigrationContext):
    for operation, statement in ctx.statements():
        unique = {a.column for a in statement.actions
                  if a.action == "add_constraint" and a.constraint_type in ("unique", "primary_key")}
        for action in statement.actions:
            if action.action == "add_column" and action.column in unique and action.default is not None \
                    and not action.default_volatile and ctx.existing(statement.table):
                yield ctx.finding(RULE, operation, f"Column {action.column} is added to existing table "
                                  f"{statement.table} as UNIQUE with the default {action.default}: every "
                                  "existing row gets that one value, so the migration fails as soon as the "
                                  "table holds two rows (the sandbox's tables are empty, production's are not).")


RULE = Rule(
    id="MS120", name="unique-constant-default", title="UNIQUE column filled with one default value",
    severity=Severity.ERROR,
    why="Adding a field with `unique=True` and a `default` (or `db_default`) fills every existing row with "
        "the same value, then builds the unique index: it fails on the second row. Review databases are "
        "empty, so the migration passes every test and fails in production, in the middle of a deploy.",
    safe_alternative="Add the column nullable and without the unique rule (NULLs never collide), fill it "
                     "with distinct values in batches (deferred, e.g. from a callable per row), then add the "
                     "unique index concurrently and attach it (see MS101).",
    example="migrations.AddField(\"customer\", \"code\", models.CharField(max_length=10, null=True)),\n"
            "# deferred: give every row its own code, in batches\n"
            "# later: the unique index CONCURRENTLY, then AlterField(..., unique=True) through "
            "SeparateDatabaseAndState",
    check=check,
)
