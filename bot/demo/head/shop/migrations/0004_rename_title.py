from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("shop", "0003_product_sku")]

    operations = [
        migrations.RenameField(model_name="product", old_name="title", new_name="name"),
    ]
