"""One run of `migration-safe fix` settles every blocking case that has a mechanical fix.

Each case is a small real project whose models.py says what a developer writes (`default=`, not
`db_default=`): one `fix` run, then a commit, gives a review with nothing blocking; `makemigrations
--check` is clean (fix kept models.py in step); `manage.py migrate` applies the result on a real
PostgreSQL; `sqlmigrate` prints every migration by its full name and by its number.
"""
from __future__ import annotations

import pytest

from migration_safe.cli import main
from migration_safe.engine.review.pipeline import ReviewRequest, run_review

from .test_fix import CHECK
from .test_fix_concurrent import manage, migration_files
from .test_fix_recipes import LEGACY_REQUIRED, REMOVE_PRICE, edit_models

pytestmark = pytest.mark.slow

SKU = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="product",
            name="sku",
            field=models.CharField(default="", max_length=32),  # shown on invoices
            preserve_default=False,
        ),
    ]
'''

REQUIRED = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        # every product has a code from now on
        migrations.AlterField(
            model_name="product",
            name="legacy_code",
            field=models.CharField(max_length=20, default="none"),
        ),
    ]
'''

UNIQUE_TOGETHER = '''
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [migrations.AlterUniqueTogether("product", {("title", "price")})]  # one price per title
'''

CONCURRENT_AMONG_OTHERS = '''
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        migrations.AddField("customer", "nickname", models.CharField(max_length=50, null=True)),
        AddIndexConcurrently("order", models.Index(fields=["quantity"], name="order_quantity_idx")),
    ]
'''

CONCURRENT_SQL = '''
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        migrations.RunSQL(
            'CREATE INDEX CONCURRENTLY "customer_email_idx" ON "shop_customer" ("email")',
            'DROP INDEX CONCURRENTLY "customer_email_idx"',
        ),
    ]
'''

INLINE_CHECK = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        migrations.AddField("order", "rank", models.PositiveIntegerField(db_default=0)),  # never negative
    ]
'''

SCHEMA_AND_DATA = '''
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        migrations.RunSQL(
            ['ALTER TABLE "shop_customer" ADD COLUMN "score" integer NULL', 'UPDATE "shop_customer" SET "score" = 0'],
            'ALTER TABLE "shop_customer" DROP COLUMN "score"',
        ),
    ]
