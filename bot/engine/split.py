"""Split a migration that mixes phases into one migration per phase, with libcst.

The first part keeps the original name, so migrations that depend on it keep
working and depend on its earliest phase. The later parts go to the end of the
app's chain (after `after`, the app's last migration that builds on the
original), so the app keeps a single leaf; each declares its `deploy_phase`.
Comments and formatting of the operations are kept as written.
"""
from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from migration_safe.engine.model import Phase

SLUG = {Phase.PRE_DEPLOY: "pre_deploy", Phase.POST_DEPLOY: "post_deploy", Phase.DEFERRED: "deferred"}


@dataclass(frozen=True)
class SplitFile:
    name: str  # migration name, e.g. "0005_order_note_deferred"
    path: str  # repo-relative path
    phase: Phase | None  # declared in the file (None: unchanged)
    source: str


class SplitError(ValueError):
    """The file's operations list cannot be split mechanically."""


def split_migration(source: str, path: str, app_label: str, name: str, phases: list[Phase],
                    after: str | None = None, anchors: dict[Phase, str] | None = None) -> list[SplitFile]:
    """One file per phase, in phase order; `phases[i]` is the phase of operation i.

    A later part depends on `anchors[phase]` when given (a caller placing several
    fixes on one chain), else the second on `after` and each next on the one before.
    """
    module = cst.parse_module(source)
    ordered = sorted(set(phases), key=lambda p: p.order)
    folder = path.rsplit("/", 1)[0]
    parts, previous = [], None
    for position, phase in enumerate(ordered):
        part_name = name if position == 0 else later_part_name(name, phase)
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


def later_part_name(name: str, phase: Phase) -> str:
    return f"{name}_{SLUG[phase]}"


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
            elements = [e for i, e in enumerate(updated.value.elements) if i in self.keep]
            if elements:  # the last kept element must not keep a dangling comma's absence
                elements[-1] = elements[-1].with_changes(comma=cst.Comma())
            self.done = True
            return updated.with_changes(value=updated.value.with_changes(elements=elements))
        if target.value == "dependencies" and self.depends_on:
            app_label, name = self.depends_on
            return updated.with_changes(value=cst.parse_expression(f"[({app_label!r}, {name!r})]"))
        return updated


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
