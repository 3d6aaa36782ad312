"""Safe rewrites that take more than one step: SET NOT NULL through a validated CHECK (MS106), with
a db_default and the NULLs filled in batches first when the field has a default, a NOT NULL column
removed in two phases (MS109), renames kept in Django's state only (MS108), a column's inline CHECK
added NOT VALID and validated later (MS107), the rows a RunSQL changes after its schema change moved
to a migration of their own (MS118).

Rules call the `*_suggestion` functions for the part that replaces the operation's own lines (a
GitHub ```suggestion). `plan_recipe` gives `migration-safe fix` the rest: rewrites that need new
imports or move an operation to another phase, and the migrations to add at the end of the app's
chain. Every text is built around the operation's code as written, so its comments stay.
"""
from __future__ import annotations

import ast
import hashlib
import io
import tokenize
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Callable, Iterable

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider
from pglast import ast as pg_ast
from pglast import parse_sql
from pglast.enums import ConstrType
from pglast.stream import RawStream

from migration_safe.config import Config
from migration_safe.engine.fix.local import apply_suggestion, closing_like, rename_default, validate_migration
from migration_safe.engine.fix.models_rewrite import ModelChange, app_folder
from migration_safe.engine.fix.split import PartNames
from migration_safe.engine.model import (
    MigrationFile, MigrationVerdict, Operation, ParsedOperation, Phase, Review, StatementKind,
)
from migration_safe.engine.review.phases import Placement
from migration_safe.engine.review.sql import analyse_all

NESTED = 8  # columns an operation moves right when it goes into SeparateDatabaseAndState([...])
_PG_NAME = 63  # PostgreSQL truncates identifiers longer than this


# ---------------------------------------------------------------- where an operation stands


@dataclass(frozen=True)
class Site:
    """An operation call and the lines it stands on, as the file writes them."""

    line: int
    end_line: int
    head: str  # before the call on its first line: indentation, or `operations = [`
    call: str  # the call's code
    tail: str  # after the call on its last line: a comma, a comment, `]`
    prefix: str  # "migrations." of "migrations.AlterField"

    @property
    def indent(self) -> str:
        """The first line's indentation: what the call's own lines are indented from."""
        return self.head[: len(self.head) - len(self.head.lstrip())]

    def lines(self, expression: str) -> str:
        """The site's lines with `expression` (indented for this site) in place of the call."""
        return f"{self.head}{expression}{self.tail}"


def find_site(source: str, index: int) -> Site | None:
    """Operation `index` of the Migration class's `operations` list."""
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError:
        return None
    elements = _operation_elements(module)
    if elements is None or index >= len(elements) or not isinstance(elements[index].value, cst.Call):
        return None
    call = elements[index].value
    where = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)[call]
    lines = source.splitlines()[where.start.line - 1: where.end.line]
    # From the file's own lines: libcst renders a node's inner lines without its block's indentation.
    text = "\n".join(lines)[where.start.column: len("\n".join(lines)) - len(lines[-1]) + where.end.column]
    qualifier = module.code_for_node(call.func).rpartition(".")[0]
    return Site(where.start.line, where.end.line, lines[0][: where.start.column], text,
                lines[-1][where.end.column:], f"{qualifier}." if qualifier else "")


def operation_count(source: str) -> int | None:
    try:
        elements = _operation_elements(cst.parse_module(source))
    except cst.ParserSyntaxError:
        return None
    return None if elements is None else len(elements)


def _operation_elements(module: cst.Module) -> list[cst.BaseElement] | None:
    classes = [s for s in module.body if isinstance(s, cst.ClassDef) and s.name.value == "Migration"]
    if not classes or not isinstance(classes[-1].body, cst.IndentedBlock):
        return None
    found = None
    for line in classes[-1].body.body:  # the last assignment wins, as on import
        if isinstance(line, cst.SimpleStatementLine):
            for small in line.body:
                if isinstance(small, cst.Assign) and len(small.targets) == 1 \
                        and isinstance(small.targets[0].target, cst.Name) \
                        and small.targets[0].target.value == "operations" \
                        and isinstance(small.value, (cst.List, cst.Tuple)):
                    found = list(small.value.elements)
    return found


def valid_after(source: str, site: Site, text: str) -> str | None:
    """`text` if the file stays valid Python with it in place of the site's lines."""
    try:
        ast.parse(apply_suggestion(source, site.line, site.end_line, text))
    except SyntaxError:
        return None
    return text


# ---------------------------------------------------------------- code generation


