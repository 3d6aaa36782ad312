"""The recipes' code as text: valid Python wherever the operation stands, comments and strings kept.
(End to end, through Django and PostgreSQL: test_fix_recipes.py.)"""
from __future__ import annotations

import ast
import textwrap

from migration_safe.engine.fix.local import apply_suggestion
from migration_safe.engine.model import Operation, Phase
from migration_safe.engine.review.parse import parse_migration
from migration_safe.engine.fix.recipes import (
    add_imports, data_split, default_not_null, default_not_null_rewrite, inline_check_rewrite, missing_imports,
    nest, rename_rewrite, set_not_null_suggestion, with_db_column,
)
from migration_safe.engine.fix.split import split_migration
from migration_safe.engine.review.sql import analyse


def migration(operations: str, imports: str = "from django.db import migrations, models") -> str:
    return f"{imports}\n\n\nclass Migration(migrations.Migration):\n" \
           f"    dependencies = [(\"shop\", \"0001_initial\")]\n\n{textwrap.indent(operations, '    ')}"


def operation(source: str, index: int, sql: list[str], facts: dict | None = None) -> Operation:
    parsed = parse_migration(source, "shop/migrations/0002_x.py", "shop", "0002_x").operations[index]
    return Operation(index, parsed.type, parsed.line, parsed.end_line, "", parsed=parsed,
                     statements=[analyse(s) for s in sql], sql_known=True, facts=facts or {})


def applied(source: str, op: Operation, text: str) -> str:
    result = apply_suggestion(source, op.line, op.end_line, text)
    ast.parse(result)
    return result


SET_NOT_NULL = ['ALTER TABLE "shop_product" ALTER COLUMN "code" SET NOT NULL']


def test_set_not_null_suggestion_on_a_one_line_list_keeps_the_line_valid():
    source = migration('operations = [migrations.AlterField("product", "code", models.CharField(max_length=9))]  # x\n')
    op = operation(source, 0, SET_NOT_NULL)
    parsed = parse_migration(source, "p", "shop", "0002_x")
    text = set_not_null_suggestion(source, op, [parsed], "shop", "shop.0002_x")
    result = applied(source, op, text)
    assert 'CHECK ("code" IS NOT NULL) NOT VALID' in result and result.rstrip().endswith(")]  # x")


def test_no_set_not_null_suggestion_when_another_migration_changes_the_field_again():
    source = migration('operations = [\n    migrations.AlterField("product", "code", models.CharField(max_length=9)),\n]\n')
    later = parse_migration(migration('operations = [migrations.AlterField("product", "code", models.TextField())]\n'),
                            "shop/migrations/0003_y.py", "shop", "0003_y")
    op = operation(source, 0, SET_NOT_NULL)
    assert set_not_null_suggestion(source, op, [later], "shop", "shop.0002_x") is None


def test_field_rename_restates_a_custom_field_and_names_its_import():
    source = migration(
        'operations = [\n'
        '    migrations.RenameField(\n'
        '        "product",\n'
        '        "code",  # on labels\n'
        '        "sku",\n'
        '    ),\n'
        ']\n')
    facts = {"field_before": {"column": "code", "code": {
        "expression": "shop.fields.SkuField(db_column='old', max_length=32)", "imports": ["import shop.fields"]}}}
    op = operation(source, 0, ['ALTER TABLE "shop_product" RENAME COLUMN "code" TO "sku"'], facts)
    rename = rename_rewrite(source, op, [], "shop", "shop.0002_x")
    assert rename.missing_imports == ["import shop.fields"]
    result = add_imports(applied(source, op, rename.text), rename.missing_imports)
    ast.parse(result)
    assert "field=shop.fields.SkuField(max_length=32, db_column='code')" in result
    assert "# on labels" in result and "import shop.fields\n" in result
    assert missing_imports(result, ["import shop.fields", "from django.db import models"]) == []


def test_no_state_only_rename_when_the_rename_is_more_than_the_column():
    source = migration('operations = [migrations.RenameField("product", "code", "sku")]\n')
    facts = {"field_before": {"column": "code", "code": {"expression": "models.IntegerField()", "imports": []}}}
    op = operation(source, 0, ['ALTER TABLE "shop_product" RENAME COLUMN "code" TO "sku"',
                               'ALTER TABLE "shop_line" RENAME COLUMN "product_code" TO "product_sku"'], facts)
    assert rename_rewrite(source, op, [], "shop", "shop.0002_x") is None


def test_model_rename_gets_its_table_first():
    source = migration('operations = [\n    migrations.RenameModel("Customer", "Client"),  # clients\n]\n')
    op = operation(source, 0, ['ALTER TABLE "shop_customer" RENAME TO "shop_client"'],
                   {"table_before": "shop_customer"})
    result = applied(source, op, rename_rewrite(source, op, [], "shop", "shop.0002_x").text)
    assert "migrations.AlterModelTable(name=\"Customer\", table='shop_customer'),\n" \
           "        migrations.RenameModel(\"Customer\", \"Client\"),  # clients" in result


