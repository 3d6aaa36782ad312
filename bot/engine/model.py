"""Typed data that flows between the engine's stages.

parse  -> MigrationFile / ParsedOperation      (static, from the file's text)
child  -> ChildMigration / ChildOperation       (what Django and PostgreSQL did)
sql    -> Statement / AlterAction / LockEvent   (typed statement model)
rules  -> Finding
verdict-> MigrationVerdict / Review
"""
from __future__ import annotations

import ast
import enum
from dataclasses import dataclass, field
from typing import Any


class Phase(str, enum.Enum):
    PRE_DEPLOY = "pre-deploy"
    POST_DEPLOY = "post-deploy"
    DEFERRED = "deferred"

    @classmethod
    def parse(cls, text: str) -> "Phase":
        try:
            return cls(text.strip().lower().replace("_", "-"))
        except ValueError:
            raise ValueError(
                f"unknown phase {text!r}: expected one of "
                + ", ".join(p.value for p in cls)
            ) from None

    @property
    def order(self) -> int:
        return _PHASE_ORDER[self]


_PHASE_ORDER = {Phase.PRE_DEPLOY: 0, Phase.POST_DEPLOY: 1, Phase.DEFERRED: 2}


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    NOTICE = "notice"


# ---------------------------------------------------------------- parsing


@dataclass
class Arg:
    """One argument of an operation call, as written."""

    code: str  # the expression's source text

    def literal(self, default: Any = None) -> Any:
        """The value if the expression is a Python literal, else `default`."""
        try:
            return ast.literal_eval(self.code)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return default


@dataclass
class ParsedOperation:
    """One operation call in a migration's `operations` list."""

    index: int  # position in its list (top level: the migration's operations)
    type: str  # last name of the callee: "AddField", "SaferAddIndexConcurrently"
    qualname: str  # callee as written: "migrations.AddField"
    line: int  # 1-based, first line of the call
    end_line: int  # last line of the call
    args: dict[str, Arg] = field(default_factory=dict)  # keyword args; positional as "0", "1"…
    # SeparateDatabaseAndState: nested operations, keyed by the argument they sit in
    # ("database_operations" / "state_operations").
    nested: dict[str, list["ParsedOperation"]] = field(default_factory=dict)

    def arg(self, *names: str, position: int | None = None) -> Arg | None:
        for name in names:
            if name in self.args:
                return self.args[name]
        if position is not None:
            return self.args.get(str(position))
        return None


@dataclass
class DeclaredPhase:
    phase: Phase
    source: str  # "deploy_phase", "syzygy stage", "safemigrate", "is_post_deployment"
    line: int


@dataclass
class MigrationFile:
    """What the migration file says, read statically with libcst."""

    path: str  # repo-relative, "/" separated
    name: str  # module name: "0007_add_sku"
    app_label: str  # best static guess; the child's answer replaces it
    # "added" | "modified" | "unchanged" (a squash whose replaced migrations the change deletes, left
    # as it was or with only its `replaces` dropped)
    status: str = "added"
    parse_error: str | None = None
    parse_error_line: int | None = None
    class_line: int = 1
    atomic: bool = True
    initial: bool = False
    dependencies: list[tuple[str, str]] = field(default_factory=list)
    replaces: list[tuple[str, str]] = field(default_factory=list)
    # "app.name" -> base text of each migration it replaces (as the base says) that the change deletes;
    # the text only for a new squash (its state is compared with theirs), else ""
    deleted_replaces: dict[str, str] = field(default_factory=dict)
    run_before: list[tuple[str, str]] = field(default_factory=list)
    operations: list[ParsedOperation] = field(default_factory=list)
    declared_phase: DeclaredPhase | None = None
    source: str = field(default="", repr=False)  # the file's text, for rewrites

    @property
    def key(self) -> tuple[str, str]:
        return (self.app_label, self.name)

    @property
    def label(self) -> str:
        return f"{self.app_label}.{self.name}"


