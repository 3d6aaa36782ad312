"""What crosses between the parent and child.py: one JSON request in, one JSON answer out.

Standard library only, importable on Python 3.10: child.py loads this file by path under the
project's own interpreter (see child.py, `load_protocol`). `NotRequired` is 3.11+, so a key that
may be absent lives in a `total=False` base class. Annotations are evaluated at class creation
(no `from __future__ import annotations`): the child never registers this module in
sys.modules, where typing would look up string annotations.
"""
from typing import Dict, List, Optional, TypedDict, Union

# ------------------------------------------------------------------ request (parent -> child)


class DatabaseConfig(TypedDict):
    host: str  # socket folder (the sandbox has no network) or host name
    port: Optional[int]  # TCP port, None for the server's default
    name: str  # the throwaway database of this review
    user: str  # a role that owns only that database
    password: str  # that role's password ("" over a trusted socket)


class RunSQLTables(TypedDict):
    tables: List[str]  # tables the new RunSQL operations name (read from the files)
    count: int  # RunSQL operations the parent read: the child trusts `tables` only if it finds as many
    unknown: bool  # some RunSQL could not be read: the child builds every table


class StateCacheConfig(TypedDict, total=False):
    entries: List[str]  # folders of cached pre-states offered read-only, newest first
    out: str  # the folder where the child may leave the pre-state it built


class DeletedMigration(TypedDict):
    """Applied where the base is deployed (a new squash of it is recorded as applied there)."""
    app_label: str
    name: str
    source: str  # its text in the base, to compare the squash's state with ("": too large to read)


class _RequestOptions(TypedDict, total=False):
    trace: bool  # execute and trace the SQL (default True); False only collects it
    runsql_tables: RunSQLTables  # absent: the child cannot narrow the pre-state to RunSQL's tables
    environment: Dict[str, str]  # the config's `django.environment`, set before settings import
    state_cache: StateCacheConfig  # absent: no state cache (run.py adds it when the repository has one)
    deleted: List[DeletedMigration]  # the migrations a new squash replaces that the change deletes


class ChildRequest(_RequestOptions):
    root: str  # the Django project's folder (where manage.py is), on sys.path first
    settings: str  # DJANGO_SETTINGS_MODULE
    database: DatabaseConfig  # every alias of DATABASES is pointed at this one
    targets: List[str]  # paths of the new migration files, in the order the parent found them


# ------------------------------------------------------------------ answer (child -> parent)


class LockRecord(TypedDict):
    relation: str  # the locked relation's name, or its oid as text when it is gone
    mode: str  # PostgreSQL's lock mode: "AccessExclusiveLock"
    kind: str  # "table" | "index" | "sequence" | "view" | "other"
    table: Optional[str]  # the table an index belongs to
    new_in_review: bool  # created by a migration of this review (empty in production)


class _TraceOptions(TypedDict, total=False):
    deferred: bool  # Django's deferred SQL (run at the end of the migration); set once traced


class Trace(_TraceOptions):
    sql: str  # one executable statement
    locks: List[LockRecord]  # locks this statement newly took
    rewrites: List[str]  # tables whose storage this statement rewrote
    error: Optional[str]  # PostgreSQL's first line of error, None when it ran
    transactional: bool  # False: PostgreSQL refused it inside a transaction (CONCURRENTLY)
    executed: bool  # it ran (traced, or applied for the next migration)


class FieldCode(TypedDict):
    expression: str  # the field as makemigrations would write it
    imports: List[str]  # the import lines that expression needs


class FieldFacts(TypedDict):
    column: Optional[str]  # its database column
    null: bool
    db_default: bool  # has a db_default (Django 5.0+)
    has_default: bool  # has a Python-side default
    db_type: Optional[str]  # the column type on PostgreSQL; None for many-to-many or when it raises
    db_index: bool
    unique: bool
    relation: bool  # a foreign key, one-to-one or many-to-many
    many_to_many: bool
    code: Optional[FieldCode]  # None when Django cannot serialize it


class Facts(TypedDict, total=False):
    table: str  # the model's table, before the operation if it existed then
    table_before: str  # the model's table before the operation
    table_after: str  # the model's table after it (a rename's new table)
    field_before: Optional[FieldFacts]  # the operation's field before it (None: not found)
    field_after: Optional[FieldFacts]  # the operation's field after it


class _OperationOptions(TypedDict, total=False):
    traces: List[Trace]  # one per executable statement of `statements` then `deferred`, in that order;
    # absent when nothing was traced; shorter when an earlier statement failed
    allowed: bool  # the DATABASE_ROUTERS let it run on the alias reviewed (absent without routers)


