"""The deploy phases of docs/phases.md, end to end: where each kind of migration is placed, and which ones
no phase can run safely (blocking findings), on the real review pipeline.

Each test reviews one change of several migrations chained in the shop app.
"""
from __future__ import annotations

import pytest

from migration_safe.engine.model import Severity

from .harness import (
    BACKFILL_NOOP, CONCURRENT, configure, describe, establish, finding, findings, line_of, migration,
    operation_phases, phase, review, rules, source, verdict,
)

pytestmark = pytest.mark.slow

NULLABLE = 'migrations.AddField("customer", "nickname", models.CharField(max_length=30, null=True)),'


def chain(shop, *migrations: tuple[str, str, dict]) -> dict[str, str]:
    """Write migrations 0002… each depending on the one before; returns name -> text."""
    texts, previous = {}, "0001_initial"
    for name, operations, options in migrations:  # options may name another "after"
        texts[name] = migration(shop, name, source(operations, **{"after": previous, **options}))
        previous = name
    return texts


def assert_clean(result, name):
    """Correctly placed: no error, no warning, not blocking (notices are fine)."""
    item = verdict(result, name)
    assert not item.blocking and not item.needs_split, describe(result, name)
    assert rules(result, name, Severity.ERROR) | rules(result, name, Severity.WARNING) == set(), \
        describe(result, name)


def test_additive_changes_are_pre_deploy_and_large_table_builds_deferred(shop):
    configure(shop, "tables:\n  large: [shop_order]\n")
    chain(
        shop,
        ("0002_coupon", '''
            migrations.CreateModel("Coupon", fields=[
                ("id", models.BigAutoField(primary_key=True)),
                ("code", models.CharField(max_length=20, unique=True)),
            ]),
        ''', {}),
        ("0003_nickname", NULLABLE, {}),
        ("0004_stock", 'migrations.AddField("product", "stock", models.IntegerField(db_default=0)),', {}),
        ("0005_price_idx",
         'AddIndexConcurrently("product", models.Index(fields=["price"], name="product_price_idx")),',
         {"attributes": "atomic = False", "imports": CONCURRENT}),
        ("0006_quantity_optional",
         'migrations.AlterField("order", "quantity", models.IntegerField(null=True)),', {}),
        ("0007_customer_ordering",
         'migrations.AlterModelOptions("customer", {"ordering": ["email"]}),', {}),
        ("0008_quantity_idx",
         'AddIndexConcurrently("order", models.Index(fields=["quantity"], name="order_quantity_idx")),',
         {"attributes": "atomic = False", "imports": CONCURRENT}),
    )
    result = review(shop)
    for name in ("0002_coupon", "0003_nickname", "0004_stock", "0005_price_idx",
                 "0006_quantity_optional", "0007_customer_ordering"):
        assert phase(result, name) == "pre-deploy", describe(result, name)
        assert_clean(result, name)
    # db_default: a constant default, no temporary one dropped afterwards
    assert verdict(result, "0004_stock").operations[0].sql == [
        'ALTER TABLE "shop_product" ADD COLUMN "stock" integer DEFAULT 0 NOT NULL;']
    # dropping NOT NULL relaxes a rule: before the code that relies on it
    assert "DROP NOT NULL" in verdict(result, "0006_quantity_optional").operations[0].sql[0]
    # state only: no SQL, nothing to say, and pre-deploy is the earliest
    assert verdict(result, "0007_customer_ordering").operations[0].sql == []
    assert findings(result, "0007_customer_ordering") == []
    # a concurrent build on a table listed in tables.large must not hold up the deploy
    assert phase(result, "0008_quantity_idx") == "deferred"
    assert_clean(result, "0008_quantity_idx")


