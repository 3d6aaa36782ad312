"""Several databases: with DATABASE_ROUTERS, each alias is reviewed as `migrate --database ALIAS`
runs there (only the operations its routers allow, on its own tables and its own table sizes)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from migration_safe.config import ConfigError, load_config
from migration_safe.engine.fix.plan import plan_fixes
from migration_safe.engine.model import AliasVerdict, Phase, Severity
from migration_safe.engine.sandbox.database import server_from_environment
from migration_safe.app.publication import annotation, comment_body
from migration_safe.report import actions, json_report, markdown, sarif, text
from migration_safe_rules import catalogue
from projects import DEMO, GitProject
from rules.harness import configure, migration, review, source, verdict

ROUTER = '''
class Router:
    """The events app lives in the analytics database; a RunSQL aims with hints={"database": …}."""

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if "database" in hints:
            return hints["database"] in (db, "every")
        return db == ("analytics" if app_label == "events" else "default")
'''
SETTINGS = '''
DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "shop"},
             "analytics": {"ENGINE": "django.db.backends.postgresql", "NAME": "analytics"}}
DATABASE_ROUTERS = ["mysite.routers.Router"]
INSTALLED_APPS = [*INSTALLED_APPS, "events"]
'''
EVENTS_INITIAL = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Event",
            fields=[
                ("id", models.BigAutoField(primary_key=True)),
                ("kind", models.CharField(max_length=20)),
            ],
        ),
    ]
'''
EVENTS_MODELS = '''
from django.db import models


class Event(models.Model):
    kind = models.CharField(max_length=20)
'''
# events_event in both files: the default database's numbers must never be quoted for analytics.
STATS = {"default": {"shop_product": {"rows": 300}, "events_event": {"rows": 5}},
         "analytics": {"events_event": {"rows": 2_000_000, "bytes": 3 << 30}}}
CONFIG = """
tables:
  stats:
    default: stats/default.json
    analytics: stats/analytics.json
"""
INDEX = 'migrations.AddIndex(model_name="event", index=models.Index(fields=["kind"], name="event_kind_idx")),'
# One migration of the shop app with an operation for each database.
BOTH = '''
migrations.AddField(model_name="product", name="sku", field=models.CharField(max_length=32, null=True)),
migrations.RunSQL("UPDATE events_event SET kind = 'click' WHERE kind = ''", hints={"database": "analytics"}),
'''

EVERYWHERE = 'migrations.RunSQL("CREATE TABLE audit_note (id integer)", hints={"database": "every"}),'

# Both aliases on one real database, as for the review: `sqlmigrate` reads it.
TEST_SETTINGS = """
import os
from .settings import *  # noqa: F401,F403

DATABASES = {alias: {**cfg, "NAME": os.environ["T_NAME"], "USER": os.environ["T_USER"],
                     "PASSWORD": os.environ["T_PASSWORD"], "HOST": os.environ["T_HOST"],
                     "PORT": os.environ["T_PORT"]} for alias, cfg in DATABASES.items()}
