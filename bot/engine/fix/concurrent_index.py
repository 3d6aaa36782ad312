"""MS101's fix: index-backed changes on existing tables, rewritten to build their indexes CONCURRENTLY.

Per operation (`plan_concurrent`):

* AddIndex -> AddIndexConcurrently, moved;
* AddConstraint(UniqueConstraint) -> CREATE UNIQUE INDEX CONCURRENTLY, then ALTER TABLE … ADD
  CONSTRAINT … UNIQUE USING INDEX (a partial or expression one is only a unique index), the
  AddConstraint kept as the state of a SeparateDatabaseAndState, moved;
* AlterUniqueTogether adding rules -> the same, the AlterUniqueTogether kept as the state, moved;
* AddField / AlterField of an indexed or unique field -> what else it does stays in place, as a
  SeparateDatabaseAndState (the operation as written for the state, without the new index for the
  database); its indexes are built concurrently. A field change that only adds indexes moves whole;
* MS102: a concurrent operation already written (AddIndexConcurrently, RunSQL … CONCURRENTLY) in an
  atomic migration moves as written.

The concurrent work goes to migrations of its own with `atomic = False` (CONCURRENTLY cannot run in
a transaction), one per deploy phase, at the end of the app's chain (`write_concurrent`). Index and
constraint names are those of the SQL Django produced in the sandbox, so the database ends as plain
Django would leave it, and a later RemoveIndex, RemoveConstraint or AlterField finds them.

In a project that already uses django-pg-migration-tools (`uses_pg_migration_tools`), its Safer*
operations do the builds wherever they give the same schema: they also set lock_timeout, and drop
and rebuild an invalid index that an interrupted build left behind.
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider
from pglast import ast, parse_sql
from pglast.enums import AlterTableType, ConstrType

from migration_safe.config import Config
from migration_safe.engine.fix.split import DRAFTS, SLUG, PartNames, SplitError, SplitFile
from migration_safe.engine.model import MigrationVerdict, Operation, Phase, Review, Statement, StatementKind
from migration_safe.engine.review.phases import Placement
from migration_safe.engine.review.sql import analyse, analyse_all

FIXABLE = {"AddIndex", "AddConstraint", "AlterUniqueTogether", "AddField", "AlterField"}
# nothing of theirs but the index is left behind
MOVES_WHOLE = {"AddIndex", "AddConstraint", "AlterUniqueTogether"}
POSTGRES = "django.contrib.postgres.operations"
SAFER = "django_pg_migration_tools.operations"
CONCURRENT = "concurrent_indexes"  # the name of a part that builds indexes, after its original's
# What names the package in a project: Python files (a migration's import, INSTALLED_APPS) and
# dependency declarations. git grep reads tracked and untracked files but not ignored ones, so a
# virtualenv inside the repository does not count.
PACKAGE_PATTERN = "django[-_.]pg[-_.]migration[-_.]tools"
PACKAGE_FILES = ("*.py", "*requirements*.txt", "*requirements*.in", "*pyproject.toml", "*setup.cfg",
                 "*Pipfile")
# What a new part must not copy from its migration: its place in the graph, and a declared phase
# (deploy_phase, django-syzygy, django-safemigrate, Sentry), which the review computes for the part.
ORIGINAL_ONLY = {"initial", "replaces", "run_before", "deploy_phase", "stage", "safe", "is_post_deployment"}


def uses_pg_migration_tools(repo: Path) -> bool:
    """The project names django-pg-migration-tools in its Python or dependency files."""
    done = subprocess.run(["git", "-C", str(repo), "grep", "-q", "-I", "-i", "--untracked", "-E",
                           PACKAGE_PATTERN, "--", *PACKAGE_FILES], capture_output=True)
    return done.returncode == 0


@dataclass(frozen=True)
class Move:
    """One operation's concurrent work."""

    index: int  # the operation's position in the migration
    pad: str  # the indentation of its first line, which `code` and `stays` keep
    phase: Phase  # of the concurrent work, as the review places it
    code: str  # the operation doing it, for the concurrent migration
    stays: str | None  # what is left in the operation's place; None: it moves whole
    imports: dict[str, set[str]]  # module -> names `code` needs
    stays_phase: Phase | None = None  # of what is left in place


