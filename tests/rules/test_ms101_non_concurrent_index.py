"""MS101 non-concurrent-index: an index built without CONCURRENTLY on an existing table."""
from __future__ import annotations

import pytest

from migration_safe.engine.model import Severity

from .harness import (
    CONCURRENT, STATS_PATH, configure, describe, findings, finding, fired, line_of, migration, review,
    source,
)

pytestmark = pytest.mark.slow


def test_add_index_on_existing_table_is_an_error_at_the_operation(shop):
    text = migration(shop, "0002_product_price_idx", source('''
        migrations.AddIndex(
            model_name="product",
            index=models.Index(fields=["price"], name="product_price_idx"),
        ),
    '''))
    result = review(shop)
    found = finding(result, "0002_product_price_idx", "MS101")
    assert found.severity is Severity.ERROR and found.blocks
    assert (found.line, found.end_line) == (line_of(text, "migrations.AddIndex("), line_of(text, "),", 2))
    assert found.operation_index == 0
    assert "CREATE INDEX product_price_idx on existing table shop_product" in found.message
    assert "blocks every write" in found.message
    assert "AddIndexConcurrently" in found.safe_alternative


def test_safe_variants_do_not_fire(shop):
    migration(shop, "0002_concurrent", source(
        'AddIndexConcurrently("product", models.Index(fields=["price"], name="product_price_idx")),',
        attributes="atomic = False", imports=CONCURRENT))
    migration(shop, "0003_coupon", source('''
        migrations.CreateModel(
            name="Coupon",
            fields=[
                ("id", models.BigAutoField(primary_key=True)),
                ("code", models.CharField(max_length=20, unique=True)),
            ],
        ),
        migrations.AddIndex("coupon", models.Index(fields=["code"], name="coupon_code_idx")),
        migrations.AddField("coupon", "order", models.ForeignKey(
            "shop.order", null=True, on_delete=models.CASCADE)),
    ''', after="0002_concurrent"))
    result = review(shop)
    # CREATE INDEX CONCURRENTLY outside a transaction: nothing blocks
    assert "CONCURRENTLY" in result.migrations[0].operations[0].sql[0]
    assert not findings(result, "0002_concurrent"), describe(result, "0002_concurrent")
    # indexes (explicit, unique, foreign key) on a table this change creates: it is empty
    assert not fired(result, "0003_coupon", "MS101"), describe(result, "0003_coupon")


def test_field_and_constraint_indexes_fire(shop):
    # every table's size is known: one finding per build
    configure(shop, f"tables:\n  stats: {STATS_PATH}\n",
              stats={"shop_product": 10**6, "shop_order": 10**6, "shop_customer": 10**6})
    text = migration(shop, "0002_sku", source('''
        migrations.AddField("product", "sku", models.CharField(max_length=32, null=True, db_index=True)),
        migrations.AddConstraint(
            "product", models.UniqueConstraint(fields=["title"], name="product_title_uniq"),
        ),
        migrations.AddField("order", "buyer", models.ForeignKey(
            "shop.customer", null=True, on_delete=models.SET_NULL, related_name="+")),
        migrations.AddField("customer", "handle", models.SlugField(null=True, unique=True)),
    '''))
    result = review(shop)
    by_line = {}
    for found in findings(result, "0002_sku", "MS101"):
        assert found.severity is Severity.ERROR and not found.related
        by_line.setdefault(found.line, []).append(found.message)
    # db_index=True builds two indexes on a varchar column (the second for LIKE queries)
    db_index = by_line[line_of(text, '"sku"')]
    assert len(db_index) == 2 and all("on existing table shop_product" in m for m in db_index)
    assert any("_like" in m for m in db_index)
    unique = by_line[line_of(text, "migrations.AddConstraint(")]
    assert unique == ["ADD CONSTRAINT product_title_uniq (unique) on existing table shop_product (1 million "
                      "rows) builds its index under an ACCESS EXCLUSIVE lock."]
    foreign_key = by_line[line_of(text, '"buyer"')]
    assert len(foreign_key) == 1 and "on existing table shop_order" in foreign_key[0]
    # unique=True: ADD COLUMN … UNIQUE, an unnamed constraint (and a LIKE index)
    assert "UNIQUE on column handle on existing table shop_customer (1 million rows) builds its index under " \
           "an ACCESS EXCLUSIVE lock." in by_line[line_of(text, '"handle"')]


