"""`migration-safe fix` recipes: SET NOT NULL through a validated check (MS106), a NOT NULL column
removed in two phases (MS109), renames kept in Django's state (MS108).

Every generated migration goes through Django (the review runs its sqlmigrate path; makemigrations
finds nothing to add; the final model state is the original's) and through the review again,
which finds nothing blocking.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest
from projects import SKU_FIELD

from migration_safe.cli import main
from migration_safe.engine.fix.local import apply_suggestion
from migration_safe.engine.review.pipeline import ReviewRequest, run_review

pytestmark = pytest.mark.slow

# The project's final model state, as Django's migration loader builds it (no database needed).
SNAPSHOT = '''
import json, os
os.environ["DJANGO_SETTINGS_MODULE"] = "mysite.settings"
import django
django.setup()
from django.db.migrations.loader import MigrationLoader

def text(value):
    return f"{value.__module__}.{value.__qualname__}" if callable(value) and hasattr(value, "__qualname__") \\
        else repr(value)

state = MigrationLoader(None, ignore_no_migrations=True).project_state()
print(json.dumps({name: {
    "options": {key: text(value) for key, value in model.options.items()},
    "fields": {field: [field_object.deconstruct()[1], {k: text(v) for k, v in field_object.deconstruct()[3].items()}]
               for field, field_object in model.fields.items()},
} for (app, name), model in state.models.items() if app == "shop"}, sort_keys=True))
'''


def final_state(shop) -> dict:
    done = subprocess.run([sys.executable, "-c", SNAPSHOT], cwd=shop.root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def blocking(review) -> list:
    return [(m.file.label, m.needs_split, [f"{f.rule} {f.message}" for f in m.findings if f.blocks])
            for m in review.migrations if m.blocking]


def fixed_and_reviewed(shop, capsys):
    """Run `fix`, then review the working tree: Django ran every migration's SQL path cleanly."""
    assert main(["fix", "--repo", str(shop.root), "--base", shop.base]) == 0, capsys.readouterr().err
    messages = capsys.readouterr().err
    after = run_review(ReviewRequest(repo=shop.root, base=shop.base, head="WORKTREE"))
    assert not after.blocking, blocking(after)
    for verdict in after.migrations:
        assert verdict.sql_status == "ok" and not verdict.sql_error, (verdict.file.label, verdict.sql_error)
        assert not [op.error for op in verdict.operations if op.error]
    check = subprocess.run([sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
                           cwd=shop.root, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    return {m.file.name: m for m in after.migrations}, messages


def assert_suggestions_are_python(review, rules: set[str]) -> None:
    """Each suggestion, applied alone to its file, leaves valid Python."""
    seen = set()
    for verdict in review.migrations:
        for finding in verdict.findings:
            if finding.suggestion is not None:
                ast.parse(apply_suggestion(verdict.file.source, finding.line, finding.end_line,
                                           finding.suggestion))
                seen.add(finding.rule)
    assert rules <= seen, seen


def edit_models(shop, replacements: dict[str, str]) -> None:
    models = (shop.root / "shop" / "models.py").read_text()
    for old, new in replacements.items():
        assert old in models, old
        models = models.replace(old, new)
    shop.write("shop/models.py", models)


def read(shop, name: str) -> str:
    return (shop.root / "shop" / "migrations" / f"{name}.py").read_text()


# ---------------------------------------------------------------- MS106


LEGACY_REQUIRED = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        # every product has a code by now
        migrations.AlterField(
            model_name="product",
            name="legacy_code",
            field=models.CharField(max_length=20),  # required from now on
        ),  # the last of them
    ]
'''

COUNT_ORDERS = '''
from django.db import migrations


def count(apps, schema_editor):
    apps.get_model("shop", "Product").objects.filter(legacy_code="").count()


class Migration(migrations.Migration):
    dependencies = [("shop", "0002_legacy_required")]

    operations = [migrations.RunPython(count, migrations.RunPython.noop)]
'''


def test_set_not_null_becomes_check_then_validate_then_set_not_null(shop, capsys):
    edit_models(shop, {"legacy_code = models.CharField(max_length=20, null=True)":
                       "legacy_code = models.CharField(max_length=20)"})
    shop.migration("shop", "0002_legacy_required", LEGACY_REQUIRED)
    shop.migration("shop", "0003_count", COUNT_ORDERS)  # depends on the migration the fix rewrites
    shop.commit()
    before = run_review(ReviewRequest(repo=shop.root, base=shop.base))
    [finding] = [f for m in before.migrations for f in m.findings if f.rule == "MS106"]
    assert "NOT VALID" in finding.suggestion and "state_operations" in finding.suggestion
    assert_suggestions_are_python(before, {"MS106"})
    state = final_state(shop)

    verdicts, messages = fixed_and_reviewed(shop, capsys)
    assert final_state(shop) == state
    rewritten = read(shop, "0002_legacy_required")
    for comment in ("# every product has a code by now", "# required from now on", "# the last of them"):
        assert comment in rewritten
    assert 'CHECK ("legacy_code" IS NOT NULL) NOT VALID' in rewritten
    validate = read(shop, "0004_legacy_required_validate_not_null")
    assert "('shop', '0003_count')" in validate and "VALIDATE CONSTRAINT" in validate
    set_not_null = read(shop, "0005_legacy_required_set_not_null")
    assert "('shop', '0004_legacy_required_validate_not_null')" in set_not_null
    assert {name: v.phase.value for name, v in verdicts.items()} == {
        "0002_legacy_required": "post-deploy", "0003_count": "deferred",
        "0004_legacy_required_validate_not_null": "deferred", "0005_legacy_required_set_not_null": "deferred"}
    # SET NOT NULL runs, and the review accepts it only because the validated check proves it
    [statement, drop] = verdicts["0005_legacy_required_set_not_null"].operations[0].statements
    assert statement.actions[0].action == "set_not_null" and drop.actions[0].action == "drop_constraint"
    assert "validated in 0004_legacy_required_validate_not_null" in messages


# ---------------------------------------------------------------- MS109


REMOVE_PRICE = '''
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    deploy_phase = "post-deploy"

    operations = [
        migrations.RemoveField(model_name="product", name="legacy_code"),  # nullable: safe after the deploy
        # prices come from the pricing service now
        migrations.RemoveField(
            model_name="product",
            name="price",  # NOT NULL
        ),
    ]
'''

REMOVE_QUANTITY = '''
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("shop", "0002_remove_price")]

    operations = [migrations.RemoveField("order", "quantity")]