@dataclass
class ConcurrentRewrite:
    verdict: MigrationVerdict
    listing: _Listing  # of the file's text after the other fixes
    moves: list[Move]
    names: PartNames  # of the parts

    @property
    def indices(self) -> list[int]:
        return [move.index for move in self.moves]

    @property
    def whole(self) -> bool:
        """Every operation moves: the file itself becomes the earliest concurrent part."""
        return len(self.moves) == len(self.verdict.operations) and all(m.stays is None for m in self.moves)

    def groups(self) -> list[tuple[Phase, str, list[Move]]]:
        """(phase, migration name, moves) per concurrent migration, in phase order."""
        name = self.verdict.file.name
        phases = sorted({move.phase for move in self.moves}, key=lambda p: p.order)
        added = phases[1:] if self.whole else phases
        names = {phase: self.names(name, CONCURRENT if len(added) == 1 else f"{CONCURRENT}_{SLUG[phase]}")
                 for phase in added}
        return [(phase, names.get(phase, name), [m for m in self.moves if m.phase is phase])
                for phase in phases]

    def kept_phase(self) -> Phase:
        """The phase of what stays in the migration: the operations left, and what is left of those
        whose indexes moved."""
        moved = {move.index: move for move in self.moves}
        phases = [moved[op.index].stays_phase if op.index in moved else op.phase for op in self.verdict.operations
                  if op.index not in moved or moved[op.index].stays is not None]
        return max((p for p in phases if p is not None), key=lambda p: p.order, default=Phase.PRE_DEPLOY)

    def appended(self) -> list[tuple[Phase, str]]:
        """The new migrations, for the app's chain."""
        return [(phase, name) for phase, name, _ in self.groups() if name != self.verdict.file.name]


@dataclass(frozen=True)
class ConcurrentContext:
    """What a rewrite needs besides its migration."""

    review: Review  # what the app's later migrations change
    placement: Placement  # the review's phases, from the project's config
    safer: bool  # write django-pg-migration-tools' operations
    names: PartNames = DRAFTS  # of the migrations the fixes add

    @classmethod
    def of(cls, review: Review, config: Config, safer: bool) -> "ConcurrentContext":
        # The builds are on tables that exist (MS101 fires on no other), so which tables and
        # columns the review creates does not change their phase.
        return cls(review, Placement(config, set(), set()), safer)


def plan_concurrent(context: ConcurrentContext, verdict: MigrationVerdict,
                    source: str) -> tuple[ConcurrentRewrite | None, dict[int, str]]:
    """The operations with a blocking MS101 (an index built in the transaction) or MS102 (a concurrent
    build in an atomic migration) that can be rewritten, and how; why each other one cannot."""
    building = {index for f in verdict.findings if f.rule == "MS101" and f.blocks
                for index in f.operations}  # a grouped MS101 covers several operations
    concurrent = outside_transaction(verdict) | {f.operation_index for f in verdict.findings
                                                 if f.rule == "MS102" and f.blocks and f.operation_index is not None}
    listing = _Listing.read(source)
    if not building | concurrent:
        return None, {}
    if listing is None or not len(listing.elements) == len(verdict.operations) == len(verdict.file.operations):
        return None, dict.fromkeys(building | concurrent, "another rewrite of this migration changed its "
                                   "operations list: run `migration-safe fix` again on the result")
    # Concurrent work runs after everything that follows it in the app: nothing after it may change
    # its model (a renamed or removed column would leave the build nothing to build on).
    changed = models_changed_later(context.review, verdict)
    moves: list[Move] = []
    declined: dict[int, str] = {}
    for index in reversed(range(len(verdict.operations))):
        operation = verdict.operations[index]
        move: Move | str | None = None
        if index in building | concurrent:
            if not _as_reviewed(verdict, listing, index):
                move = "another fix rewrote this operation: run `migration-safe fix` again on the result"
            elif _changed_later(changed, _model(operation)):
                move = _changed_later(changed, _model(operation))
            elif index in concurrent:
                move = _as_written(operation, listing.code(index), context.placement)
            else:
                move = _move(operation, listing.code(index), context.placement, context.safer)
        if isinstance(move, Move):
            moves.insert(0, move)
            continue
        if move is not None:
            declined[index] = move
        changed.add(_changed_model(operation))
    return (ConcurrentRewrite(verdict, listing, moves, context.names) if moves else None), declined