def test_destructive_changes_are_post_deploy_and_data_changes_deferred(shop):
    chain(
        shop,
        ("0002_remove_legacy_code", 'migrations.RemoveField("product", "legacy_code"),', {}),
        ("0003_delete_order", 'migrations.DeleteModel("Order"),', {}),
        ("0004_backfill", "migrations.RunPython(backfill, migrations.RunPython.noop),",
         {"imports": BACKFILL_NOOP}),
        ("0005_backfill_sql",
         'migrations.RunSQL("UPDATE shop_customer SET email = lower(email)", migrations.RunSQL.noop),', {}),
    )
    result = review(shop)
    assert [phase(result, n) for n in ("0002_remove_legacy_code", "0003_delete_order", "0004_backfill",
                                       "0005_backfill_sql")] == [
        "post-deploy", "post-deploy", "deferred", "deferred"]
    for name in ("0002_remove_legacy_code", "0003_delete_order", "0004_backfill", "0005_backfill_sql"):
        assert_clean(result, name)
    assert rules(result, "0002_remove_legacy_code", Severity.NOTICE) >= {"MS110"}
    assert rules(result, "0004_backfill", Severity.NOTICE) == {"MS111"}


def test_changes_no_phase_can_run_are_blocking(shop):
    texts = chain(
        shop,
        ("0002_legacy_code_required",
         'migrations.AlterField("product", "legacy_code", models.CharField(max_length=20)),', {}),
        ("0003_price_check", '''
            migrations.AddConstraint("product", models.CheckConstraint(
                condition=models.Q(price__gte=0), name="product_price_gte_0")),
        ''', {}),
        ("0004_quantity_check_not_valid", '''
            migrations.RunSQL(
                "ALTER TABLE shop_order ADD CONSTRAINT order_quantity_pos CHECK (quantity > 0) NOT VALID",
                "ALTER TABLE shop_order DROP CONSTRAINT order_quantity_pos",
            ),
        ''', {}),
        ("0005_rename_customer", 'migrations.RenameModel("Customer", "Client"),', {}),
        ("0006_order_table", 'migrations.AlterModelTable("order", "shop_purchase"),', {}),
        ("0007_price_bigint", 'migrations.AlterField("product", "price", models.BigIntegerField()),', {}),
        ("0008_title_longer", 'migrations.AlterField("product", "title", models.CharField(max_length=200)),',
         {}),
        ("0009_remove_price", 'migrations.RemoveField("product", "price"),', {}),
        ("0010_token", 'migrations.AddField("product", "token", models.UUIDField(db_default=RandomUUID())),',
         {"imports": "from django.contrib.postgres.functions import RandomUUID"}),
    )
    result = review(shop)
    expected = {
        "0002_legacy_code_required": "MS106",  # SET NOT NULL on an existing column
        "0003_price_check": "MS107",  # CHECK validated in the same step
        "0005_rename_customer": "MS108",
        "0006_order_table": "MS108",
        "0007_price_bigint": "MS105",  # integer -> bigint rewrites the table
        "0009_remove_price": "MS109",  # NOT NULL column without a database default
        "0010_token": "MS104",  # volatile default: every row rewritten
    }
    for name, rule in expected.items():
        found = finding(result, name, rule)
        assert found.severity is Severity.ERROR and verdict(result, name).blocking
        assert found.line == line_of(texts[name], "operations = [") + 1, describe(result, name)
    # a new rule the data must obey comes after the code that obeys it
    assert phase(result, "0002_legacy_code_required") == "post-deploy"
    assert phase(result, "0003_price_check") == "post-deploy"
    # the safe ways are not flagged: NOT VALID, and a varchar that only grows
    assert not findings(result, "0004_quantity_check_not_valid", "MS107")
    assert not findings(result, "0008_title_longer", "MS105")
    assert_clean(result, "0008_title_longer")


