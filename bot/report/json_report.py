"""`--format json`: the output contract of docs/json-output.md, field for field (plus a few extras)."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Mapping

from migration_safe.engine.model import Finding, MigrationVerdict, Operation, Review

from ._common import op_phase, phase_value, severity, span

if TYPE_CHECKING:
    from migration_safe_rules.base import Rule

VERSION = 1


def render(review: Review, *, rules: Mapping[str, Rule] | None = None, **_: object) -> str:
    # `rules` and unknown options are accepted so the CLI can call every format alike.
    return json.dumps(document(review), indent=2, ensure_ascii=False)


def document(review: Review) -> dict[str, Any]:
    """The report as plain data (contract keys first, extras after)."""
    return {
        "version": VERSION,
        "blocking": review.blocking,
        "migrations": [_migration(m) for m in review.migrations],
        # Extras, where the contract is silent.
        "postgres_version": review.postgres_version,
        "django_version": review.django_version,
        "state_cache": review.state_cache,
        "notes": list(review.notes),
    }


def _migration(verdict: MigrationVerdict) -> dict[str, Any]:
    out: dict[str, Any] = {
        "app_label": verdict.file.app_label,
        "name": verdict.file.name,
        "path": verdict.file.path,
        "phase": phase_value(verdict.phase),
        "needs_split": verdict.needs_split,
        "blocking": verdict.blocking,
        "sql_status": verdict.sql_status,
        "sql_error": verdict.sql_error,
        "operations": [_operation(op) for op in verdict.operations],
        "findings": [_finding(verdict, f) for f in verdict.findings],
    }
    if verdict.phase_override is not None:
        out["phase_override"] = {"by": verdict.phase_override.by, "reason": verdict.phase_override.reason}
    if verdict.aliases:  # routers choose the databases: the verdict on each alias it runs on
        out["aliases"] = {a.alias: {"phase": phase_value(a.phase), "needs_split": a.needs_split,
                                    "blocking": a.blocking} for a in verdict.aliases}
    return out


def _operation(op: Operation) -> dict[str, Any]:
    return _with_alias(op.alias, {
        "index": op.index,
        "type": op.type,
        "line": op.line,
        "end_line": op.end_line,
        "description": op.description,
        "phase": op_phase(op),
        "sql": list(op.sql),
        "locks": [{"relation": lock.relation, "mode": lock.mode} for lock in op.locks],
        "rewrites": list(op.rewrites),
    })


def _with_alias(alias: str | None, out: dict[str, Any]) -> dict[str, Any]:
    """`alias` where routers choose the databases: single-database output stays as it was."""
    return out if alias is None else {**out, "alias": alias}


def _finding(verdict: MigrationVerdict, finding: Finding) -> dict[str, Any]:
    line, end_line = span(verdict, finding)
    out: dict[str, Any] = {
        "rule": finding.rule,
        "severity": severity(finding),
        "operation_index": finding.operation_index,
        "line": line,
        "message": finding.message,
        "safe_alternative": finding.safe_alternative,
        "acknowledged": finding.acknowledged,
        "end_line": end_line,
        # The sizes `tables.stats` gives of the tables it locks, scans or rewrites.
        "tables": [{"name": t.name, "rows": t.rows, "bytes": t.bytes} for t in finding.tables],
    }
    if finding.acknowledged and finding.acknowledgement is not None:
        out["acknowledged_by"] = finding.acknowledgement.by
        out["acknowledged_reason"] = finding.acknowledgement.reason
    return _with_alias(finding.alias, out)
