"""MS005 migration-conflict: two leaf migrations in one app."""
from __future__ import annotations

import pytest

from migration_safe.engine.model import Severity

from .harness import describe, finding, findings, line_of, migration, review, source

pytestmark = pytest.mark.slow

NICKNAME = 'migrations.AddField("customer", "nickname", models.CharField(max_length=30, null=True)),'
SKU = 'migrations.AddField("product", "sku", models.CharField(max_length=32, null=True)),'


def test_two_leaves_are_an_error_on_each(shop):
    text = migration(shop, "0002_nickname", source(NICKNAME))
    migration(shop, "0002_sku", source(SKU))
    result = review(shop)
    for name in ("0002_nickname", "0002_sku"):
        found = finding(result, name, "MS005")
        assert found.severity is Severity.ERROR and found.blocks
        assert found.line == line_of(text, "class Migration")
        assert found.message == ("app shop has several leaf migrations: 0002_nickname, 0002_sku; run "
                                 "`makemigrations --merge`")


def test_a_merge_migration_resolves_it(shop):
    migration(shop, "0002_nickname", source(NICKNAME))
    migration(shop, "0002_sku", source(SKU))
    migration(shop, "0003_merge", source("", after=["0002_nickname", "0002_sku"]))
    result = review(shop)
    for name in ("0002_nickname", "0002_sku", "0003_merge"):
        assert not findings(result, name, "MS005"), describe(result, name)
    assert not findings(result, "0003_merge")