def outside_transaction(verdict: MigrationVerdict) -> set[int]:
    """RunSQL operations of an atomic migration whose SQL, as written, cannot run in a transaction.
    Such a migration fails in the sandbox too, so the review has no SQL to find them by (MS002)."""
    if not verdict.file.atomic:
        return set()
    found = set()
    for operation in verdict.operations:
        sql = operation.parsed.arg("sql", position=0) if operation.type == "RunSQL" and operation.parsed else None
        text = sql.literal() if sql else None
        texts = [text] if isinstance(text, str) else text if isinstance(text, list) else []
        if any(isinstance(t, str) and not s.transactional for t in texts for s in analyse_all(t)):
            found.add(operation.index)
    return found


def _changed_later(changed: set[str], model: str) -> str | None:
    """Why a build on `model` cannot go to the end of the chain, past the app's later migrations."""
    end = ": the build runs at the end of the chain, after it"
    if "*" in changed:
        return "a later migration of this change runs SQL that may alter any table" + end
    if model == "*" and changed - {""}:
        return "this SQL's table cannot be told, and a later migration of this change alters a model" + end
    return f"a later migration of this change alters the model {model}" + end if model in changed else None


def _as_written(operation: Operation, code: _Code, placement: Placement) -> Move:
    """MS102: the operation already builds concurrently; it needs a migration without a transaction.
    The part keeps the original's imports, which the operation's code uses."""
    phase = operation.phase or placement.operation(operation, sql_known=operation.sql_known)
    return Move(operation.index, code.pad, phase, code.written, None, {})


def _as_reviewed(verdict: MigrationVerdict, listing: _Listing, index: int) -> bool:
    """The operation reads as when it was reviewed: no other fix (a suggestion, a recipe) rewrote it,
    so its SQL is still what the sandbox saw."""
    parsed = verdict.file.operations[index]
    reviewed = "\n".join(verdict.file.source.splitlines()[parsed.line - 1: parsed.end_line])
    return listing.code(index).written in reviewed


def models_changed_later(review: Review, verdict: MigrationVerdict) -> set[str]:
    """Models (lower case; "*": any) whose schema the app's migrations built on this one change."""
    app = verdict.file.app_label
    later, frontier = set(), {verdict.file.name}
    while frontier:
        frontier = {m.file.name for m in review.migrations if m.file.app_label == app
                    and m.file.name not in later and any(d[0] == app and d[1] in frontier
                                                         for d in m.file.dependencies)}
        later |= frontier
    return {_changed_model(op) for m in review.migrations if m.file.app_label == app and m.file.name in later
            for op in m.operations}


# Operations that only add to a model, or change its rows: an index build commutes with them.
ADDITIVE = {"AddField", "AddIndex", "AddConstraint", "AddIndexConcurrently", "SaferAddIndexConcurrently",
            "SaferAddUniqueConstraint", "RunPython"}


def _changed_model(operation: Operation) -> str:
    return "" if operation.type in ADDITIVE or _additive_sql(operation) else _model(operation)


def _additive_sql(operation: Operation) -> bool:
    """A RunSQL that only builds indexes, adds plain columns or changes rows: it changes no column an
    index build relies on."""
    if operation.type != "RunSQL":
        return False
    statements = operation.statements
    if not statements and operation.parsed is not None:
        sql = operation.parsed.arg("sql", position=0)
        text = sql.literal() if sql else None
        texts = [text] if isinstance(text, str) else text if isinstance(text, list) else None
        if texts is None or not all(isinstance(t, str) for t in texts):
            return False
        statements = [s for t in texts for s in analyse_all(t)]
    return bool(statements) and all(
        s.kind in (StatementKind.CREATE_INDEX, StatementKind.DML, StatementKind.TRANSACTION)
        or (s.kind is StatementKind.ALTER_TABLE and all(a.action == "add_column" for a in s.actions))
        for s in statements)


def _model(operation: Operation) -> str:
    """The model an operation is about; "*" when it cannot be told (RunSQL may change any table)."""
    parsed = operation.parsed
    name = parsed.arg("model_name", "name", "old_name", position=0) if parsed else None
    value = name.literal() if name else None
    return value.lower() if isinstance(value, str) else "*"


# ------------------------------------------------------------------ one operation