'''

RENAME = '''
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [migrations.RenameField("product", "title", "name")]  # the catalogue says "name"
'''

LEGACY = "    legacy_code = models.CharField(max_length=20, null=True)\n"
PRICE = "    price = models.IntegerField()\n"
CASES = {
    # (models.py as the developer writes it, migration name, migration)
    "db_default": ({PRICE: PRICE + "    sku = models.CharField(default='', max_length=32)\n"},
                   "0002_sku", SKU),
    "not_null_with_default": ({LEGACY: "    legacy_code = models.CharField(max_length=20, default='none')\n"},
                              "0002_required", REQUIRED),
    "unique_together": ({PRICE: PRICE + "\n    class Meta:\n        unique_together = [('title', 'price')]\n\n"},
                        "0002_unique", UNIQUE_TOGETHER),
    "concurrent_among_others": (
        {"    email = models.EmailField()\n": "    email = models.EmailField()\n"
                                              "    nickname = models.CharField(max_length=50, null=True)\n",
         "    quantity = models.IntegerField()\n": "    quantity = models.IntegerField()\n\n    class Meta:\n"
         "        indexes = [models.Index(fields=['quantity'], name='order_quantity_idx')]\n"},
        "0002_nickname", CONCURRENT_AMONG_OTHERS),
    "concurrent_sql": ({}, "0002_email_index", CONCURRENT_SQL),
    "inline_check": ({"    quantity = models.IntegerField()\n": "    quantity = models.IntegerField()\n"
                      "    rank = models.PositiveIntegerField(db_default=0)\n"}, "0002_rank", INLINE_CHECK),
    "schema_and_data": ({}, "0002_score", SCHEMA_AND_DATA),
    # the recipes of earlier fixes, through PostgreSQL and sqlmigrate too
    "set_not_null": ({LEGACY: "    legacy_code = models.CharField(max_length=20)\n"},
                     "0002_legacy_required", LEGACY_REQUIRED),
    "check_constraint": ({"    quantity = models.IntegerField()\n": "    quantity = models.IntegerField()\n\n"
                          "    class Meta:\n        constraints = [models.CheckConstraint("
                          "condition=models.Q(quantity__gte=0), name='order_quantity_positive')]\n"},
                         "0002_positive", CHECK),
    "not_null_removal": ({"    price = models.IntegerField()\n" + LEGACY: ""}, "0002_remove_price", REMOVE_PRICE),
    "rename": ({"    title = models.CharField(max_length=100)\n": "    name = models.CharField(max_length=100)\n"},
               "0002_rename", RENAME),
}


def fix_commit_and_check(shop, capsys) -> tuple[dict, str]:
    """fix, commit, review: nothing blocking; makemigrations clean; migrate and sqlmigrate on PostgreSQL."""
    assert run_review(ReviewRequest(repo=shop.root, base=shop.base)).blocking
    code = main(["fix", "--repo", str(shop.root), "--base", shop.base])
    messages = capsys.readouterr().err
    assert code == 0, messages
    shop.commit("fixed")
    after = run_review(ReviewRequest(repo=shop.root, base=shop.base))
    assert all(m.sql_status == "ok" for m in after.migrations), [m.sql_error for m in after.migrations]
    assert not after.blocking, [(m.file.name, m.needs_split, [f"{f.rule} {f.message}" for f in m.findings
                                                              if f.blocks]) for m in after.migrations]
    for verdict in after.migrations:  # each declares the phase the review gives it
        assert f'deploy_phase = "{verdict.phase.value}"' in verdict.file.source, verdict.file.name
    check = manage(shop.root, None, "makemigrations", "--check", "--dry-run")
    assert check.returncode == 0, check.stdout + check.stderr
    from migration_safe.engine.sandbox.database import server_from_environment

    with server_from_environment().throwaway() as target:
        done = manage(shop.root, target, "migrate", "shop")
        assert done.returncode == 0, done.stdout + done.stderr
        names = sorted(p.stem for p in (shop.root / "shop" / "migrations").glob("[0-9][0-9][0-9][0-9]_*.py"))
        assert len(names) == len(after.migrations) + 1  # every one reviewed, and 0001
        for name in names[1:]:
            for given in (name, name.split("_")[0]):  # the full name, and the bare number
                printed = manage(shop.root, target, "sqlmigrate", "shop", given)
                assert printed.returncode == 0, (given, printed.stderr)
        back = manage(shop.root, target, "migrate", "shop", "0001")
        assert back.returncode == 0, back.stdout + back.stderr
    return {m.file.name: m for m in after.migrations}, messages


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_fixable_case_is_fixed_in_one_run(shop, capsys, case):
    models, name, body = CASES[case]
    edit_models(shop, models)
    shop.migration("shop", name, body)
    shop.commit()
    verdicts, messages = fix_commit_and_check(shop, capsys)
    files = migration_files(shop)
    if case == "db_default":
        assert 'sku = models.CharField(db_default="", max_length=32)' in models_text(shop)
        assert "# shown on invoices" in files["0002_sku"]
    elif case == "not_null_with_default":
        assert 'legacy_code = models.CharField(max_length=20, db_default="none")' in models_text(shop)
        assert {n: v.phase.value for n, v in verdicts.items()} == {
            "0002_required": "pre-deploy", "0003_required_not_null_check": "post-deploy",
            "0004_required_fill_nulls": "deferred", "0005_required_validate_not_null": "deferred",
            "0006_required_set_not_null": "deferred"}
        assert "# every product has a code from now on" in files["0002_required"]
        assert "atomic = False" in files["0004_required_fill_nulls"]
    elif case == "unique_together":
        part = files["0002_unique"]  # all it does is the build: it becomes the concurrent migration
        assert "CREATE UNIQUE INDEX CONCURRENTLY" in part and "UNIQUE USING INDEX" in part
        assert "AlterUniqueTogether" in part and "atomic = False" in part
    elif case == "concurrent_among_others":
        assert "AddIndexConcurrently(" not in files["0002_nickname"]
        assert "atomic = False" in files["0003_nickname_concurrent_indexes"]
    elif case == "concurrent_sql":
        assert "atomic = False" in files["0002_email_index"]
    elif case == "inline_check":
        assert 'ADD CONSTRAINT "shop_order_rank_check" CHECK (rank >= 0) NOT VALID' in files["0002_rank"]
        assert "# never negative" in files["0002_rank"]
        assert 'VALIDATE CONSTRAINT \\"shop_order_rank_check\\"' in files["0003_rank_validate_checks"] or \
            'VALIDATE CONSTRAINT "shop_order_rank_check"' in files["0003_rank_validate_checks"]
    elif case == "schema_and_data":
        assert "UPDATE" not in files["0002_score"] and "UPDATE" in files["0003_score_data"]
        assert verdicts["0003_score_data"].phase.value == "deferred"
    elif case == "rename":
        assert "name = models.CharField(max_length=100, db_column='title')" in models_text(shop)


def models_text(shop) -> str:
    return (shop.root / "shop" / "models.py").read_text()


def test_every_fixable_case_at_once(shop, capsys):
    """The cases in one change, one after the other in the app's chain."""
    previous = "0001_initial"
    # in phase order, as a change should be: the parts fix adds must not break it
    for number, case in enumerate(["db_default", "not_null_with_default", "schema_and_data",
                                   "concurrent_among_others", "concurrent_sql", "inline_check", "unique_together"],
                                  start=2):
        models, name, body = CASES[case]
        edit_models(shop, models)
        name = f"{number:04d}{name[4:]}"
        shop.migration("shop", name, body.replace('("shop", "0001_initial")', f'("shop", "{previous}")'))
        previous = name
    shop.commit()
    verdicts, messages = fix_commit_and_check(shop, capsys)
    assert "left for you" not in messages
    assert len(verdicts) > 5


def test_what_is_left_says_why(shop, capsys):
    """A build whose model a later migration alters stays: the output says so, and why."""
    edit_models(shop, {LEGACY: "    legacy_code = models.CharField(max_length=30, null=True)\n\n"
                                    "    class Meta:\n        unique_together = [('title', 'price')]\n"})
    shop.migration("shop", "0002_unique", UNIQUE_TOGETHER)
    shop.migration("shop", "0003_longer", '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0002_unique")]

    operations = [migrations.AlterField("product", "legacy_code", models.CharField(max_length=30, null=True))]
''')
    shop.commit()
    assert main(["fix", "--repo", str(shop.root), "--base", shop.base, "--diff"]) == 1
    err = capsys.readouterr().err
    assert ("left for you: shop/migrations/0002_unique.py:7 MS101: a later migration of this change alters "
            "the model product: the build runs at the end of the chain, after it") in err, err


