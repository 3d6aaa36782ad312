"""GitHub-flavoured markdown for the check run's summary/text and the PR comment.

Every string the pull request controls goes through `markup` (code spans, fences, escaped prose).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from migration_safe.engine.model import AliasVerdict, Finding, MigrationVerdict, Operation, Review

from . import markup
from ._common import (
    STATIC_FALLBACK,
    by_phase,
    count_text,
    label,
    phase_value,
    rule_url,
    severity,
    span,
    with_alternative,
)

if TYPE_CHECKING:
    from migration_safe_rules.base import Rule

LIMIT = markup.CHECK_RUN_LIMIT  # per field (summary, text), in bytes: GitHub counts bytes


def render(
    review: Review,
    *,
    rules: Mapping[str, Rule] | None = None,
    docs_url: str | None = None,
    limit: int = LIMIT,
    left: list[str] | None = None,
    **_: object,
) -> str:
    """Summary and SQL in one document (a PR comment), clipped to `limit` bytes: the SQL goes first.
    `left`: what `migration-safe fix` leaves for people, each with why."""
    head = summary(review, rules=rules, docs_url=docs_url, left=left)
    return markup.clip_body(head + "\n" + sql_text(review, limit=10**9), limit, _clipped_note(limit))


def summary(review: Review, *, rules: Mapping[str, Rule] | None = None, docs_url: str | None = None,
            left: list[str] | None = None) -> str:
    rules = rules or {}
    pairs = [(m, f) for m in review.migrations for f in m.findings]
    blocking = [reason for m in review.migrations for reason in _blocking(m, rules, docs_url)]
    others = [_finding(m, f, rules, docs_url) for m, f in pairs if not f.blocks and not f.acknowledged]
    acked = [f"{_finding(m, f, rules, docs_url)} ({_acknowledgement(f)})" for m, f in pairs if f.acknowledged]
    parts = [
        _heading(review),
        _table(review),
        _section("Blocking", blocking),
        _section("Left for you by `migration-safe fix`, and why", [markup.prose(line) for line in left or []]),
        _section("Other findings", others),
        _section("Acknowledged", acked),
        _notes(review),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def _heading(review: Review) -> str:
    n = len(review.migrations)
    blocking = sum(m.blocking for m in review.migrations)
    if blocking:
        return f"## ❌ migration-safe: {blocking} of {n} migration(s) must change before merge"
    if review.sql_unavailable:
        return f"## ⚠️ migration-safe: nothing blocks in {n} migration(s), but the SQL was not verified"
    return f"## ✅ migration-safe: {n} migration(s), nothing blocks"


def _table(review: Review) -> str:
    if any(m.aliases for m in review.migrations):
        return _alias_table(review)
    rows = ["| migration | phase | blocking | findings |", "|---|---|---|---|"]
    for m in review.migrations:
        phase = f"**{_phase(m)}**" if m.needs_split else _phase(m)
        blocking = "**yes**" if m.blocking else "no"
        rows.append(f"| {markup.code(label(m), table=True)} | {phase} | {blocking} | {count_text(m.findings)} |")
    return "\n".join(rows)


def _alias_table(review: Review) -> str:
    """Where routers choose the databases: a row per migration and alias it runs on."""
    rows = ["| migration | database | phase | blocking | findings |", "|---|---|---|---|---|"]
    for m in review.migrations:
        for a in m.aliases or [AliasVerdict("", m.phase, m.needs_split, m.blocking)]:
            phase = "**needs split**" if a.needs_split else phase_value(a.phase) or "unknown"
            found = [f for f in m.findings if f.alias == (a.alias or None)]
            alias = markup.code(a.alias, table=True) if a.alias else "-"
            rows.append(f"| {markup.code(label(m), table=True)} | {alias} | {phase} "
                        f"| {'**yes**' if a.blocking else 'no'} | {count_text(found)} |")
    return "\n".join(rows)


def _blocking(verdict: MigrationVerdict, rules: Mapping[str, Rule], docs_url: str | None) -> list[str]:
    reasons = []
    for a in (a for a in verdict.aliases if a.needs_split):
        reasons.append(f"{markup.code(label(verdict))} mixes deploy phases on database {markup.code(a.alias)} "
                       f"and must be split ({_phases([op for op in verdict.operations if op.alias == a.alias])})")
    if verdict.needs_split and not any(a.needs_split for a in verdict.aliases):
        where = " across its databases" if verdict.aliases else ""
        reasons.append(f"{markup.code(label(verdict))} mixes deploy phases{where} and must be split "
                       f"({_phases(verdict.operations)})")
    reasons += [_finding(verdict, f, rules, docs_url) for f in verdict.findings if f.blocks]
    return reasons


def _phases(operations: list[Operation]) -> str:
    return "; ".join(f"{phase}: operations {', '.join(str(op.index) for op in ops)}"
                     for phase, ops in by_phase(operations).items())


def _finding(verdict: MigrationVerdict, finding: Finding, rules: Mapping[str, Rule], docs_url: str | None) -> str:
    line, _end = span(verdict, finding)
    rule = rules.get(finding.rule)
    title = f" {markup.prose(rule.title)}" if rule else ""
    link = f"[{markup.prose(finding.rule, 20)}]({rule_url(finding.rule, docs_url)})"
    where = f" on database {markup.code(finding.alias)}" if finding.alias else ""
    return (f"{severity(finding)} {link}{title} at {markup.code(f'{verdict.file.path}:{line}')}{where}: "
            f"{markup.prose(with_alternative(finding))}")


def _acknowledgement(finding: Finding) -> str:
    ack = finding.acknowledgement
    if ack is None:
        return "acknowledged"
    who = f"acknowledged by {markup.prose(ack.by, markup.NAME_LIMIT)}"
    who += f" on {markup.prose(ack.at, 40)}" if ack.at else ""
    return f"{who}: {markup.prose(ack.reason)}" if ack.reason else who


def _notes(review: Review) -> str:
    notes = [f"> **Note:** {markup.prose(n)}" for n in review.notes]
    for m in review.migrations:
        if m.sql_status != "ok":
            error = f" ({markup.code(m.sql_error, markup.TEXT_LIMIT)})" if m.sql_error else ""
            notes.append(f"> **Note:** SQL was unavailable for {markup.code(label(m))}{error}: {STATIC_FALLBACK}.")
    return "\n>\n".join(notes)


def _section(title: str, items: list[str]) -> str:
    return f"### {title}\n\n" + "\n".join(f"- {item}" for item in items) if items else ""


def sql_text(review: Review, limit: int = LIMIT) -> str:
    """The SQL per migration in sql code blocks, never longer than `limit` bytes."""
    full = "\n".join(_sql_section(m) for m in review.migrations)
    return markup.clip_body(full, limit, _clipped_note(limit))


def _clipped_note(limit: int) -> str:
    note = f"\n\n_… truncated to fit GitHub's {limit}-byte limit; run `migration-safe check` for all of it._\n"
    return note if markup.size(note) < limit // 2 else "\n_SQL truncated._\n"


def _phase(verdict: MigrationVerdict) -> str:
    return "needs split" if verdict.needs_split else phase_value(verdict.phase) or "unknown"


def _sql_section(verdict: MigrationVerdict) -> str:
    if verdict.aliases:
        return "\n".join(_alias_sql_section(verdict, a) for a in verdict.aliases)
    header = f"### {markup.code(label(verdict))} ({_phase(verdict)})\n"
    if verdict.sql_status != "ok":
        error = f": {markup.code(verdict.sql_error, markup.TEXT_LIMIT)}" if verdict.sql_error else ""
        return header + f"\n_SQL unavailable_{error}\n"
    return header + "\n" + markup.fence("\n".join(_statements(op) for op in verdict.operations), "sql")


def _alias_sql_section(verdict: MigrationVerdict, on: AliasVerdict) -> str:
    """What `sqlmigrate --database ALIAS` prints for the migration, with its phase there."""
    phase = "needs split" if on.needs_split else phase_value(on.phase) or "unknown"
    header = f"### {markup.code(label(verdict))} on {markup.code(on.alias)} ({phase})\n"
    if verdict.sql_status != "ok":
        return header + "\n_SQL unavailable_\n"
    statements = "\n".join(_statements(op) for op in verdict.operations if op.alias == on.alias)
    return header + "\n" + markup.fence(statements, "sql")


def _statements(op: Operation) -> str:
    head = f"-- [{op.index}] {op.type} (line {op.line}): {markup.clip(_one_line(op.description), markup.TEXT_LIMIT)}\n"
    if not op.sql:
        return head + "-- (no SQL)\n"
    return head + "".join(sql.rstrip().rstrip(";") + ";\n" for sql in op.sql)


def _one_line(text: str) -> str:
    return " ".join(text.split())
