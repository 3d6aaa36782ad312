from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0002_customer_nickname")]

    operations = [
        migrations.AddField(
            model_name="product",
            name="sku",
            field=models.CharField(default="", max_length=32),
            preserve_default=False,
        ),
        migrations.AddIndex(
            model_name="product",
            index=models.Index(fields=["price"], name="product_price_idx"),
        ),
    ]
