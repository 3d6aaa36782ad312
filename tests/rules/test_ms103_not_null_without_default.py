"""MS103 not-null-without-db-default: a NOT NULL column added without a database default."""
from __future__ import annotations

import pytest

from migration_safe.engine.model import Severity

from .harness import configure, describe, findings, line_of, migration, review, source

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
