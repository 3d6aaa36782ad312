"""A migration file's text -> MigrationFile, with libcst (exact line spans, never executing it)."""
from __future__ import annotations

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from migration_safe.engine.model import Arg, DeclaredPhase, MigrationFile, ParsedOperation, Phase

NESTED_LISTS = ("database_operations", "state_operations")  # SeparateDatabaseAndState's own order


def parse_migration(source: str, path: str, app_label: str, name: str, status: str = "added") -> MigrationFile:
    file = MigrationFile(path=path, name=name, app_label=app_label, status=status)
    try:
        wrapper = MetadataWrapper(cst.parse_module(source))
    except cst.ParserSyntaxError as exc:
        file.parse_error = f"syntax error: {exc.message}"
        file.parse_error_line = exc.raw_line
        return file
    except (RecursionError, MemoryError, ValueError) as exc:
        file.parse_error = f"cannot parse: {type(exc).__name__}"
        return file
    reader = _Reader(wrapper)
    cls = next((s for s in wrapper.module.body
                if isinstance(s, cst.ClassDef) and s.name.value == "Migration"), None)
    if cls is None:
        file.parse_error = "no Migration class found"
        return file
    file.class_line = reader.line(cls.name)
    for statement in cls.body.body:
        for target, value in _assignments(statement):
            reader.attribute(file, target, value)
    return file


def _assignments(statement: cst.CSTNode):
    """(attribute name, value) of `name = value` and `name: T = value` in a class body."""
    if not isinstance(statement, cst.SimpleStatementLine):
        return
    for small in statement.body:
        if isinstance(small, cst.Assign) and len(small.targets) == 1 \
                and isinstance(small.targets[0].target, cst.Name):
            yield small.targets[0].target, small.value
        elif isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name) and small.value:
            yield small.target, small.value


class _Reader:
    def __init__(self, wrapper: MetadataWrapper) -> None:
        self.module = wrapper.module
        self.positions = wrapper.resolve(PositionProvider)

    def line(self, node: cst.CSTNode) -> int:
        return self.positions[node].start.line

    def end_line(self, node: cst.CSTNode) -> int:
        return self.positions[node].end.line

    def code(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)

    def attribute(self, file: MigrationFile, target: cst.Name, value: cst.BaseExpression) -> None:
        name = target.value
        if name in ("atomic", "initial"):
            literal = Arg(self.code(value)).literal()
            if isinstance(literal, bool):
                setattr(file, name, literal)
        elif name in ("dependencies", "replaces", "run_before"):
            setattr(file, name, self.pairs(value))
        elif name == "operations":
            file.operations = self.operations(value)
        else:
            declared = self.declared_phase(name, value)
            if declared:
                file.declared_phase = DeclaredPhase(declared[0], declared[1], self.line(target))

    def pairs(self, value: cst.BaseExpression) -> list[tuple[str, str]]:
        out = []
        for element in _elements(value):
            literal = Arg(self.code(element)).literal()
            if isinstance(literal, tuple) and len(literal) == 2 and all(isinstance(x, str) for x in literal):
                out.append(literal)
            elif isinstance(element, cst.Call) and _callee(element).endswith("swappable_dependency") \
                    and element.args:
                setting = self.code(element.args[0].value).rsplit(".", 1)[-1]
                out.append(("__setting__", setting))
        return out

    def operations(self, value: cst.BaseExpression) -> list[ParsedOperation]:
        return [self.operation(index, element) for index, element in enumerate(_elements(value))]

    def operation(self, index: int, node: cst.BaseExpression) -> ParsedOperation:
        if not isinstance(node, cst.Call):
            return ParsedOperation(index, "Unknown", self.code(node), self.line(node), self.end_line(node))
        qualname = _callee(node)
        op = ParsedOperation(index, qualname.rsplit(".", 1)[-1], qualname, self.line(node), self.end_line(node))
        position = 0
        for arg in node.args:
            if arg.star:
                continue
            key = arg.keyword.value if arg.keyword else str(position)
            position += 0 if arg.keyword else 1
            op.args[key] = Arg(self.code(arg.value))
            nested = arg.keyword.value if arg.keyword else _nested_position(op.type, key)
            if op.type == "SeparateDatabaseAndState" and nested in NESTED_LISTS:
                op.nested[nested] = self.operations(arg.value)
        return op

    def declared_phase(self, name: str, value: cst.BaseExpression) -> tuple[Phase, str] | None:
        code = self.code(value).replace(" ", "")
        if name == "deploy_phase":
            literal = Arg(code).literal()
            try:  # an unknown value declares nothing; MS113 cannot judge it either
                return (Phase.parse(literal), "deploy_phase") if isinstance(literal, str) else None
            except ValueError:
                return None
        if name == "stage":  # django-syzygy
            if code.endswith("PRE_DEPLOY"):
                return Phase.PRE_DEPLOY, "syzygy stage"
            if code.endswith("POST_DEPLOY"):
                return Phase.POST_DEPLOY, "syzygy stage"
        if name == "safe":  # django-safemigrate
            for word, phase in (("before_deploy", Phase.PRE_DEPLOY), ("after_deploy", Phase.POST_DEPLOY),
                                ("always", Phase.PRE_DEPLOY)):
                if code.split("(")[0].endswith(word):
                    return phase, "safemigrate"
        if name == "is_post_deployment" and Arg(code).literal() is True:  # Sentry
            return Phase.POST_DEPLOY, "is_post_deployment"
        return None


def _nested_position(type_name: str, key: str) -> str | None:
    if type_name == "SeparateDatabaseAndState" and key in ("0", "1"):
        return NESTED_LISTS[int(key)]
    return None


def _elements(value: cst.BaseExpression) -> list[cst.BaseExpression]:
    if isinstance(value, (cst.List, cst.Tuple)):
        return [e.value for e in value.elements if isinstance(e, cst.Element)]
    return []


def _callee(call: cst.Call) -> str:
    parts = []
    node = call.func
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if isinstance(node, cst.Name):
        parts.append(node.value)
    return ".".join(reversed(parts)) or "?"
