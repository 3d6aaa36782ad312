"""models.py kept in step with the state `fix` writes: libcst rewrites of the model class."""
from __future__ import annotations

from migration_safe.engine.fix.models_rewrite import ModelChange, Snapshot, apply_model_changes

MODELS = '''from django.db import models


class Product(models.Model):
    sku = models.CharField(default="", max_length=32)  # shown on invoices
    title = models.CharField(max_length=100)

    class Meta:
        ordering = ["title"]


class Order(models.Model):
    note = models.TextField(**{"null": True})
'''


def rewrite(*changes: ModelChange, files: dict[str, str] | None = None):
    return apply_model_changes(list(changes), Snapshot(files if files is not None else {"shop/models.py": MODELS}))


def test_default_becomes_db_default_and_the_comment_stays():
    edit = rewrite(ModelChange("shop", "product", "sku", "db_default", '""', "default"))
    assert 'sku = models.CharField(db_default="", max_length=32)  # shown on invoices\n' \
        in edit.files["shop/models.py"]
    assert not edit.manual


def test_db_column_is_added_and_db_table_joins_the_existing_meta():
    edit = rewrite(ModelChange("shop", "Product", "title", "db_column", "'name'"),
                   ModelChange("shop", "Product", None, "db_table", "'shop_item'"))
    text = edit.files["shop/models.py"]
    assert "title = models.CharField(max_length=100, db_column='name')" in text
    assert "    class Meta:\n        ordering = [\"title\"]\n        db_table = 'shop_item'\n" in text


def test_a_model_without_meta_gets_one():
    edit = rewrite(ModelChange("shop", "Order", None, "db_table", "'shop_purchase'"))
    assert "\n\n    class Meta:\n        db_table = 'shop_purchase'\n" in edit.files["shop/models.py"]


def test_what_cannot_be_changed_exactly_is_left_with_the_line_to_write():
    other_default = ModelChange("shop", "Product", "sku", "db_default", '"x"', "default")
    kwargs = ModelChange("shop", "Order", "note", "db_column", "'remark'")
    missing = ModelChange("shop", "Customer", "email", "db_column", "'mail'")
    edit = rewrite(other_default, kwargs, missing)
    assert not edit.files
    assert edit.manual == [
        "shop/models.py: Product.sku must say `db_default=\"x\"` in place of `default=…`: its `default=` is not "
        "the migration's (\"x\"), so write it there yourself, or makemigrations writes the migration's change back",
        "shop/models.py: Order.note must say `db_column='remark'`: the field takes **kwargs, which may say "
        "otherwise, so write it there yourself, or makemigrations writes the migration's change back",
        "shop/models.py: Customer.email must say `db_column='mail'`: the class Customer was not found in the "
        "app's models modules, so write it there yourself, or makemigrations writes the migration's change back",
    ]


def test_a_models_package_is_searched_and_a_class_defined_twice_is_not_guessed():
    package = {"shop/models/__init__.py": "from .catalogue import *\n",
               "shop/models/catalogue.py": MODELS}
    edit = rewrite(ModelChange("shop", "Product", "title", "db_column", "'name'"), files=package)
    assert list(edit.files) == ["shop/models/catalogue.py"]
    twice = {**package, "shop/models/legacy.py": MODELS}
    assert rewrite(ModelChange("shop", "Product", "title", "db_column", "'name'"), files=twice).manual


def test_what_the_model_says_already_is_left_as_written():
    said = MODELS.replace('default="", max_length=32', "db_default='', max_length=32").replace(
        '        ordering = ["title"]\n', "        db_table = 'shop_item'  # historic\n        ordering = ['title']\n")
    edit = rewrite(ModelChange("shop", "Product", "sku", "db_default", '""', "default"),
                   ModelChange("shop", "Product", None, "db_table", '"shop_item"'), files={"shop/models.py": said})
    assert not edit.files and not edit.manual
    moved = rewrite(ModelChange("shop", "Product", None, "db_table", "'shop_goods'"), files={"shop/models.py": said})
    expected = "        db_table = 'shop_goods'  # historic\n        ordering = ['title']\n"
    assert expected in moved.files["shop/models.py"]
