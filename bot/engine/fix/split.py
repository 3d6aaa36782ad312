"""Split a migration that mixes phases into one migration per phase, with libcst.

The first part keeps the original name, so migrations that depend on it keep
working and depend on its earliest phase. The later parts go to the end of the
app's chain (after `after`, the app's last migration that builds on the
original), so the app keeps a single leaf; each declares its `deploy_phase`.
Comments and formatting of the operations are kept as written.

`PartNames` names every migration a fix adds.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import libcst as cst

from migration_safe.engine.model import Phase

SLUG = {Phase.PRE_DEPLOY: "pre_deploy", Phase.POST_DEPLOY: "post_deploy", Phase.DEFERRED: "deferred"}
NUMBER = re.compile(r"^(\d+)_")


@dataclass(frozen=True)
class PartNames:
    """What the migrations a fix adds are called: `<original>_<what>` is a draft, until
    autofix.numbered gives each the number after its app's last migration, as makemigrations would.

    A draft must not reach the project: `sqlmigrate`, `migrate` and `squashmigrations` take a name as a
    prefix and refuse one that several migrations start with, even a whole name, so the original,
    which its drafts start with, could no longer be named, nor the number they share.
    """

    numbered: dict[str, str] = field(default_factory=dict)  # draft -> name

    def __call__(self, name: str, what: str) -> str:
        draft = f"{name}_{what}"
        return self.numbered.get(draft, draft)


DRAFTS = PartNames()


def migration_number(name: str) -> int:
    match = NUMBER.match(name)
    return int(match.group(1)) if match else 0


def renumbered(draft: str, number: int) -> str:
    """The draft with `number` in place of its original's (four digits, as makemigrations writes it)."""
    return f"{number:04d}_{NUMBER.sub('', draft, count=1)}"


@dataclass(frozen=True)
class SplitFile:
    name: str  # migration name, e.g. "0005_order_note_deferred"
    path: str  # repo-relative path
    phase: Phase | None  # declared in the file (None: unchanged)
    source: str


class SplitError(ValueError):
    """The file's operations list cannot be split mechanically."""


def split_migration(source: str, path: str, app_label: str, name: str, phases: list[Phase],
                    after: str | None = None, anchors: dict[Phase, str] | None = None,
                    names: PartNames = DRAFTS) -> list[SplitFile]:
    """One file per phase, in phase order; `phases[i]` is the phase of operation i.

    A later part depends on `anchors[phase]` when given (a caller placing several
    fixes on one chain), else the second on `after` and each next on the one before.
    """
    module = cst.parse_module(source)
    ordered = sorted(set(phases), key=lambda p: p.order)
    folder = path.rsplit("/", 1)[0]
    parts, previous = [], None
    for position, phase in enumerate(ordered):
        part_name = name if position == 0 else later_part_name(name, phase, names)
        keep = [i for i, p in enumerate(phases) if p is phase]
        anchor = (after or previous) if position == 1 else previous
        if anchors and position > 0:
            anchor = anchors[phase]
        rewriter = _Rewriter(keep, {"deploy_phase": f'"{phase.value}"'}, (app_label, anchor) if anchor else None)
        new_source = module.visit(rewriter).code
        if not rewriter.done:
            raise SplitError("no `operations = [...]` list in the Migration class")
        parts.append(SplitFile(part_name, f"{folder}/{part_name}.py", phase, new_source))
        previous = part_name
    return parts


def declare_phase(source: str, phase: Phase) -> str | None:
    """The file with `deploy_phase = "<phase>"` first in its Migration class (replacing any it had)."""
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError:
        return None
    declarer = _Declarer(phase)
    new = module.visit(declarer)
    return new.code if declarer.done else None


class _Declarer(cst.CSTTransformer):
    def __init__(self, phase: Phase) -> None:
        self.phase, self.done = phase, False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def leave_ClassDef(self, original: cst.ClassDef, updated: cst.ClassDef) -> cst.ClassDef:
        if original.name.value != "Migration" or not isinstance(updated.body, cst.IndentedBlock):
            return updated
        self.done = True
        body = list(updated.body.body)
        line = cst.parse_statement(f'deploy_phase = "{self.phase.value}"\n')
        for position, statement in enumerate(body):
            if _assigned(statement) == "deploy_phase":
                body[position] = line.with_changes(leading_lines=statement.leading_lines)
                return updated.with_changes(body=updated.body.with_changes(body=body))
        return updated.with_changes(body=updated.body.with_changes(body=[line, *body]))


def replace_dependency(source: str, app_label: str, old: str, new: str) -> str | None:
    """The file with (app_label, new) in place of (app_label, old) in its Migration's dependencies."""
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError:
        return None
    swapper = _DependencySwap(app_label, old, new)
    rewritten = module.visit(swapper)
    return rewritten.code if swapper.done else None


