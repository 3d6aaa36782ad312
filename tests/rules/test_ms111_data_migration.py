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


SEQUENCE_RESET = ("SELECT setval(pg_get_serial_sequence('shop_product', 'id'), coalesce(max(id), 1), "
                  "max(id) IS NOT null) FROM shop_product")


@pytest.mark.parametrize("sql_known", [True, False])
def test_a_sequence_reset_changes_no_rows(shop, sql_known):
    if not sql_known:
        configure(shop, "django:\n  settings: missing.settings\n")
    migration(shop, "0002_reset", source(f'''
        migrations.RunSQL("{SEQUENCE_RESET}", migrations.RunSQL.noop),
        migrations.RunSQL(["{SEQUENCE_RESET}", "SELECT setval('shop_order_id_seq', 100)"]),
    '''))
    result = review(shop, expect_sql=sql_known)
    assert not findings(result, "0002_reset", "MS111"), describe(result, "0002_reset")
    assert operation_phases(result, "0002_reset") == ["pre-deploy", "pre-deploy"]
