"""MS103 not-null-without-db-default: a NOT NULL column added without a database default."""
from __future__ import annotations

import pytest

from migration_safe.engine.model import Severity

from .harness import (
    configure, describe, findings, line_of, migration, operation_phases, review, source,
)

pytestmark = pytest.mark.slow


def test_not_null_columns_without_a_database_default_fire(shop):
    text = migration(shop, "0002_sku", source('''
        migrations.AddField(
            model_name="product",
            name="sku",
            field=models.CharField(default="", max_length=32),
            preserve_default=False,
        ),
        migrations.AddField("order", "buyer", models.ForeignKey(
            "shop.customer", on_delete=models.CASCADE, related_name="+")),
    '''))
    result = review(shop)
    found = {f.line: f for f in findings(result, "0002_sku", "MS103")}
    assert set(found) == {line_of(text, "migrations.AddField("), line_of(text, '"buyer"')}
    assert all(f.severity is Severity.ERROR and f.blocks for f in found.values())
    temporary = found[line_of(text, "migrations.AddField(")]
    assert (temporary.line, temporary.end_line) == (line_of(text, "migrations.AddField("),
                                                     line_of(text, "preserve_default") + 1)
    assert "Column sku of shop_product is added NOT NULL with a temporary default that Django drops " \
           "at once" in temporary.message
    assert "old code's INSERTs" in temporary.message
    assert "db_default" in temporary.safe_alternative
    assert found[line_of(text, '"buyer"')].message == (
        "Column buyer_id is added to existing table shop_order as NOT NULL without a default: "
        "it fails on any row.")


def test_db_default_none_is_no_default(shop):
    # Django writes DEFAULT NULL NOT NULL: the ALTER fails on any row, old code's INSERTs fail
    text = migration(shop, "0002_nick", source(
        'migrations.AddField("customer", "nick", models.CharField(max_length=30, db_default=None)),'))
    result = review(shop)
    found = findings(result, "0002_nick", "MS103")
    assert "DEFAULT NULL NOT NULL" in result.migrations[0].operations[0].sql[0]
    assert [(f.line, f.severity) for f in found] == [(line_of(text, '"nick"'), Severity.ERROR)]
    assert found[0].message == ("Column nick is added to existing table shop_customer as NOT NULL without "
                                "a default: it fails on any row.")


def test_nullable_database_default_and_new_tables_do_not_fire(shop):
    migration(shop, "0002_safe", source('''
        migrations.AddField("product", "sku", models.CharField(max_length=32, null=True)),
        migrations.AddField("product", "stock", models.IntegerField(db_default=0)),
        migrations.CreateModel("Coupon", fields=[("id", models.BigAutoField(primary_key=True))]),
        migrations.AddField("coupon", "code", models.CharField(default="", max_length=20),
                            preserve_default=False),
    '''))
    result = review(shop)
    assert not findings(result, "0002_safe", "MS103"), describe(result, "0002_safe")


def test_without_sql_the_file_is_read(shop):
    configure(shop, "django:\n  settings: missing.settings\n")
    text = migration(shop, "0002_static", source('''
        migrations.AddField("product", "sku", models.CharField(default="", max_length=32)),
        migrations.AddField("product", "note", models.TextField(null = True)),
        migrations.AddField("product", "stock", models.IntegerField(db_default=0)),
        migrations.CreateModel("Coupon", fields=[("id", models.BigAutoField(primary_key=True))]),
        migrations.AddField("coupon", "code", models.CharField(default="", max_length=20)),
        migrations.AddField("product", "nick", models.CharField(max_length=9, db_default=None)),
    '''))
    result = review(shop, expect_sql=False)
    assert result.migrations[0].sql_status == "unavailable"
    found = findings(result, "0002_static", "MS103")
    # only the existing table's NOT NULL fields (db_default=None is none): not the nullable one,
    # not the db_default one, and not the field of the model this change creates
    assert [f.line for f in found] == [line_of(text, '"sku"'), line_of(text, '"nick"')], \
        describe(result, "0002_static")
    assert found[0].severity is Severity.ERROR
    assert "NOT NULL without db_default (read from the file; SQL unavailable)" in found[0].message


SETTLED_LATER = '''
    migrations.AddField("product", "stock", models.IntegerField(db_default=0)),
    migrations.AlterField("product", "stock", models.IntegerField(null=True)),
    migrations.AddField("product", "sku", models.CharField(default="", max_length=32),
                        preserve_default=False),
    migrations.AlterField("product", "sku", models.CharField(max_length=32, db_default="")),
    migrations.AddField("product", "note", models.CharField(default="", max_length=32),
                        preserve_default=False),
    migrations.AlterField("product", "note", models.CharField(max_length=32, null=True)),
    migrations.AddField("customer", "nick", models.CharField(max_length=30, db_default="x")),
    migrations.AlterField("customer", "nick", models.CharField(max_length=30, default="x")),
'''


def test_what_an_atomic_migration_leaves_decides(shop):
    # old code sees the migration's end only: a column left nullable or with a database default takes
    # its INSERTs; one whose db_default the migration drops again does not
    text = migration(shop, "0002_settled", source(SETTLED_LATER))
    result = review(shop)
    found = findings(result, "0002_settled", "MS103")
    assert [f.line for f in found] == [line_of(text, '"nick", models.CharField(max_length=30, db_default')], \
        describe(result, "0002_settled")
    dropping = line_of(text, 'AlterField("customer", "nick"')
    assert found[0].message == (
        "Column nick of shop_customer is added NOT NULL with a default that a later operation (line "
        f"{dropping}) drops while it stays NOT NULL: old code's INSERTs, which do not know the column, "
        "fail from then on.")
    assert not findings(result, "0002_settled", "MS119")  # a column the migration adds: MS103's


def test_a_non_atomic_migration_commits_each_operation(shop):
    # between the operations, `sku` and `note` are NOT NULL without a default and old code's INSERTs
    # fail; `stock` keeps its database default until it is nullable
    text = migration(shop, "0002_settled", source(SETTLED_LATER, attributes="atomic = False"))
    result = review(shop)
    found = findings(result, "0002_settled", "MS103")
    assert [f.line for f in found] == [line_of(text, '"sku"'), line_of(text, '"note"'),
                                       line_of(text, '"nick", models.CharField(max_length=30, db_default')], \
        describe(result, "0002_settled")


def test_a_later_migration_settles_the_column_only_from_its_commit(shop):
    # each migration commits on its own: until 0003 old code's INSERTs fail on `sku`; a db_default
    # dropped by a later migration is MS119's (post-deploy), never both
    text = migration(shop, "0002_sku_stock", source('''
        migrations.AddField("product", "sku", models.CharField(default="", max_length=32),
                            preserve_default=False),
        migrations.AddField("product", "stock", models.IntegerField(db_default=0)),
    '''))
    settle = migration(shop, "0003_settle", source('''
        migrations.AlterField("product", "sku", models.CharField(max_length=32, null=True)),
        migrations.AlterField("product", "stock", models.IntegerField(default=0)),
    ''', after="0002_sku_stock"))
    result = review(shop)
    assert [f.line for f in findings(result, "0002_sku_stock", "MS103")] == [line_of(text, '"sku"')]
    assert not findings(result, "0003_settle", "MS103"), describe(result, "0003_settle")
    assert [f.line for f in findings(result, "0003_settle", "MS119")] == [line_of(settle, '"stock"')]
    assert operation_phases(result, "0003_settle") == ["pre-deploy", "post-deploy"]
