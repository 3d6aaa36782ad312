"""Review -> the files that fix it: local rewrites, multi-step recipes (engine/recipes.py), concurrent
indexes, one migration per phase.

Parts that a fix adds go to the end of their app's chain, ordered by phase
(pre-deploy, post-deploy, deferred), so the app keeps a single leaf and no
part depends on one of a later phase.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from migration_safe.config import Config
from migration_safe.engine.concurrent import ConcurrentContext, ConcurrentRewrite, plan_concurrent, write_concurrent
from migration_safe.engine.fixes import apply_suggestion, validate_migration, validate_statements
from migration_safe.engine.model import MigrationVerdict, Phase, Review
from migration_safe.engine.recipes import Recipe, plan_recipe
from migration_safe.engine.split import SplitError, chain_end, later_part_name, split_migration, split_phases


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
    plan = FixPlan()
    context = ConcurrentContext.of(review, config or Config(), safer)
    chosen = [verdict for verdict in review.migrations if only is None or verdict.file.label in only]
    fixes = [fix for verdict in chosen
             for fix in choose(verdict, plan_recipe(verdict, apply_local(verdict, plan), review), context)]
    anchors = chain_anchors(review, fixes)
    for fix in fixes:
        generate(fix, anchors, plan)
    fixed = {(f.verdict.file.label, i) for f in fixes if f.kind in ("index", "recipe") for i in f.indices}
    for verdict in chosen:
        plan.left += [f"{verdict.file.path}:{f.line} {f.rule} {f.message}" for f in verdict.findings
                      if f.blocks and f.suggestion is None
                      and (verdict.file.label, f.operation_index) not in fixed]
    return plan


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
        parts = [(p, later_part_name(name, p)) for p in split_phases(phases)]
        return fixes + [_Fix(verdict, source, "split", parts, phases=phases)]
    return fixes + [fix for fix in (index_fix(verdict, source, context), validate_fix(verdict, source)) if fix]


def index_fix(verdict: MigrationVerdict, source: str, context: ConcurrentContext) -> _Fix | None:
    """MS101: indexes built concurrently, in migrations of their own (engine/concurrent.py)."""
    rewrite = plan_concurrent(context, verdict, source)
    if rewrite is None:
        return None
    return _Fix(verdict, source, "index", rewrite.appended(), rewrite.indices, rewrite=rewrite)


def validate_fix(verdict: MigrationVerdict, source: str) -> _Fix | None:
    """MS107 rewritten NOT VALID (a local suggestion): the validation follows, deferred."""
    operations = sorted({f.operation_index for f in verdict.findings
                         if f.rule == "MS107" and f.suggestion is not None and f.operation_index is not None})
    statements = [sql for i in operations for sql in validate_statements(verdict.operations[i])]
    if not statements:
        return None
    return _Fix(verdict, source, "validate", [(Phase.DEFERRED, f"{verdict.file.name}_validate_constraints")],
                statements=statements)


def chain_anchors(review: Review, fixes: list[_Fix]) -> dict[str, str]:
    """Part name -> the migration it depends on: per app, after the app's leaf, in phase order."""
    anchors: dict[str, str] = {}
    by_app: dict[str, list[tuple[Phase, str]]] = {}
    for fix in fixes:
        by_app.setdefault(fix.verdict.file.app_label, []).extend(fix.appended)
    for app, parts in by_app.items():
        previous = app_leaf(review, app)
        for _phase, name in sorted(parts, key=lambda part: part[0].order):
            if previous is not None:
                anchors[name] = previous
            previous = name
    return anchors


def generate(fix: _Fix, anchors: dict[str, str], plan: FixPlan) -> None:
    file = fix.verdict.file
    try:
        if fix.kind == "split":
            parts = split_migration(fix.source, file.path, file.app_label, file.name,
                                    fix.phases,
                                    anchors={phase: anchors.get(name, file.name) for phase, name in fix.appended})
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


def chain_end_of(verdict: MigrationVerdict, review: Review) -> str | None:
    app = verdict.file.app_label
    chain = {m.file.name: [d[1] for d in m.file.dependencies if d[0] == app]
             for m in review.migrations if m.file.app_label == app}
    return chain_end(verdict.file.name, chain)
