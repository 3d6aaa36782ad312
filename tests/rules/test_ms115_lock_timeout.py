"""MS115 lock-timeout: ACCESS EXCLUSIVE on an existing table; the deploy must set lock_timeout."""
from __future__ import annotations

import pytest

from migration_safe.engine.model import Severity

from .harness import configure, describe, finding, findings, line_of, migration, review, source

pytestmark = pytest.mark.slow


def test_an_alter_on_existing_tables_is_a_notice_at_the_first_locking_operation(shop):
    text = migration(shop, "0002_nicknames", source('''
        migrations.CreateModel("Coupon", fields=[("id", models.BigAutoField(primary_key=True))]),
        migrations.AddField("product", "sku", models.CharField(max_length=32, null=True)),
        migrations.AddField("customer", "nickname", models.CharField(max_length=30, null=True)),
    '''))
    result = review(shop)
    found = finding(result, "0002_nicknames", "MS115")
    assert found.severity is Severity.NOTICE and not found.blocks
    assert found.line == line_of(text, '"sku"')
    assert found.message.startswith("Takes ACCESS EXCLUSIVE on shop_customer, shop_product. Behind a "
                                    "long-running query it waits")
    assert "lock_timeout: managed" in found.safe_alternative


def test_silent_when_the_deploy_manages_lock_timeout_or_only_new_tables_are_locked(shop):
    configure(shop, "postgres:\n  lock_timeout: managed\n")
    migration(shop, "0002_sku", source(
        'migrations.AddField("product", "sku", models.CharField(max_length=32, null=True)),'))
    result = review(shop)
    assert not findings(result, "0002_sku"), describe(result, "0002_sku")


def test_silent_for_tables_this_change_creates(shop):
    migration(shop, "0002_coupon", source('''
        migrations.CreateModel("Coupon", fields=[("id", models.BigAutoField(primary_key=True))]),
        migrations.AddField("coupon", "code", models.CharField(max_length=20, null=True)),
    '''))
    result = review(shop)
    assert not findings(result, "0002_coupon"), describe(result, "0002_coupon")
