"""The pre-state kept across reviews of a repository: a warm review says exactly what a cold one says,
and anything that could change the state (other migration files, the code they use) turns it cold."""
from __future__ import annotations

import json
import shutil

import pytest
from projects import SKU_FIELD

from migration_safe.cli import main
from migration_safe.engine.sandbox import statecache
from migration_safe.engine.sandbox.database import cache_dir

pytestmark = pytest.mark.slow

BASE_MODELS = '''
from django.db import models

from shop.fields import SkuField


class Product(models.Model):
    title = models.CharField(max_length=200)
    code = SkuField()
'''

INITIAL = '''
from django.db import migrations, models

import shop.fields


class Migration(migrations.Migration):
    initial = True
    dependencies = [("auth", "__first__")]
    operations = [
        migrations.CreateModel("Product", [
            ("id", models.BigAutoField(primary_key=True, serialize=False)),
            ("title", models.CharField(max_length=200)),
            ("code", shop.fields.SkuField(max_length=32)),
        ]),
    ]
'''

ADD_INDEX = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [
        migrations.AddField("product", "sku", models.CharField(max_length=20, null=True)),
        migrations.AddIndex("product", models.Index(fields=["code"], name="product_code_ix")),
    ]
'''


@pytest.fixture
def project(shop):
    shop.write("shop/fields.py", SKU_FIELD).write("shop/models.py", BASE_MODELS)
    shop.migration("shop", "0001_initial", INITIAL)
    shop.base = shop.commit("base with a custom field")
    shop.migration("shop", "0002_sku", ADD_INDEX)
    shop.commit("a new migration")
    return shop


def check(project, *extra):
    out = project.root.parent / "report.json"
    code = main(["check", "--repo", str(project.root), "--base", project.base, "--format", "json",
                 "--output", str(out), *extra])
    return code, json.loads(out.read_text())


def without_cache(report):
    return {k: v for k, v in report.items() if k != "state_cache"}


def test_warm_review_equals_cold(project):
    code, cold = check(project)
    assert cold["state_cache"].endswith("; stored"), cold["state_cache"]
    warm_code, warm = check(project)
    assert warm["state_cache"].startswith("hit "), warm["state_cache"]
    assert (warm_code, without_cache(warm)) == (code, without_cache(cold))
    locks = warm["migrations"][0]["operations"][1]["locks"]
    assert {"relation": "shop_product", "mode": "ShareLock"} in locks  # really traced, not remembered


def test_changed_code_of_a_cached_class_turns_cold(project):
    check(project)
    # The state holds SkuField instances: new code for the class may mean another column.
    project.write("shop/fields.py", SKU_FIELD + "\n\nDEFAULT_CODE = ''\n")
    project.commit("field code changed")
    _code, report = check(project)
    assert report["state_cache"].startswith("miss: the code of shop.fields changed"), report["state_cache"]


def test_changed_older_migration_turns_cold(project):
    check(project)
    project.migration("shop", "0001_initial", INITIAL.replace("max_length=200", "max_length=300"))
    project.commit("an older migration edited")
    _code, report = check(project)
    assert report["state_cache"].startswith("miss: no cached state"), report["state_cache"]
    assert report["state_cache"].endswith("; stored")
    modified = next(m for m in report["migrations"] if m["name"] == "0001_initial")
    assert modified["sql_status"] == "ok"
    assert check(project)[1]["state_cache"].startswith("hit ")


def test_an_entry_from_before_the_main_branch_moved_is_caught_up(project):
    check(project)  # caches the state of 0001 alone
    project.base = project.commit("0002 merged: the base moves")
    project.migration("shop", "0003_note", '''
        from django.db import migrations, models


        class Migration(migrations.Migration):
            dependencies = [("shop", "0002_sku")]
            operations = [migrations.AlterField("product", "sku", models.CharField(max_length=20))]
    ''')
    project.commit("the next pull request")
    code, report = check(project)
    assert report["state_cache"].startswith("hit ") and "(+1 newer migrations); stored" in report["state_cache"]
    cold_code, cold = check(project, "--no-state-cache")
    assert (code, without_cache(report)) == (cold_code, without_cache(cold))
    sql = report["migrations"][0]["operations"][0]["sql"]
    assert 'ALTER TABLE "shop_product" ALTER COLUMN "sku" SET NOT NULL;' in sql  # 0002's column is there
    again = check(project)[1]["state_cache"]
    assert again.startswith("hit ") and "newer" not in again, again  # the caught-up state was kept


def test_a_new_migration_that_runs_before_an_older_one_is_never_cached(project):
    project.migration("shop", "0003_first", '''
        from django.db import migrations


        class Migration(migrations.Migration):
            run_before = [("shop", "0001_initial")]
            operations = []
    ''')
    project.commit("runs before 0001")
    for _ in range(2):
        _code, report = check(project)
        assert "other migrations depend on the new ones" in report["state_cache"], report["state_cache"]
    assert sorted(m["name"] for m in report["migrations"]) == ["0002_sku", "0003_first"]


def test_a_corrupt_entry_is_a_miss_not_a_wrong_review(project):
    _code, cold = check(project)
    for pickle_file in (cache_dir() / "states").glob("*/*/state.pickle"):
        pickle_file.write_bytes(b"not a pickle")
    _code, report = check(project)
    assert report["state_cache"].startswith("miss: the cached state does not load"), report["state_cache"]
    assert without_cache(report) == without_cache(cold)


def test_no_state_cache_flag(project):
    check(project)
    _code, report = check(project, "--no-state-cache")
    assert report["state_cache"] == "off"


def test_namespaces_do_not_share(tmp_path):
    python = shutil.which("python3") or "python3"
    fork = statecache.namespace_folder("github:someone/fork", python)
    upstream = statecache.namespace_folder("github:owner/repo", python)
    other_python = statecache.namespace_folder("github:owner/repo", "/opt/other/bin/python")
    assert len({fork, upstream, other_python}) == 3
    entry = upstream / "0123456789abcdef"
    entry.mkdir(parents=True)
    for name in statecache.FILES:
        (entry / name).write_text("{}")
    assert statecache.offer(fork, "/inside") == []
    offered = statecache.offer(upstream, "/inside")
    assert [(bind.source, bind.dest) for bind in offered] == [(str(entry), f"/inside/{entry.name}")]


SET_ON_DELETE = '''
from django.db import migrations, models

