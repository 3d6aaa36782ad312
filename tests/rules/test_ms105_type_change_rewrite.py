"""MS105 type-change-rewrite: ALTER COLUMN … TYPE that rewrites the table."""
from __future__ import annotations

import pytest

from migration_safe.engine.model import Severity

from .harness import describe, findings, line_of, migration, review, source

pytestmark = pytest.mark.slow


def test_rewriting_type_changes_fire_and_widening_does_not(shop):
    migration(shop, "0002_widen", source('''
        migrations.AlterField("product", "title", models.CharField(max_length=200)),
        migrations.AlterField("product", "legacy_code", models.TextField(null=True)),
    '''))
    text = migration(shop, "0003_retype", source('''
        migrations.AlterField(
            model_name="product",
            name="price",
            field=models.BigIntegerField(),
        ),
        migrations.AlterField("order", "quantity", models.CharField(max_length=10)),
    ''', after="0002_widen"))
    result = review(shop)
    # varchar(100) -> varchar(200) and varchar -> text are binary coercible: no rewrite
    assert not findings(result, "0002_widen", "MS105"), describe(result, "0002_widen")
    found = {f.line: f for f in findings(result, "0003_retype", "MS105")}
    assert set(found) == {line_of(text, "migrations.AlterField("), line_of(text, '"quantity"')}
    price = found[line_of(text, "migrations.AlterField(")]
    assert price.severity is Severity.ERROR and price.blocks
    assert price.end_line == line_of(text, "BigIntegerField") + 1
    assert price.message == ("Changing shop_product.price to bigint rewrites the whole table under "
                             "ACCESS EXCLUSIVE (seen in the sandbox).")
    assert "varchar(10)" in found[line_of(text, '"quantity"')].message
    assert "Expand and contract" in price.safe_alternative


def test_widening_after_a_rewrite_in_the_same_migration_does_not_fire(shop):
    text = migration(shop, "0002_mixed", source('''
        migrations.AlterField("product", "price", models.BigIntegerField()),
        migrations.AlterField("product", "title", models.CharField(max_length=200)),
    '''))
    result = review(shop)
    assert [f.line for f in findings(result, "0002_mixed", "MS105")] == [line_of(text, '"price"')]
