from __future__ import annotations

import json
from typing import Any

from migration_safe.engine.model import Review
from migration_safe.report import sarif


def load(review: Review, **opts: Any) -> dict[str, Any]:
    return json.loads(sarif.render(review, **opts))


def test_envelope(review: Review, rules: dict) -> None:
    doc = load(review, rules=rules)
    assert doc["version"] == "2.1.0"
    assert doc["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    (run,) = doc["runs"]
    assert run["tool"]["driver"]["name"] == "migration-safe"
    assert run["tool"]["driver"]["informationUri"].startswith("https://")


def test_rule_descriptors(review: Review, rules: dict) -> None:
    descriptors = load(review, rules=rules)["runs"][0]["tool"]["driver"]["rules"]
    assert [d["id"] for d in descriptors] == ["MS102", "MS205", "MS301"]  # MS205: used, not in mapping
    ms102 = descriptors[0]
    assert ms102["name"] == "not-null-without-default"
    assert ms102["shortDescription"]["text"] == "NOT NULL field without a database default"
    assert ms102["fullDescription"]["text"] == "Old code's INSERTs fail."
    assert "Use db_default." in ms102["help"]["text"] and "db_default=''" in ms102["help"]["text"]
    assert ms102["defaultConfiguration"]["level"] == "error"
    assert descriptors[2]["defaultConfiguration"]["level"] == "note"


def test_results_levels_locations_suppressions(review: Review, rules: dict) -> None:
    run = load(review, rules=rules)["runs"][0]
    results = run["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [("MS102", "error"), ("MS301", "note"), ("MS205", "error")]
    for r in results:
        assert run["tool"]["driver"]["rules"][r["ruleIndex"]]["id"] == r["ruleId"]
    location = results[0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "shop/migrations/0007_add_sku.py"
    assert location["region"] == {"startLine": 14, "endLine": 18}
    assert "Safe alternative" in results[0]["message"]["text"]
    assert "suppressions" not in results[0]
    assert results[2]["suppressions"] == [{"kind": "external", "justification": "table has 12 rows"}]


def test_without_rules_mapping(clean_review: Review) -> None:
    run = load(clean_review)["runs"][0]
    assert run["tool"]["driver"]["rules"] == [{"id": "MS301"}]
    assert run["results"][0]["ruleIndex"] == 0
