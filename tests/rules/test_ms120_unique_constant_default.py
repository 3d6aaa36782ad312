"""MS120 unique-constant-default: a UNIQUE column that Django fills with one value for every row."""
from __future__ import annotations

import pytest

from migration_safe.engine.model import Severity

from .harness import describe, findings, line_of, migration, review, source, verdict

pytestmark = pytest.mark.slow


def test_a_unique_column_with_a_constant_default_fires(shop):
    text = migration(shop, "0002_codes", source('''
        migrations.AddField("customer", "code", models.CharField(max_length=10, unique=True, default="x"),
                            preserve_default=False),
        migrations.AddField("product", "ref", models.IntegerField(unique=True, db_default=0)),
    '''))
    result = review(shop)
    found = {f.line: f for f in findings(result, "0002_codes", "MS120")}
    assert set(found) == {line_of(text, '"code"'), line_of(text, '"ref"')}, describe(result, "0002_codes")
    code = found[line_of(text, '"code"')]
    assert code.severity is Severity.ERROR and code.blocks
    assert code.message == ("Column code is added to existing table shop_customer as UNIQUE with the default "
                            "'x': every existing row gets that one value, so the migration fails as soon as "
                            "the table holds two rows (the sandbox's tables are empty, production's are not).")


def test_nullable_volatile_or_new_tables_do_not_fire(shop):
    migration(shop, "0002_codes", source('''
        migrations.AddField("customer", "code", models.CharField(max_length=10, unique=True, null=True)),
        migrations.AddField("product", "token", models.UUIDField(unique=True, db_default=models.Func(
            function="gen_random_uuid"))),
        migrations.CreateModel("Coupon", fields=[("id", models.BigAutoField(primary_key=True))]),
        migrations.AddField("coupon", "code", models.CharField(max_length=9, unique=True, default="x"),
                            preserve_default=False),
    '''))
    result = review(shop)
    assert not findings(result, "0002_codes", "MS120"), describe(result, "0002_codes")
    token = verdict(result, "0002_codes").operations[1].statements[0]
    assert "gen_random_uuid()" in token.sql and not token.error
