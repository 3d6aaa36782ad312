"""The pre-state of real projects' histories: what failed on healthchecks, NetBox and django-taggit,
on small projects of the same shape. Each review must come back with SQL."""
from __future__ import annotations

import json
import subprocess

import pytest
from projects import GitProject

from migration_safe.cli import main

pytestmark = pytest.mark.slow

SETTINGS = '''
import os

SECRET_KEY = "test-only"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "django.contrib.postgres", "api"]
DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "hc"}}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
'''

MANAGE = '''
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hc.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
'''

# healthchecks' api.Check: an index that names its foreign key by column.
CHECKS = '''
from django.db import migrations, models
import django.db.models.deletion
{imports}


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel("Project", [
            ("id", models.BigAutoField(primary_key=True, serialize=False)),
            ("name", models.CharField(max_length=100)),
        ]),
        migrations.CreateModel("Check", [
            ("id", models.BigAutoField(primary_key=True, serialize=False)),
            ("project", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to="api.project")),
            ("status", models.CharField(max_length=6)),{extra}
        ], options={{"indexes": [models.Index(fields=["project_id", "status"], name="api_check_project_status")]}}),
        migrations.CreateModel("Flip", [
            ("id", models.BigAutoField(primary_key=True, serialize=False)),
            ("owner", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to="api.check")),
            ("processed", models.DateTimeField(null=True)),
        ]),
    ]
'''

FLIP_REASON = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("api", "0001_initial")]
    operations = [migrations.AddField("flip", "reason", models.CharField(max_length=8, null=True))]
'''

# A field that copies its model's foreign key type (a denormalised key), as project code may.
KEY_COPY_FIELD = '''
from django.db import models


class KeyCopyField(models.Field):
    def __init__(self, *args, source="", **kwargs):
        self.source = source
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        return name, path, args, {**kwargs, "source": self.source}

    def db_type(self, connection):
        return self.model._meta.get_field(self.source).target_field.db_type(connection)
'''


def make_project(tmp_path, initial: str) -> GitProject:
    root = tmp_path / "project"
    project = GitProject(root)
    project.write("manage.py", MANAGE).write("hc/__init__.py", "").write("hc/settings.py", SETTINGS)
    project.write("api/__init__.py", "").write("api/models.py", "").write("api/migrations/__init__.py", "")
    project.migration("api", "0001_initial", initial)
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    project.base = project.commit("base")
    return project


def review(project, *extra):
    out = project.root.parent / "report.json"
    code = main(["check", "--repo", str(project.root), "--base", project.base, "--format", "json",
                 "--output", str(out), "--no-state-cache", *extra])
    return code, json.loads(out.read_text())


def only_migration(report):
    [migration] = report["migrations"]
    assert (migration["sql_status"], migration["sql_error"]) == ("ok", None), report["notes"]
    return migration


def test_a_model_reached_through_a_foreign_key_keeps_the_index_on_its_key_column(tmp_path):
    project = make_project(tmp_path, CHECKS.format(imports="", extra=""))
    project.migration("api", "0002_flip_reason", FLIP_REASON).commit("flip reason")
    code, report = review(project)
    migration = only_migration(report)
    assert migration["operations"][0]["sql"] == ['ALTER TABLE "api_flip" ADD COLUMN "reason" varchar(8) NULL;']
    assert code == 0 and not report["notes"], report["notes"]


def test_a_minimal_state_django_cannot_build_falls_back_to_the_full_one(tmp_path):
    initial = CHECKS.format(imports="import api.fields",
                            extra='\n            ("project_copy", api.fields.KeyCopyField(source="project")),')
    project = make_project(tmp_path, initial)
    project.write("api/fields.py", KEY_COPY_FIELD)
    project.base = project.commit("the field's module")
    project.migration("api", "0002_flip_reason", FLIP_REASON).commit("flip reason")
    _code, report = review(project)
    migration = only_migration(report)
    assert migration["operations"][0]["sql"] == ['ALTER TABLE "api_flip" ADD COLUMN "reason" varchar(8) NULL;']
    [note] = report["notes"]
    assert note.startswith("pre-state: the minimal pre-state failed (AttributeError") and \
        note.endswith("reviewed on the full one"), note


# NetBox's natural_sort collation, an extension, and what older RunSQL made besides tables.
OBJECTS = '''
from django.contrib.postgres.operations import CreateCollation, TrigramExtension
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        CreateCollation("natural_sort", provider="icu", locale="und-u-kn-true"),
        TrigramExtension(),
        migrations.RunSQL("""
            CREATE TYPE api_mood AS ENUM ('up', 'down');
            -- lower-case every name on the way in
            CREATE FUNCTION api_lower_name() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN NEW.name := lower(NEW.name); RETURN NEW; END $$;
            INSERT INTO api_seen VALUES (1);
        """),
        migrations.CreateModel("Device", [
            ("id", models.BigAutoField(primary_key=True, serialize=False)),
            ("name", models.CharField(max_length=64, db_collation="natural_sort")),
            ("serial", models.CharField(max_length=64)),
        ]),
        migrations.RunSQL([
            "CREATE TRIGGER api_device_lower BEFORE INSERT ON api_device FOR EACH ROW EXECUTE FUNCTION api_lower_name()",
            "CREATE VIEW api_device_names AS SELECT name FROM api_device",
            "CREATE INDEX api_device_serial_trgm ON api_device USING gin (serial gin_trgm_ops)",
        ]),
    ]
