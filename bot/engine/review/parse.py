"""Read a Django migration file statically, from its text alone.

Importing a migration runs project code, which only the sandboxed child may do.
Here we want what the file *says*, with exact line numbers, so that findings can
point at the lines a reviewer sees in the diff.
"""
from __future__ import annotations

import ast
import dataclasses
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Union

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from migration_safe.engine.model import Arg, DeclaredPhase, MigrationFile, ParsedOperation, Phase

Dependency = tuple[str, str]

# libcst's native parser recurses on the C stack and segfaults, instead of raising,
# on input nested a few thousand levels deep. CPython's own parser has limits and
# raises, so it vets the text first; libcst then runs on a thread whose stack is far
# larger than that vetted text needs (the caller's thread may have a small one).
_PARSER_STACK_BYTES = 64 * 1024 * 1024
# `a and b and ...` is flat for CPython but nests once per operand for libcst.
_MAX_BOOL_OPERANDS = 1000
_TOO_DEEP = "expressions nested too deeply to read"

# SeparateDatabaseAndState(database_operations=None, state_operations=None): order matters
_NESTED_OPERATION_ARGS = ("database_operations", "state_operations")
_DEPENDENCY_LISTS = ("dependencies", "replaces", "run_before")
_UNREADABLE = object()


def parse_migration(
    source: str, path: str, app_label: str, name: str, status: str = "added"
) -> MigrationFile:
    """What one migration file declares. Problems land in `parse_error`, never raised."""
    migration = MigrationFile(path=path, name=name, app_label=app_label, status=status)
    try:
        _run_on_large_stack(lambda: _read(source, migration))
    except RecursionError:  # libcst's metadata and codegen recurse in Python
        return _failed(migration, _TOO_DEEP)
    except Exception as exc:  # one odd file must not take the whole review down
        return _failed(migration, f"could not read the file: {type(exc).__name__}: {exc}")
    return migration


def _failed(migration: MigrationFile, error: str) -> MigrationFile:
    # A fresh object: whatever was read before the failure is not trustworthy.
    return MigrationFile(
        path=migration.path,
        name=migration.name,
        app_label=migration.app_label,
        status=migration.status,
        parse_error=_one_line(error),
    )


def _run_on_large_stack(work: Callable[[], None]) -> None:
    errors: list[BaseException] = []

    def target() -> None:
        try:
            work()
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    try:  # the stack size is process-wide: set only while our thread starts
        previous = threading.stack_size(_PARSER_STACK_BYTES)
        try:
            thread = threading.Thread(target=target, name="migration-safe-parse", daemon=True)
            thread.start()
        finally:
            threading.stack_size(previous)
    except (RuntimeError, ValueError):  # the platform refuses: the caller's stack will do
        target()
    else:
        thread.join()
    if errors:
        raise errors[0]


def _read(source: str, migration: MigrationFile) -> None:
    # Python imports a file with a byte order mark; as text, the mark is one stray character.
    source = source.removeprefix("\ufeff")
    problem = _python_syntax_problem(source)
    if problem is not None:
        migration.parse_error, migration.parse_error_line = problem
        return
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as exc:  # libcst may lag behind the running Python's grammar
        migration.parse_error = "syntax error: " + _one_line(exc.message)
        migration.parse_error_line = exc.raw_line
        return
    cls = _migration_class(module)
    if cls is None:
        migration.parse_error = "no Migration class found"
        return
    reader = _Reader(module)
    migration.class_line = reader.lines(cls)[0]
    _read_class_body(reader, cls, migration)


def _python_syntax_problem(source: str) -> tuple[str, int | None] | None:
    """Why the running Python (the one Django imports with) rejects the text, if it does."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. invalid escapes in SQL strings: not ours to report
            tree = ast.parse(source)
    except SyntaxError as exc:
        return "syntax error: " + _one_line(exc.msg or "invalid syntax"), exc.lineno
    except ValueError as exc:  # null bytes, before Python 3.12
        return "syntax error: " + _one_line(str(exc)), None
    except (RecursionError, MemoryError):
        return _TOO_DEEP, None
    for node in ast.walk(tree):
        if isinstance(node, ast.BoolOp) and len(node.values) > _MAX_BOOL_OPERANDS:
            return _TOO_DEEP, node.lineno
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())


class _Reader:
    """A parsed module's source text and 1-based line spans, node by node."""

    def __init__(self, module: cst.Module) -> None:
        self._module = module
        self.module = module
        # The tree was parsed here and is shared with no one: libcst's defensive copy is waste.
        wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
        self._positions = wrapper.resolve(PositionProvider)

    def code(self, node: cst.CSTNode) -> str:
        return self._module.code_for_node(node)

    def lines(self, node: cst.CSTNode) -> tuple[int, int]:
        where = self._positions[node]
        return where.start.line, where.end.line

    def literal(self, node: cst.CSTNode) -> Any:
        return Arg(self.code(node)).literal(_UNREADABLE)


