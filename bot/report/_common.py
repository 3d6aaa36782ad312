"""Small helpers shared by the report formatters."""
from __future__ import annotations

import os
from collections import Counter
from typing import Iterable

from migration_safe.engine.model import Finding, MigrationVerdict, Operation, Phase, Review, Severity

DOCS_URL = "https://github.com/migration-safe/migration-safe/blob/main/README.md"  # its rule table
DOCS_URL_ENV = "MIGRATION_SAFE_DOCS_URL"  # where a team publishes the built docs/ site
INFORMATION_URI = "https://github.com/migration-safe/migration-safe"
SEVERITIES = ("error", "warning", "notice")


def rule_url(rule_id: str, docs_url: str | None = None) -> str:
    """A rule's page on the built docs site (`docs_url`, else $MIGRATION_SAFE_DOCS_URL), else the
    README's rule table: the App has no public home for the site yet."""
    base = docs_url or os.environ.get(DOCS_URL_ENV) or DOCS_URL
    if base == DOCS_URL:
        return f"{DOCS_URL}#rule-catalogue"
    return f"{base.rstrip('/')}/rules/{rule_id}/"
STATIC_FALLBACK = ("the review fell back to static analysis and did not verify the SQL: the database "
                   "side (locks, rewrites, scans) was not checked")


def phase_value(phase: Phase | str | None) -> str | None:
    return None if phase is None else Phase(phase).value


def op_phase(op: Operation) -> str | None:
    # getattr: the verdict stage owns Operation.phase; older objects may lack it.
    return phase_value(getattr(op, "phase", None))


def by_phase(operations: list[Operation]) -> dict[str, list[Operation]]:
    """A migration's operations grouped by deploy phase, in order: what a split separates."""
    groups: dict[str, list[Operation]] = {}
    for op in operations:
        groups.setdefault(op_phase(op) or "no phase", []).append(op)
    return groups


def severity(finding: Finding) -> str:
    return Severity(finding.severity).value


def label(verdict: MigrationVerdict) -> str:
    return f"{verdict.file.app_label}.{verdict.file.name}"


def span(verdict: MigrationVerdict, finding: Finding) -> tuple[int, int]:
    """Lines a finding points at: its own, else its operation's, else the class line.

    Every surface (annotations, SARIF regions, text) needs a line to anchor to.
    """
    op = _operation(verdict, finding.operation_index)
    start = finding.line or (op.line if op else None) or verdict.file.class_line or 1
    end = finding.end_line or (op.end_line if op and finding.line in (None, op.line) else None)
    return start, max(start, end or start)


def _operation(verdict: MigrationVerdict, index: int | None) -> Operation | None:
    if index is None:
        return None
    return next((op for op in verdict.operations if op.index == index), None)


def acknowledgement(finding: Finding) -> str:
    ack = finding.acknowledgement
    if ack is None:
        return "acknowledged"
    who = f"acknowledged by {ack.by}" + (f" on {ack.at}" if ack.at else "")
    return f"{who}: {ack.reason}" if ack.reason else who


def on_database(finding: Finding) -> str:
    """Where routers choose the databases, the alias the finding is about, as a message's opening."""
    return f"On database {finding.alias}: " if finding.alias else ""


def with_alternative(finding: Finding) -> str:
    """The message followed by its safe alternative, as one sentence-ish string."""
    message = finding.message.rstrip()
    if not finding.safe_alternative:
        return message
    if message and message[-1] not in ".!?":
        message += "."
    return f"{message} Safe alternative: {finding.safe_alternative.strip()}"


def counts(findings: Iterable[Finding]) -> Counter[str]:
    return Counter(severity(f) for f in findings)


def all_findings(review: Review) -> list[Finding]:
    return [f for m in review.migrations for f in m.findings]


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def count_text(findings: Iterable[Finding]) -> str:
    """Like "1 error, 0 warnings, 2 notices"."""
    tally = counts(findings)
    return ", ".join(plural(tally[s], s) for s in SEVERITIES)
