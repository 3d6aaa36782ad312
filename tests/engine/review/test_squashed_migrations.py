"""Squashed migrations are reviewed as Django runs them where the base branch is deployed.

Where every migration a squash replaces is applied, Django records the squash as applied and runs
none of it; where only some are, it cannot use the squash and runs the rest of them instead; where
none is, the squash runs in their place. The real review (sandbox, embedded PostgreSQL) on the
`shop` fixture project.
"""
from __future__ import annotations

import pytest

from migration_safe.engine.model import Severity

from rules.harness import describe, establish, finding, findings, migration, phase, review, source, verdict
from rules.squashing import SEED, SKU, SQUASH, add_squash, establish_replaced, squash_text

pytestmark = pytest.mark.slow

SKU_INDEX = 'migrations.AddIndex("product", models.Index(fields=["sku"], name="product_sku_idx")),'


def test_a_squash_of_applied_migrations_runs_nothing_and_has_no_findings(shop):
    establish_replaced(shop)
    add_squash(shop, elided=False)
    result = review(shop)
    squash = verdict(result, SQUASH)
    assert squash.findings == [], describe(result, SQUASH)
    assert squash.operations == [] and squash.phase.value == "pre-deploy" and not squash.blocking
    assert squash.sql_status == "ok"
    assert (f"squash: shop.{SQUASH} replaces shop.0001_initial, shop.0002_sku, shop.0003_seed, all in the "
            "base: where they are applied Django records it as applied and runs nothing (a new database "
            "runs it instead of them); reviewed without its operations") in result.notes


def test_a_new_migration_on_a_replaced_one_builds_on_the_squash_as_django_resolves_it(shop):
    establish_replaced(shop)
    add_squash(shop, elided=False)
    migration(shop, "0004_sku_idx", source(SKU_INDEX, after="0003_seed"))
    result = review(shop)
    # Django points the dependency on 0003_seed at the squash: the index is reviewed on its table
    index = finding(result, "0004_sku_idx", "MS101")
    assert index.severity is Severity.ERROR and "shop_product" in index.message
    assert verdict(result, "0004_sku_idx").operations[0].sql == [
        'CREATE INDEX "product_sku_idx" ON "shop_product" ("sku");']
    assert findings(result, SQUASH) == []


def test_a_new_migration_on_a_replaced_one_of_an_older_squash(shop):
    establish_replaced(shop)
    establish(shop, SQUASH, squash_text(shop, elided=False))
    migration(shop, "0004_sku_idx", source(SKU_INDEX, after="0003_seed"))
    result = review(shop)
    assert {f.rule for f in findings(result, "0004_sku_idx")} == {"MS101"}, describe(result, "0004_sku_idx")
    assert phase(result, "0004_sku_idx") == "pre-deploy"


def test_a_squash_of_migrations_only_partly_in_the_base_gives_way_to_the_others(shop):
    establish(shop, "0002_sku", source(f"migrations.AddField('product', {SKU[1:-2]}),"))
    migration(shop, "0003_seed", source("migrations.RunPython(seed, migrations.RunPython.noop, elidable=True),",
                                        after="0002_sku", imports=SEED))
    add_squash(shop, elided=False)
    result = review(shop)
    squash = verdict(result, SQUASH)
    assert squash.operations == [] and findings(result, SQUASH) == []
    # Django runs 0003_seed where 0001 and 0002 are applied: it is reviewed as the data migration it is
    assert [op.type for op in verdict(result, "0003_seed").operations] == ["RunPython"]
    assert phase(result, "0003_seed") == "deferred"
    assert (f"squash: shop.{SQUASH} replaces shop.0001_initial, shop.0002_sku, shop.0003_seed, of which only "
            "shop.0001_initial, shop.0002_sku are in the base: there Django cannot use it and runs "
            "shop.0003_seed instead, each reviewed on its own") in result.notes


def test_a_squash_of_new_migrations_runs_in_their_place(shop):
    migration(shop, "0002_sku", source(f"migrations.AddField('product', {SKU[1:-2]}),"))
    migration(shop, "0003_price", source('migrations.AlterField("product", "price", models.BigIntegerField()),',
                                         after="0002_sku"))
    migration(shop, "0002_squashed_0003_price", source(
        f"migrations.AddField('product', {SKU[1:-2]}),\n"
        'migrations.AlterField("product", "price", models.BigIntegerField()),',
        attributes='replaces = [("shop", "0002_sku"), ("shop", "0003_price")]'))
    result = review(shop)
    squash = verdict(result, "0002_squashed_0003_price")
    assert [op.type for op in squash.operations] == ["AddField", "AlterField"]
    assert "MS105" in {f.rule for f in squash.findings}  # the type change rewrites the table, as it will
    for replaced in ("0002_sku", "0003_price"):
        assert verdict(result, replaced).operations == [] and findings(result, replaced) == []
        assert (f"squash: shop.{replaced} is replaced by shop.0002_squashed_0003_price: Django runs the "
                "squash instead of it") in result.notes


def delete_replaced(project) -> None:
    for name in ("0001_initial", "0002_sku", "0003_seed"):
        (project.root / "shop" / "migrations" / f"{name}.py").unlink()


def test_a_squash_that_deletes_its_replaced_migrations_at_once_is_compared_with_the_base(shop):
    establish_replaced(shop)
    add_squash(shop, elided=False)
    delete_replaced(shop)
    result = review(shop)
    squash = verdict(result, SQUASH)
    # applied where the base is (the deleted migrations are), compared with their text in the base
    assert squash.operations == [] and [f.rule for f in squash.findings] == ["MS009"], describe(result, SQUASH)


def test_a_squash_that_deletes_its_replaced_migrations_at_once_and_differs(shop):
    establish_replaced(shop)
    add_squash(shop, sku='("sku", models.CharField(max_length=64, null=True)),')
    delete_replaced(shop)
    result = review(shop)
    assert "shop: Alter field sku on product" in finding(result, SQUASH, "MS007").message
    assert "shop.0003_seed: RunPython seed" in finding(result, SQUASH, "MS008").message