def _migration_class(module: cst.Module) -> cst.ClassDef | None:
    found = None
    for statement in module.body:
        if isinstance(statement, cst.ClassDef) and statement.name.value == "Migration":
            found = statement  # a later definition replaces an earlier one, as on import
    return found


def _class_assignments(
    cls: cst.ClassDef,
) -> Iterator[tuple[str, cst.BaseExpression, cst.BaseSmallStatement]]:
    """(attribute, value, statement) for each `name = value` in the class body, with those in the
    branch of an `if connection.vendor == "postgresql":` block that runs on PostgreSQL."""
    return _assignments(cls.body)


def _assignments(
    body: cst.BaseSuite | cst.Module,
) -> Iterator[tuple[str, cst.BaseExpression, cst.BaseSmallStatement]]:
    """`name = value` and `name += value` (as "name+"), in order, on PostgreSQL's path."""
    lines = body.body if isinstance(body, (cst.IndentedBlock, cst.Module)) else [body]
    for line in lines:
        if isinstance(line, cst.If):
            branch = _postgresql_branch(line)
            if branch is not None:
                yield from _assignments(branch)
            continue
        if not isinstance(line, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
            continue
        for statement in line.body:
            if isinstance(statement, cst.Assign):
                for target in statement.targets:
                    if isinstance(target.target, cst.Name):
                        yield target.target.value, statement.value, statement
            elif (
                isinstance(statement, cst.AnnAssign)
                and statement.value is not None
                and isinstance(statement.target, cst.Name)
            ):
                yield statement.target.value, statement.value, statement
            elif (
                isinstance(statement, cst.AugAssign)
                and isinstance(statement.operator, cst.AddAssign)
                and isinstance(statement.target, cst.Name)
            ):
                yield statement.target.value + "+", statement.value, statement


def _postgresql_branch(block: cst.If) -> cst.BaseSuite | None:
    """The suite that runs when `connection.vendor` is "postgresql" (None: no branch runs, or the
    condition is about something else, which the text alone cannot settle)."""
    taken = _vendor_test(block.test)
    if taken is None:
        return None
    if taken:
        return block.body
    orelse = block.orelse
    if isinstance(orelse, cst.If):
        return _postgresql_branch(orelse)
    return orelse.body if isinstance(orelse, cst.Else) else None


def _vendor_test(test: cst.BaseExpression) -> bool | None:
    """`<…>.vendor == "postgresql"` (or !=, in, not in) on PostgreSQL; None for any other test."""
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        inner = _vendor_test(test.expression)
        return None if inner is None else not inner
    if not (isinstance(test, cst.Comparison) and len(test.comparisons) == 1):
        return None
    if not (isinstance(test.left, cst.Attribute) and test.left.attr.value == "vendor"):
        return None
    target = test.comparisons[0]
    value = Arg(cst.Module([]).code_for_node(target.comparator)).literal(_UNREADABLE)
    operator = target.operator
    if isinstance(value, str) and isinstance(operator, (cst.Equal, cst.NotEqual)):
        return (value == "postgresql") == isinstance(operator, cst.Equal)
    if isinstance(value, (tuple, list, set)) and isinstance(operator, (cst.In, cst.NotIn)):
        return ("postgresql" in value) == isinstance(operator, cst.In)
    return None


def _read_class_body(reader: _Reader, cls: cst.ClassDef, migration: MigrationFile) -> None:
    # Assignments apply in order, so a reassigned attribute ends with its last value.
    markers: dict[str, DeclaredPhase] = {}
    module_operations = _ModuleOperations(reader)
    for name, value, statement in _class_assignments(cls):
        if name in ("atomic", "initial"):
            flag = reader.literal(value)
            if isinstance(flag, bool):
                setattr(migration, name, flag)
        elif name in _DEPENDENCY_LISTS:
            setattr(migration, name, _dependencies(reader, value))
        elif name == "operations":
            migration.operations = _operations_value(reader, value, module_operations, []) or []
        elif name == "operations+":
            migration.operations = _operations_value(reader, value, module_operations,
                                                     migration.operations) or []
        elif name in _PHASE_MARKERS:
            source, read_phase = _PHASE_MARKERS[name]
            phase = read_phase(reader, value)
            if phase is None:
                markers.pop(source, None)
            else:
                markers[source] = DeclaredPhase(phase, source, reader.lines(statement)[0])
    # Our own marker wins over the other tools' vocabularies; among those, the first.
    migration.declared_phase = markers.get("deploy_phase") or next(iter(markers.values()), None)


# ---------------------------------------------------------------- dependencies


def _dependencies(reader: _Reader, value: cst.BaseExpression) -> list[Dependency]:
    if not isinstance(value, (cst.List, cst.Tuple)):
        return []
    found = (
        _dependency(reader, element.value)
        for element in value.elements
        if isinstance(element, cst.Element)
    )
    return [dependency for dependency in found if dependency is not None]


def _dependency(reader: _Reader, node: cst.BaseExpression) -> Dependency | None:
    if isinstance(node, cst.Call) and _last_name(node.func) == "swappable_dependency":
        return _swappable_dependency(reader, node)
    pair = reader.literal(node)
    if isinstance(pair, (tuple, list)) and len(pair) == 2 and all(isinstance(p, str) for p in pair):
        return pair[0], pair[1]
    return None


def _swappable_dependency(reader: _Reader, call: cst.Call) -> Dependency | None:
    if not call.args:
        return None
    value = call.args[0].value
    if isinstance(value, cst.Attribute):  # settings.AUTH_USER_MODEL: known only at run time
        return "__setting__", value.attr.value
    model = reader.literal(value)
    if isinstance(model, str) and "." in model:  # Django then depends on the app's first migration
        return model.split(".", 1)[0], "__first__"
    return None


# ---------------------------------------------------------------- operations


def _operations(reader: _Reader, value: cst.BaseExpression, start: int = 0) -> list[ParsedOperation]:
    if not isinstance(value, (cst.List, cst.Tuple)):
        return []  # built some other way (a call, a comprehension): not readable statically
    return [_operation(reader, start + index, element) for index, element in enumerate(value.elements)]


def _operations_value(
    reader: _Reader,
    value: cst.BaseExpression,
    names: Mapping[str, list[ParsedOperation]] | _ModuleOperations,
    before: list[ParsedOperation] | None,
) -> list[ParsedOperation] | None:
    """`before` followed by the operations `value` holds (a list, a module-level name, or a sum
    of these); None when any part is built some other way: then the positions are unknown."""
    if before is None:
        return None
    if isinstance(value, cst.BinaryOperation) and isinstance(value.operator, cst.Add):
        left = _operations_value(reader, value.left, names, before)
        return _operations_value(reader, value.right, names, left)
    if isinstance(value, cst.Name):
        found = names.get(value.value)
        if found is None:
            return None
        return [*before, *(_renumbered(op, len(before) + i) for i, op in enumerate(found))]
    if not isinstance(value, (cst.List, cst.Tuple)):
        return None
    return [*before, *_operations(reader, value, start=len(before))]


def _renumbered(operation: ParsedOperation, index: int) -> ParsedOperation:
    return dataclasses.replace(operation, index=index)


class _ModuleOperations:
    """Lists of operations assigned at module level, read only if the Migration class names one."""

    def __init__(self, reader: _Reader) -> None:
        self._reader = reader
        self._names: dict[str, list[ParsedOperation]] | None = None

    def get(self, name: str) -> list[ParsedOperation] | None:
        if self._names is None:
            self._names = _module_operations(self._reader)
        return self._names.get(name)


def _module_operations(reader: _Reader) -> dict[str, list[ParsedOperation]]:
    """Lists of operations assigned at module level (on PostgreSQL's path), which the Migration
    class may name: `operations = operations`, `operations = common + postgresql_only`."""
    names: dict[str, list[ParsedOperation]] = {}
    for name, value, _statement in _assignments(reader.module):
        target = name.removesuffix("+")
        found = _operations_value(reader, value, names, names.get(target) if name.endswith("+") else [])
        if found is None:
            names.pop(target, None)
        else:
            names[target] = found
    return names


def _operation(reader: _Reader, index: int, element: cst.BaseElement) -> ParsedOperation:
    if isinstance(element, cst.StarredElement):
        # The element's own text would include its trailing comma and comment.
        code = reader.code(element.with_changes(comma=cst.MaybeSentinel.DEFAULT))
        return ParsedOperation(index, "Unknown", code, *reader.lines(element))
    node = element.value
    line, end_line = reader.lines(node)
    if not isinstance(node, cst.Call):
        return ParsedOperation(index, "Unknown", reader.code(node), line, end_line)
    arguments = _call_arguments(node)
    operation = ParsedOperation(
        index=index,
        type=_last_name(node.func) or "Unknown",
        qualname=reader.code(node.func),
        line=line,
        end_line=end_line,
        args={key: Arg(reader.code(value)) for key, value in arguments.items()},
    )
    if operation.type == "SeparateDatabaseAndState":
        for position, key in enumerate(_NESTED_OPERATION_ARGS):
            nested = arguments.get(key, arguments.get(str(position)))
            if isinstance(nested, (cst.List, cst.Tuple)):
                operation.nested[key] = _operations(reader, nested)
    return operation


def _call_arguments(call: cst.Call) -> dict[str, cst.BaseExpression]:
    """Keyword arguments by name, positional ones as "0", "1", ...

    `*xs` / `**kw` are kept under "*" / "**": their contents are unknown statically,
    but a rule should know something was passed that way.
    """
    arguments: dict[str, cst.BaseExpression] = {}
    position = 0
    for arg in call.args:
        if arg.keyword is not None:
            arguments[arg.keyword.value] = arg.value
        elif arg.star:
            arguments.setdefault(arg.star, arg.value)
        else:
            arguments[str(position)] = arg.value
            position += 1
    return arguments


def _last_name(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return node.attr.value
    return None


# ---------------------------------------------------------------- deploy phase markers


def _deploy_phase(reader: _Reader, value: cst.BaseExpression) -> Phase | None:
    text = reader.literal(value)
    if not isinstance(text, str):
        return None
    try:
        return Phase.parse(text)
    except ValueError:
        # An unknown phase declares nothing; MigrationFile has no place for the bad
        # value, so the rules see an undeclared migration and report that.
        return None


def _syzygy_stage(reader: _Reader, value: cst.BaseExpression) -> Phase | None:
    stages = {"PRE_DEPLOY": Phase.PRE_DEPLOY, "POST_DEPLOY": Phase.POST_DEPLOY}
    return stages.get(_last_name(value) or "")


def _safemigrate(reader: _Reader, value: cst.BaseExpression) -> Phase | None:
    # Safe.always() may run at any time; pre-deploy is the earliest of those.
    safety = {
        "before_deploy": Phase.PRE_DEPLOY,
        "always": Phase.PRE_DEPLOY,
        "after_deploy": Phase.POST_DEPLOY,
    }
    target = value.func if isinstance(value, cst.Call) else value  # older releases: no call
    return safety.get(_last_name(target) or "")


def _is_post_deployment(reader: _Reader, value: cst.BaseExpression) -> Phase | None:
    return Phase.POST_DEPLOY if reader.literal(value) is True else None


_PhaseReader = Callable[[_Reader, cst.BaseExpression], Union[Phase, None]]
# class attribute -> (DeclaredPhase.source, reader)
_PHASE_MARKERS: dict[str, tuple[str, _PhaseReader]] = {
    "deploy_phase": ("deploy_phase", _deploy_phase),
    "stage": ("syzygy stage", _syzygy_stage),
    "safe": ("safemigrate", _safemigrate),
    "is_post_deployment": ("is_post_deployment", _is_post_deployment),
}


# ---------------------------------------------------------------- app label


def declared_app_label(apps_source: str, folder: str) -> str | None:
    """The label the AppConfig in an app's apps.py gives it: its `label`, else the last part of its
    `name` (Django's rule). Several configs: the one named after the folder, else the first."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(apps_source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    configs = [node for node in tree.body if isinstance(node, ast.ClassDef) and any(
        (base.id if isinstance(base, ast.Name) else getattr(base, "attr", "")).endswith("AppConfig")
        for base in node.bases)]
    labels = [_config_label(config) for config in configs]
    labels = [(name, label) for name, label in labels if label]
    for name, label in labels:
        if name and name.rsplit(".", 1)[-1] == folder:
            return label
    return labels[0][1] if labels else None


def _config_label(config: ast.ClassDef) -> tuple[str | None, str | None]:
    values: dict[str, str] = {}
    for statement in config.body:
        if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Constant) \
                and isinstance(statement.value.value, str):
            for target in statement.targets:
                if isinstance(target, ast.Name):
                    values[target.id] = statement.value.value
    name = values.get("name")
    label = values.get("label") or (name.rsplit(".", 1)[-1] if name else None)
    return name, label if label and label.isidentifier() else None