def _move(operation: Operation, code: _Code, placement: Placement, safer: bool) -> Move | str:
    call = code.call
    if operation.type not in FIXABLE or operation.parsed is None or not isinstance(call, cst.Call):
        return f"no concurrent form of {operation.type} is written automatically"
    if not operation.sql_known:
        return "its SQL could not be produced, and the concurrent build is written from it"
    builds = [_build(statement, operation) for statement in operation.statements if _builds_index(statement)]
    if not builds or any(build is None for build in builds):
        return "one of its index builds has no concurrent equivalent (an exclusion or primary key constraint)"
    rest = any(_does_more(statement) for statement in operation.statements)
    if rest and operation.type in MOVES_WHOLE:
        return "it also changes other things (e.g. drops a unique rule) that must stay in the transaction"
    pairs = [pair for build in builds for pair in build.sql]
    # the review places the Safer* operations as it does the SQL they run: the same statements
    phase = placement.operation(Operation(operation.index, "RunSQL", 0, 0, "",
                                          statements=[analyse(sql) for sql, _ in pairs]), sql_known=True)
    if operation.type == "AddIndex":
        name = "SaferAddIndexConcurrently" if safer else "AddIndexConcurrently"
        return Move(operation.index, code.pad, phase, code.render(_renamed(call, name)), None,
                    {SAFER if safer else POSTGRES: {name}})
    if operation.type == "AddConstraint" and safer and all(build.safer_constraint for build in builds):
        renamed = code.render(_renamed(call, "SaferAddUniqueConstraint"))
        return Move(operation.index, code.pad, phase, renamed, None, {SAFER: {"SaferAddUniqueConstraint"}})
    stays, stays_phase = None, None
    if rest:
        without = _without_new_index(call, operation)
        if isinstance(without, str):
            return without
        stays = _separate([code.render(without)], [code.written], code.pad)
        # constraints on the columns it adds bind no old code: as the review places them
        added = {(s.table, a.column) for s in operation.statements for a in s.actions if a.action == "add_column"}
        stays_phase = Placement(placement.config, placement.new_tables, placement.new_columns | added).operation(
            replace(operation, statements=[without_index_builds(s) for s in operation.statements
                                           if not _only_builds(s)]), sql_known=True)
    state = [] if rest else [code.written]  # moving whole, the operation's state moves with its build
    if safer and all(build.safer_field for build in builds):
        # Safer* operations change the state too: SeparateDatabaseAndState keeps them to the database
        database = [build.safer_field for build in builds]
        names = {text.split("(", 1)[0] for text in database}
        return Move(operation.index, code.pad, phase, _separate(database, state, code.pad), stays,
                    {SAFER: names, "django.db": {"migrations", "models"}}, stays_phase)
    run_sql = _run_sql(pairs, code.pad)  # RunSQL alone changes no state
    return Move(operation.index, code.pad, phase, _separate([run_sql], state, code.pad) if state else run_sql,
                stays, {"django.db": {"migrations"}}, stays_phase)


def _only_builds(statement: Statement) -> bool:
    return _builds_index(statement) and not _does_more(statement)


def without_index_builds(statement: Statement) -> Statement:
    """The statement as it runs once its index moved: ADD COLUMN … UNIQUE without the UNIQUE."""
    return replace(statement, actions=[a for a in statement.actions if not (
        a.action == "add_constraint" and a.constraint_type == "unique" and not a.using_index)])


def _builds_index(statement: Statement) -> bool:
    """What MS101 reports: an index built without CONCURRENTLY."""
    if statement.kind is StatementKind.CREATE_INDEX:
        return not statement.concurrently
    return any(a.action == "add_constraint" and a.constraint_type in ("unique", "primary_key", "exclusion")
               and not a.using_index for a in statement.actions)


def _does_more(statement: Statement) -> bool:
    """The statement does something besides building an index (ADD COLUMN … UNIQUE adds a column)."""
    if statement.kind in (StatementKind.CREATE_INDEX, StatementKind.TRANSACTION, StatementKind.SELECT):
        return False
    if statement.kind is StatementKind.ALTER_TABLE:
        return any(a.action != "add_constraint" or a.constraint_type != "unique" for a in statement.actions)
    return True


@dataclass(frozen=True)
class _Build:
    """One index build, made concurrent."""

    sql: list[tuple[str, str]]  # (forward, reverse) statements
    safer_constraint: bool = False  # SaferAddUniqueConstraint builds it alike, from the AddConstraint
    safer_field: str = ""  # the Safer* operation that builds it for a field operation; "": none does alike


