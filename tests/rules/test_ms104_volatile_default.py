"""MS104 volatile-default: a database default computed per row rewrites the table."""
from __future__ import annotations

import pytest

from migration_safe.engine.model import Severity

from .harness import STATS_PATH, configure, describe, findings, line_of, migration, review, source

pytestmark = pytest.mark.slow

IMPORTS = ("import uuid\n"
           "from django.contrib.postgres.functions import RandomUUID\n"
           "from django.db.models.functions import Now, Random")


def test_volatile_database_defaults_fire(shop):
    text = migration(shop, "0002_token", source('''
        migrations.AddField("order", "token", models.UUIDField(db_default=RandomUUID())),
        migrations.AddField("order", "weight", models.FloatField(db_default=Random())),
    ''', imports=IMPORTS))
    result = review(shop)
    found = {f.line: f for f in findings(result, "0002_token", "MS104")}
    assert set(found) == {line_of(text, '"token"'), line_of(text, '"weight"')}
    token = found[line_of(text, '"token"')]
    assert token.severity is Severity.ERROR and token.blocks
    assert token.message == ("Column token is added to shop_order with a volatile default "
                             "(gen_random_uuid()): PostgreSQL fills every row under ACCESS EXCLUSIVE "
                             "(the sandbox saw the table rewritten).")
    assert "(random())" in found[line_of(text, '"weight"')].message
    assert "backfill" in token.safe_alternative


def test_constant_and_stable_defaults_and_new_tables_do_not_fire(shop):
    migration(shop, "0002_defaults", source('''
        migrations.AddField("order", "status", models.IntegerField(db_default=1)),
        migrations.AddField("order", "placed_at", models.DateTimeField(db_default=Now())),
        migrations.AddField("order", "ref", models.UUIDField(null=True, default=uuid.uuid4)),
        migrations.CreateModel("Coupon", fields=[
            ("id", models.BigAutoField(primary_key=True)),
            ("token", models.UUIDField(db_default=RandomUUID())),
        ]),
    ''', imports=IMPORTS))
    result = review(shop)
    assert not findings(result, "0002_defaults", "MS104"), describe(result, "0002_defaults")
    # now() is evaluated once: the table is not rewritten
    assert all(not op.rewrites for op in result.migrations[0].operations)


def test_a_small_table_gets_a_warning(shop):
    configure(shop, f"tables:\n  stats: {STATS_PATH}\n", stats={"shop_order": 120})
    migration(shop, "0002_token", source(
        'migrations.AddField("order", "token", models.UUIDField(db_default=RandomUUID())),',
        imports=IMPORTS))
    found = findings(review(shop), "0002_token", "MS104")
    assert [f.severity for f in found] == [Severity.WARNING]
