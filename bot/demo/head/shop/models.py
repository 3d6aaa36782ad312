from django.db import models


class Customer(models.Model):
    email = models.EmailField()
    nickname = models.CharField(max_length=50, null=True)


class Product(models.Model):
    name = models.CharField(max_length=100)
    price = models.IntegerField()
    sku = models.CharField(max_length=32, default="")

    class Meta:
        indexes = [models.Index(fields=["price"], name="product_price_idx")]


class Order(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE)
    product = models.ForeignKey(Product, on_delete=models.PROTECT)
    quantity = models.IntegerField()
    note = models.TextField(null=True)