'''

USES_OBJECTS = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("api", "0001_initial")]
    operations = [
        migrations.AddField("device", "label", models.CharField(max_length=64, null=True, db_collation="natural_sort")),
        migrations.RunSQL("ALTER TABLE api_device ADD COLUMN mood api_mood NULL"),
        migrations.RunSQL("DROP INDEX api_device_serial_trgm"),
        migrations.RunSQL("CREATE OR REPLACE VIEW api_device_names AS SELECT name, label FROM api_device"),
        migrations.RunSQL("DROP TRIGGER api_device_lower ON api_device"),
    ]
'''


def test_collations_extensions_and_older_runsql_objects_are_in_the_pre_state(tmp_path):
    project = make_project(tmp_path, OBJECTS)
    project.migration("api", "0002_uses_objects", USES_OBJECTS).commit("uses what 0001 made")
    _code, report = review(project)
    migration = only_migration(report)
    assert [op["sql"] for op in migration["operations"]][2:] == [
        ["DROP INDEX api_device_serial_trgm;"],
        ["CREATE OR REPLACE VIEW api_device_names AS SELECT name, label FROM api_device;"],
        ["DROP TRIGGER api_device_lower ON api_device;"]]
    # the index was there to drop (and the type, trigger and view were there to use)
    assert {"relation": "api_device_serial_trgm", "mode": "AccessExclusiveLock"} in migration["operations"][2]["locks"]
    # the INSERT is data, not an object: never replayed; a server without ICU says so
    assert all(n.startswith('pre-state: collation "natural_sort": ICU is not supported') for n in report["notes"]), \
        report["notes"]


# django-taggit: an index added in one migration, another renamed to the same name in a later one.
TAGGIT = '''
from django.db import migrations, models
import django.db.models.deletion


class Migration(migrations.Migration):
    initial = True
    dependencies = [("contenttypes", "0002_remove_content_type_name")]
    operations = [
        migrations.CreateModel("TaggedItem", [
            ("id", models.AutoField(primary_key=True, serialize=False)),
            ("object_id", models.IntegerField(db_index=True)),
            ("content_type", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                               to="contenttypes.contenttype")),
        ]),
    ]
'''

TAGGIT_ADD = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("api", "0001_initial")]
    operations = [
        migrations.AddIndex("taggeditem", models.Index(fields=("content_type", "object_id"),
                                                       name="api_tagg_content_8fc721_idx")),
    ]
'''

TAGGIT_RENAME = '''
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("api", "0002_add")]
    operations = [
        migrations.RenameIndex("taggeditem", new_name="api_tagg_content_8fc721_idx",
                               old_fields=("content_type", "object_id")),
    ]
'''


def test_an_index_renamed_to_the_name_of_another_is_built_as_migrate_builds_it(tmp_path):
    project = make_project(tmp_path, TAGGIT)
    project.migration("api", "0002_add", TAGGIT_ADD).migration("api", "0003_rename", TAGGIT_RENAME)
    project.base = project.commit("taggit's history")
    project.migration("api", "0004_note", '''
        from django.db import migrations, models


        class Migration(migrations.Migration):
            dependencies = [("api", "0003_rename")]
            operations = [migrations.AddField("taggeditem", "note", models.TextField(null=True))]
    ''').commit("a new column")
    _code, report = review(project)
    migration = only_migration(report)
    assert migration["operations"][0]["sql"] == ['ALTER TABLE "api_taggeditem" ADD COLUMN "note" text NULL;']
    assert any(n.startswith("pre-state: the pre-state could not be built from the model state")
               and "replaying the migrations" in n for n in report["notes"]), report["notes"]
