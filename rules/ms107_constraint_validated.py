"""MS107: CHECK or FOREIGN KEY constraint added to an existing table and validated in one step."""
from migration_safe.engine.fix.local import not_valid_instead_of_validated
from migration_safe.engine.model import Severity, StatementKind

from .base import Rule
from .context import MigrationContext, alter_actions

VALIDATED_TYPES = {"check", "foreign_key"}


def check(ctx: MigrationContext):
    added = {(s.table, a.column) for _o, s, a in alter_actions(ctx, "add_column")}
    for operation, statement, action in alter_actions(ctx, "add_constraint"):
        if action.constraint_type not in VALIDATED_TYPES or action.not_valid \
                or not ctx.existing(statement.table):
            continue
        if (statement.table, action.column) in added:
            if action.constraint_type == "check":
                # PostgreSQL checks every row even though the new column holds only its default
                yield new_column_check(ctx, operation, statement.table, action.column)
            continue  # a foreign key on a new column: validation takes no ACCESS EXCLUSIVE
        kind = "FOREIGN KEY" if action.constraint_type == "foreign_key" else "CHECK"
        name = f" {action.constraint}" if action.constraint else ""  # `ADD CHECK (…)` names none
        # A rename re-adds the foreign keys that point at it; its own rewrite (MS108) drops that SQL.
        renames = any(s.kind is StatementKind.RENAME for s in operation.statements)
        yield ctx.finding(RULE, operation, f"{kind} constraint{name} on existing table "
                          f"{statement.table} is validated while the table is locked against writes.",
                          severity=ctx.locking_severity(statement.table),
                          suggestion=not_valid_instead_of_validated(ctx.migration.source, operation)
                          if ctx.migration.source and not renames else None)


def new_column_check(ctx: MigrationContext, operation, table: str, column: str):
    return ctx.finding(RULE, operation, f"Column {column} is added to existing table {table} with a CHECK "
                       "(every Positive*Field has one): the column holds no data yet, but PostgreSQL "
                       f"scans every row of {table} to check it, under ACCESS EXCLUSIVE.",
                       severity=ctx.locking_severity(table), alternative=NEW_COLUMN_ALTERNATIVE)


NEW_COLUMN_ALTERNATIVE = (
    "Add the column without the CHECK and add the CHECK NOT VALID (both instant), through "
    "SeparateDatabaseAndState with Django's AddField as the state operation; VALIDATE CONSTRAINT later, "
    "deferred. A Positive*Field's check is named `<table>_<column>_check` by PostgreSQL's convention; "
    "Django does not rely on the name.")

RULE = Rule(
    id="MS107", name="constraint-validated-at-once", title="Constraint added without NOT VALID",
    severity=Severity.ERROR,
    why="ADD CONSTRAINT CHECK/FOREIGN KEY scans the whole table (and for a foreign key, the referenced "
        "table) to validate existing rows while holding a lock that blocks writes (SHARE ROW EXCLUSIVE "
        "or ACCESS EXCLUSIVE). A CHECK added with a new column (`ADD COLUMN … CHECK`, which every "
        "PositiveIntegerField and PositiveSmallIntegerField writes) scans the table too, under ACCESS "
        "EXCLUSIVE, although the new column holds nothing yet.",
    safe_alternative="Add the constraint NOT VALID (instant; enforced for new rows), then VALIDATE "
                     "CONSTRAINT in a later, deferred migration: validation takes only SHARE UPDATE "
                     "EXCLUSIVE, which does not block reads or writes.",
    example="migrations.RunSQL(\n    'ALTER TABLE shop_order ADD CONSTRAINT order_total_positive '\n"
            "    'CHECK (total >= 0) NOT VALID',\n    state_operations=[migrations.AddConstraint(...)],\n)\n"
            "# next migration (deferred):\n"
            "migrations.RunSQL('ALTER TABLE shop_order VALIDATE CONSTRAINT order_total_positive')",
    check=check,
)
