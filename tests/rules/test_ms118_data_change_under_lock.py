"""MS118 data-change-under-lock: DML in the same transaction as DDL that locked its table."""
from __future__ import annotations

import pytest

from migration_safe.engine.model import Severity

from .harness import (
    STATS_PATH, configure, describe, finding, findings, line_of, migration, operation_phases, review, source,
)

pytestmark = pytest.mark.slow


def test_djangos_own_backfill_when_a_column_becomes_not_null(shop):
    text = migration(shop, "0002_code", source(
        'migrations.AlterField("product", "legacy_code", models.CharField(max_length=20, default="x")),'))
    result = review(shop)
    found = finding(result, "0002_code", "MS118")
    assert found.line == line_of(text, "AlterField") and found.severity is Severity.ERROR and found.blocks
    assert found.message == (
        'UPDATE "shop_product" SET "legacy_code" = \'x\' WHERE "legacy_code" IS NULL runs in the same '
        'transaction as ALTER TABLE "shop_product" ALTER COLUMN "legacy_code" SET DEFAULT \'x\', which holds '
        "ACCESS EXCLUSIVE on shop_product until the migration commits: every read and write of shop_product "
        "waits while one statement changes every matching row (no batches).")
    # not a deferred backfill in batches: the AlterField is the schema change it is
    assert not findings(result, "0002_code", "MS111"), describe(result, "0002_code")
    assert operation_phases(result, "0002_code") == ["post-deploy"]


def test_raw_sql_that_alters_then_updates(shop):
    configure(shop, f"tables:\n  stats: {STATS_PATH}\n", stats={"shop_customer": 12})
    text = migration(shop, "0002_raw", source('''
        migrations.RunSQL(
            "ALTER TABLE shop_order ADD COLUMN note text; UPDATE shop_order SET note = 'none';",
            migrations.RunSQL.noop,
        ),
        migrations.AddField("customer", "nick", models.TextField(null=True)),
        migrations.RunSQL("UPDATE shop_customer SET nick = email", migrations.RunSQL.noop),
        migrations.RunSQL("UPDATE shop_product SET price = 0 WHERE price < 0", migrations.RunSQL.noop),
    '''))
    result = review(shop)
    found = {f.line: f for f in findings(result, "0002_raw", "MS118")}
    assert set(found) == {line_of(text, "migrations.RunSQL(", 1), line_of(text, "nick = email")}, \
        describe(result, "0002_raw")
    assert found[line_of(text, "migrations.RunSQL(", 1)].severity is Severity.ERROR
    assert found[line_of(text, "nick = email")].message.startswith(
        'UPDATE shop_customer SET nick = email runs in the same transaction as ALTER TABLE "shop_customer" '
        'ADD COLUMN "nick" text NULL, which holds ACCESS EXCLUSIVE on shop_customer')
    assert found[line_of(text, "nick = email")].severity is Severity.WARNING  # known to be small
    # a table no statement of the transaction locked: a plain data migration
    assert [f.line for f in findings(result, "0002_raw", "MS111")] == [line_of(text, "price = 0")]


def test_a_non_atomic_migration_runs_each_statement_alone(shop):
    migration(shop, "0002_raw", source('''
        migrations.RunSQL(
            "ALTER TABLE shop_order ADD COLUMN note text; UPDATE shop_order SET note = 'none';",
            migrations.RunSQL.noop,
        ),
    ''', attributes="atomic = False"))
    result = review(shop)
    assert not findings(result, "0002_raw", "MS118"), describe(result, "0002_raw")
    assert findings(result, "0002_raw", "MS111")