@dataclass(frozen=True)
class _Field:
    """The field a field operation indexes, for the Safer* operations that build its indexes."""

    model: str  # Python literals
    name: str
    column: str


def _build(statement: Statement, operation: Operation) -> _Build | None:
    try:
        tree = parse_sql(statement.sql)[0].stmt
    except Exception:  # noqa: BLE001 - pglast's errors vary; the analysis read it, so rarely
        return None
    target = _field(operation)
    if isinstance(tree, ast.IndexStmt):
        return _concurrent_index(statement, tree, target)
    if isinstance(tree, ast.AlterTableStmt):
        return _unique_constraint(statement, tree, target)
    return None


def _field(operation: Operation) -> _Field | None:
    column = (operation.facts.get("field_after") or {}).get("column")
    if operation.type not in ("AddField", "AlterField") or operation.parsed is None or not column:
        return None
    args = operation.parsed.arg("model_name", position=0), operation.parsed.arg("name", position=1)
    model, name = [arg.literal() if arg else None for arg in args]
    if not (isinstance(model, str) and isinstance(name, str)):
        return None
    return _Field(repr(model), repr(name), column)


def _concurrent_index(statement: Statement, tree: ast.IndexStmt, target: _Field | None) -> _Build | None:
    forward = re.sub(r"^CREATE( UNIQUE)? INDEX ", r"CREATE\1 INDEX CONCURRENTLY ",
                     statement.sql.strip().rstrip(";"), count=1, flags=re.I)
    check = analyse(forward)
    if not check.concurrently or check.index_name != statement.index_name or not statement.index_name:
        return None
    reverse = f"DROP INDEX CONCURRENTLY IF EXISTS {_quote(statement.index_name)}"
    elements = tree.indexParams or ()
    # Django's Index(opclasses=...) names no expression, collation or order: only then can it say the same
    plain = target is not None and not statement.unique and tree.whereClause is None \
        and not tree.indexIncludingParams and tree.accessMethod == "btree" and len(elements) == 1 \
        and elements[0].name == target.column \
        and elements[0].expr is None and not elements[0].collation and not elements[0].ordering \
        and len(elements[0].opclass or ()) <= 1
    safer_field = ""
    if plain:
        opclass = [o.sval for o in elements[0].opclass or ()]
        options = f", opclasses={opclass!r}" if opclass else ""
        safer_field = (f"SaferAddIndexConcurrently({target.model}, models.Index(fields=[{target.name}], "
                       f"name={statement.index_name!r}{options}))")
    # SaferAddUniqueConstraint builds a partial or expression unique index (no INCLUDE, opclasses, …)
    safer_constraint = statement.unique and not tree.indexIncludingParams and (
        tree.whereClause is not None or any(e.expr is not None for e in elements)) \
        and not any(e.opclass or e.collation or e.ordering for e in elements)
    return _Build([(forward, reverse)], safer_constraint, safer_field)