class OperationRecord(_OperationOptions):
    index: int  # position in the migration's `operations`
    type: str  # the operation's class name
    description: str  # Django's describe()
    reduces_to_sql: bool  # False for RunPython
    atomic: Optional[bool]  # the operation's own `atomic` (RunSQL, RunPython), None for others
    statements: List[str]  # the SQL it collected, as Django's schema editor wrote it
    deferred: List[str]  # deferred SQL it queued (run at the end of the migration)
    error: Optional[str]  # why Django could not collect its SQL
    facts: Facts  # what Django's state knows that the SQL does not


class ColumnRecord(TypedDict):
    name: str
    type: str  # format_type(): "character varying(100)"
    not_null: bool
    has_default: bool


class TableBefore(TypedDict):
    name: str
    columns: Dict[str, ColumnRecord]  # by column name
    valid_checks: List[str]  # definitions of its validated CHECK constraints


class _MigrationOptions(TypedDict, total=False):
    alias: str  # the database alias it was reviewed on, when `aliases` has several
    # unique indexes (a UNIQUE constraint's too) that existed before it and that a DROP INDEX of its SQL
    # may name: dropping one relaxes a rule; absent when none
    unique_indexes: List[str]


class MigrationRecord(_MigrationOptions):
    app_label: str
    name: str
    atomic: bool  # the migration's `atomic`
    replaces: List[List[str]]  # [app_label, name] of the migrations it squashes
    collected_sql: List[str]  # all its SQL as `sqlmigrate` prints it
    error: Optional[str]  # why its SQL could not be collected or run
    operations: List[OperationRecord]
    tables_before: Dict[str, TableBefore]  # existing tables it touches, as they stood before it


class SquashRecord(TypedDict):
    """A new squashed migration, resolved as Django does where the base branch is deployed."""
    app_label: str
    name: str
    path: str  # real path of its file
    replaces: List[List[str]]  # [app_label, name] of the migrations it replaces
    in_base: List[List[str]]  # those of them applied where the base is deployed
    applied: bool  # all of them are: Django records the squash as applied and runs nothing
    runs: bool  # none of them is: it runs there (and is among `migrations`); neither: Django runs
    # the replaced migrations not in the base instead of it
    differences: List[str]  # "app: <operation>" the autodetector finds from the replaced migrations'
    # final state to the squash's (empty: equal)
    uncompared: Optional[str]  # why the two states could not be compared (then `differences` is empty)
    dropped: List[str]  # "app.name: RunPython f[ (not elidable)]": RunPython/RunSQL of theirs it leaves out


class ReplacedRecord(TypedDict):
    """A new migration that a squash replaces: Django runs the squash instead of it."""
    app_label: str
    name: str
    path: str
    replaced_by: Optional[str]  # "app.name" of the squash


class Timings(TypedDict):
    graph: float  # seconds from start to the loaded graph and pre-state
    schema: float  # ... to the pre-state schema built
    total: float


class _AnswerOptions(TypedDict, total=False):
    aliases: List[str]  # where DATABASE_ROUTERS choose among several: every alias of DATABASES, reviewed in turn
    squashes: List[SquashRecord]  # when the change adds squashes: each, whether it runs or not
    replaced: List[ReplacedRecord]  # when it adds migrations a squash replaces (not among `migrations`)


class ReviewAnswer(_AnswerOptions):
    django_version: str
    postgres_version: int  # server_version_num: 160004
    unresolved: List[str]  # targets that are no migration Django knows
    conflicts: Dict[str, List[str]]  # app -> its several leaf migrations
    migrations: List[MigrationRecord]  # the targets Django knows, in the order `migrate` applies them
    # (with several `aliases`: all of them on the first alias, then on the next, …)
    migration_files: Dict[str, str]  # "app.name" -> real path, for the targets and what depends on them
    state_cache: str  # what the state cache did ("off", "hit <entry>", "miss: ...; stored")
    pre_state: List[str]  # objects of older migrations the pre-state lacks, and why
    timings: Timings
    schema_models: Optional[int]  # models in the pre-state schema; None: every model


class FatalError(TypedDict):
    stage: str  # "settings" | "import" | "database" | "graph" | "pre-state schema" | "review"
    error: str  # "ExceptionType: message"
    traceback: str  # its last frames


class FatalAnswer(TypedDict):
    fatal: FatalError  # the project could not be reviewed at all


ChildAnswer = Union[FatalAnswer, ReviewAnswer]
