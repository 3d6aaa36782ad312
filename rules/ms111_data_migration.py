"""MS111: data migrations (RunPython, DML in RunSQL) belong to the deferred phase."""
from migration_safe.engine.model import Severity, StatementKind
from migration_safe.engine.review.hints import sql_texts
from migration_safe.engine.review.sql import analyse_all

from .base import Rule
from .context import MigrationContext
from .ms118_data_change_under_lock import under_lock


def is_data_operation(operation, sql_known: bool) -> bool:
    if operation.type == "RunPython":
        return True
    if sql_known:
        return any(s.kind is StatementKind.DML for s in operation.statements)
    if operation.type == "RunSQL" and operation.parsed is not None:
        texts = sql_texts(operation.parsed.arg("sql", position=0)) or []
        return any(s.kind is StatementKind.DML for text in texts for s in analyse_all(text))
    return False


def check(ctx: MigrationContext):
    locked = {id(statement) for _o, statement, _l in under_lock(ctx)}  # MS118 says what really happens
    for operation in ctx.operations:
        if is_data_operation(operation, ctx.sql_known) and not (
                operation.type != "RunPython"
                and all(id(s) in locked for s in operation.statements if s.kind is StatementKind.DML)):
            unbounded = any(s.kind is StatementKind.DML and s.table and not s.dml_has_where
                            and ctx.config.is_large(s.table) for s in operation.statements)
            yield ctx.finding(RULE, operation, f"{operation.description} changes data: it runs as a "
                              "deferred step, in batches, outside the deploy pipeline"
                              + ("; it updates a large table in a single statement." if unbounded else "."),
                              severity=Severity.WARNING if unbounded else None)


RULE = Rule(
    id="MS111", name="data-migration", title="Data migration (deferred)",
    severity=Severity.NOTICE,
    why="A backfill's run time grows with the table: on a billion rows it takes hours, holds row locks "
        "and bloats the table. Inside the deploy it holds everything up; mixed with schema changes in "
        "one migration it keeps their locks for its whole duration.",
    safe_alternative="Keep data changes in migrations of their own, run deferred (asynchronously after the "
                     "deploy), in batches with short transactions; the code must cope with rows not yet "
                     "backfilled.",
    example="def backfill(apps, schema_editor):\n    Product = apps.get_model(\"shop\", \"Product\")\n"
            "    while ids := list(Product.objects.filter(sku=None).values_list(\"pk\", flat=True)[:1000]):\n"
            "        Product.objects.filter(pk__in=ids).update(sku=\"\")\n\n"
            "class Migration(migrations.Migration):\n    atomic = False\n    deploy_phase = \"deferred\"\n"
            "    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]",
    check=check,
)
