"""GitHub-flavoured markdown for the check run's summary/text and the PR comment."""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from migration_safe.engine.model import Finding, MigrationVerdict, Operation, Review

from ._common import (
    DOCS_URL,
    STATIC_FALLBACK,
    acknowledgement,
    count_text,
    label,
    op_phase,
    phase_value,
    severity,
    span,
    with_alternative,
)

if TYPE_CHECKING:
    from migration_safe_rules.base import Rule

LIMIT = 65535  # GitHub's check-run output limit per field (summary, text)


def render(
    review: Review,
    *,
    rules: Mapping[str, Rule] | None = None,
    docs_url: str = DOCS_URL,
    limit: int = LIMIT,
    **_: object,
) -> str:
    """Summary and SQL in one document (a PR comment); the SQL part is cut to fit `limit`."""
    head = summary(review, rules=rules, docs_url=docs_url)
    return head + "\n" + sql_text(review, limit=max(0, limit - len(head) - 1))


def summary(review: Review, *, rules: Mapping[str, Rule] | None = None, docs_url: str = DOCS_URL) -> str:
    rules = rules or {}
    pairs = [(m, f) for m in review.migrations for f in m.findings]
    blocking = [reason for m in review.migrations for reason in _blocking(m, rules, docs_url)]
    others = [_finding(m, f, rules, docs_url) for m, f in pairs if not f.blocks and not f.acknowledged]
    acked = [f"{_finding(m, f, rules, docs_url)} ({_cell(acknowledgement(f))})" for m, f in pairs if f.acknowledged]
    parts = [
        _heading(review),
        _table(review),
        _section("Blocking", blocking),
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
    rows = ["| migration | phase | blocking | findings |", "|---|---|---|---|"]
    for m in review.migrations:
        phase = f"**{_phase(m)}**" if m.needs_split else _phase(m)
        blocking = "**yes**" if m.blocking else "no"
        rows.append(f"| `{label(m)}` | {phase} | {blocking} | {count_text(m.findings)} |")
    return "\n".join(rows)


def _blocking(verdict: MigrationVerdict, rules: Mapping[str, Rule], docs_url: str) -> list[str]:
    reasons = []
    if verdict.needs_split:
        reasons.append(f"`{label(verdict)}` mixes deploy phases and must be split ({_phases(verdict.operations)})")
    reasons += [_finding(verdict, f, rules, docs_url) for f in verdict.findings if f.blocks]
    return reasons


def _phases(operations: list[Operation]) -> str:
    by_phase: dict[str, list[str]] = {}
    for op in operations:
        by_phase.setdefault(op_phase(op) or "no phase", []).append(str(op.index))
    return "; ".join(f"{phase}: operations {', '.join(ix)}" for phase, ix in by_phase.items())


def _finding(verdict: MigrationVerdict, finding: Finding, rules: Mapping[str, Rule], docs_url: str) -> str:
    line, _end = span(verdict, finding)
    rule = rules.get(finding.rule)
    title = f" {_cell(rule.title)}" if rule else ""
    link = f"[{finding.rule}]({docs_url}#{finding.rule.lower()})"
    return f"{severity(finding)} {link}{title} at `{verdict.file.path}:{line}`: {_cell(with_alternative(finding))}"


def _notes(review: Review) -> str:
    notes = [f"> **Note:** {_cell(n)}" for n in review.notes]
    for m in review.migrations:
        if m.sql_status != "ok":
            error = f" ({_cell(m.sql_error)})" if m.sql_error else ""
            notes.append(f"> **Note:** SQL was unavailable for `{label(m)}`{error}: {STATIC_FALLBACK}.")
    return "\n>\n".join(notes)


def _section(title: str, items: list[str]) -> str:
    return f"### {title}\n\n" + "\n".join(f"- {item}" for item in items) if items else ""


def _cell(text: str) -> str:
    # One line, and no "|" that would break a table row.
    return " ".join(text.split()).replace("|", "\\|")


def sql_text(review: Review, limit: int = LIMIT) -> str:
    """The SQL per migration in ```sql blocks, never longer than `limit` characters."""
    sections = [_sql_section(m) for m in review.migrations]
    full = "\n".join(sections)
    if len(full) <= limit:
        return full
    return _truncate(sections, limit)


def _phase(verdict: MigrationVerdict) -> str:
    return "needs split" if verdict.needs_split else phase_value(verdict.phase) or "unknown"


def _sql_section(verdict: MigrationVerdict) -> str:
    header = f"### `{label(verdict)}` ({_phase(verdict)})\n"
    if verdict.sql_status != "ok":
        error = f": {_cell(verdict.sql_error)}" if verdict.sql_error else ""
        return header + f"\n_SQL unavailable{error}._\n"
    return header + "\n```sql\n" + "\n".join(_statements(op) for op in verdict.operations) + "```\n"


def _statements(op: Operation) -> str:
    head = f"-- [{op.index}] {op.type} (line {op.line}): {_one_line(op.description)}\n"
    if not op.sql:
        return head + "-- (no SQL)\n"
    return head + "".join(sql.rstrip().rstrip(";") + ";\n" for sql in op.sql)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _truncate(sections: list[str], limit: int) -> str:
    note = f"\n_… SQL truncated to fit GitHub's {limit}-character limit; run `migration-safe check` for all of it._\n"
    room = limit - len(note)
    if room <= 0:
        short = "_SQL truncated._\n"  # a cut-off note would be broken markdown
        return short if len(short) <= limit else ""
    kept: list[str] = []
    size = len("```\n")  # always leave room to close an open ```sql fence
    for line in "\n".join(sections).splitlines(keepends=True):
        size += len(line)
        if size > room:
            break
        kept.append(line)
    if sum(line.startswith("```") for line in kept) % 2:
        kept.append("```\n")
    return "".join(kept) + note
