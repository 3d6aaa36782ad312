"""When the project cannot be loaded, the static review still reads what a real history writes:
operations added on PostgreSQL's path, and the app label the app declares."""
from __future__ import annotations

import json

from migration_safe.cli import main
from migration_safe.engine.review.pipeline import app_label

APPS = '''
from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "shop"
    label = "store"
'''

VENDOR_ONLY = '''
from django.db import connection, migrations, models


class Migration(migrations.Migration):
    dependencies = [("store", "0001_initial")]
    operations = [migrations.AddField("product", "sku", models.CharField(max_length=20, null=True))]
    if connection.vendor == "postgresql":
        operations += [migrations.RunSQL("ALTER TABLE store_product ALTER COLUMN sku SET NOT NULL")]
'''


def test_static_review_reads_vendor_blocks_and_names_the_app_by_its_label(shop):
    shop.write("shop/apps.py", APPS).write(".github/migration-safe.yml", "django: {settings: missing.settings}\n")
    shop.base = shop.commit("an app label of its own; settings that do not import")
    shop.migration("shop", "0002_sku", VENDOR_ONLY).commit("sku")
    out = shop.root.parent / "report.json"
    main(["check", "--repo", str(shop.root), "--base", shop.base, "--format", "json", "--output", str(out),
          "--no-state-cache"])
    [migration] = json.loads(out.read_text())["migrations"]
    assert migration["sql_status"] == "unavailable"
    assert (migration["app_label"], migration["name"]) == ("store", "0002_sku")
    assert [(op["type"], op["line"]) for op in migration["operations"]] == [("AddField", 6), ("RunSQL", 8)]


def test_an_apps_py_that_links_out_of_the_checkout_is_not_read(tmp_path):
    outside = tmp_path / "outside.py"
    outside.write_text(APPS)
    tree = tmp_path / "tree"
    (tree / "shop" / "migrations").mkdir(parents=True)
    (tree / "shop" / "apps.py").symlink_to(outside)
    assert app_label(tree, "shop/migrations/0002_sku.py") == "shop"
    (tree / "shop" / "apps.py").unlink()
    (tree / "shop" / "apps.py").write_text(APPS)
    assert app_label(tree, "shop/migrations/0002_sku.py") == "store"
