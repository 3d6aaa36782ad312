"""The phase of one migration as the deploy reads it: its declaration, else its operations alone.

The review's static rules give the phase (engine.phases, as the review does without SQL). Where
the file alone cannot settle it, the deploy refuses rather than guesses, and names the line
that settles it.
"""
from __future__ import annotations

from dataclasses import dataclass

from migration_safe.config import Config
from migration_safe.engine.model import MigrationFile, ParsedOperation, Phase
from migration_safe.engine.review.assemble import operations_from_file
from migration_safe.engine.review.phases import LARGE_TABLE_WORK, STATIC_PHASES, Placement, migration_phase

# Operation classes whose database effect the review's static rules know.
KNOWN_MODULES = ("django.db.migrations.operations.", "django.contrib.postgres.operations",
                 "django_pg_migration_tools.")

# The static table gives these a phase, but their SQL decides it.
NEEDS_SQL = {"AlterField": "what it changes (a type, NOT NULL, a constraint, an index) shows only in its SQL"}
# Pre-deploy, or deferred on a large table: the deploy does not know table sizes.
NEEDS_SIZE = {name for name in LARGE_TABLE_WORK if STATIC_PHASES.get(name) is not Phase.DEFERRED}

PHASE_NAMES = ", ".join(f'"{p.value}"' for p in Phase)


@dataclass(frozen=True)
class LoadedOperation:
    """An operation as Django loaded it: what the file's text is checked against."""

    name: str
    known: bool  # a class of Django's, contrib.postgres' or django-pg-migration-tools'
    database_operations: tuple["LoadedOperation", ...] = ()

    @classmethod
    def of(cls, operation: object) -> "LoadedOperation":
        kind = type(operation)
        nested = ()
        if kind.__name__ == "SeparateDatabaseAndState":
            nested = tuple(map(cls.of, getattr(operation, "database_operations", None) or ()))
        return cls(kind.__name__, kind.__module__.startswith(KNOWN_MODULES), nested)


@dataclass(frozen=True)
class PhaseAnswer:
    phase: Phase | None
    source: str  # "deploy_phase", "syzygy stage", "safemigrate", "is_post_deployment" or "operations"
    problem: str | None = None  # why there is no phase, ending with what settles it


def phase_of(file: MigrationFile, loaded: list[LoadedOperation], declared: object = None,
             third_party: bool = False) -> PhaseAnswer:
    """`declared`: the loaded Migration's `deploy_phase` attribute, None when it has none;
    `third_party`: the file is not the project's to edit (the remedy is then a setting).

    The loaded attribute comes first: a value the file's text does not show (set in a base
    class, or misspelt) must not fall through to a guess from the operations.
    """
    if declared is not None:
        return _declared(file, declared)
    if file.declared_phase is not None:
        return PhaseAnswer(file.declared_phase.phase, file.declared_phase.source)
    reason = _file_unreadable(file) or _operations_unsettled(file.operations, loaded)
    if reason:
        return PhaseAnswer(None, "operations", f"{reason}; {_declaration(file, third_party)}")
    operations = operations_from_file(file)
    placement = Placement(Config(), set(), set())
    phases = [placement.operation(operation, sql_known=False) for operation in operations]
    phase, needs_split = migration_phase(phases)
    if needs_split:
        detail = ", ".join(f"{op.type}: {p.value}" for op, p in zip(operations, phases))
        return PhaseAnswer(None, "operations", f"read from the file alone, its operations need different "
                           f"phases ({detail}); split it, or if the review gave it one phase, "
                           f"{_declaration(file, third_party)}")
    return PhaseAnswer(phase, "operations")


def _declared(file: MigrationFile, value: object) -> PhaseAnswer:
    if isinstance(value, str):
        try:
            return PhaseAnswer(Phase.parse(value), "deploy_phase")
        except ValueError:
            pass
    return PhaseAnswer(None, "deploy_phase", f"deploy_phase = {value!r} is not a phase: write one of "
                       f"{PHASE_NAMES} in {file.path}")


def _file_unreadable(file: MigrationFile) -> str | None:
    return f"its file could not be read ({file.parse_error})" if file.parse_error else None


def _operations_unsettled(parsed: list[ParsedOperation], loaded: list[LoadedOperation]) -> str | None:
    if [p.type for p in parsed] != [op.name for op in loaded]:
        return "its operations are built in code, so the file's text does not show them"
    for written, operation in zip(parsed, loaded):
        reason = _operation_unsettled(written, operation)
        if reason:
            return f"{written.type} on line {written.line}: {reason}"
    return None


def _operation_unsettled(written: ParsedOperation, operation: LoadedOperation) -> str | None:
    if not operation.known:
        return "an operation of the project's own, whose database effect the file does not show"
    if operation.name in NEEDS_SQL:
        return NEEDS_SQL[operation.name]
    if operation.name in NEEDS_SIZE:
        return "it is pre-deploy, or deferred on a large table, and the deploy does not know table sizes"
    if operation.name == "RunSQL":
        sql = written.arg("sql", position=0)
        if not isinstance(sql.literal() if sql else None, str):
            return "its SQL is not one string literal, so the file's text does not show it"
    if operation.name == "SeparateDatabaseAndState":
        return _operations_unsettled(written.nested.get("database_operations", []),
                                     list(operation.database_operations))
    return None


def _declaration(file: MigrationFile, third_party: bool) -> str:
    if third_party:
        return (f'add "{file.label}": "…" (the phase the review gave it: {PHASE_NAMES}) to '
                f"settings.MIGRATION_SAFE_DEPLOY_PHASES")
    return (f'add deploy_phase = "…" (the phase the review gave it: {PHASE_NAMES}) to its Migration '
            f"class, {file.path} line {file.class_line}")
