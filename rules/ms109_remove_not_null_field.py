"""MS109: dropping a NOT NULL column that has no database default."""
from migration_safe.engine.model import Severity, StatementKind

from .base import Rule
from .context import MigrationContext, alter_actions


def check(ctx: MigrationContext):
    # no code inserts into a model the same migration deletes: its columns may go in any order
    deleted = {s.table for _o, s in ctx.statements() if s.kind is StatementKind.DROP_TABLE}
    for operation, statement, action in alter_actions(ctx, "drop_column"):
        if not ctx.existing(statement.table) or statement.table in deleted:
            continue
        column = ctx.tables_before.get(statement.table)
        info = column.columns.get(action.column) if column else None
        field = operation.facts.get("field_before") or {}
        not_null = info.not_null if info else not field.get("null", True)
        has_default = info.has_default if info else field.get("db_default", False)
        if not_null and not has_default:
            yield ctx.finding(RULE, operation, f"{statement.table}.{action.column} is NOT NULL without a "
                              "database default: until it is dropped, new code (which no longer sets it) "
                              "fails on every INSERT; once dropped, old code fails to read it.")


RULE = Rule(
    id="MS109", name="remove-not-null-field", title="NOT NULL column removed without a database default",
    severity=Severity.ERROR,
    why="New code no longer knows the field, so its INSERTs leave the column out: with NOT NULL and no "
        "database default they fail until the column is gone. Dropping it first breaks old code instead.",
    safe_alternative="Pre-deploy: make the column nullable or give it a db_default (and remove the field "
                     "from Django's state only); post-deploy: drop the column. `migration-safe fix` writes "
                     "both.",
    example="# pre-deploy\nmigrations.SeparateDatabaseAndState(\n"
            "    database_operations=[migrations.RunSQL(\n"
            "        'ALTER TABLE \"shop_product\" ALTER COLUMN \"legacy\" DROP NOT NULL', migrations.RunSQL.noop)],\n"
            "    state_operations=[migrations.RemoveField(\"product\", \"legacy\")],\n)\n"
            "# post-deploy, a later migration\n"
            "migrations.RunSQL('ALTER TABLE \"shop_product\" DROP COLUMN \"legacy\" CASCADE')",
    check=check,
)
