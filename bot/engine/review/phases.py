"""Deploy phase of each operation, from its SQL or, without SQL, from what the file says.

The semantics are docs/phases.md's: additive and short-locking work before the
deploy, destructive work and new rules the data must obey after it, and
long-running data or build work deferred.
"""
from __future__ import annotations

import re

from migration_safe.config import Config
from migration_safe.engine.model import Operation, Phase, Statement, StatementKind, TableInfo
from migration_safe.engine.review.hints import sql_texts
from migration_safe.engine.review.sql import analyse_all

PRE, POST, DEFERRED = Phase.PRE_DEPLOY, Phase.POST_DEPLOY, Phase.DEFERRED

ACTION_PHASES = {
    "add_column": PRE, "drop_column": POST, "alter_type": PRE, "set_not_null": POST,
    "drop_not_null": PRE, "set_default": PRE, "drop_default": PRE, "drop_constraint": PRE,
    "other": PRE,
}

KIND_PHASES = {
    StatementKind.CREATE_TABLE: PRE, StatementKind.CREATE_OTHER: PRE, StatementKind.RENAME: PRE,
    StatementKind.DROP_TABLE: POST, StatementKind.DROP_INDEX: POST, StatementKind.DROP_OTHER: POST,
    StatementKind.TRUNCATE: POST, StatementKind.DML: DEFERRED,
}

# Without SQL: the phase an operation type has when Django runs it plainly.
STATIC_PHASES = {
    "RemoveField": POST, "DeleteModel": POST, "RemoveIndex": POST, "RemoveIndexConcurrently": POST,
    "AddConstraint": POST, "AddConstraintNotValid": POST, "ValidateConstraint": DEFERRED,
    "AlterUniqueTogether": POST, "RunPython": DEFERRED,
    # kraken-tech django-pg-migration-tools
    "SaferRemoveIndexConcurrently": POST, "SaferRemoveFieldForeignKey": POST,
    "SaferAddCheckConstraint": POST, "SaferAddUniqueConstraint": POST,
    "SaferAlterFieldSetNotNull": POST, "SaferRemoveUniqueConstraint": PRE,
}
# Operations whose DROP INDEX removes a unique rule (never an index the old code's queries need)
DROPS_UNIQUE_RULES = {"RemoveConstraint"}
LARGE_TABLE_WORK = {"AddIndexConcurrently", "SaferAddIndexConcurrently", "ValidateConstraint"}


