"""MS009 replaced-migrations-deleted: deleting what a squash replaces needs the squash applied everywhere."""
from __future__ import annotations

import pytest

from migration_safe.engine.model import Severity

from .harness import establish, finding, findings, line_of, migration, review, source, verdict
from .squashing import REPLACED, SQUASH, establish_replaced, squash_text

pytestmark = pytest.mark.slow

MESSAGE = (f"This change deletes 3 migration(s) that shop.{SQUASH} replaces (shop.0001_initial, "
           f"shop.0002_sku, shop.0003_seed). Before it deploys, every environment must have applied "
           f"shop.{SQUASH} (or all the migrations it replaces): a database that applied only some of them "
           "can no longer migrate.")


def delete_replaced(project) -> None:
    for name in REPLACED:
        (project.root / "shop" / "migrations" / f"{name}.py").unlink()


def test_deleting_the_replaced_migrations_is_a_notice_on_the_squash(shop):
    establish_replaced(shop)
    text = squash_text(shop, elided=False)
    establish(shop, SQUASH, text)
    delete_replaced(shop)
    result = review(shop)
    found = finding(result, SQUASH, "MS009")
    assert found.severity is Severity.NOTICE and not found.blocks
    assert found.message == MESSAGE and found.line == line_of(text, "class Migration")
    squash = verdict(result, SQUASH)
    assert squash.file.status == "unchanged" and squash.operations == []
    assert squash.phase.value == "pre-deploy" and [f.rule for f in squash.findings] == ["MS009"]


def test_also_when_the_squash_loses_its_replaces_which_is_no_edit_to_warn_about(shop):
    establish_replaced(shop)
    text = squash_text(shop, elided=False)
    establish(shop, SQUASH, text)
    delete_replaced(shop)
    start = text.index("    replaces = ")
    migration(shop, SQUASH, text[:start] + text[text.index("\n", start) + 1:])
    result = review(shop)
    assert finding(result, SQUASH, "MS009").message == MESSAGE
    # Django's documented step: without MS003, whose "the edit does not reach production" is moot here
    assert verdict(result, SQUASH).file.status == "unchanged"
    assert [f.rule for f in verdict(result, SQUASH).findings] == ["MS009"]


def test_another_edit_of_the_squash_is_still_a_modified_migration(shop):
    establish_replaced(shop)
    text = squash_text(shop, elided=False)
    establish(shop, SQUASH, text)
    delete_replaced(shop)
    migration(shop, SQUASH, text.replace("max_length=100", "max_length=200"))
    result = review(shop)
    assert {f.rule for f in verdict(result, SQUASH).findings} == {"MS003", "MS009"}


def test_a_change_that_deletes_none_of_them_does_not_fire(shop):
    establish_replaced(shop)
    establish(shop, SQUASH, squash_text(shop, elided=False))
    migration(shop, "0004_title", source(
        'migrations.AlterField("product", "title", models.CharField(max_length=200)),', after=SQUASH))
    result = review(shop)
    assert not findings(result, "0004_title", "MS009")
    assert [m.file.name for m in result.migrations] == ["0004_title"]
