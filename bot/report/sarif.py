"""`--format sarif`: SARIF 2.1.0 for GitHub code scanning and other SARIF viewers."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Mapping

from migration_safe.engine.model import Finding, MigrationVerdict, Review, Severity

from ._common import INFORMATION_URI, on_database, rule_url, severity, span, with_alternative

if TYPE_CHECKING:
    from migration_safe_rules.base import Rule

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {"error": "error", "warning": "warning", "notice": "note"}


def render(
    review: Review,
    *,
    rules: Mapping[str, Rule] | None = None,
    docs_url: str | None = None,
    **_: object,
) -> str:
    return json.dumps(document(review, rules=rules, docs_url=docs_url), indent=2, ensure_ascii=False)


def document(review: Review, *, rules: Mapping[str, Rule] | None = None, docs_url: str | None = None) -> dict[str, Any]:
    descriptors = _descriptors(review, rules or {}, docs_url)
    index = {d["id"]: i for i, d in enumerate(descriptors)}
    results = [_result(m, f, index) for m in review.migrations for f in m.findings]
    driver = {"name": "migration-safe", "informationUri": INFORMATION_URI, "rules": descriptors}
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [{"tool": {"driver": driver}, "results": results}]}


def _descriptors(review: Review, rules: Mapping[str, Rule], docs_url: str | None) -> list[dict[str, Any]]:
    # Every ruleId a result uses must resolve, even for a rule missing from `rules`.
    used = {f.rule for m in review.migrations for f in m.findings}
    ids = sorted(set(rules) | used)
    return [_descriptor(rules[i], docs_url) if i in rules else {"id": i} for i in ids]


def _descriptor(rule: Rule, docs_url: str | None) -> dict[str, Any]:
    help_text = "\n\n".join(part for part in (rule.safe_alternative, rule.example) if part)
    return {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.why},
        "help": {"text": help_text},
        "helpUri": rule_url(rule.id, docs_url),
        "defaultConfiguration": {"level": LEVELS[Severity(rule.severity).value]},
    }


def _result(verdict: MigrationVerdict, finding: Finding, index: Mapping[str, int]) -> dict[str, Any]:
    line, end_line = span(verdict, finding)
    location = {
        "physicalLocation": {
            "artifactLocation": {"uri": verdict.file.path, "uriBaseId": "%SRCROOT%"},
            "region": {"startLine": line, "endLine": end_line},
        }
    }
    result: dict[str, Any] = {
        "ruleId": finding.rule,
        "ruleIndex": index[finding.rule],
        "level": LEVELS[severity(finding)],
        "message": {"text": on_database(finding) + with_alternative(finding)},
        "locations": [location],
    }
    if finding.acknowledged:
        reason = finding.acknowledgement.reason if finding.acknowledgement else ""
        result["suppressions"] = [{"kind": "external", "justification": reason}]
    return result