@dataclass
class Squash:
    """A squashed migration (one with `replaces`) as Django resolves it where the base is deployed."""

    replaces: list[str]  # "app.name" of the migrations it replaces
    differences: list[str] = field(default_factory=list)  # Django's autodetector, replaced -> squash
    uncompared: str | None = None  # why its state could not be compared with theirs
    dropped: list[str] = field(default_factory=list)  # RunPython/RunSQL of theirs it leaves out
    deleted: list[str] = field(default_factory=list)  # replaced migrations the change deletes


# ---------------------------------------------------------------- sandbox output


@dataclass(frozen=True)
class LockEvent:
    relation: str  # relation name (table or index)
    mode: str  # PostgreSQL lock mode: "AccessExclusiveLock"
    kind: str = "table"  # "table" | "index" | "sequence" | "view" | "other"
    table: str | None = None  # the table an index belongs to
    new_in_review: bool = False  # created by a migration of this review, empty in production


@dataclass
class ColumnInfo:
    name: str
    type: str
    not_null: bool
    has_default: bool


@dataclass
class TableInfo:
    """A table as it stood in the sandbox just before a migration ran."""

    name: str
    columns: dict[str, ColumnInfo] = field(default_factory=dict)
    # CHECK constraint expressions that are validated (used to prove a later SET NOT NULL cheap)
    valid_checks: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- statements


class StatementKind(str, enum.Enum):
    CREATE_TABLE = "create_table"
    ALTER_TABLE = "alter_table"
    CREATE_INDEX = "create_index"
    DROP_INDEX = "drop_index"
    DROP_TABLE = "drop_table"
    RENAME = "rename"
    DML = "dml"  # INSERT / UPDATE / DELETE / MERGE / COPY FROM
    TRUNCATE = "truncate"
    CREATE_OTHER = "create_other"  # sequences, extensions, functions, views, types…
    DROP_OTHER = "drop_other"
    SELECT = "select"
    TRANSACTION = "transaction"  # BEGIN / COMMIT / SET …
    OTHER = "other"
    UNPARSED = "unparsed"  # pglast could not parse it


@dataclass
class AlterAction:
    """One subcommand of ALTER TABLE."""

    action: str  # add_column, drop_column, alter_type, set_not_null, drop_not_null,
    #              set_default, drop_default, add_constraint, validate_constraint,
    #              drop_constraint, other
    column: str | None = None
    constraint: str | None = None
    constraint_type: str | None = None  # check, foreign_key, unique, primary_key, exclusion, not_null
    not_valid: bool = False
    using_index: bool = False  # ADD CONSTRAINT … USING INDEX (no build, no scan)
    not_null: bool = False  # add_column: declared NOT NULL
    default: str | None = None  # add_column / set_default: the default's SQL text
    default_volatile: bool = False  # default calls a volatile function
    type_name: str | None = None  # add_column / alter_type


@dataclass
class Statement:
    sql: str
    kind: StatementKind = StatementKind.OTHER
    table: str | None = None  # the table it acts on, unqualified
    actions: list[AlterAction] = field(default_factory=list)
    index_name: str | None = None
    concurrently: bool = False
    unique: bool = False  # CREATE UNIQUE INDEX, or a DROP INDEX of a unique one (the sandbox saw it)
    if_exists: bool = False
    transactional: bool = True  # False: cannot run inside a transaction block
    rename_from: str | None = None
    rename_to: str | None = None
    rename_object: str | None = None  # "table" | "column" | "index" | …
    dml_has_where: bool = False
    deferred: bool = False  # Django's deferred SQL, run at the end of the migration
    # What executing it in the sandbox showed (empty when it was not executed)
    locks: list[LockEvent] = field(default_factory=list)  # acquired by this statement
    rewrites: list[str] = field(default_factory=list)
    error: str | None = None
    executed: bool = False

    @property
    def exclusive_tables(self) -> set[str]:
        """Tables this statement takes ACCESS EXCLUSIVE on: from the trace, or, when it did not run,
        an ALTER TABLE's own table (most subcommands take that lock)."""
        if self.executed:
            return {lock.relation for lock in self.locks
                    if lock.mode == "AccessExclusiveLock" and lock.kind == "table"}
        return {self.table} if self.kind is StatementKind.ALTER_TABLE and self.table else set()


