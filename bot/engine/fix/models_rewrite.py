"""models.py kept in step with the state `fix` writes into the migrations, with libcst.

A rewrite that changes what Django's state says (a `db_default` in place of a `default`, a
`db_column` or `db_table` that keeps the database's name) must be said in the model too, or the next
`makemigrations` writes the change back: the hazard again. The model class is looked for in the app's
`models.py` and `models/*.py`; where it cannot be found (or changed exactly), `fix` prints the line
to write instead.

The project's files are the pull request's: read only inside the project, never through a symbolic
link, and only up to a size.
"""
from __future__ import annotations

import ast
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import libcst as cst

MAX_BYTES = 1_000_000  # a models module larger than this is not read
MAX_LISTED = 100  # modules read from one `models/` package
MAX_SNAPSHOT = 20_000_000  # bytes of models modules a snapshot keeps, over every app


@dataclass(frozen=True)
class ModelChange:
    """One keyword a model's field (or its Meta) must say from now on."""

    app_dir: str  # the app's folder, repo-relative ("shop")
    model: str  # the class, as the migration's state names it (any case)
    field: str | None  # the attribute; None: the class's Meta
    keyword: str  # "db_default" | "db_column" | "db_table"
    value: str  # Python code of the value
    replaces: str | None = None  # the keyword it takes the place of ("default")

    @property
    def wanted(self) -> str:
        where = f"{self.model}.{self.field}" if self.field else f"{self.model}.Meta"
        said = f"{self.keyword}={self.value}" if self.field else f"{self.keyword} = {self.value}"
        instead = f" in place of `{self.replaces}=…`" if self.replaces else ""
        return f"{where} must say `{said}`{instead}"


class ProjectFiles(Protocol):
    def read(self, path: str) -> str | None: ...

    def listing(self, folder: str) -> list[str]: ...


