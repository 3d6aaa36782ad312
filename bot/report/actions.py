"""`--format github`: GitHub Actions workflow commands (annotations in the PR's diff)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from migration_safe.engine.model import Finding, MigrationVerdict, Review

from ._common import STATIC_FALLBACK, acknowledgement, label, on_database, phase_value, severity, span, with_alternative

if TYPE_CHECKING:
    from migration_safe_rules.base import Rule


def render(review: Review, *, rules: Mapping[str, Rule] | None = None, **_: object) -> str:
    lines = [_finding(m, f, rules or {}) for m in review.migrations for f in m.findings]
    lines += [_summary(m) for m in review.migrations]
    lines += [command("notice", note) for note in review.notes]
    return "".join(line + "\n" for line in lines)


def escape_data(text: str) -> str:
    # GitHub's runner decodes exactly these in a command's message.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    # Property values additionally end at "," and the properties at "::".
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str, **properties: object) -> str:
    props = ",".join(f"{key}={escape_property(str(value))}" for key, value in properties.items())
    return f"::{name}{' ' + props if props else ''}::{escape_data(message)}"


def _finding(verdict: MigrationVerdict, finding: Finding, rules: Mapping[str, Rule]) -> str:
    line, end_line = span(verdict, finding)
    rule = rules.get(finding.rule)
    title = f"{finding.rule} {rule.title}" if rule else finding.rule
    message = on_database(finding) + with_alternative(finding)
    level = severity(finding)
    if finding.acknowledged:
        # Acknowledged errors no longer block: keep them visible, but only as notices.
        level, message = "notice", f"{message} ({acknowledgement(finding)})"
    return command(level, message, file=verdict.file.path, line=line, endLine=end_line, title=title)


def _summary(verdict: MigrationVerdict) -> str:
    if verdict.needs_split:
        text = f"{label(verdict)}: needs split"
    else:
        text = f"{label(verdict)}: phase {phase_value(verdict.phase) or 'unknown'}"
    if verdict.blocking:
        text += " (blocking)"
    if verdict.sql_status != "ok":
        text += f"; SQL unavailable, {STATIC_FALLBACK}"
    return command("notice", text)
