"""MS110 destructive-step: a column or table dropped, correctly placed post-deploy (a notice)."""
from __future__ import annotations

import pytest

from migration_safe.engine.model import Severity

from .harness import describe, findings, line_of, migration, phase, review, rules, source, verdict

pytestmark = pytest.mark.slow


def test_dropping_a_column_and_a_table_is_a_post_deploy_notice(shop):
    column = migration(shop, "0002_remove_legacy_code", source('''
        migrations.RemoveField(
            model_name="product",
            name="legacy_code",
        ),
    ''', attributes='deploy_phase = "post-deploy"'))
    table = migration(shop, "0003_delete_order", source(
        'migrations.DeleteModel("Order"),', after="0002_remove_legacy_code"))
    result = review(shop)
    dropped = findings(result, "0002_remove_legacy_code", "MS110")
    assert [(f.severity, f.line) for f in dropped] == [(Severity.NOTICE, line_of(column, "RemoveField("))]
    assert dropped[0].message == (
        "Remove field legacy_code from product drops column shop_product.legacy_code: it must run "
        "post-deploy, once no running code reads or writes it. Data is gone for good.")
    deleted = findings(result, "0003_delete_order", "MS110")
    assert [(f.severity, f.line) for f in deleted] == [(Severity.NOTICE, line_of(table, "DeleteModel("))]
    assert "Delete model Order drops table shop_order" in deleted[0].message
    for name in ("0002_remove_legacy_code", "0003_delete_order"):
        assert phase(result, name) == "post-deploy"
        assert not verdict(result, name).blocking, describe(result, name)
        assert rules(result, name, Severity.ERROR) == set()


def test_dropping_what_this_change_created_is_silent(shop):
    migration(shop, "0002_coupon", source('''
        migrations.CreateModel("Coupon", fields=[
            ("id", models.BigAutoField(primary_key=True)),
            ("code", models.CharField(max_length=20, null=True)),
        ]),
    '''))
    migration(shop, "0003_drop_coupon", source('''
        migrations.RemoveField("coupon", "code"),
        migrations.DeleteModel("Coupon"),
    ''', after="0002_coupon"))
    result = review(shop)
    assert not findings(result, "0003_drop_coupon"), describe(result, "0003_drop_coupon")