'''


def test_not_null_removal_is_relaxed_before_and_dropped_after_the_deploy(shop, capsys):
    edit_models(shop, {"    price = models.IntegerField()\n    legacy_code = models.CharField(max_length=20, null=True)\n": "",
                       "    quantity = models.IntegerField()\n": ""})
    shop.migration("shop", "0002_remove_price", REMOVE_PRICE)
    shop.migration("shop", "0003_remove_quantity", REMOVE_QUANTITY)  # depends on the one split
    shop.commit()
    before = run_review(ReviewRequest(repo=shop.root, base=shop.base))
    assert {(m.file.name, f.rule) for m in before.migrations for f in m.findings if f.blocks} == {
        ("0002_remove_price", "MS109"), ("0003_remove_quantity", "MS109")}
    state = final_state(shop)

    verdicts, messages = fixed_and_reviewed(shop, capsys)
    assert final_state(shop) == state
    assert {name: v.phase.value for name, v in verdicts.items()} == {
        "0002_remove_price": "pre-deploy", "0003_remove_quantity": "pre-deploy",
        "0004_remove_price_drop_columns": "post-deploy", "0005_remove_price_post_deploy": "post-deploy",
        "0006_remove_quantity_drop_columns": "post-deploy"}
    relaxed = read(shop, "0002_remove_price")
    assert 'deploy_phase = "pre-deploy"' in relaxed and 'ALTER COLUMN "price" DROP NOT NULL' in relaxed
    assert "# prices come from the pricing service now" in relaxed and "# NOT NULL" in relaxed
    assert "legacy_code" not in relaxed
    # 0003 keeps depending on the first part; the parts added follow the app's last migration
    assert '("shop", "0002_remove_price")' in read(shop, "0003_remove_quantity")
    drop = read(shop, "0004_remove_price_drop_columns")
    assert "('shop', '0003_remove_quantity')" in drop and 'DROP COLUMN "price"' in drop
    assert 'ADD COLUMN "price" integer NULL' in drop  # backwards: the column returns, nullable
    later = read(shop, "0005_remove_price_post_deploy")
    assert "('shop', '0004_remove_price_drop_columns')" in later and "# nullable: safe after" in later
    assert "('shop', '0005_remove_price_post_deploy')" in read(shop, "0006_remove_quantity_drop_columns")
    assert "dropped after it in 0004_remove_price_drop_columns" in messages


# ---------------------------------------------------------------- MS108


ADD_CODE = '''
from django.db import migrations
import shop.fields


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [migrations.AddField("product", "code", shop.fields.SkuField(max_length=32, null=True))]
'''

RENAMES = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0002_product_code")]

    operations = [
        # the catalogue says "name" now
        migrations.RenameField(model_name="product", old_name="title", new_name="name"),
        migrations.RenameModel(old_name="Customer", new_name="Client"),  # accounts are clients
        migrations.RenameField(
            model_name="product",
            old_name="code",  # as printed on labels
            new_name="sku",
        ),
    ]
'''


