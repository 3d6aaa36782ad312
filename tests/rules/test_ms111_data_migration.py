"""MS111 data-migration: RunPython and DML in RunSQL are deferred work."""
from __future__ import annotations

import pytest

from migration_safe.engine.model import Severity

from .harness import (
    BACKFILL_NOOP, configure, describe, findings, line_of, migration, operation_phases, phase, review,
    source,
)

pytestmark = pytest.mark.slow


def test_run_python_and_dml_are_deferred_notices(shop):
    text = migration(shop, "0002_backfill", source('''
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.RunSQL(
            "UPDATE shop_customer SET email = lower(email) WHERE email <> lower(email)",
            migrations.RunSQL.noop,
        ),
    ''', imports=BACKFILL_NOOP))
    result = review(shop)
    found = {f.line: f for f in findings(result, "0002_backfill", "MS111")}
    assert set(found) == {line_of(text, "migrations.RunPython("), line_of(text, "migrations.RunSQL(")}
    assert all(f.severity is Severity.NOTICE for f in found.values())
    assert found[line_of(text, "migrations.RunSQL(")].message == (
        "Raw SQL operation changes data: it runs as a deferred step, in batches, outside the deploy "
        "pipeline.")
    assert phase(result, "0002_backfill") == "deferred"
    assert operation_phases(result, "0002_backfill") == ["deferred", "deferred"]


def test_an_unbounded_update_of_a_large_table_is_a_warning(shop):
    configure(shop, "tables:\n  large: [shop_order]\n")
    text = migration(shop, "0002_backfill", source('''
        migrations.RunSQL("UPDATE shop_order SET quantity = 1", migrations.RunSQL.noop),
        migrations.RunSQL("UPDATE shop_order SET quantity = 1 WHERE id < 1000", migrations.RunSQL.noop),
    '''))
    result = review(shop)
    severities = {f.line: f.severity for f in findings(result, "0002_backfill", "MS111")}
    assert severities == {line_of(text, "quantity = 1\""): Severity.WARNING,
                          line_of(text, "WHERE id < 1000"): Severity.NOTICE}
    unbounded = findings(result, "0002_backfill", "MS111")[0]
    assert unbounded.message.endswith("it updates a large table in a single statement.")


def test_schema_only_sql_is_not_a_data_migration(shop):
    migration(shop, "0002_ddl", source(
        'migrations.RunSQL("CREATE TABLE shop_audit (id bigint)", "DROP TABLE shop_audit"),'))
    result = review(shop)
    assert not findings(result, "0002_ddl", "MS111"), describe(result, "0002_ddl")
    assert phase(result, "0002_ddl") == "pre-deploy"