class Placement:
    """Knows which tables are new in this review and which are large."""

    def __init__(self, config: Config, new_tables: set[str], new_columns: set[tuple[str, str]]):
        self.config = config
        self.new_tables = new_tables
        self.new_columns = new_columns

    def operation(self, operation: Operation, sql_known: bool,
                  tables_before: dict[str, TableInfo] | None = None) -> Phase:
        """`tables_before`: the tables as they stood before the migration (columns a DROP DEFAULT
        takes away from old code are known only from it)."""
        if operation.type == "RunPython":
            return DEFERRED
        if sql_known:
            return self._from_sql(operation, tables_before or {})
        return self.static(operation)

    def _from_sql(self, operation: Operation, tables_before: dict[str, TableInfo]) -> Phase:
        readded = {(s.table, a.constraint) for s in operation.statements for a in s.actions
                   if a.action == "drop_constraint"}
        phases = [self._step(s, operation, readded) for s in own_steps(operation.statements)]
        phases = [p for p in phases if p is not None]
        if dropped_defaults(operation.statements, tables_before):
            phases.append(POST)  # old code leaves the column to its default: only new code may run
        return latest(phases) if phases else PRE

    def _step(self, statement: Statement, operation: Operation, readded) -> Phase | None:
        # A UniqueConstraint with a condition, expressions or INCLUDE is a unique index: dropping it
        # relaxes a rule, as DROP CONSTRAINT does, and so does dropping any index the sandbox saw unique
        # (raw SQL). So is the LIKE index Django drops with `unique`.
        if statement.kind is StatementKind.DROP_INDEX and (
                statement.unique or operation.type in DROPS_UNIQUE_RULES
                or _like_index_of_dropped_rule(statement, operation.statements)):
            return PRE
        return self.statement(statement, readded)

    def statement(self, statement: Statement, readded: set[tuple[str | None, str | None]] = frozenset()
                  ) -> Phase | None:
        """`readded`: (table, constraint) that the same operation drops first: adding it back is the
        same rule, not a new one (Django re-creates a foreign key around a column change)."""
        # DROP INDEX names only the index: the sandbox's lock trace knows its table, without
        # which an index dropped from a table this change creates would count as post-deploy.
        table = statement.table or next(
            (lock.table for lock in statement.locks if lock.kind == "index" and lock.table), None)
        if statement.kind in (StatementKind.TRANSACTION, StatementKind.SELECT):
            return None
        if statement.kind is StatementKind.DML:
            return DEFERRED
        if table and table in self.new_tables:
            return PRE  # nothing uses a table this change creates: any time before the code is fine
        if statement.kind is StatementKind.CREATE_INDEX:
            if table and self.config.is_large(table):
                return DEFERRED
            # A unique index is a new rule the data must obey, as ADD CONSTRAINT UNIQUE is: after
            # the code that obeys it (old code may still insert duplicates until the deploy).
            return POST if statement.unique else PRE
        if statement.kind is StatementKind.ALTER_TABLE:
            return latest([PRE if (statement.table, a.constraint) in readded and a.action == "add_constraint"
                           else self.action(statement, a) for a in statement.actions] or [PRE])
        return KIND_PHASES.get(statement.kind, PRE)

    def action(self, statement: Statement, action) -> Phase:
        table = statement.table or ""
        if action.action == "add_constraint":
            if action.column and (table, action.column) in self.new_columns:
                return PRE  # constrains only a column old code never writes
            if action.constraint_type in ("check", "foreign_key", "unique", "primary_key",
                                          "exclusion", "not_null"):
                return POST  # a new rule the data must obey: after the code that obeys it
            return PRE
        if action.action == "validate_constraint":
            return DEFERRED if self.config.is_large(table) else POST
        return ACTION_PHASES.get(action.action, PRE)

    def static(self, operation: Operation) -> Phase:
        if operation.type in LARGE_TABLE_WORK:
            return DEFERRED if self._large(operation) else STATIC_PHASES.get(operation.type, PRE)
        if operation.type == "RunSQL" and operation.parsed is not None:
            texts = sql_texts(operation.parsed.arg("sql", position=0))
            if texts is not None:  # a string, or a list of them (a sequence reset, say)
                statements = [s for text in texts for s in analyse_all(text)]
                return latest([p for p in map(self.statement, statements) if p] or [PRE])
            return DEFERRED  # SQL built at run time: assume the worst timing
        if operation.type == "SeparateDatabaseAndState" and operation.parsed is not None:
            nested = operation.parsed.nested.get("database_operations", [])
            return latest([STATIC_PHASES.get(op.type, PRE) for op in nested] or [PRE])
        return STATIC_PHASES.get(operation.type, PRE)

    def _large(self, operation: Operation) -> bool:
        table = operation.facts.get("table")
        return bool(table) and self.config.is_large(table)


def _like_index_of_dropped_rule(drop: Statement, statements: list[Statement]) -> bool:
    """Django's `<table>_<column>_<hash>_like` index, dropped with a constraint of its table (an
    AlterField from unique=True drops both): it served the unique column, and goes with its rule."""
    tables = {lock.table for lock in drop.locks if lock.kind == "index" and lock.table}
    return (drop.index_name or "").endswith("_like") and any(
        a.action == "drop_constraint" and s.table in tables for s in statements for a in s.actions)


def own_steps(statements: list[Statement]) -> list[Statement]:
    """The statements that are steps of their own: not DML on a table that the same operation already
    holds ACCESS EXCLUSIVE on (Django's backfill inside an AlterField is part of the ALTER, which MS118
    blocks), so that it does not make a schema change `deferred`."""
    held: set[str] = set()
    steps = []
    for statement in statements:
        if not (statement.kind is StatementKind.DML and statement.table in held):
            steps.append(statement)
        held |= statement.exclusive_tables
    return steps


def dropped_defaults(statements: list[Statement], tables_before: dict[str, TableInfo]) -> list[tuple[str, str]]:
    """(table, column) whose database default is dropped while the column stays NOT NULL: code that
    leaves the column out of its INSERTs (Django's, for a `db_default` field) fails from then on."""
    nullable = {(s.table, a.column) for s in statements for a in s.actions if a.action == "drop_not_null"}
    out = []
    for statement in statements:
        for action in statement.actions:
            table = tables_before.get(statement.table or "")
            column = table.columns.get(action.column or "") if table else None
            if action.action == "drop_default" and column and column.not_null and column.has_default \
                    and (statement.table, action.column) not in nullable:
                out.append((statement.table, action.column))
    return out


