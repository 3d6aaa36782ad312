"""MS114 dependency-phase-order: a migration depends on one of the same change in a later phase."""
from __future__ import annotations

import pytest

from migration_safe.engine.model import Severity

from .harness import describe, establish, finding, findings, line_of, migration, phase, review, source

pytestmark = pytest.mark.slow

BACKFILL = 'migrations.RunSQL("UPDATE shop_customer SET email = lower(email)", migrations.RunSQL.noop),'
NICKNAME = 'migrations.AddField("customer", "nickname", models.CharField(max_length=30, null=True)),'


def test_pre_deploy_after_deferred_is_an_error(shop):
    migration(shop, "0002_backfill", source(BACKFILL))
    text = migration(shop, "0003_nickname", source(NICKNAME, after="0002_backfill"))
    result = review(shop)
    assert (phase(result, "0002_backfill"), phase(result, "0003_nickname")) == ("deferred", "pre-deploy")
    found = finding(result, "0003_nickname", "MS114")
    assert found.severity is Severity.ERROR and found.blocks
    assert found.line == line_of(text, "class Migration")
    assert found.message == ("This pre-deploy migration depends on shop.0002_backfill, which is deferred: "
                             "it cannot run before that dependency has run.")
    assert not findings(result, "0002_backfill", "MS114")


def test_pre_deploy_after_post_deploy_is_an_error_and_post_after_deferred_a_warning(shop):
    migration(shop, "0002_remove_legacy_code", source('migrations.RemoveField("product", "legacy_code"),'))
    migration(shop, "0003_nickname", source(NICKNAME, after="0002_remove_legacy_code"))
    migration(shop, "0004_backfill", source(BACKFILL, after="0003_nickname"))
    migration(shop, "0005_email_optional", source('''
        migrations.AlterField("customer", "email", models.EmailField(null=True)),
    ''', after="0004_backfill"))
    migration(shop, "0006_remove_nickname", source(
        'migrations.RemoveField("customer", "nickname"),', after="0005_email_optional"))
    result = review(shop)
    assert finding(result, "0003_nickname", "MS114").severity is Severity.ERROR
    assert "depends on shop.0002_remove_legacy_code, which is post-deploy" in \
        finding(result, "0003_nickname", "MS114").message
    # pre-deploy (DROP NOT NULL) after deferred: an error as well
    assert finding(result, "0005_email_optional", "MS114").severity is Severity.ERROR
    # 0006 is post-deploy after pre-deploy 0005: fine
    assert not findings(result, "0006_remove_nickname", "MS114"), describe(result, "0006_remove_nickname")


def test_post_deploy_after_deferred_is_a_warning(shop):
    migration(shop, "0002_backfill", source(BACKFILL))
    migration(shop, "0003_remove_legacy_code", source(
        'migrations.RemoveField("product", "legacy_code"),', after="0002_backfill"))
    result = review(shop)
    found = finding(result, "0003_remove_legacy_code", "MS114")
    assert found.severity is Severity.WARNING and not found.blocks
    assert "This post-deploy migration depends on shop.0002_backfill, which is deferred" in found.message


def test_dependencies_already_shipped_or_of_an_earlier_phase_are_fine(shop):
    establish(shop, "0002_backfill", source(BACKFILL))  # ran in an earlier release
    migration(shop, "0003_nickname", source(NICKNAME, after="0002_backfill"))
    migration(shop, "0004_backfill_nickname", source(
        'migrations.RunSQL("UPDATE shop_customer SET nickname = email", migrations.RunSQL.noop),',
        after="0003_nickname"))
    result = review(shop)
    for name in ("0003_nickname", "0004_backfill_nickname"):
        assert not findings(result, name, "MS114"), describe(result, name)
