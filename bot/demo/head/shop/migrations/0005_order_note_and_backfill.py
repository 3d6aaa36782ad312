from django.db import migrations, models


def fill_notes(apps, schema_editor):
    Order = apps.get_model("shop", "Order")
    Order.objects.filter(note=None).update(note="")


class Migration(migrations.Migration):
    dependencies = [("shop", "0004_rename_title")]

    operations = [
        migrations.AddField(model_name="order", name="note", field=models.TextField(null=True)),
        migrations.RunPython(fill_notes, migrations.RunPython.noop),
    ]
