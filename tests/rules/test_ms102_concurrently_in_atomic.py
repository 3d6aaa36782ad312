"""MS102 concurrently-in-atomic: CONCURRENTLY inside an atomic migration cannot run at all."""
from __future__ import annotations

import pytest

from migration_safe.engine.model import Severity

from .harness import CONCURRENT, establish, finding, findings, fired, line_of, migration, review, source

pytestmark = pytest.mark.slow


def test_concurrent_index_in_an_atomic_migration_is_an_error(shop):
    text = migration(shop, "0002_price_idx", source('''
        AddIndexConcurrently(
            "product",
            models.Index(fields=["price"], name="product_price_idx"),
        ),
    ''', imports=CONCURRENT))
    result = review(shop, expect_sql=False)
    found = finding(result, "0002_price_idx", "MS102")
    assert found.severity is Severity.ERROR and found.blocks
    assert found.line == line_of(text, "AddIndexConcurrently(") and found.operation_index == 0
    assert "must run outside a transaction, but the migration is atomic" in found.message
    assert "atomic = False" in found.safe_alternative
    # Django refuses it in the sandbox; that failure is MS102's, not reported again as MS004,
    # and the static review that follows says why the SQL is missing
    assert not fired(result, "0002_price_idx", "MS004")
    assert "cannot be executed inside a transaction" in finding(result, "0002_price_idx", "MS002").message


def test_concurrent_index_removal_in_an_atomic_migration_is_an_error(shop):
    establish(shop, "0002_price_idx", source(
        'AddIndexConcurrently("product", models.Index(fields=["price"], name="product_price_idx")),',
        attributes="atomic = False", imports=CONCURRENT))
    text = migration(shop, "0003_drop_price_idx", source(
        'RemoveIndexConcurrently("product", "product_price_idx"),', after="0002_price_idx",
        imports=CONCURRENT))
    result = review(shop, expect_sql=False)
    found = finding(result, "0003_drop_price_idx", "MS102")
    assert found.severity is Severity.ERROR
    assert found.line == line_of(text, "RemoveIndexConcurrently(")


def test_concurrent_sql_in_an_atomic_migration_is_an_error(shop):
    text = migration(shop, "0002_price_idx", source('''
        migrations.RunSQL(
            "CREATE INDEX CONCURRENTLY product_price_idx ON shop_product (price)",
            "DROP INDEX CONCURRENTLY product_price_idx",
        ),
    '''))
    result = review(shop)
    found = finding(result, "0002_price_idx", "MS102")
    assert found.severity is Severity.ERROR and found.line == line_of(text, "migrations.RunSQL(")
    assert found.message.startswith("Raw SQL operation must run outside a transaction")
    assert not fired(result, "0002_price_idx", "MS004")


def test_atomic_false_is_the_safe_way(shop):
    migration(shop, "0002_price_idx", source(
        'AddIndexConcurrently("product", models.Index(fields=["price"], name="product_price_idx")),',
        attributes="atomic = False", imports=CONCURRENT))
    migration(shop, "0003_drop_price_idx", source(
        'RemoveIndexConcurrently("product", "product_price_idx"),', after="0002_price_idx",
        attributes="atomic = False", imports=CONCURRENT))
    migration(shop, "0004_title_idx", source(
        'migrations.RunSQL("CREATE INDEX CONCURRENTLY product_title_idx ON shop_product (title)", '
        '"DROP INDEX CONCURRENTLY product_title_idx"),', after="0003_drop_price_idx",
        attributes="atomic = False"))
    result = review(shop)
    for name in ("0002_price_idx", "0003_drop_price_idx", "0004_title_idx"):
        assert not fired(result, name, "MS102")
        assert not fired(result, name, "MS004")
    assert not findings(result, "0002_price_idx")
