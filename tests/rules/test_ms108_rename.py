"""MS108 rename: renaming a column or a table under running code."""
from __future__ import annotations

import pytest

from migration_safe.engine.model import Severity

from .harness import configure, describe, findings, line_of, migration, review, source

pytestmark = pytest.mark.slow


def test_rename_field_model_and_table_fire(shop):
    text = migration(shop, "0002_renames", source('''
        migrations.RenameField(
            model_name="product",
            old_name="title",
            new_name="name",
        ),
        migrations.RenameModel("Customer", "Client"),
        migrations.AlterModelTable("order", "shop_purchase"),
    '''))
    result = review(shop)
    found = {f.line: f for f in findings(result, "0002_renames", "MS108")}
    assert set(found) == {line_of(text, "RenameField("), line_of(text, "RenameModel("),
                          line_of(text, "AlterModelTable(")}, describe(result, "0002_renames")
    assert all(f.severity is Severity.ERROR and f.blocks for f in found.values())
    field = found[line_of(text, "RenameField(")]
    assert field.end_line == line_of(text, 'new_name="name"') + 1
    assert field.message == ("Rename field title on product to name renames a column: old code still "
                             "running during the deploy uses the old name and fails.")
    assert "renames a table" in found[line_of(text, "RenameModel(")].message
    assert "renames a table" in found[line_of(text, "AlterModelTable(")].message
    assert "SeparateDatabaseAndState" in field.safe_alternative


def test_renaming_only_in_django_state_does_not_fire(shop):
    migration(shop, "0002_state_rename", source('''
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.RenameField("product", "title", "name"),
            migrations.AlterField("product", "name", models.CharField(max_length=100, db_column="title")),
        ]),
    '''))
    result = review(shop)
    assert result.migrations[0].operations[0].sql == []
    assert not findings(result, "0002_state_rename"), describe(result, "0002_state_rename")


def test_renaming_what_this_change_creates_does_not_fire(shop):
    migration(shop, "0002_coupon", source('''
        migrations.CreateModel("Coupon", fields=[
            ("id", models.BigAutoField(primary_key=True)),
            ("code", models.CharField(max_length=20)),
        ]),
    '''))
    migration(shop, "0003_voucher", source('''
        migrations.RenameField("coupon", "code", "token"),
        migrations.RenameModel(old_name="Coupon", new_name="Voucher"),
    ''', after="0002_coupon"))
    result = review(shop)
    assert [len(op.sql) for op in result.migrations[1].operations] == [1, 1]  # the renames do run
    assert not findings(result, "0003_voucher", "MS108"), describe(result, "0003_voucher")


def test_a_new_table_stays_new_after_a_rename(shop):
    migration(shop, "0002_voucher", source('''
        migrations.CreateModel("Coupon", fields=[("id", models.BigAutoField(primary_key=True))]),
        migrations.RenameModel(old_name="Coupon", new_name="Voucher"),
        migrations.AlterModelTable("voucher", "shop_vouchers"),
    '''))
    result = review(shop)
    assert not findings(result, "0002_voucher"), describe(result, "0002_voucher")


def test_without_sql_renames_of_new_models_do_not_fire_either(shop):
    configure(shop, "django:\n  settings: missing.settings\n")
    text = migration(shop, "0002_renames", source('''
        migrations.CreateModel("Coupon", fields=[("id", models.BigAutoField(primary_key=True))]),
        migrations.RenameModel(old_name="Coupon", new_name="Voucher"),
        migrations.RenameField("product", "title", "name"),
    '''))
    result = review(shop, expect_sql=False)
    assert [f.line for f in findings(result, "0002_renames", "MS108")] == [line_of(text, "RenameField(")]
