"""MS113 declared-phase-contradiction: the phase declared in the file is not safe."""
from __future__ import annotations

import pytest

from migration_safe.engine.model import Severity

from .harness import configure, describe, finding, findings, line_of, migration, phase, review, source

pytestmark = pytest.mark.slow


def test_a_drop_declared_pre_deploy_fires_at_the_declaration(shop):
    text = migration(shop, "0002_remove_legacy_code", source(
        'migrations.RemoveField("product", "legacy_code"),', attributes='deploy_phase = "pre-deploy"'))
    result = review(shop)
    found = finding(result, "0002_remove_legacy_code", "MS113")
    assert found.severity is Severity.ERROR and found.blocks
    assert found.line == line_of(text, "deploy_phase =") and found.operation_index is None
    assert found.message == ("Declared pre-deploy (deploy_phase), but the operations need post-deploy: it "
                             "removes or constrains what the old code still uses, so it must wait until "
                             "after the deploy.")
    assert phase(result, "0002_remove_legacy_code") == "post-deploy"


def test_other_contradictions(shop):
    configure(shop, "tables:\n  large: [shop_order]\n")
    added = migration(shop, "0002_nickname", source(
        'migrations.AddField("customer", "nickname", models.CharField(max_length=30, null=True)),',
        attributes="is_post_deployment = True"))
    backfill = migration(shop, "0003_backfill", source(
        'migrations.RunSQL("UPDATE shop_order SET quantity = 1 WHERE quantity = 0", migrations.RunSQL.noop),',
        after="0002_nickname", attributes='deploy_phase = "post-deploy"'))
    mixed = migration(shop, "0004_mixed", source('''
        migrations.AddField("customer", "note", models.TextField(null=True)),
        migrations.RunPython(migrations.RunPython.noop, migrations.RunPython.noop),
    ''', after="0003_backfill", attributes='deploy_phase = "deferred"'))
    result = review(shop)
    early = finding(result, "0002_nickname", "MS113")
    assert early.line == line_of(added, "is_post_deployment")
    assert early.message.startswith("Declared post-deploy (is_post_deployment), but the operations need "
                                    "pre-deploy: its changes are needed by the new code")
    large = finding(result, "0003_backfill", "MS113")
    assert large.line == line_of(backfill, "deploy_phase")
    assert "long-running work on a large table, which must not hold up the deploy" in large.message
    split = finding(result, "0004_mixed", "MS113")
    assert split.line == line_of(mixed, "deploy_phase")
    assert "operations need a split: the migration mixes phases" in split.message


def test_a_declaration_that_agrees_is_silent(shop):
    migration(shop, "0002_remove_legacy_code", source(
        'migrations.RemoveField("product", "legacy_code"),', attributes='deploy_phase = "post-deploy"'))
    migration(shop, "0003_backfill", source(
        'migrations.RunPython(migrations.RunPython.noop, migrations.RunPython.noop),',
        after="0002_remove_legacy_code", attributes='deploy_phase = "deferred"'))
    migration(shop, "0004_nickname", source(
        'migrations.AddField("customer", "nickname", models.CharField(max_length=30, null=True)),',
        after="0003_backfill", attributes='deploy_phase = "pre_deploy"'))  # spelling is forgiven
    result = review(shop)
    for name in ("0002_remove_legacy_code", "0003_backfill", "0004_nickname"):
        assert not findings(result, name, "MS113"), describe(result, name)


def test_a_safe_declared_phase_wins(shop):
    # a backfill of a small table may run right after the deploy instead of asynchronously
    migration(shop, "0002_backfill", source(
        'migrations.RunPython(migrations.RunPython.noop, migrations.RunPython.noop),',
        attributes='deploy_phase = "post-deploy"'))
    result = review(shop)
    assert not findings(result, "0002_backfill", "MS113")
    assert phase(result, "0002_backfill") == "post-deploy"
