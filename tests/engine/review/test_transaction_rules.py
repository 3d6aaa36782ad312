"""Statements that cannot run in a transaction, and django-pg-migration-tools' Safer* operations."""
from __future__ import annotations

import pytest

from migration_safe.engine.model import StatementKind
from migration_safe.engine.review.pipeline import ReviewRequest, run_review

pytestmark = pytest.mark.slow


def only(review):
    [migration] = review.migrations
    return migration


def test_concurrent_index_in_non_atomic_migration_is_recognised_not_failed(shop):
    shop.migration("shop", "0002_idx", '''
        from django.db import migrations


        class Migration(migrations.Migration):
            atomic = False
            dependencies = [("shop", "0001_initial")]
            operations = [
                migrations.RunSQL("CREATE INDEX CONCURRENTLY product_price_idx ON shop_product (price)",
                                  "DROP INDEX CONCURRENTLY product_price_idx"),
            ]
    ''')
    shop.commit()
    migration = only(run_review(ReviewRequest(repo=shop.root, base=shop.base)))
    [statement] = migration.operations[0].statements
    assert statement.kind is StatementKind.CREATE_INDEX and statement.concurrently
    assert statement.transactional is False and statement.executed and statement.error is None
    assert migration.sql_status == "ok" and not migration.blocking


def test_concurrent_index_in_atomic_migration_fails_as_it_would_in_production(shop):
    shop.migration("shop", "0002_idx", '''
        from django.db import migrations


        class Migration(migrations.Migration):
            dependencies = [("shop", "0001_initial")]
            operations = [
                migrations.RunSQL("CREATE INDEX CONCURRENTLY product_price_idx ON shop_product (price)"),
            ]
    ''')
    shop.commit()
    migration = only(run_review(ReviewRequest(repo=shop.root, base=shop.base)))
    [statement] = migration.operations[0].statements
    assert "cannot run inside a transaction block" in statement.error
    assert [f.rule for f in migration.findings if f.blocks] == ["MS102"]


def test_safer_operations_from_django_pg_migration_tools_are_safe(shop):
    shop.migration("shop", "0002_safer", '''
        from django.db import migrations, models
        from django_pg_migration_tools import operations


        class Migration(migrations.Migration):
            atomic = False
            dependencies = [("shop", "0001_initial")]
            operations = [
                operations.SaferAddIndexConcurrently(
                    "product", models.Index(fields=["price"], name="product_price_idx")),
            ]
    ''')
    shop.commit()
    migration = only(run_review(ReviewRequest(repo=shop.root, base=shop.base)))
    assert migration.sql_status == "ok", migration.sql_error
    assert any(s.concurrently for s in migration.operations[0].statements)
    assert migration.phase.value == "pre-deploy" and not migration.blocking
    assert not [f for f in migration.findings if f.severity.value != "notice"]