def test_without_statistics_the_builds_of_a_migration_are_one_finding(shop):
    configure(shop, f"tables:\n  stats: {STATS_PATH}\n", stats={"shop_order": 5_000_000})
    text = migration(shop, "0002_indexes", source('''
        migrations.AddIndex("customer", models.Index(fields=["email"], name="customer_email_idx")),
        migrations.AddField("product", "sku", models.CharField(max_length=32, null=True, db_index=True)),
        migrations.AddIndex("product", models.Index(fields=["price"], name="product_price_idx")),
        migrations.AddIndex("order", models.Index(fields=["quantity"], name="order_quantity_idx")),
    '''))
    result = review(shop)
    found = findings(result, "0002_indexes", "MS101")
    assert [(f.line, f.severity) for f in found] == [
        (line_of(text, "customer_email_idx"), Severity.ERROR), (line_of(text, "order_quantity_idx"), Severity.ERROR)]
    grouped, known = found
    sku = line_of(text, '"sku"')
    assert grouped.message == (
        "4 indexes are built without CONCURRENTLY on 2 existing table(s) of unknown size, each blocking "
        "writes (a UNIQUE or PRIMARY KEY constraint also reads) while it builds: shop_customer (line "
        f"{line_of(text, 'customer_email_idx')}), shop_product (lines {sku}, "
        f"{line_of(text, 'product_price_idx')}). Without table statistics every table counts as large; list "
        "the sizes in `tables.stats` to tell the small ones (a warning each) from those that matter.")
    assert (grouped.operation_index, grouped.related, grouped.operations) == (0, [1, 2], [0, 1, 2])
    assert "order_quantity_idx on existing table shop_order" in known.message and not known.related


def test_a_table_known_to_be_small_gets_a_warning(shop):
    configure(shop, f"tables:\n  stats: {STATS_PATH}\n",
              stats={"shop_customer": 50, "shop_product": 2_000_000})
    text = migration(shop, "0002_indexes", source('''
        migrations.AddIndex("customer", models.Index(fields=["email"], name="customer_email_idx")),
        migrations.AddIndex("product", models.Index(fields=["price"], name="product_price_idx")),
    '''))
    result = review(shop)
    severities = {f.line: f.severity for f in findings(result, "0002_indexes", "MS101")}
    assert severities == {line_of(text, "customer_email_idx"): Severity.WARNING,
                          line_of(text, "product_price_idx"): Severity.ERROR}


def test_without_sql_the_file_is_read(shop):
    configure(shop, "django:\n  settings: missing.settings\n")  # the sandbox cannot load the project
    text = migration(shop, "0002_static", source('''
        migrations.CreateModel("Coupon", fields=[("id", models.BigAutoField(primary_key=True))]),
        migrations.AddIndex("coupon", models.Index(fields=["id"], name="coupon_id_idx")),
        migrations.AddIndex("product", models.Index(fields=["price"], name="product_price_idx")),
        migrations.AddField("product", "sku", models.CharField(max_length=32, null=True, unique=True)),
        migrations.AddField("product", "note", models.TextField(null=True)),
        migrations.AddField("order", "invoice", models.OneToOneField(
            "shop.customer", null=True, on_delete=models.SET_NULL, related_name="+")),
    '''))
    result = review(shop, expect_sql=False)
    assert result.migrations[0].sql_status == "unavailable"
    found = findings(result, "0002_static", "MS101")
    assert [(f.line, f.severity) for f in found] == [
        (line_of(text, "product_price_idx"), Severity.ERROR), (line_of(text, '"sku"'), Severity.ERROR),
        (line_of(text, '"invoice"'), Severity.ERROR)]
    assert "read from the file; SQL unavailable" in found[0].message
    assert "an index for the field" in found[1].message