class _DependencySwap(cst.CSTTransformer):
    def __init__(self, app_label: str, old: str, new: str) -> None:
        self.app_label, self.old, self.new, self.done = app_label, old, new, False
        self.inside = False

    def visit_Assign(self, node: cst.Assign) -> bool:
        target = node.targets[0].target if len(node.targets) == 1 else None
        self.inside = isinstance(target, cst.Name) and target.value == "dependencies"
        return self.inside

    def leave_Assign(self, original: cst.Assign, updated: cst.Assign) -> cst.Assign:
        self.inside = False
        return updated

    def leave_Tuple(self, original: cst.Tuple, updated: cst.Tuple) -> cst.Tuple:
        values = [e.value for e in updated.elements]
        if not self.inside or len(values) != 2 or not all(isinstance(v, cst.SimpleString) for v in values) \
                or [v.evaluated_value for v in values] != [self.app_label, self.old]:
            return updated
        self.done = True
        quote_mark = values[1].quote
        return updated.with_changes(elements=[updated.elements[0], updated.elements[1].with_changes(
            value=cst.SimpleString(f"{quote_mark}{self.new}{quote_mark}"))])


def later_part_name(name: str, phase: Phase, names: PartNames) -> str:
    return names(name, SLUG[phase])


def split_phases(phases: list[Phase]) -> list[Phase]:
    """The phases of the parts after the first, in order."""
    return sorted(set(phases), key=lambda p: p.order)[1:]


class _Rewriter(cst.CSTTransformer):
    def __init__(self, keep: list[int], attributes: dict[str, str], depends_on: tuple[str, str] | None) -> None:
        self.keep, self.attributes, self.depends_on = keep, attributes, depends_on
        self.done = False
        self.in_migration = False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        self.in_migration = node.name.value == "Migration"
        return self.in_migration

    def leave_ClassDef(self, original: cst.ClassDef, updated: cst.ClassDef) -> cst.ClassDef:
        if original.name.value != "Migration":
            return updated
        body = [s for s in updated.body.body if _assigned(s) not in self.attributes]
        declarations = [cst.parse_statement(f"{key} = {value}\n") for key, value in self.attributes.items()]
        return updated.with_changes(body=updated.body.with_changes(body=[*declarations, *body]))

    def leave_Assign(self, original: cst.Assign, updated: cst.Assign) -> cst.Assign:
        target = original.targets[0].target if len(original.targets) == 1 else None
        if not self.in_migration or not isinstance(target, cst.Name):
            return updated
        if target.value == "operations" and isinstance(updated.value, (cst.List, cst.Tuple)):
            self.done = True
            return updated.with_changes(value=_kept_with_comments(updated.value, self.keep)
                                        or _kept(updated.value, self.keep))
        if target.value == "dependencies" and self.depends_on:
            app_label, name = self.depends_on
            return updated.with_changes(value=cst.parse_expression(f"[({app_label!r}, {name!r})]"))
        return updated


def _kept(value: cst.List | cst.Tuple, keep: list[int]) -> cst.List | cst.Tuple:
    elements = [e for i, e in enumerate(value.elements) if i in keep]
    if elements:  # the last kept element must not keep a dangling comma's absence
        elements[-1] = elements[-1].with_changes(comma=cst.Comma())
    return value.with_changes(elements=elements)


def _kept_with_comments(value: cst.List | cst.Tuple, keep: list[int]) -> cst.List | None:
    """A one-per-line list with only the kept elements, each with its comments: the comment at the
    end of its line and the comment lines just above it (libcst files both in the whitespace that
    follows the element before). None when the list is not one element per line."""
    if not isinstance(value, cst.List):
        return None
    elements = list(value.elements)
    gaps = [value.lbracket.whitespace_after] + [e.comma.whitespace_after for e in elements[:-1]] \
        + [value.rbracket.whitespace_before]  # gaps[i] precedes element i; the last one, `]`
    if not elements or any(not isinstance(g, cst.ParenthesizedWhitespace) for g in gaps) \
            or not all(isinstance(e.comma, cst.Comma) for e in elements[:-1]):
        return None
    kept = [i for i in range(len(elements)) if i in keep]
    if not kept:
        return None

    def between(before: int, after: int | None) -> cst.ParenthesizedWhitespace:
        closing = gaps[-1] if after is None else gaps[after]  # `]` keeps its own comments only once
        return closing.with_changes(first_line=gaps[before + 1].first_line,
                                    empty_lines=[] if after is None and kept[-1] != len(elements) - 1
                                    else closing.empty_lines)

    new = [elements[i].with_changes(comma=cst.Comma(whitespace_after=between(i, nxt)))
           for i, nxt in zip(kept, kept[1:])]
    new.append(elements[kept[-1]].with_changes(comma=cst.Comma()))
    return value.with_changes(
        elements=new,
        # comment lines right after `[` speak for the whole list: every part keeps them
        lbracket=value.lbracket.with_changes(whitespace_after=gaps[0].with_changes(
            empty_lines=[*gaps[0].empty_lines, *(gaps[kept[0]].empty_lines if kept[0] else [])],
            last_line=gaps[kept[0]].last_line)),
        rbracket=value.rbracket.with_changes(whitespace_before=between(kept[-1], None)))


def _assigned(statement: cst.CSTNode) -> str | None:
    if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
        small = statement.body[0]
        if isinstance(small, cst.Assign) and isinstance(small.targets[0].target, cst.Name):
            return small.targets[0].target.value
    return None


def chain_end(name: str, dependencies: dict[str, list[str]]) -> str | None:
    """The last migration of the app that builds on `name`, if the chain after it is linear."""
    current, seen = name, {name}
    while True:
        children = [m for m, deps in dependencies.items() if current in deps and m not in seen]
        if len(children) != 1:
            return current if current != name and not children else None
        current = children[0]
        seen.add(current)
