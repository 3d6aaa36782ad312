"""Migration files the App tests push in their pull requests."""

MIXED = '''
from django.db import migrations, models


def fill(apps, schema_editor):
    pass


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        migrations.AddField("customer", "nickname", models.CharField(max_length=50, null=True)),
        migrations.AddIndex(
            model_name="product",
            index=models.Index(fields=["price"], name="product_price_idx"),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
'''

NICKNAME = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        migrations.AddField("customer", "nickname", models.CharField(max_length=50, null=True)),
    ]
'''

INDEX = '''
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("shop", "0002_mixed")]

    operations = [
        AddIndexConcurrently("product", models.Index(fields=["price"], name="product_price_idx")),
    ]
'''

BACKFILL = '''
from django.db import migrations


def fill(apps, schema_editor):
    pass


class Migration(migrations.Migration):
    dependencies = [("shop", "0003_price_index")]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
'''