def nest(call: str, by: int = NESTED) -> str:
    """The call with its continuation lines `by` columns further right (it moves into a list).

    Left as it is when a string spans lines: indenting would change the string."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(call).readline))
    except (tokenize.TokenError, SyntaxError):
        return call
    if any(t.type == tokenize.STRING and t.start[0] != t.end[0] for t in tokens):
        return call
    first, *rest = call.split("\n")
    return "\n".join([first, *(" " * by + line if line.strip() else line for line in rest)])


def separate(site: Site, comments: list[str], database: list[str], state: list[str]) -> str:
    """SeparateDatabaseAndState(...) for the site; items are expressions indented for their place."""
    inner = site.indent + " " * 4
    out = [f"{site.prefix}SeparateDatabaseAndState("]
    out += [f"{inner}# {comment}" for comment in comments]
    for keyword, items in (("database_operations", database), ("state_operations", state)):
        if not items:
            out.append(f"{inner}{keyword}=[],")
            continue
        out.append(f"{inner}{keyword}=[")
        out += [f"{inner}    {item}," for item in items]
        out.append(f"{inner}],")
    out.append(f"{site.indent})")
    return "\n".join(out)


def run_sql(prefix: str, indent: str, sql: list[str], reverse: list[str] | None,
            reverse_comment: str | None = None) -> str:
    """RunSQL(...) starting at a place indented by `indent`; reverse None: nothing to undo."""
    inner = indent + " " * 4
    out = [f"{prefix}RunSQL(", f"{inner}sql={_strings(inner, sql)},"]
    if reverse_comment:
        out.append(f"{inner}# {reverse_comment}")
    out.append(f"{inner}reverse_sql={_strings(inner, reverse) if reverse else prefix + 'RunSQL.noop'},")
    out.append(f"{indent})")
    return "\n".join(out)


def _strings(indent: str, values: list[str]) -> str:
    if len(values) == 1:
        return repr(values[0])
    return "[\n" + "".join(f"{indent}    {value!r},\n" for value in values) + f"{indent}]"


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class NewPart:
    """A migration a recipe adds at the end of the app's chain."""

    name: str
    phase: Phase
    render: Callable[[str, str], str]  # (app_label, the migration it depends on) -> file text

    @classmethod
    def of(cls, name: str, phase: Phase, comment: str, operation: str) -> "NewPart":
        """A migration of one operation, indented for its place in `operations`."""
        return cls(name, phase, partial(_migration_text, phase, comment, operation))


def _migration_text(phase: Phase, comment: str, operation: str, app_label: str, depends_on: str) -> str:
    return (
        "from django.db import migrations\n\n\n"
        "class Migration(migrations.Migration):\n"
        f'    deploy_phase = "{phase.value}"\n'
        f"    dependencies = [({app_label!r}, {depends_on!r})]\n\n"
        f"    # {comment}\n"
        f"    operations = [\n        {operation},\n    ]\n"
    )


# ---------------------------------------------------------------- what else the change touches

FIELD_OPERATIONS = {"AddField", "AlterField", "RemoveField", "RenameField"}
MODEL_OPERATIONS = {"DeleteModel", "RenameModel", "AlterModelTable"}


def field_of(operation: ParsedOperation) -> tuple[str, str] | None:
    """(model, field) a field operation names, when both are literals."""
    model, name = _literal(operation, "model_name", 0), _literal(operation, "name", 1)
    return (model, name) if isinstance(model, str) and isinstance(name, str) else None


def touched_elsewhere(files: Iterable[MigrationFile], app_label: str, model: str, names: set[str],
                      this: tuple[str, int]) -> bool:
    """Another operation of the change touches the field (one of `names`) or the model as a whole.

    A recipe moves database work to the end of the app's chain, or gives the field other database
    names: past such an operation, or under it, that work no longer matches what it was written for."""
    for file in files:
        if file.app_label != app_label:
            continue
        for operation in file.operations:
            others = [n for nested in operation.nested.values() for n in nested]
            if (file.label, operation.index) != this:
                others.append(operation)
            if any(_touches(other, model.lower(), names) for other in others):
                return True
    return False


def _touches(operation: ParsedOperation, model: str, names: set[str]) -> bool:
    if operation.type in FIELD_OPERATIONS:
        owner = _literal(operation, "model_name", 0)
        fields = {_literal(operation, *arg) for arg in (("name", 1), ("old_name", 1), ("new_name", 2))}
        return isinstance(owner, str) and owner.lower() == model and bool(fields & names)
    if operation.type in MODEL_OPERATIONS:
        models = {_literal(operation, "name", 0), _literal(operation, "old_name", 0),
                  _literal(operation, "new_name", 1)}
        return model in {m.lower() for m in models if isinstance(m, str)}
    return False


def _literal(operation: ParsedOperation, name: str, position: int):
    arg = operation.arg(name, position=position)
    return arg.literal() if arg else None


# ---------------------------------------------------------------- MS106: SET NOT NULL


def set_not_null_columns(operation: Operation) -> list[tuple[str, str]]:
    """(table, column) of each SET NOT NULL, when that is all the operation's SQL does."""
    pairs = []
    for statement in operation.statements:
        if statement.kind is not StatementKind.ALTER_TABLE or statement.deferred or not statement.actions \
                or any(a.action != "set_not_null" for a in statement.actions):
            return []
        pairs += [(statement.table, action.column) for action in statement.actions]
    return pairs


def not_null_check_name(table: str, column: str) -> str:
    name = f"{table}_{column}_not_null"
    if len(name) <= _PG_NAME:
        return name
    digest = hashlib.md5(name.encode()).hexdigest()[:8]
    return f"{name[:_PG_NAME - 9]}_{digest}"