def _unique_constraint(statement: Statement, tree: ast.AlterTableStmt,
                       target: _Field | None) -> _Build | None:
    """ADD [COLUMN …] CONSTRAINT … UNIQUE -> the unique index built concurrently, then attached."""
    found = []
    for cmd in tree.cmds:
        if cmd.subtype == AlterTableType.AT_AddConstraint:
            found.append((cmd.def_, [key.sval for key in cmd.def_.keys or ()]))
        elif cmd.subtype == AlterTableType.AT_AddColumn:  # inline: the column's own constraint
            found += [(c, [cmd.def_.colname]) for c in cmd.def_.constraints or ()
                      if c.contype == ConstrType.CONSTR_UNIQUE]
    if len(found) != 1:
        return None
    constraint, columns = found[0]
    if constraint.contype != ConstrType.CONSTR_UNIQUE or constraint.including or constraint.options \
            or constraint.indexspace or not columns:
        return None
    # An inline UNIQUE is named by PostgreSQL (<table>_<column>_key): the sandbox's lock trace has it.
    name = constraint.conname or _only(lock.relation for lock in statement.locks
                                       if lock.kind == "index" and lock.mode == "AccessExclusiveLock")
    if not name:
        return None
    table = _quote(statement.table or "")
    nulls = " NULLS NOT DISTINCT" if constraint.nulls_not_distinct else ""
    deferrable = (" DEFERRABLE INITIALLY DEFERRED" if constraint.initdeferred else
                  " DEFERRABLE INITIALLY IMMEDIATE") if constraint.deferrable else ""
    sql = [(f"CREATE UNIQUE INDEX CONCURRENTLY {_quote(name)} ON {table} "
            f"({', '.join(map(_quote, columns))}){nulls}",
            f"DROP INDEX CONCURRENTLY IF EXISTS {_quote(name)}"),
           (f"ALTER TABLE {table} ADD CONSTRAINT {_quote(name)} UNIQUE USING INDEX {_quote(name)}"
            f"{deferrable}",
            f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {_quote(name)}")]
    # SaferAddUniqueConstraint writes DEFERRABLE only for INITIALLY DEFERRED
    safer_constraint = not constraint.deferrable or constraint.initdeferred
    safer_field = "" if target is None or deferrable or nulls or columns != [target.column] else \
        f"SaferAddUniqueConstraint({target.model}, models.UniqueConstraint(" \
        f"fields=[{target.name}], name={name!r}))"
    return _Build(sql, safer_constraint, safer_field)


def _only(values) -> str | None:
    values = list(values)
    return values[0] if len(values) == 1 else None


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


# ------------------------------------------------------------------ code


def _renamed(call: cst.Call, name: str) -> cst.Call:
    return call.with_changes(func=cst.Name(name))


def _without_new_index(call: cst.Call, operation: Operation) -> cst.Call | str:
    """The field operation without the field's new `db_index` / `unique`: it builds no index."""
    before = operation.facts.get("field_before") or {}
    after = operation.facts.get("field_after") or {}
    if before.get("db_index") or before.get("unique"):
        # an indexed column whose type changes gets indexes rebuilt: not ours to separate
        return "the column is indexed already, and the change rebuilds its indexes"
    values = {key: "False" for key in ("db_index", "unique") if after.get(key)}
    if not values:
        return "its index comes from the field's type (a ForeignKey's), which cannot be turned off"
    for position, arg in enumerate(call.args):
        keyword = arg.keyword.value if arg.keyword else None
        if keyword == "field" or (keyword is None and position == 2):
            new_field = _with_keywords(arg.value, values) if isinstance(arg.value, cst.Call) else None
            if new_field is None:
                return "the field is a OneToOneField (always unique) or takes **kwargs"
            args = list(call.args)
            args[position] = arg.with_changes(value=new_field)
            return call.with_changes(args=args)
    return "its `field` argument is not written as a call"


def _with_keywords(call: cst.Call, values: dict[str, str]) -> cst.Call | None:
    if any(arg.star for arg in call.args) or _field_class(call) == "OneToOneField":
        return None  # **kwargs may set them again; a OneToOneField is always unique
    args, left = list(call.args), dict(values)
    for position, arg in enumerate(args):
        if arg.keyword and arg.keyword.value in left:
            args[position] = arg.with_changes(value=cst.parse_expression(left.pop(arg.keyword.value)))
    for key, value in left.items():
        new = cst.Arg(keyword=cst.Name(key), value=cst.parse_expression(value),
                      equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                                            whitespace_after=cst.SimpleWhitespace("")))
        if args:  # after the last argument, with its separator; the last keeps its trailing comma, if any
            last = args[-1]
            separator = args[-2].comma if len(args) > 1 and isinstance(args[-2].comma, cst.Comma) \
                else cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
            args[-1] = last.with_changes(comma=separator)
            new = new.with_changes(comma=last.comma)
        args.append(new)
    return call.with_changes(args=args)


def _field_class(call: cst.Call) -> str | None:
    func = call.func
    return func.attr.value if isinstance(func, cst.Attribute) else getattr(func, "value", None)


def _run_sql(pairs: list[tuple[str, str]], pad: str) -> str:
    forward = [sql for sql, _ in pairs]
    reverse = [sql for _, sql in reversed(pairs)]  # RunSQL runs reverse_sql in the order given
    return "\n".join([
        "migrations.RunSQL(",
        f"{pad}    sql=[", *[f"{pad}        {sql!r}," for sql in forward], f"{pad}    ],",
        f"{pad}    reverse_sql=[", *[f"{pad}        {sql!r}," for sql in reverse], f"{pad}    ],",
        f"{pad})",
    ])


def _separate(database: list[str], state: list[str], pad: str) -> str:
    lines = ["migrations.SeparateDatabaseAndState("]
    for keyword, codes in (("database_operations", database), ("state_operations", state)):
        if codes:
            lines += [f"{pad}    {keyword}=[", *[f"{pad}        {_shift(code, 8)}," for code in codes],
                      f"{pad}    ],"]
    return "\n".join([*lines, f"{pad})"])


def _shift(code: str, spaces: int) -> str:
    """Code whose first line starts at the cursor, nested `spaces` deeper: its other lines move."""
    first, *rest = code.split("\n")
    return "\n".join([first, *[" " * spaces + line if line else line for line in rest]])


# ------------------------------------------------------------------ files


@dataclass(frozen=True)
class _Code:
    """One operation of the migration, as written."""

    module: cst.Module
    call: cst.BaseExpression
    pad: str  # the indentation of its first line; its other lines are indented as written

    @property
    def written(self) -> str:
        return self.render(self.call)

    def render(self, node: cst.CSTNode) -> str:
        """`node` in the operation's place, as text: its first line from where the operation starts,
        the others indented as in the file (code_for_node would drop the enclosing blocks' indent)."""
        module = self.module if node is self.call else self.module.deep_replace(self.call, node)
        span = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)[node]
        lines = module.code.splitlines()[span.start.line - 1: span.end.line]
        lines[-1] = lines[-1][: span.end.column]
        lines[0] = lines[0][span.start.column:]
        return "\n".join(lines)


