"""MS108: renaming a column or a table under running code."""
from migration_safe.engine.fix.recipes import rename_rewrite
from migration_safe.engine.model import Severity, StatementKind

from .base import Rule
from .context import MigrationContext
from .static import model_is_new

RENAME_TYPES = {"RenameField": "column", "RenameModel": "table", "AlterModelTable": "table"}


def renames_only_new_tables(ctx: MigrationContext, operation) -> bool:
    """The operation renames only a table (or its columns) that this change creates: no code uses it."""
    if not ctx.sql_known:
        return model_is_new(ctx, operation)
    renames = [s for s in operation.statements if s.kind is StatementKind.RENAME]
    return bool(renames) and not any(ctx.existing(s.table) for s in renames)


def check(ctx: MigrationContext):
    flagged = set()
    for operation in ctx.operations:
        if operation.type in RENAME_TYPES and (operation.statements or not ctx.sql_known) \
                and not renames_only_new_tables(ctx, operation):
            flagged.add(operation.index)
            yield ctx.finding(RULE, operation, f"{operation.description} renames a "
                              f"{RENAME_TYPES[operation.type]}: old code still running during the deploy "
                              "uses the old name and fails.",
                              alternative=MOVE_TABLE if operation.type == "AlterModelTable" else None,
                              suggestion=suggestion(ctx, operation))
    for operation, statement in ctx.statements():
        if statement.kind is StatementKind.RENAME and operation.index not in flagged \
                and statement.rename_object in ("table", "column") and ctx.existing(statement.table):
            flagged.add(operation.index)
            yield ctx.finding(RULE, operation, f"RENAME of {statement.rename_object} "
                              f"{statement.rename_from} to {statement.rename_to} breaks the code still "
                              "using the old name.")


def suggestion(ctx: MigrationContext, operation) -> str | None:
    """The rename in Django's state only, when it needs no import the file lacks (a suggestion
    replaces the operation's lines and nothing else)."""
    if not ctx.sql_known or not ctx.migration.source:
        return None
    rename = rename_rewrite(ctx.migration.source, operation, ctx.files.values(), ctx.migration.app_label,
                            ctx.migration.label)
    return rename.text if rename and not rename.missing_imports else None


# AlterModelTable exists to change the database name: a state-only version would change nothing.
MOVE_TABLE = ("Moving a table to a new name under running code has no state-only form. Keep the old "
              "name (drop the `db_table` change), or expand and contract: create the new table "
              "(pre-deploy), write both from the code, backfill in batches (deferred), switch reads, "
              "then drop the old table (post-deploy).")

RULE = Rule(
    id="MS108", name="rename", title="Column or table renamed",
    severity=Severity.ERROR,
    why="During a rolling deploy old and new code run side by side. After a rename, whichever code uses "
        "the other name fails: there is no phase in which a rename is safe.",
    safe_alternative="Keep the database name and rename only in Django's state (`db_column=` / "
                     "`db_table=` through SeparateDatabaseAndState), or expand and contract: add the new "
                     "column, write both, backfill, switch reads, drop the old one. `migration-safe fix` "
                     "writes the state-only rename; models.py must then say `db_column=` / `db_table`.",
    example="migrations.SeparateDatabaseAndState(state_operations=[\n"
            "    migrations.RenameField(\"product\", \"title\", \"name\"),\n"
            "    migrations.AlterField(\"product\", \"name\", models.CharField(max_length=100, db_column=\"title\")),\n"
            "])\n"
            "# a model: the explicit table first makes the rename a no-op in the database\n"
            "migrations.AlterModelTable(\"Customer\", \"shop_customer\"),\n"
            "migrations.RenameModel(\"Customer\", \"Client\"),",
    check=check,
)