def test_unique_rules_come_after_the_deploy_however_they_are_built(shop):
    configure(shop, "tables:\n  large: [shop_order]\n")
    texts = chain(
        shop,
        ("0002_title_unique", '''
            migrations.AddConstraint("product", models.UniqueConstraint(
                fields=["title"], name="product_title_uniq")),
        ''', {}),
        ("0003_code_unique_partial", '''
            migrations.AddConstraint("product", models.UniqueConstraint(
                fields=["legacy_code"], condition=models.Q(price__gt=0), name="product_code_uniq")),
        ''', {}),
        ("0004_email_unique_concurrently", '''
            migrations.RunSQL(
                "CREATE UNIQUE INDEX CONCURRENTLY customer_email_uniq ON shop_customer (email)",
                "DROP INDEX CONCURRENTLY customer_email_uniq",
            ),
        ''', {"attributes": "atomic = False"}),
        ("0005_order_unique_concurrently", '''
            migrations.RunSQL(
                "CREATE UNIQUE INDEX CONCURRENTLY order_line_uniq ON shop_order (customer_id, product_id)",
                "DROP INDEX CONCURRENTLY order_line_uniq",
            ),
        ''', {"attributes": "atomic = False"}),
    )
    result = review(shop)
    # ADD CONSTRAINT UNIQUE and CREATE UNIQUE INDEX are the same new rule: post-deploy either way
    assert phase(result, "0002_title_unique") == "post-deploy"
    assert phase(result, "0003_code_unique_partial") == "post-deploy"
    for name in ("0002_title_unique", "0003_code_unique_partial"):
        found = finding(result, name, "MS101")  # and built under a blocking lock
        assert found.line == line_of(texts[name], "migrations.AddConstraint(")
    # built concurrently, it blocks nothing; on a large table the build is deferred
    assert phase(result, "0004_email_unique_concurrently") == "post-deploy"
    assert_clean(result, "0004_email_unique_concurrently")
    assert phase(result, "0005_order_unique_concurrently") == "deferred"
    assert_clean(result, "0005_order_unique_concurrently")


def test_split_declared_phases_dependencies_and_transactions(shop):
    texts = chain(
        shop,
        ("0002_nickname_and_backfill",
         NULLABLE + "\nmigrations.RunPython(backfill, migrations.RunPython.noop),",
         {"imports": BACKFILL_NOOP}),
        ("0003_remove_legacy_code", 'migrations.RemoveField("product", "legacy_code"),',
         {"attributes": 'deploy_phase = "pre-deploy"'}),
        ("0004_delete_order", 'migrations.DeleteModel("Order"),',
         {"attributes": 'deploy_phase = "post-deploy"'}),
        ("0005_backfill_sql",
         'migrations.RunSQL("UPDATE shop_customer SET email = lower(email)", migrations.RunSQL.noop),', {}),
        ("0006_sku",
         'migrations.AddField("product", "sku", models.CharField(max_length=32, null=True)),', {}),
        ("0007_note_and_title_idx", '''
            migrations.AddField("customer", "note", models.TextField(null=True)),
            migrations.AddIndex("product", models.Index(fields=["title"], name="product_title_idx")),
        ''', {}),
    )
    result = review(shop)
    # schema and data in one migration: it must be split, and blocks until it is
    mixed = verdict(result, "0002_nickname_and_backfill")
    assert (mixed.phase, mixed.needs_split, mixed.blocking) == (None, True, True)
    assert operation_phases(result, "0002_nickname_and_backfill") == ["pre-deploy", "deferred"]
    # a declared phase that contradicts the operations is an error at the declaration...
    declared = finding(result, "0003_remove_legacy_code", "MS113")
    assert declared.severity is Severity.ERROR
    assert declared.line == line_of(texts["0003_remove_legacy_code"], "deploy_phase")
    # ...one that agrees is not
    assert not findings(result, "0004_delete_order", "MS113")
    # pre-deploy 0006 depends on the deferred backfill 0005 of the same change
    order = finding(result, "0006_sku", "MS114")
    assert order.severity is Severity.ERROR and "shop.0005_backfill_sql, which is deferred" in order.message
    # atomic: ACCESS EXCLUSIVE on shop_customer held while an index on shop_product builds
    held = finding(result, "0007_note_and_title_idx", "MS112")
    assert held.line == line_of(texts["0007_note_and_title_idx"], "AddIndex(")


