"""Splitting a mixed migration: one file per phase that Django loads and the review accepts."""
from __future__ import annotations

import subprocess
import sys

import pytest

from migration_safe.engine.model import Phase
from migration_safe.engine.review.pipeline import ReviewRequest, run_review
from migration_safe.engine.fix.split import chain_end, split_migration

pytestmark = pytest.mark.slow

MIXED = '''
from django.db import migrations, models


def fill_notes(apps, schema_editor):
    Order = apps.get_model("shop", "Order")
    Order.objects.filter(note=None).update(note="")


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        # the column first: new code writes it
        migrations.RunPython(fill_notes, migrations.RunPython.noop),
        migrations.AddField(model_name="order", name="note", field=models.TextField(null=True)),
    ]
'''

LATER = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0002_note")]

    operations = [
        migrations.AddField("customer", "nickname", models.CharField(max_length=50, null=True)),
    ]
'''


def test_split_files_load_keep_the_state_and_pass_review(shop):
    shop.write("shop/models.py", (shop.root / "shop" / "models.py").read_text().replace(
        "    quantity = models.IntegerField()\n",
        "    quantity = models.IntegerField()\n    note = models.TextField(null=True)\n").replace(
        "    email = models.EmailField()\n",
        "    email = models.EmailField()\n    nickname = models.CharField(max_length=50, null=True)\n"))
    shop.migration("shop", "0002_note", MIXED)
    shop.migration("shop", "0003_nickname", LATER)
    shop.commit("mixed")
    review = run_review(ReviewRequest(repo=shop.root, base=shop.base))
    mixed = next(m for m in review.migrations if m.file.name == "0002_note")
    assert mixed.needs_split

    source = (shop.root / "shop/migrations/0002_note.py").read_text()
    same_app = {m.file.name: [d[1] for d in m.file.dependencies if d[0] == "shop"]
                for m in review.migrations if m.file.app_label == "shop"}
    after = chain_end("0002_note", same_app)
    assert after == "0003_nickname"
    parts = split_migration(source, mixed.file.path, "shop", "0002_note", [op.phase for op in mixed.operations],
                            after=after)
    assert [(p.name, p.phase) for p in parts] == [("0002_note", Phase.PRE_DEPLOY),
                                                  ("0002_note_deferred", Phase.DEFERRED)]
    assert "[('shop', '0003_nickname')]" in parts[1].source
    assert "# the column first" in parts[0].source and "def fill_notes" in parts[1].source
    for part in parts:
        compile(part.source, part.path, "exec")
        shop.write(part.path, part.source)
    shop.commit("split")

    again = run_review(ReviewRequest(repo=shop.root, base=shop.base))
    verdicts = {m.file.name: m for m in again.migrations}
    assert not verdicts["0002_note"].needs_split and verdicts["0002_note"].phase is Phase.PRE_DEPLOY
    assert verdicts["0002_note_deferred"].phase is Phase.DEFERRED
    assert not any(f.rule == "MS113" for m in again.migrations for f in m.findings)
    # Django's final state still equals the models: nothing left for makemigrations
    check = subprocess.run([sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
                           cwd=shop.root, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
