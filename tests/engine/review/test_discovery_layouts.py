"""Apps in any layout: nested packages, custom MIGRATION_MODULES, a label that is not the folder's name."""
from __future__ import annotations

import pytest

from migration_safe.engine.review.pipeline import ReviewRequest, run_review

pytestmark = pytest.mark.slow

INITIAL = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel("Item", fields=[("id", models.BigAutoField(primary_key=True)),
                                               ("code", models.CharField(max_length=10))]),
    ]
'''

INDEX = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("{label}", "0001_initial")]
    operations = [
        migrations.AddIndex("item", models.Index(fields=["code"], name="{label}_code_idx")),
    ]
'''


def add_app(project, package: str, label: str, migrations_package: str):
    folder = package.replace(".", "/")
    project.write(f"{folder}/__init__.py", "")
    project.write(f"{folder}/apps.py", f'''
        from django.apps import AppConfig


        class Config(AppConfig):
            name = "{package}"
            label = "{label}"
            default = True
    ''')
    project.write(f"{folder}/models.py", '''
        from django.db import models


        class Item(models.Model):
            code = models.CharField(max_length=10)
    ''')
    mig_folder = migrations_package.replace(".", "/")
    project.write(f"{mig_folder}/__init__.py", "")
    project.write(f"{mig_folder}/0001_initial.py", INITIAL)


def test_nested_custom_module_and_relabelled_apps(shop):
    for parent in ("corp", "corp/catalog"):
        shop.write(f"{parent}/__init__.py", "")
    add_app(shop, "corp.catalog.inventory", "stock", "corp.catalog.inventory.schema_history")
    add_app(shop, "billing", "invoices", "billing.migrations")
    settings = (shop.root / "mysite" / "settings.py").read_text()
    settings = settings.replace('"shop"]', '"shop", "corp.catalog.inventory", "billing"]')
    settings += 'MIGRATION_MODULES = {"stock": "corp.catalog.inventory.schema_history"}\n'
    shop.write("mysite/settings.py", settings)
    base = shop.commit("apps")
    shop.write("corp/catalog/inventory/schema_history/0002_code_idx.py", INDEX.format(label="stock"))
    shop.write("billing/migrations/0002_code_idx.py", INDEX.format(label="invoices"))
    shop.commit("indexes")

    review = run_review(ReviewRequest(repo=shop.root, base=base))
    found = {m.file.label: m for m in review.migrations}
    assert set(found) == {"stock.0002_code_idx", "invoices.0002_code_idx"}
    for label, verdict in found.items():
        assert verdict.sql_status == "ok"
        table = "stock_item" if label.startswith("stock") else "invoices_item"
        assert verdict.operations[0].sql == [f'CREATE INDEX "{label.split(".")[0]}_code_idx" ON "{table}" ("code");']
        assert [f.rule for f in verdict.findings if f.blocks] == ["MS101"]


RENAME = '''
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [
        migrations.RenameField(model_name="product", old_name="title", new_name="name"),
    ]
'''

# Names git quotes in its default output ("core.quotePath"): a Cyrillic letter (a homoglyph of
# "a"), a double quote, a tab, a newline. Django loads each of them as a migration.
HOSTILE_NAMES = {
    "cyrillic": "0002_\u0430dd_title",
    "quote": '0002_add"title',
    "tab": "0002_add\ttitle",
    "newline": "0002_add\ntitle",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_NAMES))
@pytest.mark.parametrize("worktree", [False, True], ids=["commit", "worktree"])
def test_migration_with_a_name_git_would_quote_is_reviewed(shop, kind, worktree):
    from migration_safe.cli import main as cli

    name = HOSTILE_NAMES[kind]
    shop.write(f"shop/migrations/{name}.py", RENAME)
    head = "WORKTREE" if worktree else shop.commit("rename")
    review = run_review(ReviewRequest(repo=shop.root, base=shop.base, head=head))
    [verdict] = review.migrations
    assert verdict.file.path == f"shop/migrations/{name}.py"
    assert verdict.sql_status == "ok", verdict.sql_error  # Django loaded it in the sandbox
    assert [f.rule for f in verdict.findings if f.blocks] == ["MS108"]
    if not worktree:  # and the CLI's verdict: blocking, exit 1
        assert cli(["check", "--repo", str(shop.root), "--base", shop.base, "--format", "json"]) == 1
