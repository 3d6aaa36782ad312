from django.db import models


class Customer(models.Model):
    email = models.EmailField()


class Product(models.Model):
    title = models.CharField(max_length=100)
    price = models.IntegerField()
    legacy_code = models.CharField(max_length=20, null=True)


class Order(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE)
    product = models.ForeignKey(Product, on_delete=models.PROTECT)
    quantity = models.IntegerField()