def test_concurrently_in_atomic_managed_lock_timeout_and_an_edited_migration(shop):
    configure(shop, "postgres:\n  lock_timeout: managed\n")
    initial = shop.root / "shop" / "migrations" / "0001_initial.py"
    initial.write_text(initial.read_text().replace("max_length=100", "max_length=120"))
    texts = chain(
        shop,
        ("0002_nickname", NULLABLE, {}),
        ("0003_price_idx",
         'AddIndexConcurrently("product", models.Index(fields=["price"], name="product_price_idx")),',
         {"imports": CONCURRENT}),
    )
    result = review(shop, expect_sql=False)
    assert verdict(result, "0002_nickname").sql_status == "ok"
    # the deploy sets lock_timeout itself: no reminder
    assert findings(result, "0002_nickname") == [], describe(result, "0002_nickname")
    concurrently = finding(result, "0003_price_idx", "MS102")
    assert concurrently.severity is Severity.ERROR
    assert concurrently.line == line_of(texts["0003_price_idx"], "AddIndexConcurrently(")
    assert finding(result, "0001_initial", "MS003").severity is Severity.WARNING


def test_an_unparsable_migration_blocks(shop):
    text = migration(shop, "0002_broken", source(NULLABLE).replace("Migration):", "Migration)"))
    result = review(shop, expect_sql=False)
    found = finding(result, "0002_broken", "MS001")
    assert found.severity is Severity.ERROR and verdict(result, "0002_broken").blocking
    assert found.line == line_of(text, "class Migration")


