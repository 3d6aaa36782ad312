"""Review -> the files that fix it: local rewrites, multi-step recipes (engine/recipes.py), concurrent
indexes, one migration per phase.

Parts that a fix adds go to the end of their app's chain, ordered by phase
(pre-deploy, post-deploy, deferred), so the app keeps a single leaf and no
part depends on one of a later phase. They are numbered in that order after the
app's last migration, as makemigrations numbers (split.PartNames).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from migration_safe.config import Config
from migration_safe.engine.concurrent import ConcurrentContext, ConcurrentRewrite, plan_concurrent, write_concurrent
from migration_safe.engine.fixes import apply_suggestion, validate_migration, validate_statements
from migration_safe.engine.model import MigrationVerdict, Phase, Review
from migration_safe.engine.recipes import Recipe, plan_recipe
from migration_safe.engine.split import (
    PartNames, SplitError, later_part_name, migration_number, renumbered, split_migration, split_phases,
)


@dataclass
class FixPlan:
    files: dict[str, str] = field(default_factory=dict)  # repo-relative path -> new content
    done: list[str] = field(default_factory=list)  # what was fixed, for people
    left: list[str] = field(default_factory=list)  # blocking findings with no automatic fix


@dataclass
class _Fix:
    verdict: MigrationVerdict
    source: str
    kind: str  # "split" | "index" | "validate" | "recipe"
    appended: list[tuple[Phase, str]]  # (phase, name) of the parts added to the app's chain
    indices: list[int] = field(default_factory=list)  # "index": the operations built concurrently
    rewrite: ConcurrentRewrite | None = None  # "index": how
    statements: list[str] = field(default_factory=list)  # "validate": VALIDATE CONSTRAINT statements
    phases: list[Phase | None] = field(default_factory=list)  # "split": each operation's phase
    recipe: Recipe | None = None  # "recipe": MS106 / MS108 / MS109 (engine/recipes.py)


def plan_fixes(review: Review, only: set[str] | None = None, config: Config | None = None,
               safer: bool = False) -> FixPlan:
    """`only`: labels of the migrations to fix (default: all); parts still chain after every one.
    `config`: the project's, which places concurrent builds in phases as the review does; `safer`:
    write django-pg-migration-tools' operations (concurrent.uses_pg_migration_tools)."""
    context = ConcurrentContext.of(review, config or Config(), safer)
    chosen = [verdict for verdict in review.migrations if only is None or verdict.file.label in only]
    # A part's number counts the parts before it in its app's chain, known once every fix is chosen:
    # so the fixes are chosen with draft names first, then again (the same fixes) with the numbers.
    context = replace(context, names=numbered(review, choose_all(review, chosen, context, FixPlan())))
    plan = FixPlan()
    fixes = choose_all(review, chosen, context, plan)
    anchors = chain_anchors(review, fixes)
    for fix in fixes:
        generate(fix, anchors, context.names, plan)
    fixed = {(f.verdict.file.label, i) for f in fixes if f.kind in ("index", "recipe") for i in f.indices}
    for verdict in chosen:
        plan.left += [f"{verdict.file.path}:{f.line} {f.rule} {f.message}" for f in verdict.findings
                      if f.blocks and f.suggestion is None
                      and (verdict.file.label, f.operation_index) not in fixed]
    return plan


def choose_all(review: Review, chosen: list[MigrationVerdict], context: ConcurrentContext,
               plan: FixPlan) -> list[_Fix]:
    return [fix for verdict in chosen
            for fix in choose(verdict, plan_recipe(verdict, apply_local(verdict, plan), review, context.names),
                              context)]


def apply_local(verdict: MigrationVerdict, plan: FixPlan) -> str:
    source = verdict.file.source
    # bottom-up, so that earlier line numbers stay right; overlapping spans are left for a second run
    taken: list[tuple[int, int]] = []
    for finding in sorted((f for f in verdict.findings if f.suggestion is not None),
                          key=lambda f: f.line or 0, reverse=True):
        start, end = finding.line or 0, finding.end_line or finding.line or 0
        if any(start <= e and s <= end for s, e in taken):
            continue
        source = apply_suggestion(source, start, end, finding.suggestion)
        taken.append((start, end))
        plan.done.append(f"{verdict.file.path}:{start} {finding.rule}: rewritten")
    if taken:
        plan.files[verdict.file.path] = source
    return source


def choose(verdict: MigrationVerdict, recipe: Recipe, context: ConcurrentContext) -> list[_Fix]:
    """The recipe's fix first: the others build on the source it rewrote and write the file last."""
    name, source, phases = verdict.file.name, recipe.source, recipe.phases
    fixes = [_Fix(verdict, source, "recipe", [(p.phase, p.name) for p in recipe.parts], recipe.fixed,
                  recipe=recipe)]
    if recipe.moved:
        return fixes
    if recipe.needs_parts(verdict):
        if any(p is None for p in phases):
            return fixes
        parts = [(p, later_part_name(name, p, context.names)) for p in split_phases(phases)]
        return fixes + [_Fix(verdict, source, "split", parts, phases=phases)]
    others = (index_fix(verdict, source, context), validate_fix(verdict, source, context.names))
    return fixes + [fix for fix in others if fix]


