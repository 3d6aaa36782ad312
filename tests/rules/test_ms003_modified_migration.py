"""MS003 modified-migration: an existing migration was edited."""
from __future__ import annotations

import pytest

from migration_safe.engine.model import Severity

from .harness import finding, findings, line_of, migration, review, source, verdict

pytestmark = pytest.mark.slow


def test_editing_an_applied_migration_is_a_warning(shop):
    initial = shop.root / "shop" / "migrations" / "0001_initial.py"
    text = initial.read_text().replace('models.CharField(max_length=100)', 'models.CharField(max_length=200)')
    initial.write_text(text)
    result = review(shop)
    edited = verdict(result, "0001_initial")
    assert edited.file.status == "modified"
    found = finding(result, "0001_initial", "MS003")
    assert found.severity is Severity.WARNING and not found.blocks
    assert found.line == line_of(text, "class Migration")
    assert found.message == ("shop.0001_initial already exists on the base branch and was edited. "
                             "Databases that applied it will not run it again: the edit does not reach "
                             "production.")
    assert "new migration" in found.safe_alternative
    # only the file-level rules run on it: its CreateModels are not reviewed as new work
    assert [f.rule for f in findings(result, "0001_initial")] == ["MS003"]


def test_a_new_migration_does_not_fire(shop):
    migration(shop, "0002_title", source(
        'migrations.AlterField("product", "title", models.CharField(max_length=200)),'))
    result = review(shop)
    assert not findings(result, "0002_title", "MS003")
