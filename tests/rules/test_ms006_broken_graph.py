"""MS006 broken-graph: Django cannot build the migration graph."""
from __future__ import annotations

import pytest

from migration_safe.engine.model import Severity

from .harness import finding, findings, line_of, migration, review, rules, source

pytestmark = pytest.mark.slow

NICKNAME = 'migrations.AddField("customer", "nickname", models.CharField(max_length=30, null=True)),'


def test_a_missing_dependency_is_an_error(shop):
    text = migration(shop, "0002_nickname", source(NICKNAME, after="0001_initail"))
    result = review(shop, expect_sql=False)
    found = finding(result, "0002_nickname", "MS006")
    assert found.severity is Severity.ERROR and found.blocks
    assert found.line == line_of(text, "class Migration")
    assert found.message == ("Django cannot build the migration graph: NodeNotFoundError: Migration "
                             "shop.0002_nickname dependencies reference nonexistent parent node "
                             "('shop', '0001_initail')")
    # and the review falls back to the file, saying so
    assert rules(result, "0002_nickname", Severity.WARNING) == {"MS002"}


def test_a_circular_dependency_is_an_error(shop):
    migration(shop, "0002_nickname", source(NICKNAME, after=["0001_initial", "0003_sku"]))
    migration(shop, "0003_sku", source(
        'migrations.AddField("product", "sku", models.CharField(max_length=32, null=True)),',
        after="0002_nickname"))
    result = review(shop, expect_sql=False)
    for name in ("0002_nickname", "0003_sku"):
        message = finding(result, name, "MS006").message
        assert message.startswith("Django cannot build the migration graph: CircularDependencyError: ")
        assert "shop.0002_nickname" in message and "shop.0003_sku" in message  # in either order


def test_a_sound_graph_does_not_fire(shop):
    migration(shop, "0002_nickname", source(NICKNAME))
    assert not findings(review(shop), "0002_nickname", "MS006")
