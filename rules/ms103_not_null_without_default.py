"""MS103: a NOT NULL column added without a database default."""
from migration_safe.engine.fix.local import db_default_instead_of_default
from migration_safe.engine.model import Operation, Severity

from .base import Rule
from .context import MigrationContext, alter_actions
from .static import field_call, is_constant, model_is_new


def check(ctx: MigrationContext):
    if not ctx.sql_known:
        yield from static_check(ctx)
        return
    for operation, statement, action in alter_actions(ctx, "add_column"):
        if not action.not_null or not ctx.existing(statement.table):
            continue
        if action.default is None:
            yield ctx.finding(RULE, operation, f"Column {action.column} is added to existing table "
                              f"{statement.table} as NOT NULL without a default: it fails on any row.",
                              alternative=ALTERNATIVE)
        elif (dropper := unfilled(ctx, operation, statement.table, action.column)) is operation:
            yield ctx.finding(RULE, operation, f"Column {action.column} of {statement.table} is added NOT "
                              "NULL with a temporary default that Django drops at once: old code's INSERTs, "
                              "which do not know the column, fail from then on.", alternative=ALTERNATIVE,
                              suggestion=suggestion(ctx, operation))
        elif dropper is not None:
            yield ctx.finding(RULE, operation, f"Column {action.column} of {statement.table} is added NOT "
                              f"NULL with a default that a later operation (line {dropper.line}) drops while "
                              "it stays NOT NULL: old code's INSERTs, which do not know the column, fail "
                              "from then on.", alternative=ALTERNATIVE)


def unfilled(ctx: MigrationContext, added: Operation, table: str, column: str) -> Operation | None:
    """The operation whose DROP DEFAULT leaves old code the column NOT NULL without a default, None when
    old code never sees it so. Old code sees the end of an atomic migration; a non-atomic one commits
    operation by operation, and old code sees each of them."""
    not_null, default, dropper = True, True, None
    for operation in ctx.operations[ctx.operations.index(added):]:
        for action in (a for s in operation.statements if s.table == table for a in s.actions
                       if a.column == column):
            if action.action in CHANGES:
                not_null, default = CHANGES[action.action](not_null, default)
                dropper = operation if action.action == "drop_default" else dropper
        if not ctx.migration.atomic and not_null and not default:
            return dropper
    return dropper if not_null and not default else None


# What each ALTER COLUMN subcommand makes of (not_null, has a default)
CHANGES = {
    "drop_default": lambda not_null, _default: (not_null, False),
    "set_default": lambda not_null, _default: (not_null, True),
    "drop_not_null": lambda _not_null, default: (False, default),
    "set_not_null": lambda _not_null, default: (True, default),
}


def suggestion(ctx: MigrationContext, operation) -> str | None:
    """`db_default` keeps the default in the database (Django 5.0+)."""
    if ctx.django_major < 5 or operation.parsed is None or not ctx.migration.source:
        return None
    return db_default_instead_of_default(ctx.migration.source, operation.parsed)


def static_check(ctx: MigrationContext):
    for operation in ctx.operations:
        if operation.type != "AddField" or operation.parsed is None or model_is_new(ctx, operation):
            continue  # a table this change creates holds no rows and no old code writes it
        field = operation.parsed.arg("field", position=2)
        call = field_call(field.code) if field else None
        if call is None or None in call[1] or "ManyToMany" in call[0]:
            continue  # not a field written out (or **kwargs): the file does not say
        keywords = call[1]
        # db_default=None is DEFAULT NULL: no default at all
        if not is_constant(keywords.get("null"), True) and (
                "db_default" not in keywords or is_constant(keywords["db_default"], None)):
            yield ctx.finding(RULE, operation, f"{operation.description}: the field is NOT NULL without "
                              "db_default (read from the file; SQL unavailable).", alternative=ALTERNATIVE)


ALTERNATIVE = ("Give the field a database default (`db_default=…`, Django 5.0+) so old code's INSERTs "
               "keep working, or add it `null=True`, backfill, then make it NOT NULL in a later "
               "migration.")

RULE = Rule(
    id="MS103", name="not-null-without-db-default", title="NOT NULL column without a database default",
    severity=Severity.ERROR,
    why="Django adds a NOT NULL field with its Python default as a temporary database default and drops "
        "that default in the same migration. Old code still running during the deploy does not know the "
        "column; its INSERTs now fail with a NOT NULL violation, as they do when a later operation drops a "
        "`db_default` the column was added with. Old code sees what the migration leaves: a column the same "
        "migration makes nullable or gives a database default again takes its INSERTs. A migration with "
        "`atomic = False` commits operation by operation, and old code sees each step; so does a later "
        "migration's fix, which leaves a window until it commits. Without any default the ALTER fails on "
        "the first existing row.",
    safe_alternative=ALTERNATIVE,
    example="migrations.AddField(\"product\", \"sku\", models.CharField(max_length=32, db_default=\"\"))",
    check=check,
)
