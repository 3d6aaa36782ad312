"""MS109 remove-not-null-field: dropping a NOT NULL column that has no database default."""
from __future__ import annotations

import pytest

from migration_safe.engine.model import Severity

from .harness import describe, establish, finding, findings, line_of, migration, phase, review, source

pytestmark = pytest.mark.slow


def test_removing_a_not_null_column_fires(shop):
    text = migration(shop, "0002_remove_price", source('''
        migrations.RemoveField(
            model_name="product",
            name="price",
        ),
    '''))
    result = review(shop)
    found = finding(result, "0002_remove_price", "MS109")
    assert found.severity is Severity.ERROR and found.blocks
    assert (found.line, found.end_line) == (line_of(text, "RemoveField("), line_of(text, 'name="price"') + 1)
    assert found.message.startswith("shop_product.price is NOT NULL without a database default: until it "
                                    "is dropped, new code (which no longer sets it) fails on every INSERT")
    assert "nullable" in found.safe_alternative


def test_removing_a_nullable_or_defaulted_column_does_not_fire(shop):
    establish(shop, "0002_stock", source(
        'migrations.AddField("product", "stock", models.IntegerField(db_default=0)),'))
    migration(shop, "0003_remove", source('''
        migrations.RemoveField("product", "legacy_code"),
        migrations.RemoveField("product", "stock"),
    ''', after="0002_stock"))
    result = review(shop)
    assert not findings(result, "0003_remove", "MS109"), describe(result, "0003_remove")
    # each drop is still reported as the destructive, post-deploy step it is
    assert len(findings(result, "0003_remove", "MS110")) == 2


def test_a_column_of_a_model_the_same_migration_deletes_does_not_fire(shop):
    # makemigrations removes the fields of a deleted model first; no code inserts into it any more
    migration(shop, "0002_drop_order", source('''
        migrations.RemoveField("order", "quantity"),
        migrations.RemoveField("order", "customer"),
        migrations.RemoveField("order", "product"),
        migrations.DeleteModel("Order"),
    '''))
    result = review(shop)
    assert not findings(result, "0002_drop_order", "MS109"), describe(result, "0002_drop_order")
    assert phase(result, "0002_drop_order") == "post-deploy"
