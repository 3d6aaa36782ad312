"""What a rule sees of one migration, and helpers to make findings."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from migration_safe.config import Config
from migration_safe.engine.model import (
    Finding, MigrationFile, Operation, Phase, Severity, Squash, Statement, StatementKind, TableInfo,
)


@dataclass
class MigrationContext:
    migration: MigrationFile
    operations: list[Operation]
    config: Config
    sql_known: bool
    pg_major: int = 16
    tables_before: dict[str, TableInfo] = field(default_factory=dict)
    new_tables: set[str] = field(default_factory=set)  # created by this review's migrations
    new_models: set[str] = field(default_factory=set)  # "app.model" created by this review
    phases: dict[str, Phase | None] = field(default_factory=dict)  # label -> computed phase
    files: dict[str, MigrationFile] = field(default_factory=dict)  # label -> file, this review
    phase: Phase | None = None  # this migration's computed phase (None: needs split)
    notes: list[str] = field(default_factory=list)  # sandbox remarks about this migration
    django_version: str | None = None  # the project's, as the sandbox saw it
    squash: Squash | None = None  # when the migration replaces others (or the change deletes those)

    @property
    def django_major(self) -> int:
        try:
            return int((self.django_version or "0").split(".")[0])
        except ValueError:
            return 0

    def existing(self, table: str | None) -> bool:
        """The table exists in production before this change (not created by the review)."""
        return bool(table) and table not in self.new_tables

    def statements(self) -> Iterator[tuple[Operation, Statement]]:
        for operation in self.operations:
            for statement in operation.statements:
                yield operation, statement

    def locking_severity(self, table: str | None) -> Severity:
        """A lock on a table known to be small is a warning; on any other table, an error."""
        return Severity.WARNING if table and self.config.is_small(table) else Severity.ERROR

    def worst_locking_severity(self, tables) -> Severity:
        """Over several locked tables: a warning only when every one of them is known to be small."""
        severities = {self.locking_severity(table) for table in tables}
        return Severity.ERROR if Severity.ERROR in severities or not severities else Severity.WARNING

    def finding(self, rule, operation: Operation | None, message: str, *,
                alternative: str | None = None, severity: Severity | None = None,
                suggestion: str | None = None) -> Finding:
        return Finding(
            rule=rule.id,
            severity=severity or rule.severity,
            message=message,
            safe_alternative=alternative or rule.safe_alternative,
            operation_index=operation.index if operation else None,
            line=operation.line if operation else self.migration.class_line,
            end_line=operation.end_line if operation else None,
            suggestion=suggestion,
        )


def alter_actions(ctx: MigrationContext, *names: str):
    """(operation, statement, action) for ALTER TABLE subcommands of the given kinds."""
    for operation, statement in ctx.statements():
        if statement.kind is StatementKind.ALTER_TABLE:
            for action in statement.actions:
                if action.action in names:
                    yield operation, statement, action