def set_not_null_suggestion(source: str, operation: Operation, files: Iterable[MigrationFile],
                            app_label: str, label: str) -> str | None:
    """The AlterField's state change kept, its SET NOT NULL replaced by a CHECK added NOT VALID.

    The check holds for new rows at once without a scan; `plan_recipe` adds the validation and the
    SET NOT NULL that PostgreSQL 12+ then proves from the validated check."""
    named = field_of(operation.parsed) if operation.parsed and operation.type == "AlterField" else None
    pairs = set_not_null_columns(operation) if named else []
    if not pairs or touched_elsewhere(files, app_label, named[0], {named[1]}, (label, operation.parsed.index)):
        return None
    site = find_site(source, operation.parsed.index)
    if site is None or not site.prefix:
        return None
    add = [f"ALTER TABLE {quote(t)} ADD CONSTRAINT {quote(not_null_check_name(t, c))} "
           f"CHECK ({quote(c)} IS NOT NULL) NOT VALID" for t, c in pairs]
    drop = [f"ALTER TABLE {quote(t)} DROP CONSTRAINT IF EXISTS {quote(not_null_check_name(t, c))}"
            for t, c in pairs]
    item_indent = site.indent + " " * NESTED
    expression = separate(site, [
        "SET NOT NULL would scan the table under ACCESS EXCLUSIVE. The check, added NOT VALID, holds",
        "for new rows at once; later migrations validate it, then SET NOT NULL without a scan.",
    ], [run_sql(site.prefix, item_indent, add, drop)], [nest(site.call)])
    return valid_after(source, site, site.lines(expression))


def not_null_parts(name: str, pairs: list[tuple[str, str]], names: PartNames) -> list[NewPart]:
    """Deferred: VALIDATE (no write lock), then SET NOT NULL proven by the check, which then goes."""
    if not pairs:
        return []
    checks = [(quote(t), quote(c), quote(not_null_check_name(t, c))) for t, c in pairs]
    validate = [f"ALTER TABLE {t} VALIDATE CONSTRAINT {n}" for t, _c, n in checks]
    forward = [sql for t, c, n in checks
               for sql in (f"ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL", f"ALTER TABLE {t} DROP CONSTRAINT {n}")]
    backward = [sql for t, c, n in checks
                for sql in (f"ALTER TABLE {t} ADD CONSTRAINT {n} CHECK ({c} IS NOT NULL) NOT VALID",
                            f"ALTER TABLE {t} ALTER COLUMN {c} DROP NOT NULL")]
    set_not_null = run_sql("migrations.", " " * NESTED, forward, backward)
    return [
        NewPart(names(name, "validate_not_null"), Phase.DEFERRED,
                lambda app, after: validate_migration(app, after, validate)),
        NewPart.of(names(name, "set_not_null"), Phase.DEFERRED, "The validated check proves the column holds "
                   "no NULL: PostgreSQL 12+ sets NOT NULL without a scan.", set_not_null),
    ]


# ---------------------------------------------------------------- MS106 with a default: NULLs filled first


@dataclass(frozen=True)
class DefaultNotNull:
    """Django's nullable -> NOT NULL change of a field with a default: SET DEFAULT, UPDATE … WHERE col
    IS NULL, SET NOT NULL, DROP DEFAULT, all in one transaction under ACCESS EXCLUSIVE."""

    table: str
    column: str
    default_sql: str  # the default as SQL
    default_code: str  # … as the migration's Python


def default_not_null(operation: Operation) -> DefaultNotNull | None:
    statements = [s for s in operation.statements if s.kind is not StatementKind.TRANSACTION]
    shape = [(s.kind, [a.action for a in s.actions]) for s in statements]
    if shape != [(StatementKind.ALTER_TABLE, ["set_default"]), (StatementKind.DML, []),
                 (StatementKind.ALTER_TABLE, ["set_not_null"]), (StatementKind.ALTER_TABLE, ["drop_default"])]:
        return None
    table, column = statements[0].table, statements[0].actions[0].column
    if not table or not column or any(s.table != table or (s.actions and s.actions[0].column != column)
                                      for s in statements) \
            or not statements[1].sql.rstrip().rstrip(";").endswith(f"WHERE {quote(column)} IS NULL"):
        return None
    code = default_code(operation.parsed) if operation.parsed else None
    default = statements[0].actions[0].default
    return DefaultNotNull(table, column, default, code) if code and default else None


def default_code(operation: ParsedOperation) -> str | None:
    """The `default=` of the operation's field call, when it is a constant."""
    field_arg = operation.arg("field", position=2)
    try:
        call = cst.parse_expression(field_arg.code) if field_arg else None
    except cst.ParserSyntaxError:
        return None
    if not isinstance(call, cst.Call):
        return None
    for arg in call.args:
        if arg.keyword and arg.keyword.value == "default":
            code = cst.Module(body=[]).code_for_node(arg.value)
            try:
                ast.literal_eval(code)
            except (ValueError, SyntaxError):
                return None
            return code
    return None


def default_not_null_rewrite(source: str, index: int, change: DefaultNotNull) -> str | None:
    """The AlterField's state with `db_default`; for the database only SET DEFAULT (instant), so that
    new rows get the value; filling the NULLs and NOT NULL come later."""
    site = find_site(source, index)
    if site is None or not site.prefix:
        return None
    state = db_default_call(site.call)
    if state is None:
        return None
    table, column = quote(change.table), quote(change.column)
    default = run_sql(site.prefix, site.indent + " " * NESTED,
                      [f"ALTER TABLE {table} ALTER COLUMN {column} SET DEFAULT {change.default_sql}"],
                      [f"ALTER TABLE {table} ALTER COLUMN {column} DROP DEFAULT"])
    expression = separate(site, [
        "Filling the NULLs and SET NOT NULL here would hold ACCESS EXCLUSIVE for a scan and an UPDATE.",
        "The database default comes first (instant, new rows get it); later migrations add the check,",
        "fill the NULLs in batches, validate the check and set NOT NULL without a scan.",
    ], [default], [nest(state)])
    return valid_after(source, site, site.lines(expression))


