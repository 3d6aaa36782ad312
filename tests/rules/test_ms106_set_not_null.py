"""MS106 set-not-null: SET NOT NULL on an existing column scans it under ACCESS EXCLUSIVE."""
from __future__ import annotations

import pytest

from migration_safe.engine.model import Severity

from .harness import (
    STATS_PATH, configure, describe, finding, findings, line_of, migration, phase, review, source,
)

pytestmark = pytest.mark.slow


def test_null_true_to_false_fires(shop):
    text = migration(shop, "0002_legacy_code_required", source('''
        migrations.AlterField(
            model_name="product",
            name="legacy_code",
            field=models.CharField(max_length=20),
        ),
    '''))
    result = review(shop)
    found = finding(result, "0002_legacy_code_required", "MS106")
    assert found.severity is Severity.ERROR and found.blocks
    assert found.line == line_of(text, "migrations.AlterField(")
    assert found.message == ("SET NOT NULL on shop_product.legacy_code scans the whole table while holding "
                             "ACCESS EXCLUSIVE; old code that writes NULL fails afterwards.")
    assert "NOT VALID" in found.safe_alternative
    # a new rule the data must obey: after the code that obeys it
    assert phase(result, "0002_legacy_code_required") == "post-deploy"


def test_a_validated_not_null_check_makes_it_cheap(shop):
    """PostgreSQL 12+ proves NOT NULL from a valid CHECK (col IS NOT NULL) without scanning."""
    migration(shop, "0002_code", source(
        'migrations.AddField("product", "code", models.CharField(max_length=20, null=True)),'))
    migration(shop, "0003_check", source('''
        migrations.RunSQL(
            "ALTER TABLE shop_product ADD CONSTRAINT product_legacy_code_nn "
            "CHECK (legacy_code IS NOT NULL) NOT VALID",
            "ALTER TABLE shop_product DROP CONSTRAINT product_legacy_code_nn",
        ),
    ''', after="0002_code"))
    migration(shop, "0004_validate", source(
        'migrations.RunSQL("ALTER TABLE shop_product VALIDATE CONSTRAINT product_legacy_code_nn", '
        'migrations.RunSQL.noop),', after="0003_check"))
    text = migration(shop, "0005_required", source('''
        migrations.AlterField("product", "legacy_code", models.CharField(max_length=20)),
        migrations.AlterField("product", "code", models.CharField(max_length=20)),
    ''', after="0004_validate"))
    result = review(shop)
    # legacy_code is proven by its check; the check proves nothing about `code`, whose name it contains
    found = findings(result, "0005_required", "MS106")
    assert [f.line for f in found] == [line_of(text, '"code"')], describe(result, "0005_required")
    assert "shop_product.code" in found[0].message


def test_a_small_table_gets_a_warning_and_a_new_table_nothing(shop):
    configure(shop, f"tables:\n  stats: {STATS_PATH}\n", stats={"shop_product": 10})
    migration(shop, "0002_required", source('''
        migrations.AlterField("product", "legacy_code", models.CharField(max_length=20)),
        migrations.CreateModel("Coupon", fields=[
            ("id", models.BigAutoField(primary_key=True)),
            ("code", models.CharField(max_length=20, null=True)),
        ]),
        migrations.AlterField("coupon", "code", models.CharField(max_length=20)),
    '''))
    result = review(shop)
    assert [f.severity for f in findings(result, "0002_required", "MS106")] == [Severity.WARNING]
