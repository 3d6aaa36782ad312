"""MS002 sql-unavailable: the sandbox produced no SQL; the review is static only."""
from __future__ import annotations

import pytest

from migration_safe.engine.model import Severity

from .harness import configure, finding, findings, line_of, migration, review, source, verdict

pytestmark = pytest.mark.slow


def test_a_project_that_does_not_load_gets_a_warning_with_the_reason(shop):
    configure(shop, "django:\n  settings: missing.settings\n")
    text = migration(shop, "0002_nickname", source(
        'migrations.AddField("customer", "nickname", models.CharField(max_length=30, null=True)),'))
    result = review(shop, expect_sql=False)
    found = finding(result, "0002_nickname", "MS002")
    assert found.severity is Severity.WARNING and not found.blocks
    assert found.line == line_of(text, "class Migration") and found.operation_index is None
    assert found.message.startswith("The SQL of this migration could not be produced (the project could "
                                    "not be loaded (settings): ModuleNotFoundError: No module named "
                                    "'missing')")
    assert "Phases and findings come from reading the file only" in found.message
    assert verdict(result, "0002_nickname").sql_status == "unavailable"
    # the phase still comes from the file
    assert verdict(result, "0002_nickname").phase.value == "pre-deploy"


def test_a_project_that_loads_does_not_fire(shop):
    migration(shop, "0002_nickname", source(
        'migrations.AddField("customer", "nickname", models.CharField(max_length=30, null=True)),'))
    result = review(shop)
    assert not findings(result, "0002_nickname", "MS002")
