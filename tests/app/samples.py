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

# Unique constraints on existing tables. In a project whose head lists shop_order as large and
# depends on django-pg-migration-tools (HEAD_FILES), `migration-safe fix` builds them with its
# Safer* operations, the large table's in a deferred migration of its own; plain Django's
# operations, all in this one file, without either.
UNIQUES = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        migrations.AddConstraint(
            model_name="customer",
            constraint=models.UniqueConstraint(fields=["email"], name="customer_email_uniq"),
        ),
        migrations.AddConstraint(
            model_name="order",
            constraint=models.UniqueConstraint(fields=["customer", "product"], name="order_line_uniq"),
        ),
    ]
'''
LARGE_ORDERS = "tables:\n  large: [shop_order]\n"
HEAD_FILES = {".github/migration-safe.yml": LARGE_ORDERS,
              "requirements.txt": "django-pg-migration-tools==0.1.26\n"}
