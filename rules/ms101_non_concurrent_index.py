"""MS101: an index built without CONCURRENTLY on an existing table."""
from migration_safe.engine.model import Finding, Severity, StatementKind

from .base import Rule
from .context import MigrationContext, alter_actions
from .static import index_building_operations

INDEX_CONSTRAINTS = {"unique", "primary_key", "exclusion"}


def check(ctx: MigrationContext):
    if not ctx.sql_known:
        for operation, what in index_building_operations(ctx):
            yield ctx.finding(RULE, operation, f"{operation.description} builds {what} without "
                              "CONCURRENTLY (read from the file; SQL unavailable).")
        return
    builds = list(index_builds(ctx))
    unknown = [b for b in builds if not size_known(ctx, b[1])]
    # Without statistics every table counts as large: fifty errors on what may be small tables would
    # bury the few that matter, so those become one finding that lists them.
    grouped = unknown if len({operation.index for operation, _t, _m in unknown}) > 1 else []
    for operation, table, message in builds:
        if (operation, table, message) not in grouped:
            yield ctx.finding(RULE, operation, message, severity=ctx.locking_severity(table))
    if grouped:
        yield group(ctx, grouped)


def index_builds(ctx: MigrationContext):
    """(operation, table, message) for each index built without CONCURRENTLY on an existing table."""
    for operation, statement in ctx.statements():
        if statement.kind is StatementKind.CREATE_INDEX and not statement.concurrently \
                and ctx.existing(statement.table):
            yield operation, statement.table, (f"CREATE INDEX {statement.index_name} on existing table "
                                               f"{statement.table} blocks every write to it while the "
                                               "index builds.")
    for operation, statement, action in alter_actions(ctx, "add_constraint"):
        if action.constraint_type in INDEX_CONSTRAINTS and not action.using_index \
                and ctx.existing(statement.table):
            kind = action.constraint_type.replace("_", " ")
            # An inline column constraint (ADD COLUMN … UNIQUE, from unique=True) has no name.
            what = f"ADD CONSTRAINT {action.constraint} ({kind})" if action.constraint \
                else f"{kind.upper()} on column {action.column}"
            yield operation, statement.table, (f"{what} on existing table {statement.table} builds its "
                                               "index under an ACCESS EXCLUSIVE lock.")


def size_known(ctx: MigrationContext, table: str) -> bool:
    return ctx.config.table_size(table) is not None or table in ctx.config.large_tables


def group(ctx: MigrationContext, builds) -> Finding:
    lines: dict[str, list[int]] = {}
    for operation, table, _message in builds:
        if operation.line not in lines.setdefault(table, []):
            lines[table].append(operation.line)
    listing = ", ".join(f"{table} (line{'s' if len(at) > 1 else ''} {', '.join(map(str, at))})"
                        for table, at in sorted(lines.items()))
    first = min((operation for operation, _t, _m in builds), key=lambda o: o.index)
    finding = ctx.finding(RULE, first, f"{len(builds)} indexes are built without CONCURRENTLY on {len(lines)} "
                          f"existing table(s) of unknown size, each blocking writes (a UNIQUE or PRIMARY "
                          f"KEY constraint also reads) while it builds: {listing}. Without table statistics "
                          "every table counts as large; list the sizes in `tables.stats` to tell the small "
                          "ones (a warning each) from those that matter.")
    finding.related = sorted({operation.index for operation, _t, _m in builds} - {first.index})
    return finding


RULE = Rule(
    id="MS101", name="non-concurrent-index", title="Index built without CONCURRENTLY on an existing table",
    severity=Severity.ERROR,
    why="CREATE INDEX takes a SHARE lock: no INSERT, UPDATE or DELETE on the table until the build ends, "
        "minutes to hours on a large table. A UNIQUE or PRIMARY KEY constraint added directly builds its "
        "index under ACCESS EXCLUSIVE, blocking reads too. Django's AddIndex, `db_index=True`, "
        "`unique=True`, `unique_together`, UniqueConstraint and ForeignKey fields all do this.",
    safe_alternative="Build the index with AddIndexConcurrently in a migration of its own with "
                     "`atomic = False` (deferred when the table is large). For a unique constraint, "
                     "build a unique index concurrently, then attach it with "
                     "`ADD CONSTRAINT … UNIQUE USING INDEX` through SeparateDatabaseAndState. For a "
                     "`db_index=True` or `unique=True` field, change the field without the index "
                     "(SeparateDatabaseAndState) and build the index that way, under the name Django "
                     "gives it. `migration-safe fix` writes all of these, with django-pg-migration-tools' "
                     "Safer* operations in a project that uses it.",
    example="from django.contrib.postgres.operations import AddIndexConcurrently\n\n"
            "class Migration(migrations.Migration):\n    atomic = False\n"
            "    dependencies = [(\"shop\", \"0007_add_sku\")]\n    operations = [\n"
            "        AddIndexConcurrently(\"product\", models.Index(fields=[\"sku\"], name=\"product_sku_idx\")),\n"
            "    ]",
    check=check,
)