@dataclass(frozen=True)
class WorkTree:
    """The project's working tree, confined: no path outside it, no symbolic link, no large file."""

    root: Path

    def _path(self, relative: str) -> Path | None:
        parts = Path(relative).parts
        if not parts or Path(relative).is_absolute() or ".." in parts:
            return None
        current = self.root
        for part in parts:
            current = current / part
            try:
                mode = os.lstat(current).st_mode
            except OSError:
                return None
            if stat.S_ISLNK(mode):
                return None
        return current

    def read(self, path: str) -> str | None:
        target = self._path(path)
        if target is None:
            return None
        try:
            descriptor = os.open(target, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        with os.fdopen(descriptor, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return None
            data = handle.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def listing(self, folder: str) -> list[str]:
        target = self._path(folder)
        if target is None or not target.is_dir():
            return []
        with os.scandir(target) as entries:
            names = sorted(f"{folder}/{entry.name}" for entry in entries
                           if entry.name.endswith(".py") and entry.is_file(follow_symlinks=False))
        return names[:MAX_LISTED]


@dataclass(frozen=True)
class Snapshot:
    """Files read once (from a checkout that is gone by the time the fixes are planned)."""

    files: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, tree: ProjectFiles, app_dirs: set[str]) -> "Snapshot":
        """The apps' models modules, up to MAX_SNAPSHOT bytes: past it, fixes name the lines to write."""
        files, total = {}, 0
        for path in (path for app in sorted(app_dirs) for path in candidates(tree, app)):
            text = tree.read(path)
            if text is None:
                continue
            total += len(text)
            if total > MAX_SNAPSHOT:
                break
            files[path] = text
        return cls(files)

    def read(self, path: str) -> str | None:
        return self.files.get(path)

    def listing(self, folder: str) -> list[str]:
        return sorted(p for p in self.files if p.rsplit("/", 1)[0] == folder)


def app_folder(migration_path: str) -> str | None:
    """`shop/migrations/0002_x.py` -> `shop`; None when the file is not in a `migrations` folder."""
    parts = migration_path.split("/")
    return "/".join(parts[:-2]) if len(parts) >= 3 and parts[-2] == "migrations" else None


def candidates(tree: ProjectFiles, app_dir: str) -> list[str]:
    return [f"{app_dir}/models.py", *tree.listing(f"{app_dir}/models")]


@dataclass
class ModelsEdit:
    files: dict[str, str] = field(default_factory=dict)  # path -> new text
    done: list[str] = field(default_factory=list)
    manual: list[str] = field(default_factory=list)  # what people must write, and where


def apply_model_changes(changes: list[ModelChange], tree: ProjectFiles | None) -> ModelsEdit:
    edit = ModelsEdit()
    for change in changes:
        where = _find_class(change, tree, edit.files) if tree is not None else None
        if where is None:
            edit.manual.append(f"{change.app_dir}/models.py: {change.wanted}: the class {change.model} was "
                               "not found in the app's models modules, so write it there yourself, or "
                               "makemigrations writes the migration's change back")
            continue
        path, source = where
        rewriter = _ModelRewriter(change)
        try:
            new = cst.parse_module(source).visit(rewriter).code
        except cst.ParserSyntaxError:
            new, rewriter.problem = source, "the module does not parse"
        if rewriter.problem:
            edit.manual.append(f"{path}: {change.wanted}: {rewriter.problem}, so write it there yourself, or "
                               "makemigrations writes the migration's change back")
            continue
        if new != source:
            edit.files[path] = new
            edit.done.append(f"{path}: {change.wanted.replace(' must say ', ' says ')}, as the migration's state")
    return edit


def _find_class(change: ModelChange, tree: ProjectFiles, edited: dict[str, str]) -> tuple[str, str] | None:
    """(path, text) of the one models module that defines the class; None if none or several do."""
    found = []
    for path in candidates(tree, change.app_dir):
        source = edited.get(path) or tree.read(path)
        if source is None:
            continue
        try:
            module = ast.parse(source)
        except SyntaxError:
            continue
        if any(isinstance(node, ast.ClassDef) and node.name.lower() == change.model.lower()
               for node in module.body):
            found.append((path, source))
    return found[0] if len(found) == 1 else None


class _ModelRewriter(cst.CSTTransformer):
    """The change, in the top-level class it names; `problem` says why it could not be made."""

    def __init__(self, change: ModelChange) -> None:
        self.change = change
        self.problem: str | None = None
        self.depth = 0
        self.made = False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        self.depth += 1
        return self.depth == 1 and node.name.value.lower() == self.change.model.lower()

    def leave_ClassDef(self, original: cst.ClassDef, updated: cst.ClassDef) -> cst.ClassDef:
        self.depth -= 1
        if self.depth or original.name.value.lower() != self.change.model.lower():
            return updated
        if not isinstance(updated.body, cst.IndentedBlock):
            self.problem = f"the class {original.name.value} is written on one line"
            return updated
        body = list(updated.body.body)
        if self.change.field is None:
            body = self._meta(body)
        else:
            body = self._field(body)
        return updated.with_changes(body=updated.body.with_changes(body=body))

    def _field(self, body: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
        for position, statement in enumerate(body):
            assign = _assignment(statement, self.change.field)
            if assign is None:
                continue
            if not isinstance(assign.value, cst.Call):
                self.problem = f"{self.change.field} is not assigned a field call"
                return body
            call = self._keywords(assign.value)
            if call is None:
                return body
            small = statement.body[0].with_changes(value=call)
            body[position] = statement.with_changes(body=[small])
            return body
        self.problem = f"no `{self.change.field} = …(…)` in the class"
        return body

    def _keywords(self, call: cst.Call) -> cst.Call | None:
        change, args = self.change, list(call.args)
        if any(arg.star for arg in args):
            self.problem = "the field takes **kwargs, which may say otherwise"
            return None
        names = [arg.keyword.value if arg.keyword else None for arg in args]
        value = cst.parse_expression(change.value)
        if change.keyword in names:  # says it already, maybe with another value
            if change.replaces in names:
                self.problem = f"it says both `{change.keyword}=` and `{change.replaces}=`"
                return None
            position = names.index(change.keyword)
            if not _same_literal(args[position].value, change.value):
                args[position] = args[position].with_changes(value=value)
            return call.with_changes(args=args)
        if change.replaces is not None:
            if change.replaces not in names:
                self.problem = f"the field has no `{change.replaces}=`"
                return None
            position = names.index(change.replaces)
            if not _same_literal(args[position].value, change.value):
                self.problem = f"its `{change.replaces}=` is not the migration's ({change.value})"
                return None
            args[position] = args[position].with_changes(keyword=cst.Name(change.keyword), value=value)
            return call.with_changes(args=args)
        new = cst.Arg(keyword=cst.Name(change.keyword), value=value,
                      equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")))
        if args:  # after the last argument; the last keeps its trailing comma, if any
            new = new.with_changes(comma=args[-1].comma)
            args[-1] = args[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
        return call.with_changes(args=[*args, new])

    def _meta(self, body: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
        line = cst.parse_statement(f"{self.change.keyword} = {self.change.value}\n")
        for position, statement in enumerate(body):
            if isinstance(statement, cst.ClassDef) and statement.name.value == "Meta":
                if not isinstance(statement.body, cst.IndentedBlock):
                    self.problem = "its Meta is written on one line"
                    return body
                inner = [s for s in statement.body.body if not _is_pass(s)]
                said = [i for i, s in enumerate(inner) if _assignment(s, self.change.keyword) is not None]
                if not said:
                    inner.append(line)
                elif _same_literal(inner[said[-1]].body[0].value, self.change.value):
                    return body
                else:  # the value only: the line keeps its comment
                    old = inner[said[-1]]
                    assign = old.body[0].with_changes(value=cst.parse_expression(self.change.value))
                    inner[said[-1]] = old.with_changes(body=[assign])
                body[position] = statement.with_changes(body=statement.body.with_changes(body=inner))
                return body
        meta = cst.parse_statement(f"class Meta:\n    {self.change.keyword} = {self.change.value}\n")
        return [*body, meta.with_changes(leading_lines=[cst.EmptyLine(indent=False)])]


def _assignment(statement: cst.CSTNode, name: str | None) -> cst.Assign | None:
    if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1 \
            and isinstance(statement.body[0], cst.Assign) and len(statement.body[0].targets) == 1:
        target = statement.body[0].targets[0].target
        if isinstance(target, cst.Name) and target.value == name:
            return statement.body[0]
    return None


def _is_pass(statement: cst.CSTNode) -> bool:
    return isinstance(statement, cst.SimpleStatementLine) and all(isinstance(s, cst.Pass) for s in statement.body)


def _same_literal(node: cst.BaseExpression, code: str) -> bool:
    try:
        return ast.literal_eval(cst.Module(body=[]).code_for_node(node)) == ast.literal_eval(code)
    except (ValueError, SyntaxError):
        return False
