"""MS008 squash-drops-data-migrations: the RunPython and RunSQL a squash leaves out are listed."""
from __future__ import annotations

import pytest

from migration_safe.engine.model import Severity

from .harness import establish, finding, findings, review, source, verdict
from .squashing import SEED, SKU, SQUASH, add_squash, establish_replaced

pytestmark = pytest.mark.slow


def test_an_elided_runpython_is_a_notice_naming_it(shop):
    establish_replaced(shop)
    add_squash(shop)
    result = review(shop)
    found = finding(result, SQUASH, "MS008")
    assert found.severity is Severity.NOTICE and not found.blocks
    assert found.message == (f"shop.{SQUASH} leaves out 1 data operation(s) of the migrations it "
                             "replaces: shop.0003_seed: RunPython seed. A database built from the squash "
                             "never runs them.")
    assert [f.rule for f in verdict(result, SQUASH).findings] == ["MS008"]


def test_a_kept_runpython_does_not_fire(shop):
    establish_replaced(shop)
    add_squash(shop, elided=False)
    assert not findings(review(shop), SQUASH, "MS008")


def test_a_data_migration_dropped_by_hand_is_marked_not_elidable(shop):
    establish(shop, "0002_sku", source(f"migrations.AddField('product', {SKU[1:-2]}),"))
    establish(shop, "0003_seed", source("migrations.RunPython(seed, migrations.RunPython.noop),",
                                        after="0002_sku", imports=SEED))
    add_squash(shop)
    assert "shop.0003_seed: RunPython seed (not elidable)" in finding(review(shop), SQUASH, "MS008").message