"""


def several(shop):
    """The shop project with a second database, `analytics`, that a router gives the events app."""
    settings = shop.root / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + SETTINGS)
    shop.write("mysite/routers.py", ROUTER).write("events/__init__.py", "")
    shop.write("events/models.py", EVENTS_MODELS).write("events/migrations/__init__.py", "")
    shop.migration("events", "0001_initial", EVENTS_INITIAL)
    for alias, sizes in STATS.items():
        shop.write(f"stats/{alias}.json", json.dumps(sizes))
    configure(shop, CONFIG)
    shop.base = shop.commit("base: two databases")
    return shop


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory):
    """One review of three migrations on the two-database project (the sandbox runs once)."""
    root = tmp_path_factory.mktemp("several") / "project"
    shutil.copytree(DEMO / "base", root, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    project = several(GitProject(root))
    migration(project, "0002_event_kind_idx", source(INDEX, app="events"), app="events")
    migration(project, "0002_both", source(BOTH))
    everywhere = source(EVERYWHERE, after="0002_event_kind_idx", app="events")
    migration(project, "0003_everywhere", everywhere, app="events")
    return project, review(project)


def test_an_operation_allowed_on_one_alias_is_reviewed_there_only(reviewed):
    _project, result = reviewed
    index = verdict(result, "0002_event_kind_idx")
    assert [a.alias for a in index.aliases] == ["analytics"]
    assert [(op.alias, op.type) for op in index.operations] == [("analytics", "AddIndex")]
    assert index.operations[0].sql == ['CREATE INDEX "event_kind_idx" ON "events_event" ("kind");']
    assert {lock.relation for lock in index.operations[0].locks} >= {"events_event"}
    both = verdict(result, "0002_both")
    assert [(op.alias, op.index, op.type) for op in both.operations] == [
        ("default", 0, "AddField"), ("analytics", 1, "RunSQL")]
    assert both.operations[0].sql == ['ALTER TABLE "shop_product" ADD COLUMN "sku" varchar(32) NULL;']
    everywhere = verdict(result, "0003_everywhere")
    assert [(op.alias, op.index) for op in everywhere.operations] == [("default", 0), ("analytics", 0)]
    assert [(a.alias, a.phase) for a in everywhere.aliases] == [
        ("default", Phase.PRE_DEPLOY), ("analytics", Phase.PRE_DEPLOY)]
    assert everywhere.phase is Phase.PRE_DEPLOY  # the aliases agree


def test_verdict_and_phase_per_alias(reviewed):
    _project, result = reviewed
    both = verdict(result, "0002_both")
    assert both.aliases == [AliasVerdict("default", Phase.PRE_DEPLOY, False, False),
                            AliasVerdict("analytics", Phase.DEFERRED, False, False)]
    # `migrate --database` applies the whole migration on each: one declared phase cannot serve both
    assert both.phase is None and both.needs_split and both.blocking
    document = json_report.document(result)
    entry = next(m for m in document["migrations"] if m["name"] == "0002_both")
    assert entry["aliases"] == {
        "default": {"phase": "pre-deploy", "needs_split": False, "blocking": False},
        "analytics": {"phase": "deferred", "needs_split": False, "blocking": False}}
    assert [(op["alias"], op["phase"]) for op in entry["operations"]] == [
        ("default", "pre-deploy"), ("analytics", "deferred")]
    index = next(m for m in document["migrations"] if m["name"] == "0002_event_kind_idx")
    assert index["blocking"] and index["aliases"]["analytics"]["blocking"]
    assert [(f["rule"], f["alias"]) for f in index["findings"] if f["rule"] == "MS101"] == [("MS101", "analytics")]


def test_the_comment_names_each_alias(reviewed):
    _project, result = reviewed
    comment = markdown.render(result)
    assert "| `shop.0002_both` | `default` | pre-deploy | no |" in comment
    assert "| `shop.0002_both` | `analytics` | deferred | no |" in comment
    assert "| `events.0002_event_kind_idx` | `analytics` | deferred | **yes** |" in comment
    assert "events/migrations/0002_event_kind_idx.py:8` on database `analytics`:" in comment
    assert "### `shop.0002_both` on `default` (pre-deploy)" in comment
    assert "### `shop.0002_both` on `analytics` (deferred)" in comment
    analytics_sql = comment.split("### `shop.0002_both` on `analytics` (deferred)")[1]
    assert "UPDATE events_event" in analytics_sql and "shop_product" not in analytics_sql
    report = text.render(result)
    assert "NEEDS SPLIT  databases: default pre-deploy, analytics deferred  BLOCKING" in report
    assert "`shop.0002_both` mixes deploy phases across its databases and must be split" in comment
    assert "0002_event_kind_idx.py:8  on analytics  error  MS101" in report


def test_annotations_sarif_and_review_comments_name_the_alias(reviewed):
    """What a reviewer reads beside the line, not only the summary comment, says which database."""
    _project, result = reviewed
    index = verdict(result, "0002_event_kind_idx")
    ms101 = next(f for f in index.findings if f.rule == "MS101")
    assert annotation(index, ms101, catalogue()).message.startswith("On database analytics: CREATE INDEX")
    assert comment_body(ms101, "x").startswith("**MS101** (error): On database analytics: CREATE INDEX")
    results = json.loads(sarif.render(result))["runs"][0]["results"]
    assert any(r["message"]["text"].startswith("On database analytics: CREATE INDEX") for r in results)
    assert "::error file=events/migrations/0002_event_kind_idx.py" in actions.render(result)
    assert "::On database analytics: CREATE INDEX" in actions.render(result)


def test_sizes_quoted_come_from_the_alias_the_operation_runs_on(reviewed):
    _project, result = reviewed
    found = next(f for f in verdict(result, "0002_event_kind_idx").findings if f.rule == "MS101")
    assert [(t.name, t.rows) for t in found.tables] == [("events_event", 2_000_000)]
    assert "events_event (2 million rows, 3 GB)" in found.message
    assert found.severity is Severity.ERROR  # the default database's 5 rows would make it a warning


def test_the_sql_of_each_alias_is_sqlmigrate_database_alias(reviewed):
    """What the review shows per alias is what `manage.py sqlmigrate --database ALIAS` prints."""
    project, result = reviewed
    (project.root / "mysite" / "ms_test_settings.py").write_text(TEST_SETTINGS)
    with server_from_environment().throwaway() as target:
        env = {**os.environ, "T_NAME": target.name, "T_USER": target.user, "T_PASSWORD": target.password,
               "T_HOST": target.host, "T_PORT": str(target.port or ""),
               "DJANGO_SETTINGS_MODULE": "mysite.ms_test_settings"}

        def sqlmigrate(alias, app, name):
            done = subprocess.run([sys.executable, "manage.py", "sqlmigrate", "--database", alias, app, name],
                                  cwd=project.root, env=env, capture_output=True, text=True, check=True)
            return [line for line in done.stdout.splitlines()
                    if line.strip() and not line.startswith(("--", "BEGIN", "COMMIT"))]

        for name, app in (("0002_both", "shop"), ("0002_event_kind_idx", "events"), ("0003_everywhere", "events")):
            for alias in ("default", "analytics"):
                ours = [sql.rstrip(";") for op in verdict(result, name).operations if op.alias == alias
                        for sql in op.sql]
                assert ours == [line.rstrip(";") for line in sqlmigrate(alias, app, name)], (name, alias)


def test_without_routers_only_default_is_reviewed_and_nothing_says_alias(shop):
    settings = shop.root / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + SETTINGS.replace("DATABASE_ROUTERS", "NO_ROUTERS"))
    shop.write("events/__init__.py", "").write("events/models.py", EVENTS_MODELS)
    shop.write("events/migrations/__init__.py", "").migration("events", "0001_initial", EVENTS_INITIAL)
    shop.base = shop.commit("base: two databases, no router")
    migration(shop, "0002_event_kind_idx", source(INDEX, app="events"), app="events")
    result = review(shop)
    assert not verdict(result, "0002_event_kind_idx").aliases
    assert '"alias' not in json_report.render(result)


def write_config(root: Path, yaml_text: str, files: dict[str, dict]) -> None:
    for path, sizes in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(json.dumps(sizes))
    (root / ".github").mkdir(exist_ok=True)
    (root / ".github" / "migration-safe.yml").write_text(yaml_text)


def test_tables_per_alias_and_the_plain_forms(tmp_path):
    write_config(tmp_path, "tables:\n  stats: s.json\n  large: [events_event]\n",
                 {"s.json": {"shop_order": 10}})
    config = load_config(tmp_path)
    assert config.for_alias("default").table_size("shop_order").rows == 10
    assert config.for_alias("analytics").table_size("shop_order") is None  # one database's export
    assert config.for_alias("analytics").is_large("events_event")  # a name listed is large anywhere
    write_config(tmp_path, "tables:\n  stats: {analytics: a.json}\n  large_rows: 50\n"
                 "  large: {default: [shop_order], analytics: 1000}\n", {"a.json": {"events_event": 999}})
    config = load_config(tmp_path)
    assert config.is_large("shop_order") and config.table_size("events_event") is None
    analytics = config.for_alias("analytics")
    assert not analytics.is_large("events_event") and not analytics.is_large("shop_order")
    assert analytics.table_size("events_event").rows == 999
    assert config.for_alias("other").large_rows == 50


@pytest.mark.parametrize(("tables", "message"), [
    ("stats: {analytics: }", "tables.stats.analytics: must be a path relative to the repository"),
    ("large: {analytics: {x: 1}}", "tables.large.analytics: must be a list of table names or a number"),
    ("large: {analytics: [1]}", "tables.large.analytics: must be a list of strings"),
])
def test_bad_per_alias_tables_name_the_key(tmp_path, tables, message):
    write_config(tmp_path, f"tables:\n  {tables}\n", {})
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_config(tmp_path)


def test_fix_rewrites_one_database_migrations_and_leaves_one_listed_per_alias_with_why(reviewed):
    """An operation listed once per alias would be rewritten twice, or the wrong one, by fixes that
    address operations by position: such a migration is left, saying why."""
    _project, result = reviewed
    plan = plan_fixes(result)
    index, everywhere = verdict(result, "0002_event_kind_idx"), verdict(result, "0003_everywhere")
    assert "AddIndexConcurrently" in plan.files[index.file.path]
    assert everywhere.file.path not in plan.files
    assert [line for line in plan.left if line.startswith(everywhere.file.path)] == [
        f"{everywhere.file.path}:{everywhere.file.class_line} runs on several databases (default, analytics): "
        "`fix` does not rewrite such migrations yet; follow each finding's safe alternative by hand"]


def test_fix_splits_a_migration_whose_databases_run_it_in_different_phases(reviewed):
    """Each part then runs in one phase on every database (on the other it does nothing)."""
    _project, result = reviewed
    plan = plan_fixes(result)
    assert "shop/migrations/0002_both.py: split into 0002_both (pre-deploy), 0003_both_deferred (deferred)" \
        in plan.done
    assert "AddField" in plan.files["shop/migrations/0002_both.py"]
    assert "RunSQL" not in plan.files["shop/migrations/0002_both.py"]
    assert "UPDATE events_event" in plan.files["shop/migrations/0003_both_deferred.py"]
