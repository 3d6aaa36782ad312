"""MS112 exclusive-lock-held: an atomic migration keeps ACCESS EXCLUSIVE while slow work runs."""
from __future__ import annotations

import pytest

from migration_safe.engine.model import Severity

from .harness import describe, finding, findings, line_of, migration, review, source

pytestmark = pytest.mark.slow


def test_an_alter_then_an_index_build_on_another_table_fires(shop):
    text = migration(shop, "0002_nickname_and_price_idx", source('''
        migrations.AddField("customer", "nickname", models.CharField(max_length=30, null=True)),
        migrations.AddIndex(
            model_name="product",
            index=models.Index(fields=["price"], name="product_price_idx"),
        ),
    '''))
    result = review(shop)
    found = finding(result, "0002_nickname_and_price_idx", "MS112")
    assert found.severity is Severity.ERROR and found.blocks
    assert found.line == line_of(text, "migrations.AddIndex(") and found.operation_index == 1
    assert found.message == ("While this statement builds an index on shop_product, the migration's "
                             "transaction still holds ACCESS EXCLUSIVE on shop_customer: every query on it "
                             "waits until the migration commits.")
    assert "own migration" in found.safe_alternative


def test_one_finding_per_operation(shop):
    """A ForeignKey field validates its constraint and builds its index: one operation, one finding."""
    text = migration(shop, "0002_nickname_and_buyer", source('''
        migrations.AddField("customer", "nickname", models.CharField(max_length=30, null=True)),
        migrations.AddField("order", "buyer", models.ForeignKey(
            "shop.customer", null=True, on_delete=models.SET_NULL, related_name="+")),
    '''))
    result = review(shop)
    found = finding(result, "0002_nickname_and_buyer", "MS112")
    assert found.line == line_of(text, '"buyer"')
    assert "still holds ACCESS EXCLUSIVE on shop_customer" in found.message


def test_a_unique_field_is_an_index_build(shop):
    text = migration(shop, "0002_nickname_and_handle", source('''
        migrations.AddField("customer", "nickname", models.CharField(max_length=30, null=True)),
        migrations.AddField("product", "handle", models.SlugField(null=True, unique=True)),
    '''))
    result = review(shop)
    found = finding(result, "0002_nickname_and_handle", "MS112")
    assert found.line == line_of(text, '"handle"')
    assert found.message.startswith("While this statement builds an index on shop_product, the migration's "
                                    "transaction still holds ACCESS EXCLUSIVE on shop_customer")


def test_attaching_a_prebuilt_unique_index_is_quick(shop):
    # (in the change itself: the sandbox does not rebuild what RunSQL made in older migrations)
    migration(shop, "0002_title_uniq", source(
        'migrations.RunSQL("CREATE UNIQUE INDEX CONCURRENTLY product_title_uniq ON shop_product (title)", '
        'migrations.RunSQL.noop),', attributes="atomic = False"))
    migration(shop, "0003_nickname_and_title_uniq", source('''
        migrations.AddField("customer", "nickname", models.CharField(max_length=30, null=True)),
        migrations.RunSQL(
            "ALTER TABLE shop_product ADD CONSTRAINT product_title_uniq UNIQUE USING INDEX product_title_uniq",
            migrations.RunSQL.noop,
        ),
    ''', after="0002_title_uniq"))
    result = review(shop)
    assert not findings(result, "0003_nickname_and_title_uniq", "MS112"), \
        describe(result, "0003_nickname_and_title_uniq")
    assert not findings(result, "0003_nickname_and_title_uniq", "MS101")
    assert not findings(result, "0003_nickname_and_title_uniq", "MS004")  # the attach did run


def test_separate_migrations_non_atomic_or_one_table_do_not_fire(shop):
    migration(shop, "0002_nickname", source(
        'migrations.AddField("customer", "nickname", models.CharField(max_length=30, null=True)),'))
    migration(shop, "0003_price_idx", source(
        'migrations.AddIndex("product", models.Index(fields=["price"], name="product_price_idx")),',
        after="0002_nickname"))
    migration(shop, "0004_non_atomic", source('''
        migrations.AddField("customer", "note", models.TextField(null=True)),
        migrations.AddIndex("product", models.Index(fields=["title"], name="product_title_idx")),
    ''', after="0003_price_idx", attributes="atomic = False"))
    migration(shop, "0005_same_table", source('''
        migrations.AddField("order", "note", models.TextField(null=True)),
        migrations.AddIndex("order", models.Index(fields=["quantity"], name="order_quantity_idx")),
    ''', after="0004_non_atomic"))
    result = review(shop)
    for name in ("0002_nickname", "0003_price_idx", "0004_non_atomic", "0005_same_table"):
        assert not findings(result, name, "MS112"), describe(result, name)