@dataclass(frozen=True)
class _Listing:
    """A migration file's operations list."""

    module: cst.Module
    elements: list[cst.Element]
    columns: list[int]  # where each operation starts
    indent: str  # of the `operations = [` line

    @classmethod
    def read(cls, source: str) -> "_Listing | None":
        try:
            wrapper = MetadataWrapper(cst.parse_module(source))
        except cst.ParserSyntaxError:
            return None
        module, positions = wrapper.module, wrapper.resolve(PositionProvider)
        finder = _OperationsFinder()
        module.visit(finder)
        if finder.assign is None:
            return None
        line = source.splitlines()[positions[finder.assign].start.line - 1]
        elements = list(finder.assign.value.elements)
        return cls(module, elements, [positions[e.value].start.column for e in elements],
                   line[: len(line) - len(line.lstrip())])

    def code(self, index: int) -> _Code:
        return _Code(self.module, self.elements[index].value, " " * self.columns[index])

    def parse(self, operations: list[tuple[str, str]]) -> list[cst.Element]:
        """(pad, code) operations as list elements, parsed where they will stand: libcst keeps
        continuation lines relative to the indentation of the enclosing block."""
        text = "".join(f"{pad}{code},\n" for pad, code in operations)
        module = cst.parse_module(f"class Migration:\n{self.indent}operations = [\n{text}{self.indent}]\n")
        finder = _OperationsFinder()
        module.visit(finder)
        return list(finder.assign.value.elements)


def write_concurrent(rewrite: ConcurrentRewrite, anchors: dict[str, str]) -> list[SplitFile]:
    """The rewritten migration and its concurrent parts. A part depends on `anchors[name]` when
    given, else on the migration (the first) or on the part before it."""
    file, listing = rewrite.verdict.file, rewrite.listing
    folder = file.path.rsplit("/", 1)[0]
    files, previous = [], file.name
    if not rewrite.whole:
        moved = {move.index: move for move in rewrite.moves}
        kept = []
        for index, element in enumerate(listing.elements):
            move = moved.get(index)
            if move is None:
                kept.append(element)
            elif move.stays is not None:
                kept.append(element.with_changes(value=listing.parse([(move.pad, move.stays)])[0].value))
        imports = {"django.db": {"migrations"}} if any(m.stays for m in rewrite.moves) else {}
        files.append(SplitFile(file.name, file.path, None, _rewrite(listing.module, kept, {}, set(), None,
                                                                    imports).code))
    for phase, name, moves in rewrite.groups():
        elements = listing.parse([(move.pad, move.code) for move in moves])
        imports = _merge(move.imports for move in moves)
        attributes = {"atomic": "False", "deploy_phase": f'"{phase.value}"'}
        if name == file.name:
            source = _rewrite(listing.module, elements, attributes, set(), None, imports)
        else:
            source = _rewrite(listing.module, elements, attributes, ORIGINAL_ONLY,
                              (file.app_label, anchors.get(name, previous)), imports)
            previous = name
        files.append(SplitFile(name, f"{folder}/{name}.py", None, source.code))
    return files


