"""MS117: a statement rewrites an existing table under ACCESS EXCLUSIVE, whatever operation wrote it."""
from migration_safe.engine.model import Severity, StatementKind

from .base import Rule
from .context import MigrationContext


def reported_elsewhere(statement) -> set[str]:
    """The tables whose rewrite MS104 (volatile default) or MS105 (type change) already reports."""
    if any(a.action == "alter_type" or (a.action == "add_column" and a.default_volatile)
           for a in statement.actions):
        return {statement.table}
    return set()


def check(ctx: MigrationContext):
    for operation, statement in ctx.statements():
        if statement.kind is StatementKind.TRUNCATE:
            continue  # a new empty file, not a copy of the rows: MS110's business
        tables = [t for t in statement.rewrites
                  if ctx.existing(t) and t not in reported_elsewhere(statement)]
        if tables:
            yield ctx.finding(RULE, operation, f"{_first_line(statement.sql)} rewrites {', '.join(tables)} "
                              "(seen in the sandbox): every row is copied while ACCESS EXCLUSIVE blocks "
                              "reads and writes.",
                              severity=ctx.worst_locking_severity(tables))


def _first_line(sql: str) -> str:
    line = sql.strip().splitlines()[0].rstrip(";")
    return line if len(line) <= 120 else line[:117] + "…"


RULE = Rule(
    id="MS117", name="table-rewrite", title="Statement rewrites an existing table",
    severity=Severity.ERROR,
    why="The sandbox watches each table's storage: when a statement gives an existing table a new file, "
        "PostgreSQL copied every row into it while holding ACCESS EXCLUSIVE, so nothing can read or "
        "write the table for the whole copy. A stored GeneratedField, `ALTER COLUMN … TYPE` of a primary "
        "key that other tables reference (their columns are rewritten too), SET LOGGED, VACUUM FULL, "
        "CLUSTER all do it. (Type changes and volatile defaults on the statement's own table are MS105 "
        "and MS104.)",
    safe_alternative="Expand and contract: add a new nullable column (or a new table) without the rewrite, "
                     "fill it in batches (deferred), switch the code over, then drop the old one "
                     "(post-deploy). For a stored generated column: a plain nullable column kept up to "
                     "date by the code or a trigger, backfilled in batches.",
    example="# instead of GeneratedField(..., db_persist=True) on a big table\n"
            "migrations.AddField(\"order\", \"total\", models.IntegerField(null=True)),\n"
            "# deferred: backfill in batches; the code writes total on every save",
    check=check,
)