def db_default_call(call_code: str) -> str | None:
    """An AddField / AlterField call whose field says `db_default=` in place of a constant `default=`."""
    try:
        call = cst.parse_expression(call_code)
    except cst.ParserSyntaxError:
        return None
    if not isinstance(call, cst.Call):
        return None
    args, done = [], False
    for position, arg in enumerate(call.args):
        keyword = arg.keyword.value if arg.keyword else None
        if keyword == "preserve_default":
            continue
        if (keyword == "field" or (keyword is None and position == 2)) and isinstance(arg.value, cst.Call):
            renamed = rename_default(arg.value)
            if renamed is not None:
                arg, done = arg.with_changes(value=renamed), True
        args.append(arg)
    if not done:
        return None
    return cst.Module(body=[]).code_for_node(call.with_changes(args=closing_like(args, list(call.args))))


def backfill_part(name: str, changes: list[DefaultNotNull]) -> NewPart:
    updates = [f"UPDATE {quote(c.table)} SET {quote(c.column)} = {c.default_sql} WHERE ctid = ANY(ARRAY("
               f"SELECT ctid FROM {quote(c.table)} WHERE {quote(c.column)} IS NULL LIMIT {BATCH}))"
               for c in changes]
    return NewPart(name, Phase.DEFERRED, partial(_backfill_text, updates))


BATCH = 1000


def _backfill_text(updates: list[str], app_label: str, depends_on: str) -> str:
    fills = "".join(f"    {update!r},\n" for update in updates)
    return (
        "from django.db import migrations\n\n"
        f"BATCH = {BATCH}\n"
        f"FILLS = [\n{fills}]\n\n\n"
        "def fill(apps, schema_editor):\n"
        "    # Not atomic: each batch commits on its own, so no lock is held for long.\n"
        "    with schema_editor.connection.cursor() as cursor:\n"
        "        for fill_sql in FILLS:\n"
        "            while True:\n"
        "                cursor.execute(fill_sql)\n"
        "                if cursor.rowcount < BATCH:\n"
        "                    break\n\n\n"
        "class Migration(migrations.Migration):\n"
        "    atomic = False\n"
        '    deploy_phase = "deferred"\n'
        f"    dependencies = [({app_label!r}, {depends_on!r})]\n\n"
        "    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]\n"
    )


