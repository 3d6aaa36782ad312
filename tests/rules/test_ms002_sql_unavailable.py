"""MS002 sql-unavailable: the sandbox produced no SQL; the database side was not checked.

Never a silent pass: such a migration blocks (exit 1, a failing check run) unless every operation
is one the file settles for certain, or the team lowered MS002.
"""
from __future__ import annotations

import pytest

from migration_safe.app.publication import conclusion
from migration_safe.cli import main
from migration_safe.engine.model import Severity
from migration_safe.report import markdown
from migration_safe_rules import catalogue

from .harness import configure, finding, findings, line_of, migration, review, source, verdict

pytestmark = pytest.mark.slow

UNLOADABLE = "django:\n  settings: missing.settings\n"


def test_an_unchecked_migration_blocks_with_the_reason(shop, capsys):
    configure(shop, UNLOADABLE)
    text = migration(shop, "0002_age", source('''
        migrations.AddField("customer", "age", models.PositiveIntegerField(null=True)),
        migrations.AlterField("product", "title", models.CharField(max_length=200)),
    '''))
    result = review(shop, expect_sql=False)
    found = finding(result, "0002_age", "MS002")
    assert found.severity is Severity.ERROR and found.blocks and result.blocking
    assert found.line == line_of(text, "class Migration") and found.operation_index is None
    assert found.message.startswith("The database side of this migration was not checked: its SQL could "
                                    "not be produced (the project could not be loaded (settings): "
                                    "ModuleNotFoundError: No module named 'missing')")
    assert found.message.endswith("It blocks until the review gets its SQL.")
    assert verdict(result, "0002_age").sql_status == "unavailable"
    assert conclusion(result) == "failure"  # never `neutral`, which GitHub counts as passing
    # the summary comment and the check run's summary: blocking, with what was not checked and why
    summary = markdown.summary(result, rules=catalogue())
    blocking = summary.split("### Blocking")[1].split("###")[0]
    assert "MS002" in blocking and "The database side of this migration was not checked" in blocking
    assert "No module named 'missing'" in blocking
    assert "the database side (locks, rewrites, scans) was not checked" in summary
    # the CLI exits 1 and its text says plainly what was not checked, and why
    assert main(["check", "--repo", str(shop.root), "--base", shop.base, "--no-sql"]) == 1
    out = capsys.readouterr().out
    assert "SQL unavailable: the project could not be loaded (settings)" in out
    assert "the database side (locks, rewrites, scans) was not checked" in out
    assert "BLOCKING" in out


def test_operations_the_file_settles_do_not_block(shop):
    configure(shop, UNLOADABLE)
    migration(shop, "0002_settled", source('''
        migrations.CreateModel("Coupon", fields=[("id", models.BigAutoField(primary_key=True))]),
        migrations.AddIndex("coupon", models.Index(fields=["id"], name="coupon_id_idx")),
        migrations.AddField("customer", "nickname", models.CharField(max_length=30, null=True)),
        migrations.AlterModelOptions("product", {"ordering": ["title"]}),
    '''))
    # each of these needs the database side: a CHECK, an index, a possibly volatile db_default, a
    # field class of the project's own
    migration(shop, "0003_check", source(
        'migrations.AddField("customer", "age", models.PositiveIntegerField(null=True)),',
        after="0002_settled"))
    migration(shop, "0004_index", source(
        'migrations.AddField("customer", "code", models.CharField(max_length=9, null=True, db_index=True)),',
        after="0003_check"))
    migration(shop, "0005_db_default", source(
        'migrations.AddField("customer", "ref", models.UUIDField(null=True, db_default=None)),',
        after="0004_index"))
    migration(shop, "0006_own_class", source(
        'migrations.AddField("customer", "sku", shop.fields.CharField(max_length=9, null=True)),',
        after="0005_db_default"))
    result = review(shop, expect_sql=False)
    settled = finding(result, "0002_settled", "MS002")
    assert settled.severity is Severity.WARNING and not settled.blocks
    assert "Every operation is one the file settles for certain" in settled.message
    assert not verdict(result, "0002_settled").blocking
    for name in ("0003_check", "0004_index", "0005_db_default", "0006_own_class"):
        assert finding(result, name, "MS002").severity is Severity.ERROR, name


def test_a_team_may_lower_it(shop):
    configure(shop, UNLOADABLE + "rules:\n  severity: {MS002: warning}\n")
    migration(shop, "0002_title", source(
        'migrations.AlterField("product", "title", models.CharField(max_length=200)),'))
    result = review(shop, expect_sql=False)
    assert finding(result, "0002_title", "MS002").severity is Severity.WARNING
    assert not result.blocking and conclusion(result) == "success"


def test_a_project_that_loads_does_not_fire(shop):
    migration(shop, "0002_nickname", source(
        'migrations.AddField("customer", "nickname", models.CharField(max_length=30, null=True)),'))
    result = review(shop)
    assert not findings(result, "0002_nickname", "MS002")
