"""MS119 drop-database-default: dropping a NOT NULL column's database default is post-deploy."""
from __future__ import annotations

import pytest

from migration_safe.engine.model import Severity

from .harness import describe, establish, finding, findings, line_of, migration, phase, review, source

pytestmark = pytest.mark.slow


def test_db_default_replaced_by_default_is_post_deploy(shop):
    establish(shop, "0002_stock", source('''
        migrations.AddField("product", "stock", models.IntegerField(db_default=0)),
        migrations.AddField("product", "rank", models.IntegerField(db_default=0)),
    '''))
    # what makemigrations writes when models.py says default=0 after a db_default rewrite
    text = migration(shop, "0003_stock", source(
        'migrations.AlterField("product", "stock", models.IntegerField(default=0)),', after="0002_stock"))
    migration(shop, "0004_rank", source(
        'migrations.AlterField("product", "rank", models.IntegerField(null=True)),', after="0003_stock"))
    result = review(shop)
    found = finding(result, "0003_stock", "MS119")
    assert found.line == line_of(text, "AlterField") and found.severity is Severity.NOTICE
    assert found.message.startswith("DROP DEFAULT on shop_product.stock, which stays NOT NULL: old code "
                                    "that leaves the column to its database default")
    assert phase(result, "0003_stock") == "post-deploy"  # was a quiet pre-deploy
    # made nullable at the same time: an INSERT without it stores NULL, which is allowed
    assert not findings(result, "0004_rank", "MS119"), describe(result, "0004_rank")
    assert phase(result, "0004_rank") == "pre-deploy"


def test_djangos_temporary_defaults_are_not_it(shop):
    migration(shop, "0002_sku", source('''
        migrations.AddField("product", "sku", models.CharField(max_length=9, null=True, default="a")),
        migrations.AlterField("product", "legacy_code", models.CharField(max_length=20, null=True)),
    '''))
    result = review(shop)
    assert not findings(result, "0002_sku", "MS119"), describe(result, "0002_sku")
    assert phase(result, "0002_sku") == "pre-deploy"