def test_a_model_class_that_cannot_be_found_is_named_with_the_line_to_write(shop, capsys):
    models, name, body = CASES["db_default"]
    edit_models(shop, models)
    shop.migration("shop", name, body)
    shop.commit()
    (shop.root / "shop" / "models.py").rename(shop.root / "shop" / "product_models.py")
    (shop.root / "shop" / "models.py").write_text("from shop.product_models import *  # noqa\n")
    assert main(["fix", "--repo", str(shop.root), "--base", shop.base, "--diff"]) == 1
    err = capsys.readouterr().err
    assert "left for you: shop/models.py: product.sku must say `db_default=\"\"` in place of `default=…`" in err


def test_models_read_refuses_links_and_paths_outside_the_project(tmp_path):
    """models.py is the pull request's: a symbolic link (to anything) or a path out is not read."""
    from migration_safe.engine.fix.models_rewrite import ModelChange, WorkTree, apply_model_changes

    outside = tmp_path / "secret.py"
    outside.write_text("class Product:\n    sku = models.CharField(default='')\n")
    (tmp_path / "project" / "shop").mkdir(parents=True)
    (tmp_path / "project" / "shop" / "models.py").symlink_to(outside)
    tree = WorkTree(tmp_path / "project")
    assert tree.read("shop/models.py") is None and tree.read("../secret.py") is None
    edit = apply_model_changes([ModelChange("shop", "Product", "sku", "db_default", "''", "default")], tree)
    assert not edit.files and "left" not in edit.manual[0] and "Product.sku must say" in edit.manual[0]
    assert outside.read_text().count("default=''") == 1


def test_a_snapshot_of_models_stops_at_its_size_limit(tmp_path, monkeypatch):
    """A pull request naming many apps cannot make the App read without end."""
    from migration_safe.engine.fix import models_rewrite

    for app in ("a", "b", "c"):
        (tmp_path / app).mkdir()
        (tmp_path / app / "models.py").write_text("x" * 400)
    monkeypatch.setattr(models_rewrite, "MAX_SNAPSHOT", 1000)
    snapshot = models_rewrite.Snapshot.of(models_rewrite.WorkTree(tmp_path), {"a", "b", "c", "../etc"})
    assert sorted(snapshot.files) == ["a/models.py", "b/models.py"]