def _merge(imports) -> dict[str, set[str]]:
    merged: dict[str, set[str]] = {}
    for one in imports:
        for module, names in one.items():
            merged.setdefault(module, set()).update(names)
    return merged


class _OperationsFinder(cst.CSTVisitor):
    """The Migration class's `operations = [...]`."""

    def __init__(self) -> None:
        self.assign: cst.Assign | None = None

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return node.name.value == "Migration"

    def visit_Assign(self, node: cst.Assign) -> bool:
        if _target(node) == "operations" and isinstance(node.value, (cst.List, cst.Tuple)):
            self.assign = node
        return False


def _target(node: cst.Assign) -> str | None:
    target = node.targets[0].target if len(node.targets) == 1 else None
    return target.value if isinstance(target, cst.Name) else None


def _rewrite(module: cst.Module, operations: list[cst.Element], attributes: dict[str, str], drop: set[str],
             depends_on: tuple[str, str] | None, imports: dict[str, set[str]]) -> cst.Module:
    rewriter = _Migration(operations, attributes, drop, depends_on)
    rewritten = module.visit(rewriter)
    if not rewriter.done:
        raise SplitError("no `operations = [...]` list in the Migration class")
    return _with_imports(rewritten, imports)


class _Migration(cst.CSTTransformer):
    """New operations, attributes declared first, assignments dropped, dependencies repointed."""

    def __init__(self, operations: list[cst.Element], attributes: dict[str, str], drop: set[str],
                 depends_on: tuple[str, str] | None) -> None:
        self.operations, self.attributes, self.drop = operations, attributes, drop
        self.depends_on = depends_on
        self.done = False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return node.name.value == "Migration"

    def leave_ClassDef(self, original: cst.ClassDef, updated: cst.ClassDef) -> cst.ClassDef:
        if original.name.value != "Migration":
            return updated
        removed = self.drop | set(self.attributes)
        body = [s for s in updated.body.body if _assigned(s) not in removed]
        declarations = [cst.parse_statement(f"{key} = {value}\n") for key, value in self.attributes.items()]
        return updated.with_changes(body=updated.body.with_changes(body=[*declarations, *body]))

    def leave_Assign(self, original: cst.Assign, updated: cst.Assign) -> cst.Assign:
        name = _target(original)
        if name == "operations" and isinstance(updated.value, (cst.List, cst.Tuple)):
            elements = list(self.operations)
            if elements:  # a trailing comma, as Django writes them; the newline is the bracket's
                elements[-1] = elements[-1].with_changes(comma=cst.Comma())
            self.done = True
            return updated.with_changes(value=updated.value.with_changes(elements=elements))
        if name == "dependencies" and self.depends_on:
            return updated.with_changes(value=cst.parse_expression(repr([self.depends_on])))
        return updated


def _assigned(statement: cst.CSTNode) -> str | None:
    if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1 \
            and isinstance(statement.body[0], cst.Assign):
        return _target(statement.body[0])
    return None


def _with_imports(module: cst.Module, imports: dict[str, set[str]]) -> cst.Module:
    """`from <module> import <names>` for the names no top-level import binds yet."""
    bound = _bound_names(module)
    lines = [f"from {source} import {', '.join(sorted(names - bound))}\n"
             for source, names in sorted(imports.items()) if names - bound]
    if not lines:
        return module
    body = list(module.body)
    # after the file's last top-level import
    at = next((i + 1 for i in reversed(range(len(body))) if _is_import(body[i])), 0)
    return module.with_changes(body=[*body[:at], *map(cst.parse_statement, lines), *body[at:]])


def _bound_names(module: cst.Module) -> set[str]:
    names = set()
    for statement in module.body:
        if not _is_import(statement):
            continue
        small = statement.body[0]
        if isinstance(small.names, cst.ImportStar):
            continue
        for alias in small.names:
            bound = alias.asname.name if alias.asname else alias.name
            # `import a.b` binds `a`
            names.add(module.code_for_node(bound).split(".")[0])
    return names


def _is_import(statement: cst.CSTNode) -> bool:
    return isinstance(statement, cst.SimpleStatementLine) \
        and isinstance(statement.body[0], (cst.Import, cst.ImportFrom))