import shop.defaults


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [
        migrations.CreateModel("Review", [
            ("id", models.BigAutoField(primary_key=True, serialize=False)),
            ("product", models.ForeignKey(on_delete=models.SET(shop.defaults.retired_product), to="shop.product")),
            ("stars", models.IntegerField(default=shop.defaults.make_default())),
        ]),
    ]
'''

DEFAULTS = '''
def retired_product():
    return 1


def make_default():
    {body}
'''


def base_with(shop, body):
    shop.write("shop/fields.py", SKU_FIELD).write("shop/models.py", BASE_MODELS)
    shop.write("shop/defaults.py", DEFAULTS.format(body=body))
    shop.migration("shop", "0001_initial", INITIAL).migration("shop", "0002_review", SET_ON_DELETE)
    shop.base = shop.commit("a model whose key is SET(...) on delete")
    shop.migration("shop", "0003_sku", ADD_INDEX.replace("0001_initial", "0002_review"))
    shop.commit("a new migration")
    return shop


def test_set_on_delete_is_stored_as_the_call_that_makes_it(shop):
    project = base_with(shop, "return 5")
    code, cold = check(project)
    assert cold["state_cache"].endswith("; stored"), cold["state_cache"]
    warm_code, warm = check(project)
    assert warm["state_cache"].startswith("hit "), warm["state_cache"]
    assert (warm_code, without_cache(warm)) == (code, without_cache(cold))


def test_a_value_that_cannot_be_stored_is_named(shop):
    local = "def five():\n        return 5\n    return five"  # a local function: no way to make it again
    project = base_with(shop, local)
    for _ in range(2):
        _code, report = check(project)
        assert report["state_cache"].endswith(
            "not stored: PicklingError: cannot pickle the local function make_default.<locals>.five "
            "(from shop.defaults)"), report["state_cache"]
        assert report["migrations"][0]["sql_status"] == "ok"


def test_an_entry_whose_header_nests_past_the_parser_is_not_kept(tmp_path):
    """The child writes the entry: a header JSON cannot read is dropped, not a crash after the review."""
    produced, folder = tmp_path / "produced", tmp_path / "states"
    produced.mkdir()
    (produced / "header.json").write_bytes(b"[" * 100_000 + b"]" * 100_000)
    (produced / "state.pickle").write_bytes(b"")
    statecache.keep(folder, produced, {})
    assert not folder.exists() or list(folder.iterdir()) == []
    (produced / "header.json").write_text("{}")
    statecache.keep(folder, produced, {})
    assert len(list(folder.iterdir())) == 1  # the same files with a readable header are kept