def test_relaxing_and_replacing_rules_never_break_a_deploy(shop):
    establish(shop, "0002_rules", source('''
        migrations.AddConstraint("product", models.UniqueConstraint(
            fields=["legacy_code"], condition=models.Q(price__gt=0), name="product_code_uniq")),
        migrations.AddIndex("customer", models.Index(fields=["email"], name="customer_email_idx")),
        migrations.AlterUniqueTogether("order", {("customer", "product")}),
        migrations.AddField("customer", "code", models.CharField(max_length=10, unique=True, null=True)),
        migrations.AddConstraint("product", models.UniqueConstraint(
            fields=["title"], name="product_title_uniq")),
        migrations.AddIndex("product", models.Index(fields=["price"], name="product_price_idx")),
        migrations.RunSQL("CREATE UNIQUE INDEX customer_email_uniq ON shop_customer (email)"),
        migrations.RunSQL("CREATE UNIQUE INDEX customer_email_lower_uniq ON shop_customer (lower(email))"),
        migrations.RunSQL("CREATE UNIQUE INDEX product_code_raw_uniq ON shop_product (legacy_code)"),
        migrations.RunSQL("CREATE UNIQUE INDEX customer_email_id_uniq ON shop_customer (email, id)"),
        migrations.AddIndex("product", models.Index(fields=["title"], name="product_title_idx")),
    '''))
    chain(
        shop,
        # a conditional UniqueConstraint is a unique index: dropping it relaxes a rule, as DROP CONSTRAINT
        ("0003_drop_partial_unique", '''
            migrations.RemoveConstraint("product", "product_code_uniq"),
            migrations.AlterField("customer", "code", models.CharField(max_length=10, null=True)),
        ''', {"after": "0002_rules"}),
        # an index swap: one step (split, the new index could not be built under the taken name)
        ("0004_index_swap", '''
            migrations.RemoveIndex("customer", "customer_email_idx"),
            migrations.AddIndex("customer", models.Index(fields=["email", "id"], name="customer_email_idx")),
        ''', {}),
        # unique_together replaced by the equivalent UniqueConstraint: one step, never a window without it
        ("0005_unique_constraint", '''
            migrations.AlterUniqueTogether("order", set()),
            migrations.AddConstraint("order", models.UniqueConstraint(
                fields=["customer", "product"], name="order_customer_product_uniq")),
        ''', {}),
        # Django drops and re-adds the same foreign key to make its column nullable: the new code
        # writes NULL, so the DROP NOT NULL must not wait for after the deploy
        ("0006_customer_nullable", 'migrations.AlterField("order", "customer", models.ForeignKey('
                                   'null=True, on_delete=models.CASCADE, to="shop.customer")),',
         {}),
        # the same rules dropped by raw SQL relax them just as well; a plain index is no rule: its
        # queries may still need it, after the deploy only
        ("0007_raw_drops", '''
            migrations.RunSQL("DROP INDEX customer_email_uniq"),
            migrations.RunSQL("ALTER TABLE shop_product DROP CONSTRAINT product_title_uniq"),
            migrations.RunSQL("DROP INDEX IF EXISTS public.product_price_idx"),
            migrations.RunSQL("DROP INDEX customer_email_id_uniq, product_title_idx"),
        ''', {}),
        ("0008_raw_drop_concurrently",
         'migrations.RunSQL("DROP INDEX CONCURRENTLY customer_email_lower_uniq"),',
         {"attributes": "atomic = False"}),
        ("0009_raw_unique_replaced", '''
            migrations.RunSQL("DROP INDEX product_code_raw_uniq"),
            migrations.AddConstraint("product", models.UniqueConstraint(
                fields=["legacy_code"], name="product_legacy_code_uniq")),
        ''', {}),
    )
    result = review(shop)
    assert operation_phases(result, "0007_raw_drops") == ["pre-deploy", "pre-deploy", "post-deploy",
                                                          "post-deploy"], \
        describe(result, "0007_raw_drops")
    assert phase(result, "0008_raw_drop_concurrently") == "pre-deploy", \
        describe(result, "0008_raw_drop_concurrently")
    raw_replaced = verdict(result, "0009_raw_unique_replaced")
    assert not raw_replaced.needs_split and raw_replaced.phase.value == "post-deploy", \
        describe(result, "0009_raw_unique_replaced")
    # (the AlterField drops the unique constraint and the LIKE index that served it)
    assert operation_phases(result, "0003_drop_partial_unique") == ["pre-deploy", "pre-deploy"], \
        describe(result, "0003_drop_partial_unique")
    swap = verdict(result, "0004_index_swap")
    assert not swap.needs_split and swap.phase.value == "pre-deploy", describe(result, "0004_index_swap")
    replaced = verdict(result, "0005_unique_constraint")
    assert not replaced.needs_split and replaced.phase.value == "post-deploy", \
        describe(result, "0005_unique_constraint")
    assert phase(result, "0006_customer_nullable") == "pre-deploy", describe(result, "0006_customer_nullable")


def test_a_check_dropped_with_the_column_it_refers_to_goes_with_that_drop(shop):
    establish(shop, "0002_discount", source('''
        migrations.AddField("product", "discount", models.IntegerField(null=True)),
        migrations.AddField("product", "stock", models.PositiveIntegerField(null=True)),
        migrations.AddConstraint("product", models.CheckConstraint(
            condition=models.Q(discount__lte=models.F("price")), name="discount_lte_price")),
        migrations.AddConstraint("product", models.CheckConstraint(
            condition=models.Q(price__gte=0), name="price_gte_0")),
    '''))
    chain(
        shop,
        ("0003_drop_discount", '''
            migrations.RemoveConstraint("product", "discount_lte_price"),
            migrations.RemoveField("product", "discount"),
        ''', {"after": "0002_discount"}),
        # an unrelated check relaxed while a column goes (its own Positive* check goes with it): a split
        ("0004_drop_stock", '''
            migrations.RemoveConstraint("product", "price_gte_0"),
            migrations.RemoveField("product", "stock"),
        ''', {}),
    )
    result = review(shop)
    together = verdict(result, "0003_drop_discount")
    assert not together.needs_split and together.phase.value == "post-deploy", \
        describe(result, "0003_drop_discount")
    assert operation_phases(result, "0004_drop_stock") == ["pre-deploy", "post-deploy"], \
        describe(result, "0004_drop_stock")