def index_fix(verdict: MigrationVerdict, source: str, context: ConcurrentContext) -> _Fix | None:
    """MS101: indexes built concurrently, in migrations of their own (engine/concurrent.py)."""
    rewrite = plan_concurrent(context, verdict, source)
    if rewrite is None:
        return None
    return _Fix(verdict, source, "index", rewrite.appended(), rewrite.indices, rewrite=rewrite)


def validate_fix(verdict: MigrationVerdict, source: str, names: PartNames) -> _Fix | None:
    """MS107 rewritten NOT VALID (a local suggestion): the validation follows, deferred."""
    operations = sorted({f.operation_index for f in verdict.findings
                         if f.rule == "MS107" and f.suggestion is not None and f.operation_index is not None})
    statements = [sql for i in operations for sql in validate_statements(verdict.operations[i])]
    if not statements:
        return None
    name = names(verdict.file.name, "validate_constraints")
    return _Fix(verdict, source, "validate", [(Phase.DEFERRED, name)], statements=statements)


def chains(fixes: list[_Fix]) -> dict[str, list[str]]:
    """App -> the names of the parts added to its chain, in chain order: by phase, then as chosen."""
    by_app: dict[str, list[tuple[Phase, str]]] = {}
    for fix in fixes:
        by_app.setdefault(fix.verdict.file.app_label, []).extend(fix.appended)
    return {app: [name for _phase, name in sorted(parts, key=lambda part: part[0].order)]
            for app, parts in by_app.items()}


def numbered(review: Review, fixes: list[_Fix]) -> PartNames:
    """Each part numbered after the app's migrations of this review, in chain order, so that no two
    of the app's migrations share a number: a number or a name given to `migrate` matches one."""
    names: dict[str, str] = {}
    for app, drafts in chains(fixes).items():
        last = max(migration_number(m.file.name) for m in review.migrations if m.file.app_label == app)
        names.update((draft, renumbered(draft, last + offset)) for offset, draft in enumerate(drafts, start=1))
    return PartNames(names)


def chain_anchors(review: Review, fixes: list[_Fix]) -> dict[str, str]:
    """Part name -> the migration it depends on: per app, after the app's leaf, in phase order."""
    anchors: dict[str, str] = {}
    for app, names in chains(fixes).items():
        previous = app_leaf(review, app)
        for name in names:
            if previous is not None:
                anchors[name] = previous
            previous = name
    return anchors


def generate(fix: _Fix, anchors: dict[str, str], names: PartNames, plan: FixPlan) -> None:
    file = fix.verdict.file
    try:
        if fix.kind == "split":
            parts = split_migration(fix.source, file.path, file.app_label, file.name, fix.phases,
                                    anchors={phase: anchors.get(name, file.name) for phase, name in fix.appended},
                                    names=names)
            plan.done.append(f"{file.path}: split into " + ", ".join(
                f"{part.name} ({part.phase.value})" for part in parts))
        elif fix.kind == "recipe":
            plan.files.update(fix.recipe.files(file, anchors))
            plan.done += fix.recipe.done
            if fix.recipe.moved and fix.recipe.needs_parts(fix.verdict):
                plan.left.append(f"{file.path}: still mixes phases: run `migration-safe fix` again on the result")
            return
        elif fix.kind == "validate":
            name = fix.appended[0][1]
            path = f"{file.path.rsplit('/', 1)[0]}/{name}.py"
            plan.files[path] = validate_migration(file.app_label, anchors.get(name, file.name), fix.statements)
            plan.done.append(f"{file.path}: constraints added NOT VALID, validated in {path}")
            return
        else:
            parts = write_concurrent(fix.rewrite, anchors)
            plan.done.append(f"{file.path}: indexes built concurrently in " + ", ".join(
                part.path for part in parts if part.path != file.path or fix.rewrite.whole))
    except (SplitError, ValueError):
        plan.left.append(f"{file.path}: could not be rewritten automatically")
        return
    for part in parts:
        plan.files[part.path] = part.source


def app_leaf(review: Review, app: str) -> str | None:
    """The app's one migration of this review that no other one of it depends on."""
    names = {m.file.name for m in review.migrations if m.file.app_label == app}
    depended = {d[1] for m in review.migrations if m.file.app_label == app for d in m.file.dependencies
                if d[0] == app}
    leaves = sorted(names - depended)
    return leaves[0] if len(leaves) == 1 else None
