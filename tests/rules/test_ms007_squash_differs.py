"""MS007 squash-differs: a squash must leave the state the migrations it replaces leave."""
from __future__ import annotations

import pytest

from migration_safe.engine.model import Severity

from .harness import finding, findings, line_of, review, verdict
from .squashing import SQUASH, add_squash, establish_replaced

pytestmark = pytest.mark.slow


def test_a_squash_with_another_schema_is_an_error_naming_the_difference(shop):
    establish_replaced(shop)
    text = add_squash(shop, sku='("sku", models.CharField(max_length=64, null=True)),', elided=False)
    result = review(shop)
    found = finding(result, SQUASH, "MS007")
    assert found.severity is Severity.ERROR and found.blocks
    assert found.line == line_of(text, "class Migration")
    assert found.message == (
        f"shop.{SQUASH} does not leave the state that shop.0001_initial, shop.0002_sku, shop.0003_seed "
        "leave. Django's autodetector, from theirs to its own: shop: Alter field sku on product. "
        "Databases that applied them never run the squash: new databases would get another schema.")
    # still nothing of its own runs where the replaced migrations are applied
    assert verdict(result, SQUASH).operations == []


def test_a_squash_that_drops_a_model_is_an_error(shop):
    establish_replaced(shop)
    text = add_squash(shop, elided=False)
    start = text.index("        migrations.CreateModel(\n            name=\"Order\"")
    (shop.root / "shop" / "migrations" / f"{SQUASH}.py").write_text(text[:start] + "    ]\n")
    found = finding(review(shop), SQUASH, "MS007")
    assert "shop: Delete model Order" in found.message


def test_a_faithful_squash_does_not_fire(shop):
    establish_replaced(shop)
    add_squash(shop, elided=False)
    assert not findings(review(shop), SQUASH, "MS007")
