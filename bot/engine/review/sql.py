"""Typed model of SQL statements, read with PostgreSQL's own parser (pglast).

sqlparse only splits a script into statements and pretty-prints them; every fact
the rules rely on comes from pglast's parse tree, so quoting, comments and
dollar-quoted bodies can never fool a rule the way a regex would.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlparse
from pglast import ast, parse_sql, visitors
from pglast.enums import AlterTableType, ConstrType, ObjectType, ReindexObjectType
from pglast.stream import RawStream

from migration_safe.engine.model import AlterAction, Statement, StatementKind

__all__ = ["split_statements", "analyse", "analyse_all", "pretty", "VOLATILE_FUNCTIONS"]

# PostgreSQL builtins (plus uuid-ossp) marked VOLATILE in pg_proc. A volatile
# default forces ADD COLUMN to rewrite the table, because every row needs its
# own value. now(), statement_timestamp() and CURRENT_TIMESTAMP & co. are only
# STABLE: evaluated once, stored in the catalog, no rewrite.
VOLATILE_FUNCTIONS = frozenset(
    {
        "random",
        "random_normal",
        "gen_random_uuid",
        "uuidv4",
        "uuidv7",
        "uuid_generate_v1",
        "uuid_generate_v1mc",
        "uuid_generate_v4",
        "clock_timestamp",
        "timeofday",
        "nextval",
        "setval",
        "txid_current",
    }
)

# serial types are sugar for DEFAULT nextval(...), hence volatile.
_SERIAL_TYPES = frozenset({"smallserial", "serial2", "serial", "serial4", "bigserial", "serial8"})

_CONSTRAINT_TYPES = {
    ConstrType.CONSTR_CHECK: "check",
    ConstrType.CONSTR_FOREIGN: "foreign_key",
    ConstrType.CONSTR_UNIQUE: "unique",
    ConstrType.CONSTR_PRIMARY: "primary_key",
    ConstrType.CONSTR_EXCLUSION: "exclusion",
    ConstrType.CONSTR_NOTNULL: "not_null",  # PG 18: ADD CONSTRAINT name NOT NULL col
}

# Statements PostgreSQL refuses inside a transaction block, whatever their options.
_NEVER_IN_TRANSACTION: tuple[type, ...] = (
    ast.CreatedbStmt,
    ast.DropdbStmt,
    ast.AlterSystemStmt,
    ast.CreateTableSpaceStmt,
    ast.DropTableSpaceStmt,
)

# CREATE statements whose node name does not start with "Create".
_OTHER_CREATES: tuple[type, ...] = (
    ast.ViewStmt,
    ast.DefineStmt,
    ast.CompositeTypeStmt,
    ast.RuleStmt,
)


# ---------------------------------------------------------------- public API


def split_statements(sql_text: str) -> list[str]:
    """The statements of a script, each as written, without empty or comment-only pieces."""
    pieces = (piece.rstrip() for piece in sqlparse.split(sql_text))
    return [piece for piece in pieces if _has_code(piece)]


def _has_code(piece: str) -> bool:
    # sqlparse attaches trailing comments to the statement before them, but a
    # script's final comment (or a stray ";") comes back as a piece of its own.
    code = sqlparse.format(piece, strip_comments=True)
    return bool(code.strip().strip(";").strip())


def analyse(sql: str) -> Statement:
    """Type ONE statement. Never raises.

    Given several statements, only the first is typed: callers with a script use
    `analyse_all`. Text pglast rejects (or a tree shape this module cannot read)
    comes back as UNPARSED, so a review can report it instead of crashing.
    """
    statement = Statement(sql=sql)
    try:
        parsed = parse_sql(sql)
        if parsed:
            _fill(parsed[0].stmt, statement)
    except Exception:  # noqa: BLE001 - contract: one odd statement must not stop a review
        return Statement(sql=sql, kind=StatementKind.UNPARSED)
    return statement


def analyse_all(sql_text: str) -> list[Statement]:
    return [analyse(piece) for piece in split_statements(sql_text)]


def pretty(sql: str) -> str:
    """Display form only: never feed it back to the analysis."""
    return sqlparse.format(sql, reindent=True, keyword_case="upper").strip()


# ---------------------------------------------------------------- dispatch


def _fill(node: ast.Node, statement: Statement) -> None:
    handler = _HANDLERS.get(type(node))
    if handler is not None:
        handler(node, statement)
    elif type(node).__name__.startswith("Create") or isinstance(node, _OTHER_CREATES):
        statement.kind = StatementKind.CREATE_OTHER
    elif type(node).__name__.startswith("Drop"):
        statement.kind = StatementKind.DROP_OTHER
    if isinstance(node, _NEVER_IN_TRANSACTION):
        statement.transactional = False


def _create_table(node: ast.CreateStmt, statement: Statement) -> None:
    statement.kind = StatementKind.CREATE_TABLE
    statement.table = node.relation.relname


def _create_table_as(node: ast.CreateTableAsStmt, statement: Statement) -> None:
    if node.objtype == ObjectType.OBJECT_TABLE:
        statement.kind = StatementKind.CREATE_TABLE
        statement.table = node.into.rel.relname
    else:  # materialized view
        statement.kind = StatementKind.CREATE_OTHER


def _select(node: ast.SelectStmt, statement: Statement) -> None:
    if node.intoClause is not None:  # SELECT … INTO t is CREATE TABLE AS in disguise
        statement.kind = StatementKind.CREATE_TABLE
        statement.table = node.intoClause.rel.relname
    else:
        statement.kind = StatementKind.SELECT


def _create_index(node: ast.IndexStmt, statement: Statement) -> None:
    statement.kind = StatementKind.CREATE_INDEX
    statement.table = node.relation.relname
    statement.index_name = node.idxname
    statement.unique = bool(node.unique)
    statement.concurrently = bool(node.concurrent)
    statement.transactional = not statement.concurrently


def _drop(node: ast.DropStmt, statement: Statement) -> None:
    statement.if_exists = bool(node.missing_ok)
    first = _last_name(node.objects[0]) if node.objects else None
    if node.removeType == ObjectType.OBJECT_TABLE:
        statement.kind = StatementKind.DROP_TABLE
        statement.table = first
    elif node.removeType == ObjectType.OBJECT_INDEX:
        statement.kind = StatementKind.DROP_INDEX
        statement.index_name = first
        statement.concurrently = bool(node.concurrent)
        statement.transactional = not statement.concurrently
    else:
        statement.kind = StatementKind.DROP_OTHER


def _rename(node: ast.RenameStmt, statement: Statement) -> None:
    statement.kind = StatementKind.RENAME
    statement.rename_object = _object_label(node.renameType)
    statement.rename_to = node.newname
    if node.relation is None:  # schema, function, type…: not attached to a table
        statement.rename_from = node.subname or _last_name(node.object)
    elif node.subname is not None:  # column, constraint, trigger… of a table
        statement.table = node.relation.relname
        statement.rename_from = node.subname
    else:  # the relation itself: table, index, sequence, view…
        statement.rename_from = node.relation.relname
        if node.renameType == ObjectType.OBJECT_TABLE:
            statement.table = node.relation.relname


def _dml(node: Any, statement: Statement) -> None:
    statement.kind = StatementKind.DML
    statement.table = node.relation.relname
    if isinstance(node, (ast.UpdateStmt, ast.DeleteStmt)):
        statement.dml_has_where = node.whereClause is not None


def _copy(node: ast.CopyStmt, statement: Statement) -> None:
    if node.relation is not None:  # COPY (query) TO has no table
        statement.table = node.relation.relname
    if node.is_from:
        statement.kind = StatementKind.DML


def _truncate(node: ast.TruncateStmt, statement: Statement) -> None:
    statement.kind = StatementKind.TRUNCATE
    statement.table = node.relations[0].relname


def _transaction(node: ast.Node, statement: Statement) -> None:
    statement.kind = StatementKind.TRANSACTION


def _vacuum(node: ast.VacuumStmt, statement: Statement) -> None:
    # A bare ANALYZE shares the node and may run in a transaction; VACUUM may not.
    statement.transactional = not node.is_vacuumcmd


def _reindex(node: ast.ReindexStmt, statement: Statement) -> None:
    statement.concurrently = any(
        p.defname == "concurrently" and _option_on(p) for p in node.params or ()
    )
    whole = node.kind in (
        ReindexObjectType.REINDEX_OBJECT_SYSTEM,
        ReindexObjectType.REINDEX_OBJECT_DATABASE,
    )
    statement.transactional = not (statement.concurrently or whole)


# ---------------------------------------------------------------- ALTER TABLE


def _alter_table(node: ast.AlterTableStmt, statement: Statement) -> None:
    if node.objtype != ObjectType.OBJECT_TABLE:  # ALTER INDEX / VIEW / SEQUENCE share the node
        return
    statement.kind = StatementKind.ALTER_TABLE
    statement.table = node.relation.relname
    statement.actions = [action for cmd in node.cmds for action in _alter_actions(cmd)]
    if any(_detaches_concurrently(cmd) for cmd in node.cmds):
        statement.concurrently = True
        statement.transactional = False


def _alter_actions(cmd: ast.AlterTableCmd) -> list[AlterAction]:
    """ADD COLUMN may carry constraints (REFERENCES, UNIQUE, CHECK): report them as their own actions."""
    action = _alter_action(cmd)
    if action.action != "add_column":
        return [action]
    inline = [c for c in (cmd.def_.constraints or ())
              if c.contype in _CONSTRAINT_TYPES and c.contype != ConstrType.CONSTR_NOTNULL]
    return [action] + [
        AlterAction(**{**vars(_add_constraint(c)), "column": action.column}) for c in inline
    ]


def _alter_action(cmd: ast.AlterTableCmd) -> AlterAction:
    subtype = cmd.subtype
    if subtype == AlterTableType.AT_AddColumn:
        return _add_column(cmd.def_)
    if subtype == AlterTableType.AT_ColumnDefault:
        if cmd.def_ is None or _is_null(cmd.def_):  # SET DEFAULT NULL is DROP DEFAULT by another name
            return AlterAction("drop_default", column=cmd.name)
        return AlterAction(
            "set_default",
            column=cmd.name,
            default=_sql(cmd.def_),
            default_volatile=_is_volatile(cmd.def_),
        )
    if subtype == AlterTableType.AT_AlterColumnType:
        return AlterAction("alter_type", column=cmd.name, type_name=_sql(cmd.def_.typeName))
    if subtype == AlterTableType.AT_AddConstraint:
        return _add_constraint(cmd.def_)
    simple = _SIMPLE_ACTIONS.get(subtype)
    if simple is None:
        return AlterAction("other")
    action, on_column = simple
    if on_column:
        return AlterAction(action, column=cmd.name)
    return AlterAction(action, constraint=cmd.name)


# subtype -> (action, whether AlterTableCmd.name is a column, else a constraint)
_SIMPLE_ACTIONS = {
    AlterTableType.AT_DropColumn: ("drop_column", True),
    AlterTableType.AT_SetNotNull: ("set_not_null", True),
    AlterTableType.AT_DropNotNull: ("drop_not_null", True),
    AlterTableType.AT_ValidateConstraint: ("validate_constraint", False),
    AlterTableType.AT_DropConstraint: ("drop_constraint", False),
}


def _add_column(column: ast.ColumnDef) -> AlterAction:
    constraints = column.constraints or ()
    kinds = {c.contype for c in constraints}
    defaults = (c.raw_expr for c in constraints if c.contype == ConstrType.CONSTR_DEFAULT)
    default = next(defaults, None)
    if default is not None and _is_null(default):
        default = None  # DEFAULT NULL (Django's db_default=None) fills nothing: it is no default
    # serial and identity columns fill every row from a sequence (nextval)
    sequence_filled = _is_serial(column.typeName) or ConstrType.CONSTR_IDENTITY in kinds
    return AlterAction(
        "add_column",
        column=column.colname,
        type_name=_sql(column.typeName),
        # PRIMARY KEY implies NOT NULL in PostgreSQL
        not_null=bool(column.is_not_null)
        or bool(kinds & {ConstrType.CONSTR_NOTNULL, ConstrType.CONSTR_PRIMARY}),
        default=_sql(default) if default is not None else None,
        default_volatile=sequence_filled or (default is not None and _is_volatile(default)),
    )


def _add_constraint(constraint: ast.Constraint) -> AlterAction:
    return AlterAction(
        "add_constraint",
        constraint=constraint.conname,
        constraint_type=_CONSTRAINT_TYPES.get(constraint.contype, "other"),
        not_valid=bool(constraint.skip_validation),
        using_index=bool(constraint.indexname),
    )


def _detaches_concurrently(cmd: ast.AlterTableCmd) -> bool:
    return cmd.subtype == AlterTableType.AT_DetachPartition and bool(
        getattr(cmd.def_, "concurrent", False)
    )


# ---------------------------------------------------------------- helpers


class _FunctionNames(visitors.Visitor):
    """Collects the (unqualified) names of every function an expression calls."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_FuncCall(self, ancestors: Any, node: ast.FuncCall) -> None:
        self.names.add(node.funcname[-1].sval)


