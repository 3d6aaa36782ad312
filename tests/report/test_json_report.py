from __future__ import annotations

import json
from typing import Any

from migration_safe.engine.model import Review
from migration_safe.report import json_report

PHASES = {"pre-deploy", "post-deploy", "deferred", None}
SEVERITIES = {"error", "warning", "notice"}
NULLABLE_STR = (str, type(None))
NULLABLE_INT = (int, type(None))

# docs/json-output.md: key -> type(s), or a nested contract for list items.
OPERATION = {
    "index": int, "type": str, "line": int, "end_line": int, "description": str, "phase": NULLABLE_STR,
    "sql": [str], "locks": [{"relation": str, "mode": str}], "rewrites": [str],
}
FINDING = {
    "rule": str, "severity": str, "operation_index": NULLABLE_INT, "line": int,
    "message": str, "safe_alternative": str, "acknowledged": bool,
}
MIGRATION = {
    "app_label": str, "name": str, "path": str, "phase": NULLABLE_STR, "needs_split": bool, "blocking": bool,
    "sql_status": str, "sql_error": NULLABLE_STR, "operations": [OPERATION], "findings": [FINDING],
}
CONTRACT = {"version": int, "blocking": bool, "migrations": [MIGRATION]}


def check_contract(value: Any, spec: Any, where: str = "$") -> None:
    """Walks the document: every contract key present with the right type (extras allowed)."""
    if isinstance(spec, dict):
        assert isinstance(value, dict), where
        for key, sub in spec.items():
            assert key in value, f"{where}.{key} missing"
            check_contract(value[key], sub, f"{where}.{key}")
    elif isinstance(spec, list):
        assert isinstance(value, list), where
        for i, item in enumerate(value):
            check_contract(item, spec[0], f"{where}[{i}]")
    else:
        # bool is an int subclass: never accept it where an int is meant.
        assert not (isinstance(value, bool) and spec is int), where
        assert isinstance(value, spec), f"{where}: {value!r}"


def load(review: Review) -> dict[str, Any]:
    return json.loads(json_report.render(review))


def test_every_contract_key_with_its_type(review: Review) -> None:
    doc = load(review)
    check_contract(doc, CONTRACT)
    assert doc["version"] == 1
    for m in doc["migrations"]:
        assert m["phase"] in PHASES and m["sql_status"] in {"ok", "unavailable"}
        assert all(f["severity"] in SEVERITIES for f in m["findings"])
        assert all(op["phase"] in PHASES for op in m["operations"])


def test_checker_catches_a_missing_key(review: Review) -> None:
    doc = load(review)
    del doc["migrations"][0]["findings"][0]["acknowledged"]
    try:
        check_contract(doc, CONTRACT)
    except AssertionError as e:
        assert "acknowledged" in str(e)
    else:
        raise AssertionError("missing key not detected")


def test_values_as_given(review: Review) -> None:
    doc = load(review)
    assert doc["blocking"] is True
    add_sku, remove, backfill, mixed = doc["migrations"]
    assert (add_sku["phase"], add_sku["needs_split"], add_sku["blocking"]) == ("pre-deploy", False, True)
    assert (remove["phase"], remove["blocking"]) == ("post-deploy", False)
    assert (mixed["phase"], mixed["needs_split"], mixed["blocking"]) == (None, True, True)
    assert [op["phase"] for op in mixed["operations"]] == ["pre-deploy", "post-deploy"]
    assert add_sku["path"] == "shop/migrations/0007_add_sku.py"
    op = add_sku["operations"][0]
    assert op["locks"] == [{"relation": "shop_product", "mode": "AccessExclusiveLock"}]  # deduplicated
    assert op["rewrites"] == ["shop_product"] and op["sql"][0].startswith("ALTER TABLE")
    expected = {"rule": "MS102", "severity": "error", "line": 14, "operation_index": 0, "acknowledged": False}
    assert add_sku["findings"][0].items() >= expected.items()


def test_unavailable_sql_and_acknowledgement(review: Review) -> None:
    backfill = load(review)["migrations"][2]
    assert backfill["sql_status"] == "unavailable" and "stripe" in backfill["sql_error"]
    assert backfill["blocking"] is False
    finding = backfill["findings"][0]
    assert finding["acknowledged"] is True
    assert (finding["acknowledged_by"], finding["acknowledged_reason"]) == ("alice", "table has 12 rows")


def test_not_blocking_and_deterministic(clean_review: Review) -> None:
    assert load(clean_review)["blocking"] is False
    assert json_report.render(clean_review) == json_report.render(clean_review)
    assert json_report.render(clean_review).startswith('{\n  "version": 1,')
