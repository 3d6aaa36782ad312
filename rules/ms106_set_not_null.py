"""MS106: SET NOT NULL on an existing column scans the table under ACCESS EXCLUSIVE."""
import re

from migration_safe.engine.fix.recipes import set_not_null_suggestion
from migration_safe.engine.model import Severity

from .base import Rule
from .context import MigrationContext, alter_actions


def proven_by_check(ctx: MigrationContext, table: str, column: str) -> bool:
    """PostgreSQL 12+ skips the scan when a valid CHECK (col IS NOT NULL) exists."""
    info = ctx.tables_before.get(table)
    if info is None or ctx.pg_major < 12:
        return False
    # The column as a whole identifier (a check on legacy_code proves nothing about code), and no
    # OR in the check: `col IS NOT NULL OR …` does not imply the column is never NULL.
    proof = re.compile(rf'(?<!\w)"?{re.escape(column)}"?\s+IS\s+NOT\s+NULL\b', re.IGNORECASE)
    return any(proof.search(check) and not re.search(r"\bOR\b", check, re.IGNORECASE)
               for check in info.valid_checks)


def check(ctx: MigrationContext):
    added = {(s.table, a.column) for _o, s, a in alter_actions(ctx, "add_column")}
    for operation, statement, action in alter_actions(ctx, "set_not_null"):
        table, column = statement.table, action.column
        if not ctx.existing(table) or (table, column) in added or proven_by_check(ctx, table, column):
            continue
        severity = ctx.locking_severity(table)
        yield ctx.finding(RULE, operation, f"SET NOT NULL on {table}.{column} scans the whole table while "
                          "holding ACCESS EXCLUSIVE; old code that writes NULL fails afterwards.",
                          severity=severity, suggestion=suggestion(ctx, operation, severity))


def suggestion(ctx: MigrationContext, operation, severity: Severity) -> str | None:
    """The check recipe, where it pays (a blocking lock) and PostgreSQL can use the check (12+)."""
    if severity is not Severity.ERROR or ctx.pg_major < 12 or not ctx.migration.source:
        return None
    return set_not_null_suggestion(ctx.migration.source, operation, ctx.files.values(),
                                   ctx.migration.app_label, ctx.migration.label)


RULE = Rule(
    id="MS106", name="set-not-null", title="SET NOT NULL on an existing column",
    severity=Severity.ERROR,
    why="Making a column NOT NULL (AlterField from null=True to null=False) makes PostgreSQL scan every "
        "row to prove there is no NULL, with reads and writes blocked throughout. It is also a new rule "
        "the data must obey: old code that still writes NULL breaks.",
    safe_alternative="Post-deploy: add `CHECK (col IS NOT NULL) NOT VALID` (instant; Django's state "
                     "already says NOT NULL); deferred: VALIDATE CONSTRAINT (no write lock); then, in a "
                     "later migration, SET NOT NULL, which PostgreSQL 12+ proves from the valid check "
                     "without a scan, and drop the check. `migration-safe fix` writes all three.",
    example="migrations.SeparateDatabaseAndState(\n"
            "    database_operations=[migrations.RunSQL(\n"
            "        'ALTER TABLE \"shop_product\" ADD CONSTRAINT \"shop_product_sku_not_null\" '\n"
            "        'CHECK (\"sku\" IS NOT NULL) NOT VALID')],\n"
            "    state_operations=[migrations.AlterField(\"product\", \"sku\", models.CharField(max_length=32))],\n"
            ")\n"
            "# deferred: ALTER TABLE \"shop_product\" VALIDATE CONSTRAINT \"shop_product_sku_not_null\"\n"
            "# deferred, next: ALTER TABLE \"shop_product\" ALTER COLUMN \"sku\" SET NOT NULL; DROP CONSTRAINT …",
    check=check,
)