def with_custom_field(shop) -> None:
    """A base that already has a column of a custom field type (shop.fields.SkuField)."""
    shop.write("shop/fields.py", SKU_FIELD)
    edit_models(shop, {"from django.db import models\n": "from django.db import models\n\nfrom shop.fields import SkuField\n",
                       "    legacy_code = models.CharField(max_length=20, null=True)\n":
                       "    legacy_code = models.CharField(max_length=20, null=True)\n    code = SkuField(null=True)\n"})
    shop.migration("shop", "0002_product_code", ADD_CODE)
    shop.base = shop.commit("custom field")


def test_renames_stay_in_django_state_and_keep_database_names(shop, capsys):
    with_custom_field(shop)
    # models.py as makemigrations wants it; `fix` adds what keeps the database's names
    edit_models(shop, {"    title = models.CharField(max_length=100)\n": "    name = models.CharField(max_length=100)\n",
                       "    code = SkuField(null=True)\n": "    sku = SkuField(null=True)\n",
                       "class Customer(models.Model):\n": "class Client(models.Model):\n",
                       "ForeignKey(Customer,": "ForeignKey(Client,"})
    shop.migration("shop", "0003_renames", RENAMES)
    shop.commit()
    before = run_review(ReviewRequest(repo=shop.root, base=shop.base))
    suggested = {verdict.operations[f.operation_index].type: f.suggestion
                 for verdict in before.migrations for f in verdict.findings if f.rule == "MS108"}
    assert suggested["RenameModel"] and "AlterModelTable(name=\"Customer\", table='shop_customer')" \
        in suggested["RenameModel"]
    assert suggested["RenameField"] is None  # the custom field needs `import shop.fields`: fix only
    assert_suggestions_are_python(before, {"MS108"})
    state = final_state(shop)

    verdicts, messages = fixed_and_reviewed(shop, capsys)
    expected = json.loads(json.dumps(state))
    expected["product"]["fields"]["name"][1]["db_column"] = "'title'"
    expected["product"]["fields"]["sku"][1]["db_column"] = "'code'"
    expected["client"]["options"]["db_table"] = "'shop_customer'"
    assert final_state(shop) == expected
    renamed = read(shop, "0003_renames")
    assert "import shop.fields" in renamed
    assert "field=shop.fields.SkuField(max_length=32, null=True, db_column='code')" in renamed
    assert "field=models.CharField(max_length=100, db_column='title')" in renamed
    for comment in ('# the catalogue says "name" now', "# accounts are clients", "# as printed on labels"):
        assert comment in renamed
    assert not [s for op in verdicts["0003_renames"].operations for s in op.statements]  # no SQL at all
    assert "shop/models.py: product.sku says `db_column='code'`" in messages
    assert "shop/models.py: Client.Meta says `db_table = 'shop_customer'`" in messages
    models = (shop.root / "shop" / "models.py").read_text()
    assert "    name = models.CharField(max_length=100, db_column='title')\n" in models
    assert "    sku = SkuField(null=True, db_column='code')\n" in models
    assert "class Meta:\n        db_table = 'shop_customer'\n" in models


MOVE_TABLE = '''
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [migrations.AlterModelTable("product", "catalogue_product")]
'''


def test_table_moved_to_a_new_name_is_left_with_expand_and_contract(shop, capsys):
    edit_models(shop, {"    legacy_code = models.CharField(max_length=20, null=True)\n":
                       "    legacy_code = models.CharField(max_length=20, null=True)\n\n"
                       "    class Meta:\n        db_table = 'catalogue_product'\n"})
    shop.migration("shop", "0002_move", MOVE_TABLE)
    shop.commit()
    review = run_review(ReviewRequest(repo=shop.root, base=shop.base))
    [finding] = [f for f in review.migrations[0].findings if f.rule == "MS108"]
    assert finding.suggestion is None and "expand and contract" in finding.safe_alternative
    assert main(["fix", "--repo", str(shop.root), "--base", shop.base, "--diff"]) == 1
    assert "left for you: shop/migrations/0002_move.py" in capsys.readouterr().err
