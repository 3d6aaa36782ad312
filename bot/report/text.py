"""`--format text` (the default): a terminal report for people."""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from migration_safe.engine.model import Finding, MigrationVerdict, Operation, Review

from ._common import (
    STATIC_FALLBACK,
    acknowledgement,
    all_findings,
    by_phase,
    count_text,
    label,
    op_phase,
    phase_value,
    severity,
    span,
)

if TYPE_CHECKING:
    from migration_safe_rules.base import Rule

_CODES = {"error": "31", "warning": "33", "notice": "36", "bold": "1", "dim": "2"}


class _Paint:
    """Wraps text in ANSI codes only when colour is on (the CLI decides: isatty, NO_COLOR)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, style: str) -> str:
        if not self.enabled or not text:
            return text
        codes = ";".join(_CODES[s] for s in style.split("+"))
        return f"\x1b[{codes}m{text}\x1b[0m"


def render(
    review: Review,
    *,
    rules: Mapping[str, Rule] | None = None,
    color: bool = False,
    show_sql: bool = True,
    **_: object,
) -> str:
    paint = _Paint(color)
    lines: list[str] = []
    for verdict in review.migrations:
        lines += _migration(verdict, paint, show_sql)
        lines.append("")
    lines += [f"note: {note}" for note in review.notes]
    lines += _summary(review, paint)
    return "\n".join(lines) + "\n"


def _migration(verdict: MigrationVerdict, paint: _Paint, show_sql: bool) -> list[str]:
    lines = [_header(verdict, paint)]
    if verdict.needs_split:
        lines.append("  " + paint(_split_reason(verdict), "error"))
    if verdict.sql_status != "ok":
        detail = f": {verdict.sql_error}" if verdict.sql_error else ""
        lines.append("  " + paint(f"SQL unavailable{detail} ({STATIC_FALLBACK})", "warning"))
    for op in verdict.operations:
        lines += _operation(op, show_sql)
    lines += [line for f in verdict.findings for line in _finding(verdict, f, paint)]
    return lines


def _header(verdict: MigrationVerdict, paint: _Paint) -> str:
    parts = [paint(label(verdict), "bold"), verdict.file.path]
    if verdict.needs_split:
        parts.append(paint("NEEDS SPLIT", "error+bold"))
    else:
        phase = f"phase: {phase_value(verdict.phase) or 'unknown'}"
        if verdict.phase_override is not None:
            phase += f" (set by {verdict.phase_override.by}: {verdict.phase_override.reason})"
        parts.append(phase)
    if verdict.aliases:  # routers choose the databases: its verdict on each
        parts.append("databases: " + ", ".join(
            f"{a.alias} {'needs split' if a.needs_split else phase_value(a.phase)}" for a in verdict.aliases))
    if verdict.blocking:
        parts.append(paint("BLOCKING", "error+bold"))
    return "  ".join(parts)


def _split_reason(verdict: MigrationVerdict) -> str:
    groups = "; ".join(f"{phase}: {', '.join(f'[{op.index}] {op.type}' for op in ops)}"
                       for phase, ops in by_phase(verdict.operations).items())
    return (f"needs split: its operations belong to different deploy phases ({groups}), and one "
            "migration runs in one phase; `migration-safe fix` writes one migration per phase")


def _operation(op: Operation, show_sql: bool) -> list[str]:
    lines_span = f"line {op.line}" if op.end_line in (None, op.line) else f"lines {op.line}-{op.end_line}"
    head = f"  [{op.index}] {op.type}  {lines_span}  {op_phase(op) or '-'}  {op.description}"
    head += f"  (on {op.alias})" if op.alias else ""
    lines = [head]
    effects = _effects(op)
    if effects:
        lines.append(f"      {effects}")
    if op.error:
        lines.append(f"      sandbox error: {op.error}")
    if show_sql:
        lines += ["      " + line for sql in op.sql for line in sql.strip().splitlines()]
    return lines


def _effects(op: Operation) -> str:
    parts = []
    if op.locks:
        parts.append("locks: " + ", ".join(f"{lock.relation} {lock.mode}" for lock in op.locks))
    if op.rewrites:
        parts.append("rewrites: " + ", ".join(op.rewrites))
    return "; ".join(parts)


def _finding(verdict: MigrationVerdict, finding: Finding, paint: _Paint) -> list[str]:
    sev = severity(finding)
    line, _end = span(verdict, finding)
    where = f"  on {finding.alias}" if finding.alias else ""
    head = f"  {verdict.file.path}:{line}{where}  {paint(sev, sev)}  {finding.rule}  {_indent(finding.message, 4)}"
    lines = [head]
    if finding.acknowledged:
        lines.append("    " + paint(acknowledgement(finding), "dim"))
    if finding.safe_alternative:
        lines.append("    safe: " + _indent(finding.safe_alternative.strip(), 10))
    return lines


def _indent(text: str, width: int) -> str:
    # Continuation lines stay under their finding instead of starting at column 0.
    return text.replace("\n", "\n" + " " * width)


def _summary(review: Review, paint: _Paint) -> list[str]:
    findings = all_findings(review)
    acked = sum(f.acknowledged for f in findings)
    text = f"{len(review.migrations)} migration(s): {count_text(findings)}"
    if acked:
        text += f" ({acked} acknowledged)"
    text += "; blocking: " + (paint("yes", "error+bold") if review.blocking else "no")
    lines = [text]
    missing = [label(m) for m in review.migrations if m.sql_status != "ok"]
    if missing:
        lines.append(paint(f"SQL UNAVAILABLE for {', '.join(missing)}: {STATIC_FALLBACK}.", "warning+bold"))
    return lines
