"""MS004 operation-failed: PostgreSQL or Django refused an operation in the sandbox."""
from __future__ import annotations

import pytest

from migration_safe.engine.model import Severity

from .harness import describe, finding, findings, line_of, migration, review, source

pytestmark = pytest.mark.slow


def test_sql_that_fails_on_postgresql_is_an_error(shop):
    text = migration(shop, "0002_audit", source('''
        migrations.RunSQL(
            "ALTER TABLE shop_audit ADD COLUMN note text",
            migrations.RunSQL.noop,
        ),
    '''))
    result = review(shop)
    found = finding(result, "0002_audit", "MS004")
    assert found.severity is Severity.ERROR and found.blocks
    assert found.line == line_of(text, "migrations.RunSQL(") and found.operation_index == 0
    assert found.message == ("Raw SQL operation failed in the sandbox database: relation \"shop_audit\" "
                             "does not exist")


def test_sql_that_runs_does_not_fire(shop):
    migration(shop, "0002_audit", source(
        'migrations.RunSQL("CREATE TABLE shop_audit (id bigint)", "DROP TABLE shop_audit"),'))
    migration(shop, "0003_audit_note", source(
        'migrations.RunSQL("ALTER TABLE shop_audit ADD COLUMN note text", migrations.RunSQL.noop),',
        after="0002_audit"))
    result = review(shop)
    for name in ("0002_audit", "0003_audit_note"):
        assert not findings(result, name, "MS004"), describe(result, name)
