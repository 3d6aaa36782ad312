"""`migration-safe fix` builds the indexes of fields and unique constraints concurrently.

Each case runs the real `fix` command, then checks what it wrote three ways: the review finds
nothing blocking; Django loads it and `makemigrations --check` sees no change (the state is the
models'); and on a real PostgreSQL, the rewritten migrations leave exactly the schema (index and
constraint names and definitions) that the original ones leave, and migrate back to 0001.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from migration_safe.cli import main
from migration_safe.engine.fix.concurrent_index import uses_pg_migration_tools
from migration_safe.engine.sandbox.database import server_from_environment
from migration_safe.engine.review.pipeline import ReviewRequest, run_review

from ..review.test_sqlmigrate_equivalence import TEST_SETTINGS

pytestmark = pytest.mark.slow

REQUIREMENT = "django-pg-migration-tools==0.1.26\n"

FIELDS = '''
from django.db import migrations, models
import django.db.models.deletion


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="order",
            name="coupon",
            field=models.ForeignKey(
                null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to="shop.product",
            ),
        ),
        migrations.AddField(
            model_name="product",
            name="code",
            field=models.CharField(max_length=10, null=True, db_index=True),  # looked up by code
        ),
        migrations.AlterField("product", "title", models.CharField(max_length=100, db_index=True)),
        migrations.AddField("product", "ean", models.CharField(max_length=13, null=True, unique=True)),
        migrations.AddIndex(
            model_name="product",
            index=models.Index(fields=["price"], name="product_price_idx"),  # for the price list
        ),
    ]
'''

FIELD_MODELS = {
    "    title = models.CharField(max_length=100)\n":
        "    title = models.CharField(max_length=100, db_index=True)\n"
        "    code = models.CharField(max_length=10, null=True, db_index=True)\n"
        "    ean = models.CharField(max_length=13, null=True, unique=True)\n\n"
        "    class Meta:\n        indexes = [models.Index(fields=['price'], name='product_price_idx')]\n",
    "    quantity = models.IntegerField()\n":
        "    quantity = models.IntegerField()\n"
        "    coupon = models.ForeignKey(Product, null=True, on_delete=models.SET_NULL, related_name='+')\n",
}

CONSTRAINTS = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        migrations.AlterField("customer", "email", models.EmailField(max_length=254, unique=True)),
        migrations.AddConstraint(
            model_name="order",
            constraint=models.UniqueConstraint(fields=["customer", "product"], name="order_line_uniq"),
        ),
        migrations.AddConstraint(
            model_name="product",
            constraint=models.UniqueConstraint(
                fields=["title"], condition=models.Q(price__gt=0), name="product_title_on_sale",
            ),
        ),
    ]
'''

CONSTRAINT_MODELS = {
    "    email = models.EmailField()\n": "    email = models.EmailField(unique=True)\n",
    "    legacy_code = models.CharField(max_length=20, null=True)\n":
        "    legacy_code = models.CharField(max_length=20, null=True)\n\n    class Meta:\n        constraints = [\n"
        "            models.UniqueConstraint(fields=['title'], condition=models.Q(price__gt=0), "
        "name='product_title_on_sale'),\n        ]\n",
    "    quantity = models.IntegerField()\n":
        "    quantity = models.IntegerField()\n\n    class Meta:\n        constraints = [\n"
        "            models.UniqueConstraint(fields=['customer', 'product'], name='order_line_uniq'),\n"
        "        ]\n",
}

# After the rewrite, undoing it the plain Django way must find what the rewrite built.
REMOVE_CONSTRAINTS = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "{after}")]

    operations = [
        migrations.RemoveConstraint("order", "order_line_uniq"),
        migrations.RemoveConstraint("product", "product_title_on_sale"),
        migrations.AlterField("customer", "email", models.EmailField(max_length=254)),
    ]
'''


@pytest.mark.parametrize("safer", [False, True], ids=["django", "safer"])
def test_indexed_and_unique_fields_build_their_indexes_concurrently(shop, capsys, safer):
    edit_models(shop, FIELD_MODELS)
    if safer:
        shop.write("requirements.txt", REQUIREMENT)
    shop.migration("shop", "0002_fields", FIELDS)
    original = committed_copy(shop)

    diff = fix(shop, capsys)
    assert "+++ b/shop/migrations/0003_fields_concurrent_indexes_pre_deploy.py" in diff
    assert "+++ b/shop/migrations/0004_fields_concurrent_indexes_post_deploy.py" in diff
    migration = read(shop, "0002_fields")
    # what the fields do besides indexing stays where it was, the index left out of the database side
    assert migration.count("migrations.SeparateDatabaseAndState(") == 3
    assert "models.CharField(max_length=10, null=True, db_index=False),  # looked up by code" in migration
    assert "models.CharField(max_length=10, null=True, db_index=True),  # looked up by code" in migration
    assert "models.CharField(max_length=13, null=True, unique=False)" in migration
    assert 'related_name="+", to="shop.product", db_index=False,' in migration
    assert "AddIndex" not in migration and '"title"' not in migration  # they move whole
    pre, post = read(shop, "0003_fields_concurrent_indexes_pre_deploy"), read(
        shop, "0004_fields_concurrent_indexes_post_deploy")
    for part in (pre, post):
        assert "atomic = False" in part
    assert "[('shop', '0002_fields')]" in pre and "[('shop', '0003_fields_concurrent_indexes_pre_deploy')]" in post
    assert "# for the price list" in pre
    if safer:
        assert "from django_pg_migration_tools.operations import SaferAddIndexConcurrently\n" in pre
        assert "SaferAddIndexConcurrently(\n            model_name=\"product\"," in pre
        assert ("SaferAddIndexConcurrently('product', models.Index(fields=['code'], "
                "name='shop_product_code_fdb8d8a6_like', opclasses=['varchar_pattern_ops']))") in pre
        assert "SaferAddIndexConcurrently('order', models.Index(fields=['coupon'], " \
               "name='shop_order_coupon_id_b64bb177'))" in pre
        assert ("SaferAddUniqueConstraint('product', models.UniqueConstraint(fields=['ean'], "
                "name='shop_product_ean_key'))") in post
        assert "RunSQL" not in pre + post
    else:
        assert "from django.contrib.postgres.operations import AddIndexConcurrently\n" in pre
        # Django's own index names, from the SQL the sandbox produced
        assert "'CREATE INDEX CONCURRENTLY \"shop_product_code_fdb8d8a6\" ON \"shop_product\" (\"code\")'" in pre
        assert "'CREATE INDEX CONCURRENTLY \"shop_order_coupon_id_b64bb177\" ON \"shop_order\" " \
               "(\"coupon_id\")'" in pre
        # PostgreSQL named the inline UNIQUE of ADD COLUMN: the sandbox's lock trace told
        assert ("'ALTER TABLE \"shop_product\" ADD CONSTRAINT \"shop_product_ean_key\" UNIQUE USING INDEX "
                "\"shop_product_ean_key\"'") in post
    assert "migrations.AlterField(\"product\", \"title\", models.CharField(max_length=100, db_index=True))" in pre

    phases = review_is_clean(shop)
    assert phases == {"0002_fields": "pre-deploy", "0003_fields_concurrent_indexes_pre_deploy": "pre-deploy",
                      "0004_fields_concurrent_indexes_post_deploy": "post-deploy"}  # a unique index is a rule
    django_agrees(shop, original)


@pytest.mark.parametrize("safer", [False, True], ids=["django", "safer"])
def test_unique_constraints_are_attached_using_an_index_built_concurrently(shop, capsys, safer):
    edit_models(shop, CONSTRAINT_MODELS)
    shop.write(".github/migration-safe.yml", "tables:\n  large: [shop_order]\n")
    if safer:
        shop.write("pyproject.toml", '[project]\nname = "shop"\ndependencies = ["django-pg-migration-tools"]\n')
    shop.migration("shop", "0002_unique", CONSTRAINTS)
    original = committed_copy(shop)

    fix(shop, capsys)
    # every operation moves: the file itself builds what is post-deploy; the large table's build is
    # deferred, in a part of its own
    migration, part = read(shop, "0002_unique"), read(shop, "0003_unique_concurrent_indexes")
    assert "atomic = False" in migration and "atomic = False" in part
    assert "[('shop', '0002_unique')]" in part
    assert "email" in migration and "product_title_on_sale" in migration and "order_line_uniq" not in migration
    assert "order_line_uniq" in part
    if safer:
        assert "SaferAddUniqueConstraint(\n            model_name=\"order\"," in part
        assert "SaferAddUniqueConstraint(\n            model_name=\"product\"," in migration
        assert "SaferAddUniqueConstraint('customer', models.UniqueConstraint(fields=['email'], " \
               "name='shop_customer_email_d3fdf104_uniq'))" in migration
        assert "RunSQL" not in migration + part
    else:
        assert ("'CREATE UNIQUE INDEX CONCURRENTLY \"order_line_uniq\" ON \"shop_order\" "
                "(\"customer_id\", \"product_id\")'") in part
        assert ("'ALTER TABLE \"shop_order\" ADD CONSTRAINT \"order_line_uniq\" UNIQUE USING INDEX "
                "\"order_line_uniq\"'") in part
        # a partial unique constraint is only a unique index
        assert "'CREATE UNIQUE INDEX CONCURRENTLY \"product_title_on_sale\" ON \"shop_product\" (\"title\") " \
               "WHERE \"price\" > 0'" in migration
        assert "USING INDEX \"product_title_on_sale\"" not in migration
        assert "\"shop_customer_email_d3fdf104_uniq\" UNIQUE USING INDEX" in migration
    # the state: the operations as written (a Safer* constraint operation is its own state)
    assert migration.count("state_operations=[") == (1 if safer else 2)
    assert part.count("state_operations=[") == (0 if safer else 1)

    phases = review_is_clean(shop)
    assert phases == {"0002_unique": "post-deploy", "0003_unique_concurrent_indexes": "deferred"}
    later = REMOVE_CONSTRAINTS.replace("{after}", "0003_unique_concurrent_indexes")
    django_agrees(shop, original, later=("0004_remove_uniques", later))


def test_an_index_whose_model_changes_later_is_left_alone(shop, capsys):
    edit_models(shop, {"    title = models.CharField(max_length=100)\n":
                       "    label = models.CharField(max_length=100, db_index=True)\n"})
    shop.migration("shop", "0002_title_index", '''
        from django.db import migrations, models


        class Migration(migrations.Migration):
            dependencies = [("shop", "0001_initial")]
            operations = [migrations.AlterField("product", "title", models.CharField(max_length=100, db_index=True))]
    ''')
    shop.migration("shop", "0003_rename", '''
        from django.db import migrations


        class Migration(migrations.Migration):
            dependencies = [("shop", "0002_title_index")]
            operations = [migrations.RenameField("product", "title", "label")]
    ''')
    shop.commit()
    # built after the rename, the index would name a column that is gone
    assert main(["fix", "--repo", str(shop.root), "--base", shop.base]) == 1
    assert "left for you: shop/migrations/0002_title_index.py:6 MS101" in capsys.readouterr().err
    assert not (shop.root / "shop/migrations/0003_title_index_concurrent_indexes.py").exists()


def test_projects_that_use_django_pg_migration_tools_are_recognised(shop):
    assert not uses_pg_migration_tools(shop.root)
    shop.write(".gitignore", ".venv/\n").write(".venv/lib/site.py", "import django_pg_migration_tools\n")
    assert not uses_pg_migration_tools(shop.root)  # an ignored virtualenv is not the project
    shop.write("README.md", "We like django-pg-migration-tools.\n")
    assert not uses_pg_migration_tools(shop.root)  # prose is no dependency
    shop.write("requirements/base-requirements.txt", "Django-PG-Migration-Tools>=0.1\n")
    assert uses_pg_migration_tools(shop.root)  # untracked counts: `fix` runs on the working tree
    (shop.root / "requirements/base-requirements.txt").unlink()
    shop.write("mysite/settings.py", (shop.root / "mysite/settings.py").read_text().replace(
        '"shop"]', '"shop", "django_pg_migration_tools"]'))
    assert uses_pg_migration_tools(shop.root)


# ------------------------------------------------------------------ helpers


def edit_models(shop, replacements: dict[str, str]) -> None:
    models = (shop.root / "shop" / "models.py").read_text()
    for old, new in replacements.items():
        assert old in models
        models = models.replace(old, new)
    shop.write("shop/models.py", models)


def committed_copy(shop):
    """Commit the change; a copy of the project as it was, for the schema it leaves."""
    shop.commit()
    copy = shop.root.parent / "original"
    shutil.copytree(shop.root, copy, ignore=shutil.ignore_patterns(".git", "__pycache__"))
    return copy


def fix(shop, capsys) -> str:
    """`fix --diff` (nothing written), then `fix`: nothing is left for people."""
    before = migration_files(shop)
    assert main(["fix", "--repo", str(shop.root), "--base", shop.base, "--diff"]) == 0
    diff = capsys.readouterr().out
    assert migration_files(shop) == before
    assert main(["fix", "--repo", str(shop.root), "--base", shop.base]) == 0, capsys.readouterr().err
    return diff


def migration_files(shop) -> dict[str, str]:
    return {path.stem: path.read_text() for path in sorted((shop.root / "shop/migrations").glob("000[2-9]*.py"))}


def read(shop, name: str) -> str:
    return (shop.root / "shop" / "migrations" / f"{name}.py").read_text()


def review_is_clean(shop) -> dict[str, str]:
    """The review of the rewritten tree: SQL for every migration, nothing blocking; the phases."""
    after = run_review(ReviewRequest(repo=shop.root, base=shop.base, head="WORKTREE"))
    assert all(m.sql_status == "ok" for m in after.migrations), [m.sql_error for m in after.migrations]
    assert not after.blocking, [(m.file.name, m.needs_split, [f"{f.rule} {f.message}" for f in m.findings
                                                              if f.blocks]) for m in after.migrations]
    return {m.file.name: m.phase.value for m in after.migrations}


def django_agrees(shop, original, later: tuple[str, str] | None = None) -> None:
    """Django loads the rewrite with the models' state; on PostgreSQL it leaves the original's schema,
    `sqlmigrate` prints every new migration, named or numbered, and everything migrates back (then,
    `later` applies)."""
    check = manage(shop.root, None, "makemigrations", "--check", "--dry-run")
    assert check.returncode == 0, check.stdout + check.stderr
    server = server_from_environment()
    with server.throwaway() as expected, server.throwaway() as target:
        assert manage(original, expected, "migrate", "shop").returncode == 0
        done = manage(shop.root, target, "migrate", "shop")
        assert done.returncode == 0, done.stdout + done.stderr
        assert schema(server, target) == schema(server, expected)
        for name, text in migration_files(shop).items():
            # Django takes either as a prefix, and refuses one that more than one migration starts with.
            for given in (name, name.split("_")[0]):
                printed = manage(shop.root, target, "sqlmigrate", "shop", given)
                assert printed.returncode == 0, printed.stderr
                assert ("CONCURRENTLY" in printed.stdout) == ("atomic = False" in text), printed.stdout
        back = manage(shop.root, target, "migrate", "shop", "0001")
        assert back.returncode == 0, back.stdout + back.stderr
        assert manage(original, expected, "migrate", "shop", "0001").returncode == 0
        assert schema(server, target) == schema(server, expected)
        if later:
            shop.migration("shop", *later)
            done = manage(shop.root, target, "migrate", "shop")
            assert done.returncode == 0, done.stdout + done.stderr


def manage(root, target, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if target is not None:
        (root / "mysite" / "ms_test_settings.py").write_text(TEST_SETTINGS)
        env.update({"T_NAME": target.name, "T_USER": target.user, "T_PASSWORD": target.password,
                    "T_HOST": target.host, "T_PORT": str(target.port or ""),
                    "DJANGO_SETTINGS_MODULE": "mysite.ms_test_settings"})
    return subprocess.run([sys.executable, "manage.py", *args], cwd=root, env=env, capture_output=True,
                          text=True)


def schema(server, target) -> list[tuple[str, ...]]:
    """The shop tables' indexes and constraints, by name and definition."""
    with server.connect(target.name) as conn:
        indexes = conn.execute("SELECT tablename, indexname, indexdef FROM pg_indexes "
                               "WHERE tablename LIKE 'shop\\_%' ORDER BY 1, 2").fetchall()
        constraints = conn.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid::regclass::text LIKE 'shop\\_%' ORDER BY 1, 2").fetchall()
    return [tuple(row) for row in indexes + constraints]
