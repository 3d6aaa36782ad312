"""`migration-safe fix`: the rewrites it writes pass their own review."""
from __future__ import annotations

import subprocess
import sys

import pytest

from migration_safe.cli import main
from migration_safe.engine.review.pipeline import ReviewRequest, run_review

pytestmark = pytest.mark.slow

SKU = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="product",
            name="sku",
            # shown on invoices
            field=models.CharField(default="", max_length=32),
            preserve_default=False,
        ),
    ]
'''

MIXED = '''
from django.db import migrations, models


def fill(apps, schema_editor):
    apps.get_model("shop", "Order").objects.filter(note=None).update(note="")


class Migration(migrations.Migration):
    dependencies = [("shop", "0002_sku")]

    operations = [
        migrations.AddField("order", "note", models.TextField(null=True)),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
'''


INDEXES = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0003_note")]

    operations = [
        migrations.AddField("customer", "nickname", models.CharField(max_length=50, null=True)),
        migrations.AddIndex(
            model_name="product",
            index=models.Index(fields=["price"], name="product_price_idx"),  # for the price list
        ),
    ]
'''


def models_with_head_fields(shop):
    models = (shop.root / "shop" / "models.py").read_text()
    replacements = {
        "    email = models.EmailField()\n":
            "    email = models.EmailField()\n    nickname = models.CharField(max_length=50, null=True)\n",
        "    legacy_code = models.CharField(max_length=20, null=True)\n":
            "    legacy_code = models.CharField(max_length=20, null=True)\n"
            "    sku = models.CharField(max_length=32, db_default='')\n\n"
            "    class Meta:\n        indexes = [models.Index(fields=['price'], name='product_price_idx')]\n",
        "    quantity = models.IntegerField()\n":
            "    quantity = models.IntegerField()\n    note = models.TextField(null=True)\n",
    }
    for old, new in replacements.items():
        assert old in models
        models = models.replace(old, new)
    shop.write("shop/models.py", models)


def test_fix_rewrites_and_splits_until_the_review_is_clean(shop, capsys):
    models_with_head_fields(shop)
    shop.migration("shop", "0002_sku", SKU)
    shop.migration("shop", "0003_note", MIXED)
    shop.migration("shop", "0004_nickname_and_index", INDEXES)
    shop.commit()
    before = run_review(ReviewRequest(repo=shop.root, base=shop.base))
    assert before.blocking

    assert main(["fix", "--repo", str(shop.root), "--base", shop.base, "--diff"]) == 0
    diff = capsys.readouterr().out
    assert '+            field=models.CharField(db_default="", max_length=32),' in diff
    assert "-            preserve_default=False," in diff
    assert "+++ b/shop/migrations/0006_note_deferred.py" in diff
    assert "preserve_default" in (shop.root / "shop/migrations/0002_sku.py").read_text()  # --diff wrote nothing

    assert main(["fix", "--repo", str(shop.root), "--base", shop.base]) == 0
    fixed = (shop.root / "shop/migrations/0002_sku.py").read_text()
    assert "# shown on invoices" in fixed and 'db_default=""' in fixed
    after = run_review(ReviewRequest(repo=shop.root, base=shop.base, head="WORKTREE"))
    assert not after.blocking, [(m.file.label, [f.rule for f in m.findings if f.blocks]) for m in after.migrations]
    assert {m.file.name: m.phase.value for m in after.migrations} == {
        "0002_sku": "pre-deploy", "0003_note": "pre-deploy", "0006_note_deferred": "deferred",
        "0004_nickname_and_index": "pre-deploy", "0005_nickname_and_index_concurrent_indexes": "pre-deploy"}
    index_part = (shop.root / "shop/migrations/0005_nickname_and_index_concurrent_indexes.py").read_text()
    assert "atomic = False" in index_part and "AddIndexConcurrently(" in index_part
    assert "# for the price list" in index_part and "AddField" not in index_part
    assert "from django.contrib.postgres.operations import AddIndexConcurrently" in index_part
    check = subprocess.run([sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
                           cwd=shop.root, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


CHECK = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        migrations.AddConstraint(
            model_name="order",
            constraint=models.CheckConstraint(condition=models.Q(quantity__gte=0), name="order_quantity_positive"),
        ),
    ]
'''


def test_check_constraint_becomes_not_valid_then_validated_later(shop, capsys):
    models = (shop.root / "shop" / "models.py").read_text()
    shop.write("shop/models.py", models.replace(
        "    quantity = models.IntegerField()\n",
        "    quantity = models.IntegerField()\n\n    class Meta:\n        constraints = [models.CheckConstraint("
        "condition=models.Q(quantity__gte=0), name='order_quantity_positive')]\n"))
    shop.migration("shop", "0002_positive", CHECK)
    shop.commit()
    before = run_review(ReviewRequest(repo=shop.root, base=shop.base))
    [finding] = [f for f in before.migrations[0].findings if f.rule == "MS107"]
    assert "SeparateDatabaseAndState" in finding.suggestion and "NOT VALID" in finding.suggestion

    assert main(["fix", "--repo", str(shop.root), "--base", shop.base]) == 0
    validate = (shop.root / "shop/migrations/0003_positive_validate_constraints.py").read_text()
    assert 'VALIDATE CONSTRAINT \\"order_quantity_positive\\"' in validate or \
        'VALIDATE CONSTRAINT "order_quantity_positive"' in validate
    after = run_review(ReviewRequest(repo=shop.root, base=shop.base, head="WORKTREE"))
    verdicts = {m.file.name: m for m in after.migrations}
    assert not after.blocking, [(m.file.label, [f.rule for f in m.findings if f.blocks]) for m in after.migrations]
    assert verdicts["0002_positive"].phase.value == "post-deploy"
    assert verdicts["0003_positive_validate_constraints"].phase.value == "deferred"
    [statement] = verdicts["0002_positive"].operations[0].statements
    assert statement.actions[0].not_valid
    check = subprocess.run([sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
                           cwd=shop.root, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