# ---------------------------------------------------------------- operations


@dataclass
class Operation:
    """A migration operation with everything the rules may need."""

    index: int
    type: str
    line: int
    end_line: int
    description: str
    parsed: ParsedOperation | None = None
    statements: list[Statement] = field(default_factory=list)
    reduces_to_sql: bool = True
    error: str | None = None  # Django or PostgreSQL refused it in the sandbox
    sql_known: bool = False  # statements come from the sandbox (else: static only)
    # Facts Django's state knew about the operation (child: field null / db_default …)
    facts: dict[str, Any] = field(default_factory=dict)
    phase: Phase | None = None  # set by the verdict stage
    alias: str | None = None  # the database alias it runs on, when routers choose (else None)

    @property
    def sql(self) -> list[str]:
        return [s.sql for s in self.statements]

    @property
    def locks(self) -> list[LockEvent]:
        seen: dict[tuple[str, str], LockEvent] = {}
        for statement in self.statements:
            for lock in statement.locks:
                seen.setdefault((lock.relation, lock.mode), lock)
        return list(seen.values())

    @property
    def rewrites(self) -> list[str]:
        out: list[str] = []
        for statement in self.statements:
            out.extend(t for t in statement.rewrites if t not in out)
        return out


# ---------------------------------------------------------------- findings, verdicts


@dataclass
class Acknowledgement:
    rule: str
    migration: str | None  # "app.0007_x" or None for the whole PR
    by: str
    reason: str
    at: str = ""  # ISO time


@dataclass
class PhaseOverride:
    migration: str  # "app.0007_x"
    phase: Phase
    by: str
    reason: str
    at: str = ""


@dataclass(frozen=True)
class TableSize:
    """A production table's size from `tables.stats`: the planner's estimates, never a count."""

    name: str
    rows: int | None = None  # None: never analyzed (or the file gave bytes only)
    bytes: int | None = None  # with its indexes and TOAST; None: a rows-only file


@dataclass
class Finding:
    rule: str
    severity: Severity
    message: str
    safe_alternative: str
    operation_index: int | None = None
    line: int | None = None
    end_line: int | None = None
    suggestion: str | None = None  # replacement text for lines line..end_line, when local
    acknowledged: bool = False
    acknowledgement: Acknowledgement | None = None
    related: list[int] = field(default_factory=list)  # further operations a grouped finding covers
    tables: list[TableSize] = field(default_factory=list)  # known sizes of the tables it locks or rewrites
    alias: str | None = None  # the database alias its operations run on, when routers choose

    @property
    def blocks(self) -> bool:
        return self.severity is Severity.ERROR and not self.acknowledged

    @property
    def operations(self) -> list[int]:
        """Every operation the finding is about: its own, then those a grouped finding also covers."""
        return ([self.operation_index] if self.operation_index is not None else []) + self.related


@dataclass(frozen=True)
class AliasVerdict:
    """A migration's verdict on one database alias (`migrate --database ALIAS`)."""

    alias: str
    phase: Phase | None
    needs_split: bool
    blocking: bool


@dataclass
class MigrationVerdict:
    file: MigrationFile
    operations: list[Operation]
    findings: list[Finding]
    phase: Phase | None
    needs_split: bool
    sql_status: str  # "ok" | "unavailable"
    sql_error: str | None = None
    phase_override: PhaseOverride | None = None
    # Where routers choose the databases: one per alias it runs on, in DATABASES order (else empty).
    aliases: list[AliasVerdict] = field(default_factory=list)

    @property
    def blocking(self) -> bool:
        return self.needs_split or any(f.blocks for f in self.findings)


@dataclass
class Review:
    migrations: list[MigrationVerdict]
    notes: list[str] = field(default_factory=list)  # review-wide remarks (e.g. static fallback)
    postgres_version: int | None = None
    django_version: str | None = None
    state_cache: str | None = None  # how the pre-state was had: "hit …", "miss …; stored", "off"

    @property
    def blocking(self) -> bool:
        return any(m.blocking for m in self.migrations)

    @property
    def sql_unavailable(self) -> bool:
        return any(m.sql_status != "ok" for m in self.migrations)