def keep_replacements_together(operations: list[Operation],
                               tables_before: dict[str, TableInfo] | None = None) -> None:
    """A drop replaced in the same migration takes the phase of what replaces it, so that no split
    leaves a window without it: an index dropped and re-created under the same name (an index swap;
    split, the new one could not even be built first), a unique rule dropped and another added on the
    same table (`unique_together` turned into a UniqueConstraint). A constraint dropped with a column
    it refers to goes with that column."""
    for dropping in operations:
        for other in operations:
            if other is not dropping and other.phase and dropping.phase and (
                    _replaces(dropping, other) or _goes_with_column(dropping, other, tables_before or {})):
                dropping.phase = other.phase


def _goes_with_column(dropping: Operation, other: Operation, tables_before: dict[str, TableInfo]) -> bool:
    """`dropping` removes a constraint of a table whose CHECK refers to a column `other` drops.

    The pre-state's checks carry no names, so the check is recognised by the dropped column in its
    expression, net of the column's own check (a Positive*Field's), which goes with it anyway."""
    if dropping.type != "RemoveConstraint":
        return False
    tables = {s.table for s in dropping.statements for a in s.actions if a.action == "drop_constraint"}
    own_check = "Positive" in str(((other.facts.get("field_before") or {}).get("code") or {}).get("expression"))
    for statement in other.statements:
        info = tables_before.get(statement.table or "")
        for action in statement.actions:
            if action.action == "drop_column" and statement.table in tables and info is not None:
                mention = re.compile(rf'(?<![\w"])"?{re.escape(action.column or "")}"?(?![\w"])')
                if sum(bool(mention.search(c)) for c in info.valid_checks) > own_check:
                    return True
    return False


def _replaces(dropping: Operation, adding: Operation) -> bool:
    dropped_indexes = {s.index_name for s in dropping.statements if s.kind is StatementKind.DROP_INDEX}
    if dropped_indexes & {s.index_name for s in adding.statements if s.kind is StatementKind.CREATE_INDEX}:
        return True
    return bool(_unique_drops(dropping) & _unique_adds(adding))


def _unique_drops(operation: Operation) -> set[str]:
    """Tables whose unique rule the operation drops."""
    rules = operation.type in ("AlterUniqueTogether", *DROPS_UNIQUE_RULES)
    tables = {s.table for s in operation.statements for a in s.actions
              if a.action == "drop_constraint" and rules}
    tables |= {lock.table for s in operation.statements
               if s.kind is StatementKind.DROP_INDEX and (rules or s.unique)
               for lock in s.locks if lock.kind == "index" and lock.table}
    return {t for t in tables if t}


def _unique_adds(operation: Operation) -> set[str]:
    tables = {s.table for s in operation.statements if s.kind is StatementKind.CREATE_INDEX and s.unique}
    tables |= {s.table for s in operation.statements for a in s.actions
               if a.action == "add_constraint" and a.constraint_type == "unique"}
    return {t for t in tables if t}


def latest(phases: list[Phase]) -> Phase:
    return max(phases, key=lambda p: p.order)


def migration_phase(operation_phases: list[Phase]) -> tuple[Phase | None, bool]:
    """(phase, needs_split): one phase for all operations, or a split."""
    distinct = set(operation_phases)
    if not distinct:
        return PRE, False  # no database effect: any time, and pre-deploy is the earliest
    if len(distinct) == 1:
        return distinct.pop(), False
    return None, True


def refuse_phase(computed: Phase | None, requested: Phase, touches_large: bool) -> str | None:
    """Why running a migration computed as `computed` in `requested` would be unsafe, or None."""
    if computed is None:
        return "the migration mixes phases: split it first, then give each part its phase"
    if requested == computed:
        return None
    if computed is PRE:
        return "its changes are needed by the new code, so they must run before the deploy"
    if computed is POST and requested is PRE:
        return "it removes or constrains what the old code still uses, so it must wait until after the deploy"
    if computed is DEFERRED and touches_large:
        return "it does long-running work on a large table, which must not hold up the deploy"
    return None


def touches_large(operations: list[Operation], config: Config) -> bool:
    tables = {s.table for op in operations for s in op.statements if s.table}
    tables |= {op.facts.get("table") for op in operations if op.facts.get("table")}
    return any(config.is_large(t) for t in tables if t)
