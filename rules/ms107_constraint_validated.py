"""MS107: CHECK or FOREIGN KEY constraint added to an existing table and validated in one step."""
from migration_safe.engine.fixes import not_valid_instead_of_validated
from migration_safe.engine.model import Severity, StatementKind

from .base import Rule
from .context import MigrationContext, alter_actions

VALIDATED_TYPES = {"check", "foreign_key"}


def check(ctx: MigrationContext):
    added = {(s.table, a.column) for _o, s, a in alter_actions(ctx, "add_column")}
    for operation, statement, action in alter_actions(ctx, "add_constraint"):
        if action.constraint_type not in VALIDATED_TYPES or action.not_valid:
            continue
        if not ctx.existing(statement.table) or (statement.table, action.column) in added:
            continue  # a new table, or a new column that holds only NULLs: nothing to scan
        kind = "FOREIGN KEY" if action.constraint_type == "foreign_key" else "CHECK"
        name = f" {action.constraint}" if action.constraint else ""  # `ADD CHECK (…)` names none
        # A rename re-adds the foreign keys that point at it; its own rewrite (MS108) drops that SQL.
        renames = any(s.kind is StatementKind.RENAME for s in operation.statements)
        yield ctx.finding(RULE, operation, f"{kind} constraint{name} on existing table "
                          f"{statement.table} is validated while the table is locked against writes.",
                          severity=ctx.locking_severity(statement.table),
                          suggestion=not_valid_instead_of_validated(ctx.migration.source, operation)
                          if ctx.migration.source and not renames else None)


RULE = Rule(
    id="MS107", name="constraint-validated-at-once", title="Constraint added without NOT VALID",
    severity=Severity.ERROR,
    why="ADD CONSTRAINT CHECK/FOREIGN KEY scans the whole table (and for a foreign key, the referenced "
        "table) to validate existing rows while holding a lock that blocks writes (SHARE ROW EXCLUSIVE "
        "or ACCESS EXCLUSIVE).",
    safe_alternative="Add the constraint NOT VALID (instant; enforced for new rows), then VALIDATE "
                     "CONSTRAINT in a later, deferred migration: validation takes only SHARE UPDATE "
                     "EXCLUSIVE, which does not block reads or writes.",
    example="migrations.RunSQL(\n    'ALTER TABLE shop_order ADD CONSTRAINT order_total_positive '\n"
            "    'CHECK (total >= 0) NOT VALID',\n    state_operations=[migrations.AddConstraint(...)],\n)\n"
            "# next migration (deferred):\n"
            "migrations.RunSQL('ALTER TABLE shop_order VALIDATE CONSTRAINT order_total_positive')",
    check=check,
)
