"""MS117 table-rewrite: any statement that rewrites an existing table, whatever its operation."""
from __future__ import annotations

import pytest

from migration_safe.engine.model import Severity

from .harness import STATS_PATH, configure, describe, finding, findings, line_of, migration, review, source

pytestmark = pytest.mark.slow


def test_a_stored_generated_field_rewrites_the_table(shop):
    text = migration(shop, "0002_total", source('''
        migrations.AddField("order", "total", models.GeneratedField(
            expression=models.F("quantity") * 2, output_field=models.IntegerField(), db_persist=True)),
        migrations.AddField("order", "half", models.GeneratedField(
            expression=models.F("quantity") / 2, output_field=models.IntegerField(), db_persist=False)),
    '''))
    result = review(shop)
    found = finding(result, "0002_total", "MS117")
    assert found.line == line_of(text, '"total"') and found.severity is Severity.ERROR and found.blocks
    assert found.message.startswith('ALTER TABLE "shop_order" ADD COLUMN "total" integer GENERATED ALWAYS')
    assert found.message.endswith("rewrites shop_order (seen in the sandbox): every row is copied while "
                                  "ACCESS EXCLUSIVE blocks reads and writes.")


def test_any_statement_that_rewrites_fires_once_type_changes_stay_ms105(shop):
    configure(shop, f"tables:\n  stats: {STATS_PATH}\n", stats={"shop_product": 30})
    text = migration(shop, "0002_cluster", source(
        'migrations.RunSQL("CLUSTER shop_order USING shop_order_pkey", migrations.RunSQL.noop),'))
    migration(shop, "0003_raw", source(
        'migrations.RunSQL("ALTER TABLE shop_product ALTER COLUMN price TYPE bigint", migrations.RunSQL.noop),',
        after="0002_cluster"))
    result = review(shop)
    found = finding(result, "0002_cluster", "MS117")
    assert found.line == line_of(text, "RunSQL") and found.severity is Severity.ERROR
    assert found.message.startswith("CLUSTER shop_order USING shop_order_pkey rewrites shop_order")
    # a type change is MS105's alone (here a warning: the table is known to be small)
    assert not findings(result, "0003_raw", "MS117"), describe(result, "0003_raw")
    assert finding(result, "0003_raw", "MS105").severity is Severity.WARNING


def test_no_rewrite_no_finding(shop):
    migration(shop, "0002_plain", source('''
        migrations.AddField("order", "note", models.TextField(null=True)),
        migrations.RunSQL("TRUNCATE shop_order", migrations.RunSQL.noop),
    '''))
    result = review(shop)
    assert not findings(result, "0002_plain", "MS117"), describe(result, "0002_plain")
