"""MS116 drop-index-lock: DROP INDEX without CONCURRENTLY on an existing table."""
from __future__ import annotations

import pytest

from migration_safe.engine.model import Severity

from .harness import (
    CONCURRENT, describe, establish, finding, findings, line_of, migration, phase, review, source,
)

pytestmark = pytest.mark.slow

INDEXES = source('''
    AddIndexConcurrently("product", models.Index(fields=["price"], name="product_price_idx")),
    AddIndexConcurrently("customer", models.Index(fields=["email"], name="customer_email_idx")),
''', attributes="atomic = False", imports=CONCURRENT)


def test_remove_index_on_an_existing_table_is_a_warning(shop):
    establish(shop, "0002_indexes", INDEXES)
    text = migration(shop, "0003_drop_price_idx", source('''
        migrations.RemoveIndex(
            model_name="product",
            name="product_price_idx",
        ),
    ''', after="0002_indexes"))
    result = review(shop)
    found = finding(result, "0003_drop_price_idx", "MS116")
    assert found.severity is Severity.WARNING and not found.blocks
    assert found.line == line_of(text, "RemoveIndex(")
    assert found.end_line == line_of(text, 'name="product_price_idx"') + 1
    assert found.message == "DROP INDEX product_price_idx takes ACCESS EXCLUSIVE on shop_product."
    assert "RemoveIndexConcurrently" in found.safe_alternative
    assert phase(result, "0003_drop_price_idx") == "post-deploy"


def test_concurrent_removal_is_silent(shop):
    establish(shop, "0002_indexes", INDEXES)
    migration(shop, "0003_drop_email_idx", source(
        'RemoveIndexConcurrently("customer", "customer_email_idx"),', after="0002_indexes",
        attributes="atomic = False", imports=CONCURRENT))
    result = review(shop)
    assert not findings(result, "0003_drop_email_idx"), describe(result, "0003_drop_email_idx")
    assert phase(result, "0003_drop_email_idx") == "post-deploy"


def test_an_index_of_a_table_this_change_creates_is_silent_and_pre_deploy(shop):
    migration(shop, "0002_coupon", source('''
        migrations.CreateModel(
            name="Coupon",
            fields=[("id", models.BigAutoField(primary_key=True)), ("code", models.CharField(max_length=20))],
            options={"indexes": [models.Index(fields=["code"], name="coupon_code_idx")]},
        ),
    '''))
    migration(shop, "0003_drop_coupon_idx", source('''
        migrations.RemoveIndex("coupon", "coupon_code_idx"),
        migrations.AddField("coupon", "note", models.TextField(null=True)),
    ''', after="0002_coupon"))
    result = review(shop)
    assert not findings(result, "0003_drop_coupon_idx"), describe(result, "0003_drop_coupon_idx")
    # nothing uses a table this change creates: no reason to wait for the deploy (and no split)
    assert phase(result, "0003_drop_coupon_idx") == "pre-deploy", describe(result, "0003_drop_coupon_idx")
