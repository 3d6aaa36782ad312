from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("shop", "0005_order_note_and_backfill")]
    deploy_phase = "post-deploy"

    operations = [
        migrations.RemoveField(model_name="product", name="legacy_code"),
    ]
