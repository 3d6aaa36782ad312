"""Phases, rules, acknowledgements -> one verdict per migration."""
from __future__ import annotations

from dataclasses import dataclass, field

from migration_safe.config import Config
from migration_safe.engine.model import (
    Acknowledgement, Finding, MigrationFile, MigrationVerdict, Operation, Phase, PhaseOverride, Severity,
    Squash, StatementKind,
)
from migration_safe.engine.review.phases import (
    Placement, keep_replacements_together, migration_phase, refuse_phase, touches_large,
)
from migration_safe.engine.review.stats import quote_sizes
from migration_safe_rules import catalogue
from migration_safe_rules.context import MigrationContext

FILE_ONLY_RULES = {"MS001", "MS003", "MS009"}  # all a modified, unchanged or unreadable file gets


@dataclass
class Analysed:
    """One migration ready for judgement."""

    file: MigrationFile
    operations: list[Operation]
    sql_known: bool
    sql_error: str | None = None
    notes: list[str] = field(default_factory=list)
    tables_before: dict = field(default_factory=dict)
    squash: Squash | None = None


def decide(migrations: list[Analysed], config: Config, pg_major: int,
           acknowledgements: list[Acknowledgement] = (),
           overrides: dict[str, PhaseOverride] | None = None,
           django_version: str | None = None) -> list[MigrationVerdict]:
    new_tables, new_columns, new_models = created_by_review(migrations)
    placement = Placement(config, new_tables, new_columns)
    phases: dict[str, Phase | None] = {}
    splits: dict[str, bool] = {}
    for item in migrations:
        for operation in item.operations:
            operation.phase = placement.operation(operation, item.sql_known, item.tables_before)
        keep_replacements_together(item.operations, item.tables_before)
        phases[item.file.label], splits[item.file.label] = migration_phase(
            [op.phase for op in item.operations if op.phase])
    applied = apply_overrides(migrations, overrides or {}, phases, splits, config)
    files = {item.file.label: item.file for item in migrations}
    verdicts = []
    for item in migrations:
        ctx = MigrationContext(
            migration=item.file, operations=item.operations, config=config, sql_known=item.sql_known,
            pg_major=pg_major, tables_before=item.tables_before, new_tables=new_tables,
            new_models=new_models, phases=phases, files=files, phase=phases[item.file.label],
            notes=item.notes, django_version=django_version, squash=item.squash)
        findings = run_rules(ctx, config)
        acknowledge(findings, item.file.label, acknowledgements)
        quote_sizes(findings, item.operations, config)
        verdicts.append(MigrationVerdict(
            file=item.file, operations=item.operations, findings=findings,
            phase=phases[item.file.label], needs_split=splits[item.file.label],
            sql_status="ok" if item.sql_known else "unavailable", sql_error=item.sql_error,
            phase_override=applied.get(item.file.label)))
    return verdicts


def apply_overrides(migrations: list[Analysed], overrides: dict[str, PhaseOverride],
                    phases: dict[str, Phase | None], splits: dict[str, bool],
                    config: Config) -> dict[str, PhaseOverride]:
    """A declared phase, then a human's, wins where it is safe; an unsafe one is ignored (MS113, or
    refused when given by command)."""
    applied = {}
    for item in migrations:
        label, declared = item.file.label, item.file.declared_phase
        large = touches_large(item.operations, config)
        if declared and refuse_phase(phases[label], declared.phase, large) is None:
            phases[label] = declared.phase  # the file's own declaration, where it is safe (else MS113)
        override = overrides.get(label)
        if override and refuse_phase(phases[label], override.phase, large) is None:
            phases[label] = override.phase
            applied[label] = override
    return applied



def created_by_review(migrations: list[Analysed]) -> tuple[set[str], set[tuple[str, str]], set[str]]:
    """Tables, columns and models that this change creates: empty in production."""
    tables, columns, models = set(), set(), set()
    for item in migrations:
        for operation in item.operations:
            if operation.type == "CreateModel" and operation.parsed is not None:
                name = operation.parsed.arg("name", position=0)
                if name and isinstance(name.literal(), str):
                    models.add(f"{item.file.app_label}.{name.literal().lower()}")
                if operation.facts.get("table_after"):
                    tables.add(operation.facts["table_after"])
            for statement in operation.statements:
                tables.update(lock.relation for lock in statement.locks
                              if lock.new_in_review and lock.kind == "table")
                if statement.kind is StatementKind.CREATE_TABLE and statement.table:
                    tables.add(statement.table)
                if statement.kind is StatementKind.RENAME and statement.rename_object == "table" \
                        and statement.rename_from in tables:
                    tables.add(statement.rename_to)  # a new table keeps being new under its new name
                columns.update((statement.table, a.column) for a in statement.actions
                               if a.action == "add_column")
    return tables, columns, models


def run_rules(ctx: MigrationContext, config: Config) -> list[Finding]:
    unreadable = ctx.migration.parse_error is not None or ctx.migration.status in ("modified", "unchanged")
    findings: list[Finding] = []
    for rule in catalogue().values():
        if rule.id in config.disabled_rules or config.severity.get(rule.id) == "off":
            continue
        if unreadable and rule.id not in FILE_ONLY_RULES:
            continue
        for finding in rule.check(ctx):
            if rule.id in config.severity:
                finding.severity = Severity(config.severity[rule.id])
            findings.append(finding)
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.NOTICE: 2}
    return sorted(findings, key=lambda f: (f.line or 0, order[f.severity], f.rule))


def acknowledge(findings: list[Finding], label: str, acknowledgements) -> None:
    for finding in findings:
        for ack in acknowledgements:
            if ack.rule == finding.rule and ack.migration in (None, label):
                finding.acknowledged, finding.acknowledgement = True, ack
