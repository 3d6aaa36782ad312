"""MS001 unparsable-migration: a migration file that does not parse."""
from __future__ import annotations

import pytest

from migration_safe.engine.model import Severity

from .harness import describe, finding, findings, line_of, migration, review, source, verdict

pytestmark = pytest.mark.slow

BROKEN = source('''
    migrations.AddField("customer", "nickname" models.CharField(max_length=30, null=True)),
''')


def test_a_syntax_error_is_the_only_finding_and_blocks(shop):
    migration(shop, "0002_broken", BROKEN)
    migration(shop, "0003_sku", source(
        'migrations.AddField("product", "sku", models.CharField(max_length=32, null=True)),',
        after="0002_broken"))
    result = review(shop, expect_sql=False)
    found = finding(result, "0002_broken", "MS001")
    assert found.severity is Severity.ERROR and found.blocks
    assert found.line == line_of(BROKEN, '"nickname" models')  # the line Python names
    assert found.message.startswith("shop/migrations/0002_broken.py cannot be read: syntax error")
    assert "py_compile" in found.safe_alternative
    assert [f.rule for f in findings(result, "0002_broken")] == ["MS001"]
    assert verdict(result, "0002_broken").blocking
    # Django cannot load any migration of the project meanwhile: the others are reviewed from the
    # file, and say why
    later = verdict(result, "0003_sku")
    assert later.sql_status == "unavailable" and "0002_broken.py does not parse" in later.sql_error
    assert "MS001" not in {f.rule for f in later.findings}


def test_a_valid_file_does_not_fire(shop):
    migration(shop, "0002_nickname", source(
        'migrations.AddField("customer", "nickname", models.CharField(max_length=30, null=True)),'))
    result = review(shop)
    assert not findings(result, "0002_nickname", "MS001"), describe(result, "0002_nickname")