def test_db_column_replaces_the_one_the_field_had():
    assert with_db_column("models.CharField(db_column='x', max_length=3)", "title") == \
        "models.CharField(max_length=3, db_column='title')"


def test_nesting_leaves_a_string_that_spans_lines_alone():
    call = 'migrations.RunSQL(\n    """\n    SELECT 1\n    """,\n)'
    assert nest(call) == call
    assert nest("f(\n    1,\n)") == "f(\n            1,\n        )"


def test_split_parts_keep_the_comments_of_their_operations():
    source = migration(
        'operations = [  # in order\n'
        '    migrations.AddField("order", "note", models.TextField(null=True)),  # for invoices\n'
        '    # gone after the deploy\n'
        '    migrations.RemoveField("product", "legacy_code"),  # unused\n'
        '    # nothing after this\n'
        ']\n')
    first, second = split_migration(source, "shop/migrations/0002_x.py", "shop", "0002_x",
                                    [Phase.PRE_DEPLOY, Phase.POST_DEPLOY])
    assert "# in order" in first.source and "# for invoices" in first.source
    assert "# gone after" not in first.source and "# nothing after" not in first.source
    assert "# gone after the deploy\n" in second.source and "# unused\n        # nothing after this\n" in second.source
    for part in (first, second):
        ast.parse(part.source)


def test_not_null_with_a_default_keeps_only_the_database_default_in_place():
    source = migration('operations = [\n    migrations.AlterField(\n        "product", "code",\n'
                       '        models.CharField(max_length=9, default="x"),  # required\n    ),\n]\n')
    op = operation(source, 0, ['ALTER TABLE "shop_product" ALTER COLUMN "code" SET DEFAULT \'x\'',
                               'UPDATE "shop_product" SET "code" = \'x\' WHERE "code" IS NULL',
                               'ALTER TABLE "shop_product" ALTER COLUMN "code" SET NOT NULL',
                               'ALTER TABLE "shop_product" ALTER COLUMN "code" DROP DEFAULT'])
    change = default_not_null(op)
    assert (change.table, change.column, change.default_sql, change.default_code) == \
        ("shop_product", "code", "'x'", '"x"')
    result = applied(source, op, default_not_null_rewrite(source, 0, change))
    assert "SET DEFAULT" in result and "SET NOT NULL'" not in result  # the NOT NULL comes later
    assert 'models.CharField(max_length=9, db_default="x"),  # required' in result


def test_not_null_with_a_callable_default_is_not_rewritten():
    source = migration('operations = [migrations.AlterField("product", "code", models.CharField(default=f))]\n')
    op = operation(source, 0, ['ALTER TABLE "shop_product" ALTER COLUMN "code" SET DEFAULT \'x\'',
                               'UPDATE "shop_product" SET "code" = \'x\' WHERE "code" IS NULL',
                               'ALTER TABLE "shop_product" ALTER COLUMN "code" SET NOT NULL',
                               'ALTER TABLE "shop_product" ALTER COLUMN "code" DROP DEFAULT'])
    assert default_not_null(op) is None


def test_inline_check_is_added_not_valid_under_the_name_postgresql_gives_it():
    source = migration('operations = [migrations.AddField("order", "rank", '
                       'models.PositiveIntegerField(db_default=0))]\n')
    op = operation(source, 0, ['ALTER TABLE "shop_order" ADD COLUMN "rank" integer DEFAULT 0 NOT NULL '
                               'CHECK ("rank" >= 0)'])
    text, validate, sql = inline_check_rewrite(source, 0, op)
    assert sql == ["ALTER TABLE shop_order ADD COLUMN rank integer DEFAULT 0 NOT NULL",
                   'ALTER TABLE "shop_order" ADD CONSTRAINT "shop_order_rank_check" CHECK (rank >= 0) NOT VALID']
    assert validate == ['ALTER TABLE "shop_order" VALIDATE CONSTRAINT "shop_order_rank_check"']
    assert "state_operations" in applied(source, op, text)


def test_a_named_inline_check_is_left():
    source = migration('operations = [migrations.AddField("order", "rank", models.IntegerField(db_default=0))]\n')
    op = operation(source, 0, ['ALTER TABLE "shop_order" ADD COLUMN "rank" integer DEFAULT 0 NOT NULL '
                               'CONSTRAINT "rank_positive" CHECK ("rank" >= 0)'])
    assert inline_check_rewrite(source, 0, op) is None


def test_schema_and_data_of_one_run_sql_are_separated_only_schema_first():
    source = migration('operations = [migrations.RunSQL(["ALTER TABLE t ADD COLUMN c int", "UPDATE t SET c = 0"], '
                       'migrations.RunSQL.noop)]\n')
    op = operation(source, 0, ["ALTER TABLE t ADD COLUMN c int", "UPDATE t SET c = 0"])
    text, data = data_split(source, 0, op)
    assert data == ["UPDATE t SET c = 0"] and "UPDATE" not in applied(source, op, text)
    backwards = operation(source, 0, ["UPDATE t SET c = 0", "ALTER TABLE t ADD COLUMN c int"])
    assert data_split(source, 0, backwards) is None
