"""Hand-built reviews covering what the formatters must show."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from migration_safe.engine.model import (
    Acknowledgement,
    Finding,
    LockEvent,
    MigrationFile,
    MigrationVerdict,
    Operation,
    Phase,
    Review,
    Severity,
    Statement,
)

# Same fields as migration_safe_rules.base.Rule; that module cannot be imported
# until rules/context.py exists, and the formatters only read these attributes.
@dataclass(frozen=True)
class FakeRule:
    id: str
    name: str
    title: str
    severity: Severity
    why: str
    safe_alternative: str
    example: str


TRICKY = "Column 100% dropped: old code, if any,\nmust be gone"


def _file(app: str, name: str, class_line: int = 5) -> MigrationFile:
    return MigrationFile(path=f"{app}/migrations/{name}.py", name=name, app_label=app, class_line=class_line)


def _add_sku() -> MigrationVerdict:
    sql = 'ALTER TABLE "shop_product" ADD COLUMN "sku" varchar(32) DEFAULT \'\' NOT NULL'
    lock = LockEvent(relation="shop_product", mode="AccessExclusiveLock")
    statement = Statement(sql=sql, locks=[lock, lock], rewrites=["shop_product"], executed=True)
    op = Operation(0, "AddField", 14, 18, "Add field sku to product", statements=[statement], sql_known=True,
                   phase=Phase.PRE_DEPLOY)
    error = Finding("MS102", Severity.ERROR, "NOT NULL column without a database default",
                    "Add the field with db_default, then drop the default later.", operation_index=0, line=14)
    return MigrationVerdict(_file("shop", "0007_add_sku"), [op], [error], Phase.PRE_DEPLOY, False, "ok")


def _remove_legacy() -> MigrationVerdict:
    op = Operation(0, "RemoveField", 9, 12, "Remove field legacy from product", phase=Phase.POST_DEPLOY,
                   statements=[Statement(sql='ALTER TABLE "shop_product" DROP COLUMN "legacy" CASCADE')])
    notice = Finding("MS301", Severity.NOTICE, TRICKY, "", operation_index=0, line=9, end_line=12)
    return MigrationVerdict(_file("shop", "0008_remove_legacy"), [op], [notice], Phase.POST_DEPLOY, False, "ok")


def _backfill() -> MigrationVerdict:
    op = Operation(0, "RunPython", 20, 20, "Raw Python operation", reduces_to_sql=False, phase=Phase.DEFERRED)
    ack = Acknowledgement("MS205", "billing.0003_backfill", by="alice", reason="table has 12 rows")
    acked = Finding("MS205", Severity.ERROR, "Backfill in an atomic migration", "Batch it in a deferred job.",
                    operation_index=0, line=20, acknowledged=True, acknowledgement=ack)
    return MigrationVerdict(_file("billing", "0003_backfill"), [op], [acked], Phase.DEFERRED, False,
                            "unavailable", sql_error="ImportError: No module named 'stripe'")


def _mixed() -> MigrationVerdict:
    ops = [
        Operation(0, "AddField", 10, 10, "Add field note to order", phase=Phase.PRE_DEPLOY),
        Operation(1, "DeleteModel", 11, 11, "Delete model Coupon", phase=Phase.POST_DEPLOY),
    ]
    return MigrationVerdict(_file("shop", "0009_mixed"), ops, [], None, True, "ok")


@pytest.fixture
def review() -> Review:
    return Review([_add_sku(), _remove_legacy(), _backfill(), _mixed()], postgres_version=16, django_version="5.0")


@pytest.fixture
def clean_review() -> Review:
    return Review([_remove_legacy()])


@pytest.fixture
def rules() -> dict[str, FakeRule]:
    return {
        "MS102": FakeRule("MS102", "not-null-without-default", "NOT NULL field without a database default",
                          Severity.ERROR, "Old code's INSERTs fail.", "Use db_default.",
                          "migrations.AddField('product', 'sku', models.CharField(db_default=''))"),
        "MS301": FakeRule("MS301", "destructive-post-deploy", "Destructive step, post-deploy",
                          Severity.NOTICE, "Old code must be gone.", "Run after the deploy.", ""),
    }
