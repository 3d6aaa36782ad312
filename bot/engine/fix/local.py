"""Safe rewrites of one operation, as code (libcst), keeping the file's formatting and comments.

A rewrite returns the new text of the operation's lines (line..end_line), so
it can be a GitHub ```suggestion or be applied to the file as is.
"""
from __future__ import annotations

import ast
import textwrap

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from migration_safe.engine.model import ParsedOperation
from migration_safe.engine.review.sql import analyse


def db_default_instead_of_default(source: str, operation: ParsedOperation) -> str | None:
    """AddField(..., field=X(default=<constant>), preserve_default=False) -> X(db_default=<constant>).

    Django >= 5.0: the database keeps the default, so old code's INSERTs that
    leave the column out keep working. Only constants: a callable default is
    evaluated in Python and has no database equivalent.
    """
    if operation.type != "AddField":
        return None
    return rewrite_call(source, operation, _DbDefault())


def rewrite_call(source: str, operation: ParsedOperation, transformer: "_CallRewriter") -> str | None:
    try:
        wrapper = MetadataWrapper(cst.parse_module(source))
    except cst.ParserSyntaxError:
        return None
    transformer.bind(wrapper.resolve(PositionProvider), operation.line, operation.end_line)
    new_module = wrapper.module.visit(transformer)
    if not transformer.changed:
        return None
    old_lines, new_lines = source.splitlines(), new_module.code.splitlines()
    delta = len(new_lines) - len(old_lines)
    return "\n".join(new_lines[operation.line - 1: operation.end_line + delta])


def apply_suggestion(source: str, line: int, end_line: int, replacement: str) -> str:
    lines = source.splitlines(keepends=True)
    ending = "\n" if lines and lines[end_line - 1].endswith("\n") else ""
    return "".join(lines[: line - 1]) + replacement + ending + "".join(lines[end_line:])


class _CallRewriter(cst.CSTTransformer):
    """Rewrites the one operation call that starts on the operation's first line."""

    def __init__(self) -> None:
        self.changed = False
        self.positions = {}
        self.span = (0, 0)

    def bind(self, positions, line: int, end_line: int) -> None:
        self.positions, self.span = positions, (line, end_line)

    def is_target(self, node: cst.Call) -> bool:
        position = self.positions.get(node)
        return position is not None and (position.start.line, position.end.line) == self.span


class _DbDefault(_CallRewriter):
    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        if not self.is_target(original):
            return updated
        args, field_done = [], False
        for arg in updated.args:
            name = arg.keyword.value if arg.keyword else None
            if name == "preserve_default":
                continue
            if (name == "field" or (name is None and len(args) == 2)) and isinstance(arg.value, cst.Call):
                new_value = rename_default(arg.value)
                if new_value is not None:
                    arg, field_done = arg.with_changes(value=new_value), True
            args.append(arg)
        if not field_done:
            return updated
        self.changed = True
        return updated.with_changes(args=closing_like(args, list(updated.args)))


def closing_like(args: list[cst.Arg], before: list[cst.Arg]) -> list[cst.Arg]:
    """`args` (some of `before` dropped) closed as `before` was: the new last argument keeps the
    comment at the end of its line and takes the dropped last one's way to the parenthesis."""
    if not args or args[-1] is before[-1]:
        return args
    own, closing = args[-1].comma, before[-1].comma
    if isinstance(own, cst.Comma) and isinstance(closing, cst.Comma) \
            and isinstance(own.whitespace_after, cst.ParenthesizedWhitespace) \
            and isinstance(closing.whitespace_after, cst.ParenthesizedWhitespace):
        comma = own.with_changes(whitespace_after=own.whitespace_after.with_changes(
            last_line=closing.whitespace_after.last_line))
    else:
        comma = closing
    return [*args[:-1], args[-1].with_changes(comma=comma)]


def rename_default(field: cst.Call) -> cst.Call | None:
    """The field call with `db_default=` in place of a constant `default=`."""
    args = list(field.args)
    for index, arg in enumerate(args):
        if arg.keyword and arg.keyword.value == "default" and _is_constant(arg.value):
            args[index] = arg.with_changes(keyword=cst.Name("db_default"))
            return field.with_changes(args=args)
    return None


def _is_constant(node: cst.BaseExpression) -> bool:
    try:
        ast.literal_eval(cst.Module(body=[]).code_for_node(node))
        return True
    except (ValueError, SyntaxError):
        return False


def not_valid_instead_of_validated(source: str, operation) -> str | None:
    """The operation's SQL with its CHECK / FOREIGN KEY constraints added NOT VALID, Django's state
    unchanged: SeparateDatabaseAndState(database_operations=[RunSQL(...)], state_operations=[op]).

    `operation` is an engine Operation (its statements are the SQL the sandbox produced).
    """
    if operation.parsed is None or not operation.statements:
        return None
    sql, reverse = [], []
    for statement in operation.statements:
        text = statement.sql.rstrip().rstrip(";")
        targets = [a for a in statement.actions if a.action == "add_constraint"
                   and a.constraint_type in ("check", "foreign_key") and not a.not_valid]
        if targets:
            if any(a.constraint is None for a in targets) or len(targets) > 1:
                return None  # VALIDATE needs a name; one constraint per statement keeps NOT VALID exact
            text = f"{text} NOT VALID"
            if not analyse(text).actions or not any(a.not_valid for a in analyse(text).actions):
                return None
            reverse.append(f'ALTER TABLE "{statement.table}" DROP CONSTRAINT "{targets[0].constraint}"')
        sql.append(text)
    if not reverse:
        return None
    lines = source.splitlines()[operation.line - 1: operation.end_line]
    indent = lines[0][: len(lines[0]) - len(lines[0].lstrip())]
    original = textwrap.indent(textwrap.dedent("\n".join(lines)).rstrip().rstrip(","), indent + " " * 8)
    return "\n".join([
        f"{indent}migrations.SeparateDatabaseAndState(",
        f"{indent}    database_operations=[",
        f"{indent}        migrations.RunSQL(",
        f"{indent}            sql={sql!r},",
        f"{indent}            reverse_sql={reverse!r},",
        f"{indent}        ),",
        f"{indent}    ],",
        f"{indent}    state_operations=[",
        f"{original},",
        f"{indent}    ],",
        f"{indent}),",
    ])


def validate_statements(operation) -> list[str]:
    """VALIDATE CONSTRAINT for what not_valid_instead_of_validated() added NOT VALID."""
    return [f'ALTER TABLE "{statement.table}" VALIDATE CONSTRAINT "{action.constraint}"'
            for statement in operation.statements for action in statement.actions
            if action.action == "add_constraint" and action.constraint_type in ("check", "foreign_key")
            and not action.not_valid and action.constraint]


def validate_migration(app_label: str, depends_on: str, statements: list[str]) -> str:
    operations = "\n".join(f"        migrations.RunSQL({sql!r}, reverse_sql=migrations.RunSQL.noop),"
                           for sql in statements)
    return (
        "from django.db import migrations\n\n\n"
        "class Migration(migrations.Migration):\n"
        '    deploy_phase = "deferred"\n'
        f"    dependencies = [({app_label!r}, {depends_on!r})]\n\n"
        "    # Validation scans the table under SHARE UPDATE EXCLUSIVE: reads and writes go on.\n"
        f"    operations = [\n{operations}\n    ]\n"
    )