def _is_volatile(expr: ast.Node) -> bool:
    # CURRENT_TIMESTAMP, CURRENT_USER… parse as SQLValueFunction, not FuncCall:
    # they are stable, so skipping them is right.
    collector = _FunctionNames()
    collector(expr)
    return not collector.names.isdisjoint(VOLATILE_FUNCTIONS)


def _is_null(expr: ast.Node) -> bool:
    """NULL, NULL::type, (NULL): PostgreSQL stores no default for it."""
    while isinstance(expr, ast.TypeCast):
        expr = expr.arg
    return isinstance(expr, ast.A_Const) and bool(expr.isnull)


def _is_serial(type_name: ast.TypeName | None) -> bool:
    return type_name is not None and _last_name(type_name.names) in _SERIAL_TYPES


def _sql(node: ast.Node) -> str:
    return RawStream()(node)


def _last_name(names: Any) -> str | None:
    """Unqualified name from a (schema, name) list, a String or an ObjectWithArgs."""
    if isinstance(names, ast.ObjectWithArgs):
        names = names.objname
    if isinstance(names, (list, tuple)):
        names = names[-1] if names else None
    return getattr(names, "sval", None)


def _object_label(object_type: ObjectType) -> str:
    if object_type == ObjectType.OBJECT_TABCONSTRAINT:
        return "constraint"
    return ObjectType(object_type).name.removeprefix("OBJECT_").lower()


def _option_on(option: ast.DefElem) -> bool:
    # "(CONCURRENTLY)" has no argument; "(CONCURRENTLY false)" turns it off.
    if option.arg is None:
        return True
    value = getattr(option.arg, "sval", getattr(option.arg, "ival", ""))
    return str(value).lower() not in {"false", "off", "0"}


_HANDLERS: dict[type, Callable[[Any, Statement], None]] = {
    ast.CreateStmt: _create_table,
    ast.CreateTableAsStmt: _create_table_as,
    ast.SelectStmt: _select,
    ast.IndexStmt: _create_index,
    ast.DropStmt: _drop,
    ast.RenameStmt: _rename,
    ast.AlterTableStmt: _alter_table,
    ast.InsertStmt: _dml,
    ast.UpdateStmt: _dml,
    ast.DeleteStmt: _dml,
    ast.MergeStmt: _dml,
    ast.CopyStmt: _copy,
    ast.TruncateStmt: _truncate,
    ast.TransactionStmt: _transaction,
    ast.VariableSetStmt: _transaction,
    ast.ConstraintsSetStmt: _transaction,  # Django's SET CONSTRAINTS … IMMEDIATE
    ast.VacuumStmt: _vacuum,
    ast.ReindexStmt: _reindex,
}