def not_null_check_part(name: str, changes: list[DefaultNotNull]) -> NewPart:
    checks = [(quote(c.table), quote(c.column), quote(not_null_check_name(c.table, c.column))) for c in changes]
    add = run_sql("migrations.", " " * NESTED,
                  [f"ALTER TABLE {t} ADD CONSTRAINT {n} CHECK ({c} IS NOT NULL) NOT VALID" for t, c, n in checks],
                  [f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {n}" for t, _c, n in checks])
    return NewPart.of(name, Phase.POST_DEPLOY, "Old code, which may write NULL, is gone: the check holds "
                      "for new rows at once, without a scan.", add)


# ---------------------------------------------------------------- MS108: renames in Django's state only


@dataclass(frozen=True)
class Rename:
    text: str  # the operation's lines, rewritten
    missing_imports: list[str]  # import lines the text needs that the file lacks
    model: ModelChange  # what models.py must say from now on (its app_dir filled by the caller)


def rename_rewrite(source: str, operation: Operation, files: Iterable[MigrationFile], app_label: str,
                   label: str) -> Rename | None:
    """RenameField / RenameModel done in Django's state only: the database keeps its names."""
    if operation.parsed is None:
        return None
    site = find_site(source, operation.parsed.index)
    if site is None or not site.prefix:
        return None
    if operation.type == "RenameField":
        model = _literal(operation.parsed, "model_name", 0)
        names = {_literal(operation.parsed, "old_name", 1), _literal(operation.parsed, "new_name", 2)}
        if not isinstance(model, str) or touched_elsewhere(files, app_label, model, names,
                                                           (label, operation.parsed.index)):
            return None  # a later change of the field would not know its db_column
        return _rename_field(source, site, operation)
    if operation.type == "RenameModel":
        return _rename_model(source, site, operation)
    return None


def _rename_field(source: str, site: Site, operation: Operation) -> Rename | None:
    before = operation.facts.get("field_before") or {}
    code, column = before.get("code") or {}, before.get("column")
    model = operation.parsed.arg("model_name", position=0)
    new_name = operation.parsed.arg("new_name", position=2)
    renames = [s for s in operation.statements if s.kind is StatementKind.RENAME]
    if not code.get("expression") or not column or model is None or new_name is None \
            or [(r.rename_object, r.rename_from) for r in renames] != [("column", column)] \
            or len(renames) != len(operation.statements):
        return None  # more than the column's own rename (e.g. a to_field): not a state-only matter
    field_code = with_db_column(code["expression"], column)
    if field_code is None:
        return None
    inner = site.indent + " " * (NESTED + 4)
    alter = "\n".join([f"{site.prefix}AlterField(", f"{inner}model_name={model.code},",
                       f"{inner}name={new_name.code},", f"{inner}field={field_code},",
                       f"{site.indent}{' ' * NESTED})"])
    expression = separate(site, [
        f"The column keeps its name ({column}): old code still running during the deploy uses it.",
    ], [], [nest(site.call), alter])
    text = valid_after(source, site, site.lines(expression))
    if text is None:
        return None
    return Rename(text, missing_imports(source, code.get("imports") or []),
                  ModelChange("", model.literal(), new_name.literal(), "db_column", repr(column)))


def with_db_column(expression: str, column: str) -> str | None:
    """The field's code with db_column=<column> (replacing any it had)."""
    try:
        call = cst.parse_expression(expression)
    except cst.ParserSyntaxError:
        return None
    if not isinstance(call, cst.Call):
        return None
    args = [a for a in call.args if not (a.keyword and a.keyword.value == "db_column")]
    if args:
        args[-1] = args[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
    db_column = cst.Arg(keyword=cst.Name("db_column"), value=cst.SimpleString(repr(column)),
                        equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")))
    return cst.Module(body=[]).code_for_node(call.with_changes(args=[*args, db_column]))


def _rename_model(source: str, site: Site, operation: Operation) -> Rename | None:
    table = operation.facts.get("table_before")
    old_name = operation.parsed.arg("old_name", position=0)
    new_name = operation.parsed.arg("new_name", position=1)
    renames = [s for s in operation.statements if s.kind is StatementKind.RENAME]
    if not table or old_name is None or new_name is None \
            or [(r.rename_object, r.rename_from) for r in renames] != [("table", table)]:
        return None  # also renames many-to-many tables or columns: those would not follow the state
    # An explicit db_table first makes the rename a no-op in the database; RenameModel itself stays
    # at the top level, where Django's contenttypes app finds it and renames the content type.
    expression = "\n".join([
        f"# The table keeps its name ({table}): old code still running during the deploy uses it.",
        f"{site.indent}{site.prefix}AlterModelTable(name={old_name.code}, table={table!r}),",
        f"{site.indent}{site.call}",
    ])
    text = valid_after(source, site, site.lines(expression))
    if text is None:
        return None
    return Rename(text, [], ModelChange("", new_name.literal(), None, "db_table", repr(table)))


def missing_imports(source: str, imports: list[str]) -> list[str]:
    """The import lines (as MigrationWriter writes them) whose names the module does not import."""
    try:
        module = ast.parse(source)
    except SyntaxError:
        return list(imports)
    have: set[str] = set()
    for node in module.body:
        if isinstance(node, ast.Import):
            have |= {f"import {a.name}" for a in node.names if a.asname is None}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            have |= {f"from {node.module} import {a.name}" for a in node.names if a.asname is None}
    return [line for line in imports if line not in have]


def add_imports(source: str, imports: list[str]) -> str:
    """The module with `imports` after its last top-level import (or at the top)."""
    if not imports:
        return source
    module = cst.parse_module(source)
    body = list(module.body)
    last = max((i for i, s in enumerate(body) if isinstance(s, cst.SimpleStatementLine)
                and isinstance(s.body[0], (cst.Import, cst.ImportFrom))), default=-1)
    new = [cst.parse_statement(line + "\n") for line in imports]
    return module.with_changes(body=[*body[: last + 1], *new, *body[last + 1:]]).code


# ---------------------------------------------------------------- MS109: NOT NULL column removed


def removal_rewrite(source: str, operation: Operation, later: str) -> tuple[str, list[str]] | None:
    """(the RemoveField's lines, the statements that drop the column after the deploy).

    Before the deploy the column accepts NULL and the field leaves Django's state, so new code's
    INSERTs work; the column is dropped after the deploy, in migration `later`."""
    drops = [(s.table, a.column) for s in operation.statements for a in s.actions if a.action == "drop_column"]
    if operation.type != "RemoveField" or operation.parsed is None or len(drops) != 1:
        return None
    site = find_site(source, operation.parsed.index)
    if site is None or not site.prefix:
        return None
    table, column = drops[0]
    relax = run_sql(site.prefix, site.indent + " " * NESTED,
                    [f"ALTER TABLE {quote(table)} ALTER COLUMN {quote(column)} DROP NOT NULL"], None,
                    "backwards the column stays nullable: new code may have left it NULL meanwhile")
    expression = separate(site, [
        "New code no longer writes the column: it must accept NULL before the deploy.",
        f"It is dropped after the deploy, in {later}.",
    ], [relax], [nest(site.call)])
    text = valid_after(source, site, site.lines(expression))
    return (text, [s.sql.rstrip().rstrip(";") for s in operation.statements]) if text else None


def drop_columns_part(later: str, statements: list[str], restore: list[str]) -> NewPart:
    drop = run_sql("migrations.", " " * NESTED, statements, restore or None,
                   None if restore else "the column's data is gone: nothing to restore")
    return NewPart.of(later, Phase.POST_DEPLOY, "Old code is gone: the columns it wrote "
                      "can go (Django's state already lost the fields).", drop)


def restore_column(operation: Operation) -> str | None:
    """Backwards: the column comes back, nullable (its data does not)."""
    before = operation.facts.get("field_before") or {}
    table = operation.facts.get("table_before")
    if not (table and before.get("column") and before.get("db_type")):
        return None
    return f"ALTER TABLE {quote(table)} ADD COLUMN {quote(before['column'])} {before['db_type']} NULL"


# ---------------------------------------------------------------- MS107: a CHECK written inline with ADD COLUMN


def inline_check_rewrite(source: str, index: int,
                         operation: Operation) -> tuple[str, list[str], list[str]] | None:
    """(the AddField's lines, the VALIDATE statements, the SQL it runs now): ADD COLUMN without its
    inline CHECK, the CHECK added NOT VALID under the name PostgreSQL gives an inline one
    (<table>_<column>_check), Django's state unchanged. Validating scans the table: later, deferred."""
    sql, validate, reverse = [], [], []
    for statement in operation.statements:
        split = _without_inline_checks(statement)
        if split is None:
            return None
        sql += split[0]
        validate += split[1]
        reverse += split[2]
    site = find_site(source, index)
    if not validate or site is None or not site.prefix:
        return None
    database = run_sql(site.prefix, site.indent + " " * NESTED, sql, list(reversed(reverse)))
    expression = separate(site, [
        "The column's CHECK, written inline, would be verified against every row under ACCESS EXCLUSIVE:",
        "it is added NOT VALID (new rows obey it at once) and validated later, deferred.",
    ], [database], [nest(site.call)])
    text = valid_after(source, site, site.lines(expression))
    return (text, validate, sql) if text else None


def _without_inline_checks(statement) -> tuple[list[str], list[str], list[str]] | None:
    """(forward SQL, VALIDATE statements, reverse SQL) for one statement; None if it cannot be split."""
    text = statement.sql.strip().rstrip(";")
    inline = [a for a in statement.actions if a.action == "add_constraint" and a.constraint_type == "check"
              and a.constraint is None and a.column]
    if not inline:
        return [text], [], []
    try:
        tree = parse_sql(text)[0].stmt
    except Exception:  # noqa: BLE001 - pglast's errors vary; the analysis read it, so rarely
        return None
    if not isinstance(tree, pg_ast.AlterTableStmt) or len(tree.cmds) != 1 or not statement.table:
        return None
    column_def = tree.cmds[0].def_
    checks = [c for c in column_def.constraints or () if c.contype == ConstrType.CONSTR_CHECK]
    if len(checks) != 1 or checks[0].conname or checks[0].skip_validation:
        return None
    name = f"{statement.table}_{column_def.colname}_check"
    if len(name) > _PG_NAME:
        return None  # PostgreSQL would shorten it its own way: not ours to guess
    expression = RawStream()(checks[0].raw_expr)
    column_def.constraints = tuple(c for c in column_def.constraints if c is not checks[0])
    table = quote(statement.table)
    add = f"ALTER TABLE {table} ADD CONSTRAINT {quote(name)} CHECK ({expression}) NOT VALID"
    return ([RawStream()(tree), add],
            [f"ALTER TABLE {table} VALIDATE CONSTRAINT {quote(name)}"],
            [f"ALTER TABLE {table} DROP COLUMN {quote(column_def.colname)}"])


# ---------------------------------------------------------------- MS118: schema and data in one RunSQL


def data_split(source: str, index: int, operation: Operation) -> tuple[str, list[str]] | None:
    """(the RunSQL's lines with its schema statements only, its data statements): the data change goes
    to a deferred migration of its own, so no row is changed under the schema change's lock."""
    statements = [s for s in operation.statements if s.kind is not StatementKind.TRANSACTION]
    kinds = [s.kind is StatementKind.DML for s in statements]
    if not any(kinds) or all(kinds) or kinds != sorted(kinds):
        return None  # the data change must come after all the schema changes, as it will
    reverse = operation.parsed.arg("reverse_sql", position=1) if operation.parsed else None
    undo = reverse.literal() if reverse is not None else None
    if reverse is not None and not reverse.code.endswith("RunSQL.noop") and not isinstance(undo, (str, list)):
        return None
    site = find_site(source, index)
    if site is None or not site.prefix:
        return None
    schema = [s.sql.strip().rstrip(";") for s in statements if s.kind is not StatementKind.DML]
    data = [s.sql.strip().rstrip(";") for s in statements if s.kind is StatementKind.DML]
    undo = [undo] if isinstance(undo, str) else undo
    expression = run_sql(site.prefix, site.indent, schema, undo or None,
                         None if undo else "the data change, in its own migration, undoes nothing")
    text = valid_after(source, site, site.lines(expression))
    return (text, data) if text else None


def data_part(name: str, statements: list[str]) -> NewPart:
    return NewPart.of(name, Phase.DEFERRED, "Rows changed apart from the schema change: no ACCESS EXCLUSIVE "
                      "lock is held while they change.",
                      run_sql("migrations.", " " * NESTED, statements, None))


# ---------------------------------------------------------------- the plan for `migration-safe fix`


@dataclass
class Recipe:
    source: str  # the file, with the operations a recipe rewrites in place
    phases: list[Phase | None]  # each operation's phase once rewritten
    # Where each reviewed operation stands in `source` (None: unknown). A suggestion may have made
    # one operation several (RenameModel): then splits and index fixes, which go by the review's
    # positions, wait for a second run.
    positions: list[int] | None = None
    fixed: list[int] = field(default_factory=list)  # operations made safe: their other findings go too
    parts: list[NewPart] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    models: list[ModelChange] = field(default_factory=list)  # what models.py must say to match the state
    declined: dict[int, str] = field(default_factory=dict)  # operation -> why a recipe left it

    @property
    def moved(self) -> bool:
        return self.positions != list(range(len(self.phases)))

    def needs_parts(self, verdict: MigrationVerdict) -> bool:
        """The file must be split, or declare its phase again: a rewrite moved an operation."""
        if self.phases == [op.phase for op in verdict.operations]:
            return verdict.needs_split
        declared = verdict.file.declared_phase
        return len(set(self.phases)) > 1 or (declared is not None and declared.phase not in self.phases)

    def files(self, file: MigrationFile, anchors: dict[str, str]) -> dict[str, str]:
        """Path -> text: the file if rewritten here, and each added part after its anchor."""
        folder = file.path.rsplit("/", 1)[0]
        out = {file.path: self.source} if self.source != file.source else {}
        out.update({f"{folder}/{part.name}.py": part.render(file.app_label, anchors.get(part.name, file.name))
                    for part in self.parts})
        return out


def plan_recipe(verdict: MigrationVerdict, source: str, review: Review, names: PartNames) -> Recipe:
    """Rewrites and added migrations for MS106 (after its suggestion, or with a default to fill the
    NULLs with), MS108 needing imports, MS109; `names`: of the added migrations."""
    recipe = Recipe(source, [op.phase for op in verdict.operations], positions(verdict, source))
    files = [m.file for m in review.migrations]
    _renames(verdict, recipe, files)
    if not recipe.moved:
        _removals(verdict, recipe, files, names)
    defaults = _defaults(verdict, recipe, files, review) if not recipe.moved else []
    if not recipe.moved:
        _inline_checks(verdict, recipe, names)
        _data_splits(verdict, recipe, names)
    name, path = verdict.file.name, verdict.file.path
    not_null = [verdict.operations[f.operation_index] for f in verdict.findings
                if f.rule == "MS106" and f.suggestion is not None and f.operation_index is not None]
    pairs = [pair for operation in not_null for pair in set_not_null_columns(operation)]
    if defaults:
        recipe.parts += [not_null_check_part(names(name, "not_null_check"), defaults),
                         backfill_part(names(name, "fill_nulls"), defaults)]
    recipe.parts += not_null_parts(name, pairs + [(c.table, c.column) for c in defaults], names)
    validate, set_not_null = names(name, "validate_not_null"), names(name, "set_not_null")
    if not_null:
        recipe.done.append(f"{path}: NOT NULL through a CHECK added NOT VALID, validated in {validate}, "
                           f"set in {set_not_null} (deferred)")
    if defaults:
        recipe.done.append(f"{path}: NOT NULL with a default: db_default first (pre-deploy), the check "
                           f"added NOT VALID in {names(name, 'not_null_check')} (post-deploy), the NULLs "
                           f"filled in batches in {names(name, 'fill_nulls')}, validated in {validate}, "
                           f"set in {set_not_null} (deferred)")
    return recipe


def app_dir(file: MigrationFile) -> str:
    return app_folder(file.path) or file.app_label


def _defaults(verdict: MigrationVerdict, recipe: Recipe, files: list[MigrationFile],
              review: Review) -> list[DefaultNotNull]:
    """MS106 on Django's nullable -> NOT NULL change with a default: db_default now, the rest later."""
    done = []
    for finding in verdict.findings:
        if finding.rule != "MS106" or not finding.blocks or finding.suggestion is not None \
                or finding.operation_index is None:
            continue
        operation = verdict.operations[finding.operation_index]
        change = default_not_null(operation) if operation.type == "AlterField" and operation.parsed else None
        named = field_of(operation.parsed) if change else None
        if named is None:
            continue
        reason = _default_refusal(review) or (
            "another operation of this change touches the same field: the work moved to later migrations "
            "would no longer match it" if touched_elsewhere(files, verdict.file.app_label, named[0],
                                                            {named[1]}, (verdict.file.label, operation.index))
            else None)
        text = None if reason else default_not_null_rewrite(recipe.source, operation.index, change)
        if text is None:
            recipe.declined[operation.index] = reason or "the operation's code could not be rewritten"
            continue
        site = find_site(recipe.source, operation.index)
        recipe.source = apply_suggestion(recipe.source, site.line, site.end_line, text)
        recipe.phases[operation.index] = Phase.PRE_DEPLOY
        recipe.fixed.append(operation.index)
        recipe.models.append(ModelChange(app_dir(verdict.file), named[0], named[1], "db_default",
                                         change.default_code, "default"))
        done.append(change)
    return done


def _inline_checks(verdict: MigrationVerdict, recipe: Recipe, names: PartNames) -> None:
    validate: list[str] = []
    later = names(verdict.file.name, "validate_checks")
    for operation in _blocked_by(verdict, "MS107"):
        if operation.type != "AddField" or operation.index in recipe.fixed:
            continue
        if _suggested(verdict, operation):
            recipe.declined[operation.index] = ("another finding's rewrite of this operation comes first: run "
                                                "`migration-safe fix` again on the result")
            continue
        rewrite = inline_check_rewrite(recipe.source, operation.index, operation)
        if rewrite is None:
            recipe.declined[operation.index] = ("the CHECK is named, or its statement is more than ADD COLUMN, "
                                                "or its name would be longer than PostgreSQL keeps")
            continue
        site = find_site(recipe.source, operation.index)
        recipe.source = apply_suggestion(recipe.source, site.line, site.end_line, rewrite[0])
        recipe.phases[operation.index] = phase_of(analyse_all(";\n".join(rewrite[2])))
        recipe.fixed.append(operation.index)
        validate += rewrite[1]
        recipe.done.append(f"{verdict.file.path}:{operation.line} {operation.description}: the column's CHECK "
                           f"added NOT VALID, validated in {later} (deferred)")
    if validate:
        recipe.parts.append(NewPart(later, Phase.DEFERRED, partial(_validate_text, validate)))


def _validate_text(statements: list[str], app_label: str, depends_on: str) -> str:
    return validate_migration(app_label, depends_on, statements)


def _data_splits(verdict: MigrationVerdict, recipe: Recipe, names: PartNames) -> None:
    data: list[str] = []
    later = names(verdict.file.name, "data")
    for operation in _blocked_by(verdict, "MS118"):
        if operation.type != "RunSQL" or operation.index in recipe.fixed or _suggested(verdict, operation):
            continue
        split = data_split(recipe.source, operation.index, operation)
        if split is None:
            recipe.declined[operation.index] = ("the RunSQL changes rows before a schema change, or its SQL "
                                                "or reverse_sql is not written as literals")
            continue
        site = find_site(recipe.source, operation.index)
        recipe.source = apply_suggestion(recipe.source, site.line, site.end_line, split[0])
        recipe.phases[operation.index] = phase_of([s for s in operation.statements
                                                   if s.kind not in (StatementKind.DML, StatementKind.TRANSACTION)])
        recipe.fixed.append(operation.index)
        data += split[1]
        recipe.done.append(f"{verdict.file.path}:{operation.line} {operation.description}: the schema change "
                           f"stays, the rows change in {later} (deferred)")
    if data:
        recipe.parts.append(data_part(later, data))


def _suggested(verdict: MigrationVerdict, operation: Operation) -> bool:
    return any(f.suggestion is not None and f.operation_index == operation.index for f in verdict.findings)


def phase_of(statements: list) -> Phase:
    """The phase of what a rewritten operation runs, as the review places it: constraints on the
    columns it adds itself bind no old code."""
    added = {(s.table, a.column) for s in statements for a in s.actions if a.action == "add_column"}
    return Placement(Config(), set(), added).operation(
        Operation(0, "RunSQL", 0, 0, "", statements=statements), sql_known=True)


def _blocked_by(verdict: MigrationVerdict, rule: str) -> list[Operation]:
    indices = sorted({f.operation_index for f in verdict.findings if f.rule == rule and f.blocks
                      and f.suggestion is None and f.operation_index is not None})
    return [verdict.operations[i] for i in indices]


def _default_refusal(review: Review) -> str | None:
    django = review.django_version or ""
    if django[:1].isdigit() and int(django.split(".")[0]) < 5:
        return f"db_default needs Django 5.0+ (the project runs {django})"
    version = review.postgres_version
    if version and (version // 10000 if version > 1000 else version) < 12:
        return "SET NOT NULL proven by a CHECK needs PostgreSQL 12+"
    return None


def positions(verdict: MigrationVerdict, source: str) -> list[int] | None:
    """Where each reviewed operation stands in `source`, once its suggestions are applied."""
    extra = {f.operation_index: _element_count(f.suggestion) - 1 for f in verdict.findings
             if f.suggestion is not None and f.operation_index is not None}
    out, shift = [], 0
    for index in range(len(verdict.operations)):
        out.append(index + shift)
        shift += extra.get(index, 0)
    return out if operation_count(source) == len(out) + shift else None


def _element_count(text: str) -> int:
    try:
        return len(cst.parse_expression(f"[\n{text}\n]").elements)
    except cst.ParserSyntaxError:
        return 1


def _renames(verdict: MigrationVerdict, recipe: Recipe, files: list[MigrationFile]) -> None:
    missing: list[str] = []
    file = verdict.file
    for finding in verdict.findings:
        if finding.rule != "MS108" or not finding.blocks or finding.operation_index is None:
            continue
        operation = verdict.operations[finding.operation_index]
        rename = rename_rewrite(file.source, operation, files, file.app_label, file.label)
        if rename is None:
            continue
        if finding.suggestion is None:  # it needs imports, so no suggestion: rewritten here
            if recipe.positions is None:
                continue
            site = find_site(recipe.source, recipe.positions[operation.parsed.index])
            recipe.source = apply_suggestion(recipe.source, site.line, site.end_line, rename.text)
            missing += [line for line in rename.missing_imports if line not in missing]
        elif rename.text not in recipe.source:
            continue  # another finding's suggestion took these lines
        # No SQL is left: whatever else was found on the operation (a foreign key re-added) is gone too.
        recipe.fixed.append(operation.index)
        recipe.phases[operation.index] = Phase.PRE_DEPLOY
        recipe.models.append(replace(rename.model, app_dir=app_dir(file)))
        recipe.done.append(f"{file.path}:{operation.line} {operation.description} kept in Django's "
                           f"state only: the database keeps its name ({rename.model.keyword})")
    recipe.source = add_imports(recipe.source, missing)


def _removals(verdict: MigrationVerdict, recipe: Recipe, files: list[MigrationFile],
              names: PartNames) -> None:
    later = names(verdict.file.name, "drop_columns")
    drops: list[str] = []
    restores: list[str] = []
    for finding in verdict.findings:
        operation = verdict.operations[finding.operation_index] \
            if finding.rule == "MS109" and finding.blocks and finding.operation_index is not None else None
        named = field_of(operation.parsed) if operation and operation.parsed else None
        if named is None or touched_elsewhere(files, verdict.file.app_label, named[0], {named[1]},
                                              (verdict.file.label, operation.parsed.index)):
            continue
        rewrite = removal_rewrite(recipe.source, operation, later)
        if rewrite is None:
            continue
        site = find_site(recipe.source, operation.parsed.index)
        recipe.source = apply_suggestion(recipe.source, site.line, site.end_line, rewrite[0])
        recipe.phases[operation.index] = Phase.PRE_DEPLOY
        recipe.fixed.append(operation.index)
        drops += rewrite[1]
        restores += [sql for sql in [restore_column(operation)] if sql]
        recipe.done.append(f"{verdict.file.path}:{operation.line} {operation.description}: the column "
                           f"accepts NULL before the deploy, dropped after it in {later}")
    if drops:
        recipe.parts.append(drop_columns_part(later, drops, restores))
