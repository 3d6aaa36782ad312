"""Review -> the files that fix it: local rewrites, multi-step recipes (engine/fix/recipes.py), concurrent
indexes, one migration per phase, models.py in step with the state (engine/fix/models_rewrite.py), and a
`deploy_phase` declared in every migration reviewed. Every blocking finding left says why.

Parts that a fix adds go to the end of their app's chain, ordered by phase
(pre-deploy, post-deploy, deferred), so the app keeps a single leaf and no
part depends on one of a later phase. They are numbered in that order after the
app's last migration, as makemigrations numbers (split.PartNames).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from migration_safe.config import Config
from migration_safe.engine.fix.concurrent_index import (
    ConcurrentContext, ConcurrentRewrite, outside_transaction, plan_concurrent, write_concurrent,
)
from migration_safe.engine.fix.local import apply_suggestion, validate_migration, validate_statements
from migration_safe.engine.fix.models_rewrite import ModelChange, ProjectFiles, apply_model_changes
from migration_safe.engine.fix.recipes import Recipe, app_dir, default_code, field_of, plan_recipe
from migration_safe.engine.fix.split import (
    PartNames, SplitError, declare_phase, later_part_name, migration_number, renumbered, replace_dependency,
    split_migration,
    split_phases,
)
from migration_safe.engine.model import Finding, MigrationVerdict, Phase, Review

# Why a blocking finding of each rule is left when no fix said more.
REASONS = {
    "MS001": "the file does not parse: fix the Python first",
    "MS002": "its SQL could not be produced, and every rewrite is written from the SQL: fix what the "
             "message says, then run `migration-safe fix` again",
    "MS004": "Django or PostgreSQL refused the operation: fix the error first",
    "MS005": "the app has several leaves: the order of a merge (`makemigrations --merge`) is yours to choose",
    "MS006": "the migration graph does not load: fix the dependencies first",
    "MS101": "no concurrent form of this operation is written automatically",
    "MS102": "the concurrent operation could not be moved to a migration of its own",
    "MS103": "the field has no constant default to keep in the database (a callable or none, or Django "
             "before 5.0): give it `db_default=`, or add it `null=True` and fill it later",
    "MS104": "a volatile default is computed per row: add the column nullable, fill it in batches, then "
             "set NOT NULL (expand and contract), which needs your code",
    "MS105": "a type change rewrites the table: expand and contract (new column, writes to both, "
             "backfill, switch reads) needs your code",
    "MS106": "the operation does more than SET NOT NULL (or than fill a default and SET NOT NULL), or "
             "PostgreSQL before 12 cannot use a check",
    "MS107": "the constraint has no name to validate it by, or its statement adds several at once",
    "MS108": "renames that also rename many-to-many tables or columns, and AlterModelTable (whose point is "
             "the new name), need expand and contract",
    "MS109": "the column's removal is more than one DROP COLUMN, or its model is changed again",
    "MS112": "which of the two steps moves to a migration of its own is your choice",
    "MS113": "the phase is declared in another tool's vocabulary, or the migration has no single phase",
    "MS114": "which migration moves in the chain is your choice: make the earlier-phase one depend only "
             "on migrations of the same or an earlier phase",
    "MS117": "the statement rewrites the table: expand and contract (a new column or table, filled in "
             "batches, the code switched over) needs your code",
    "MS118": "the rows change under the schema change's lock in a form that cannot be separated "
             "mechanically (only a RunSQL written as literals, schema first, and Django's NOT NULL with a "
             "constant default are)",
    "MS120": "each existing row needs a value of its own: add the column nullable, fill it per row, then "
             "add the unique constraint, which needs your code",
}


@dataclass
class FixPlan:
    files: dict[str, str] = field(default_factory=dict)  # repo-relative path -> new content
    done: list[str] = field(default_factory=list)  # what was fixed, for people
    left: list[str] = field(default_factory=list)  # what is left for people, each with why
    notes: list[str] = field(default_factory=list)  # how the parts added are ordered, and what follows
    declared: list[str] = field(default_factory=list)  # paths whose only change is a new deploy_phase line

    @property
    def fixes_something(self) -> bool:
        """More than declaring phases the review already knows: worth a commit on someone's branch."""
        return bool(set(self.files) - set(self.declared))


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
    recipe: Recipe | None = None  # "recipe": MS106 / MS108 / MS109 (engine/fix/recipes.py)


def plan_fixes(review: Review, only: set[str] | None = None, config: Config | None = None,
               safer: bool = False, tree: ProjectFiles | None = None) -> FixPlan:
    """`only`: labels of the migrations to fix (default: all); parts still chain after every one.
    `config`: the project's, which places concurrent builds in phases as the review does; `safer`:
    write django-pg-migration-tools' operations (concurrent.uses_pg_migration_tools); `tree`: the
    project's files, for models.py (without it, `left` says what models.py must say)."""
    context = ConcurrentContext.of(review, config or Config(), safer)
    wanted = [verdict for verdict in review.migrations if only is None or verdict.file.label in only]
    chosen = [verdict for verdict in wanted if one_database(verdict)]
    # A part's number counts the parts before it in its app's chain, known once every fix is chosen:
    # so the fixes are chosen with draft names first, then again (the same fixes) with the numbers.
    context = replace(context, names=numbered(review, choose_all(review, chosen, context, _Work())))
    plan, work = FixPlan(), _Work()
    fixes = choose_all(review, chosen, context, work)
    anchors, repoint = chain_anchors(review, fixes, work)
    for fix in fixes:
        generate(fix, anchors, context.names, plan, work)
    plan.files = {**work.files, **plan.files}  # a recipe or an index fix wrote the local rewrites on
    repoint_dependencies(review, repoint, plan)
    plan.done[:0] = work.done
    edit = apply_model_changes(work.models, tree)
    plan.files.update(edit.files)
    plan.done += edit.done
    plan.left += work.left + edit.manual
    declare_phases(chosen, plan, work)
    settle_order(review, work, repoint)
    for verdict in chosen:
        label = verdict.file.label
        plan.left += [left_line(verdict, f, work.reasons) for f in verdict.findings
                      if f.blocks and (label, f.rule, f.line) not in work.applied
                      and (label, f.operation_index) not in work.fixed and (label, f.rule) not in work.fixed_rules]
    plan.left += [several_databases_line(verdict) for verdict in wanted if not one_database(verdict)]
    plan.notes += ordering_notes(fixes, anchors)
    return plan


def one_database(verdict: MigrationVerdict) -> bool:
    """Whether the fixes can read the migration as they were written to: one operation per position.
    Where routers send operations to several databases, an operation is listed once per alias it runs
    on, and the rewrites, which address operations by position, would rewrite the wrong one or twice."""
    return [op.index for op in verdict.operations] == list(range(len(verdict.operations)))


def several_databases_line(verdict: MigrationVerdict) -> str:
    aliases = ", ".join(part.alias for part in verdict.aliases) or "several"
    return (f"{verdict.file.path}:{verdict.file.class_line} runs on several databases ({aliases}): "
            "`fix` does not rewrite such migrations yet; follow each finding's safe alternative by hand")


@dataclass
class _Work:
    """What the fixes found on their way, besides the files."""

    files: dict[str, str] = field(default_factory=dict)  # the local rewrites
    done: list[str] = field(default_factory=list)
    models: list[ModelChange] = field(default_factory=list)
    reasons: dict[tuple[str, int | None], str] = field(default_factory=dict)  # (label, operation) -> why left
    fixed: set[tuple[str, int | None]] = field(default_factory=set)  # (label, operation) made safe
    fixed_rules: set[tuple[str, str]] = field(default_factory=set)  # (label, rule) settled for the file
    phases: dict[str, Phase] = field(default_factory=dict)  # path -> the phase a rewritten file has
    split: set[str] = field(default_factory=set)  # paths split into parts, each declaring its phase
    left: list[str] = field(default_factory=list)
    applied: set[tuple[str, str, int | None]] = field(default_factory=set)  # (label, rule, line) suggested


def left_line(verdict: MigrationVerdict, finding: Finding, reasons: dict[tuple[str, int | None], str]) -> str:
    reason = reasons.get((verdict.file.label, finding.operation_index)) or REASONS.get(finding.rule) \
        or f"no mechanical fix for {finding.rule}: {finding.safe_alternative}"
    return f"{verdict.file.path}:{finding.line or verdict.file.class_line} {finding.rule}: {reason}"


def choose_all(review: Review, chosen: list[MigrationVerdict], context: ConcurrentContext,
               work: _Work) -> list[_Fix]:
    return [fix for verdict in chosen
            for fix in choose(verdict, plan_recipe(verdict, apply_local(verdict, work), review, context.names),
                              context, work)]


def apply_local(verdict: MigrationVerdict, work: _Work) -> str:
    source = verdict.file.source
    # bottom-up, so that earlier line numbers stay right; overlapping spans are left for a second run
    taken: list[tuple[int, int]] = []
    for finding in sorted((f for f in verdict.findings if f.suggestion is not None),
                          key=lambda f: f.line or 0, reverse=True):
        start, end = finding.line or 0, finding.end_line or finding.line or 0
        if any(start <= e and s <= end for s, e in taken):
            work.reasons[(verdict.file.label, finding.operation_index)] = \
                "another rewrite took the same lines: run `migration-safe fix` again on the result"
            continue
        source = apply_suggestion(source, start, end, finding.suggestion)
        taken.append((start, end))
        work.applied.add((verdict.file.label, finding.rule, finding.line))
        work.done.append(f"{verdict.file.path}:{start} {finding.rule}: rewritten")
        if finding.rule == "MS103":
            work.models += db_default_model(verdict, finding)
    if taken:
        work.files[verdict.file.path] = source
    return source


def db_default_model(verdict: MigrationVerdict, finding: Finding) -> list[ModelChange]:
    """The field's `default=` became `db_default=` in the migration: so in the model."""
    parsed = verdict.operations[finding.operation_index].parsed if finding.operation_index is not None else None
    named = field_of(parsed) if parsed else None
    code = default_code(parsed) if parsed else None
    if named is None or code is None:
        return []
    return [ModelChange(app_dir(verdict.file), named[0], named[1], "db_default", code, "default")]


def choose(verdict: MigrationVerdict, recipe: Recipe, context: ConcurrentContext, work: _Work) -> list[_Fix]:
    """The recipe's fix first: the others build on the source it rewrote and write the file last."""
    name, source, phases = verdict.file.name, recipe.source, recipe.phases
    label = verdict.file.label
    work.models += recipe.models
    work.reasons.update({(label, index): why for index, why in recipe.declined.items()})
    work.fixed.update((label, index) for index in recipe.fixed)
    fixes = [_Fix(verdict, source, "recipe", [(p.phase, p.name) for p in recipe.parts], recipe.fixed,
                  recipe=recipe)]
    later = "the migration is rewritten or split first: run `migration-safe fix` again on the result"
    if recipe.moved:
        work.reasons.update({(label, f.operation_index): later for f in verdict.findings
                             if (label, f.operation_index) not in work.reasons})
        return fixes
    if recipe.needs_parts(verdict):
        if any(p is None for p in phases):
            work.left.append(f"{verdict.file.path}: mixes phases, and an operation's phase is unknown (its "
                             "SQL could not be produced), so it cannot be split automatically")
            return fixes
        parts = [(p, later_part_name(name, p, context.names)) for p in split_phases(phases)]
        work.phases[verdict.file.path] = min(phases, key=lambda p: p.order)
        work.reasons.update({(label, f.operation_index): later for f in verdict.findings
                             if f.rule in ("MS101", "MS102", "MS107") and (label, f.operation_index)
                             not in work.reasons})
        return fixes + [_Fix(verdict, source, "split", parts, phases=phases)]
    if recipe.source != verdict.file.source and None not in phases:
        work.phases[verdict.file.path] = max(phases, key=lambda p: p.order)
    others = (index_fix(verdict, source, context, work), validate_fix(verdict, source, context.names))
    return fixes + [fix for fix in others if fix]


def index_fix(verdict: MigrationVerdict, source: str, context: ConcurrentContext, work: _Work) -> _Fix | None:
    """MS101 / MS102: indexes built concurrently, in migrations of their own (engine/fix/concurrent_index.py)."""
    rewrite, declined = plan_concurrent(context, verdict, source)
    label = verdict.file.label
    ms102 = {(label, f.operation_index) for f in verdict.findings if f.rule == "MS102"}
    work.reasons.update({(label, index): why for index, why in declined.items()})
    if rewrite is None:
        return None
    work.fixed.update((label, index) for index in rewrite.indices)
    work.phases[verdict.file.path] = rewrite.groups()[0][0] if rewrite.whole else rewrite.kept_phase()
    if any(index in outside_transaction(verdict) or (label, index) in ms102 for index in rewrite.indices):
        # the sandbox failed on the transaction these operations now run without: it gets the SQL next time
        work.fixed_rules.add((label, "MS002"))
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
    return {app: [name for _phase, name in parts] for app, parts in chains_with_phases(fixes).items()}


def chains_with_phases(fixes: list[_Fix]) -> dict[str, list[tuple[Phase, str]]]:
    by_app: dict[str, list[tuple[Phase, str]]] = {}
    for fix in fixes:
        by_app.setdefault(fix.verdict.file.app_label, []).extend(fix.appended)
    return {app: sorted(parts, key=lambda part: part[0].order) for app, parts in by_app.items()}


def numbered(review: Review, fixes: list[_Fix]) -> PartNames:
    """Each part numbered after the app's migrations of this review, in chain order, so that no two
    of the app's migrations share a number: a number or a name given to `migrate` matches one."""
    names: dict[str, str] = {}
    for app, drafts in chains(fixes).items():
        last = max(migration_number(m.file.name) for m in review.migrations if m.file.app_label == app)
        names.update((draft, renumbered(draft, last + offset)) for offset, draft in enumerate(drafts, start=1))
    return PartNames(names)


def chain_anchors(review: Review, fixes: list[_Fix],
                  work: _Work) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """(part name -> the migration it depends on; migration -> (dependency, the part in its place)).

    Per app, the parts go in phase order after the app's leaf; where the change's chain is linear,
    a part goes instead right after the last migration of its phase or an earlier one (never before
    the migration it comes from): a later-phase migration must not come before it (MS114)."""
    anchors: dict[str, str] = {}
    repoint: dict[str, tuple[str, str]] = {}
    origins = {name: fix.verdict.file.name for fix in fixes for _phase, name in fix.appended}
    for app, parts in chains_with_phases(fixes).items():
        chain = linear_chain(review, app)
        leaf = app_leaf(review, app)
        if chain is None:
            for (_phase, name), previous in zip(parts, [leaf, *[n for _p, n in parts]]):
                if previous is not None:
                    anchors[name] = previous
            continue
        phases = [work.phases.get(v.file.path) or v.phase for v in chain]
        names = [v.file.name for v in chain]
        slots: dict[int, list[str]] = {}
        floor = 0
        for phase, name in parts:
            fits = [i for i, p in enumerate(phases) if p is not None and p.order <= phase.order]
            floor = max([floor, names.index(origins[name]) if origins[name] in names else len(chain) - 1,
                         *fits[-1:]])
            slots.setdefault(floor, []).append(name)
        for position, inserted in slots.items():
            for name, previous in zip(inserted, [names[position], *inserted]):
                anchors[name] = previous
            if position + 1 < len(chain):
                repoint[names[position + 1]] = (names[position], inserted[-1])
    return anchors, repoint


def linear_chain(review: Review, app: str) -> list[MigrationVerdict] | None:
    """The app's migrations of this review in dependency order, when each depends on the one before."""
    mine = {m.file.name: m for m in review.migrations if m.file.app_label == app}
    follows = {name: [d[1] for d in m.file.dependencies if d[0] == app and d[1] in mine]
               for name, m in mine.items()}
    firsts = [name for name, deps in follows.items() if not deps]
    chain = firsts[:1]
    while len(firsts) == 1:
        after = [name for name, deps in follows.items() if deps == [chain[-1]]]
        if len(after) != 1:
            break
        chain.append(after[0])
    return [mine[name] for name in chain] if len(chain) == len(mine) and len(firsts) == 1 else None


def repoint_dependencies(review: Review, repoint: dict[str, tuple[str, str]], plan: FixPlan) -> None:
    for verdict in review.migrations:
        if verdict.file.name not in repoint:
            continue
        old, new = repoint[verdict.file.name]
        source = plan.files.get(verdict.file.path, verdict.file.source)
        rewritten = replace_dependency(source, verdict.file.app_label, old, new)
        if rewritten is None:
            plan.left.append(f"{verdict.file.path}: should depend on {new} in place of {old}, which its "
                             "dependencies do not say as a plain list")
            continue
        plan.files[verdict.file.path] = rewritten
        plan.done.append(f"{verdict.file.path}: depends on {new} (in place of {old}), so that no migration "
                         "comes after one of a later phase")


def generate(fix: _Fix, anchors: dict[str, str], names: PartNames, plan: FixPlan, work: _Work) -> None:
    file = fix.verdict.file
    try:
        if fix.kind == "split":
            parts = split_migration(fix.source, file.path, file.app_label, file.name, fix.phases,
                                    anchors={phase: anchors.get(name, file.name) for phase, name in fix.appended},
                                    names=names)
            work.split.add(file.path)
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
            plan.done.append(f"{file.path}: indexes built concurrently, with atomic = False, in " + ", ".join(
                part.path for part in parts if part.path != file.path or fix.rewrite.whole))
    except (SplitError, ValueError):
        plan.left.append(f"{file.path}: could not be rewritten automatically (its `operations` list is "
                         "not a plain list in the Migration class)")
        return
    for part in parts:
        plan.files[part.path] = part.source


def settle_order(review: Review, work: _Work, repoint: dict[str, tuple[str, str]]) -> None:
    """MS114 is settled where, once rewritten, no dependency of the change runs in a later phase."""
    phases = {m.file.key: work.phases.get(m.file.path) or m.phase for m in review.migrations}
    for verdict in review.migrations:
        mine = phases[verdict.file.key]
        if mine is None or verdict.file.name in repoint:
            continue
        later = [key for key in verdict.file.dependencies if phases.get(tuple(key)) is not None
                 and phases[tuple(key)].order > mine.order]
        if not later:
            work.fixed_rules.add((verdict.file.label, "MS114"))


def declare_phases(chosen: list[MigrationVerdict], plan: FixPlan, work: _Work) -> None:
    """`deploy_phase = "…"` in every migration reviewed, so that the deploy never has to guess: the
    phase the review gave it, or the one its rewrite has. A declaration that contradicts the
    operations (MS113) is corrected; another tool's vocabulary is left as it is."""
    for verdict in chosen:
        file = verdict.file
        declared = file.declared_phase
        if declared is not None and declared.source != "deploy_phase":
            continue
        rewritten = work.phases.get(file.path)
        # a phase read from the file alone (no SQL) may be wrong: the review with SQL declares it
        phase = rewritten or (None if verdict.needs_split or verdict.sql_status != "ok" else verdict.phase)
        source = plan.files.get(file.path, file.source)
        if phase is None or file.path in work.split:
            continue
        if rewritten is not None:  # what the declaration contradicted is gone
            work.fixed_rules.add((file.label, "MS113"))
        new = declare_phase(source, phase)
        if new is None or new == source:
            continue
        if declared is None and file.path not in plan.files:
            plan.declared.append(file.path)
        plan.files[file.path] = new
        if declared is not None and declared.phase is not phase:
            work.fixed_rules.add((file.label, "MS113"))
            plan.done.append(f"{file.path}: declares deploy_phase = \"{phase.value}\" "
                             f"(it said {declared.phase.value})")
        elif declared is None:
            plan.done.append(f"{file.path}: declares deploy_phase = \"{phase.value}\"")


def ordering_notes(fixes: list[_Fix], anchors: dict[str, str]) -> list[str]:
    """Where a part later than pre-deploy ends the app's chain: what a migration added after it does."""
    notes = []
    depended = set(anchors.values())
    for app, parts in chains_with_phases(fixes).items():
        ends = [(phase, name) for phase, name in parts if name not in depended]
        if len(ends) != 1 or ends[0][0] is Phase.PRE_DEPLOY:
            continue
        phase, last = ends[0]
        notes.append(f"{app}: {last} ({phase.value}) is now the app's last migration. A migration you add to "
                     f"{app} after this depends on it and so runs {phase.value} too (MS114 blocks it if it "
                     "must run earlier): make such a migration depend on the app's last pre-deploy migration, "
                     "and the one that depended on that depend on it")
    return notes


def app_leaf(review: Review, app: str) -> str | None:
    """The app's one migration of this review that no other one of it depends on."""
    names = {m.file.name for m in review.migrations if m.file.app_label == app}
    depended = {d[1] for m in review.migrations if m.file.app_label == app for d in m.file.dependencies
                if d[0] == app}
    leaves = sorted(names - depended)
    return leaves[0] if len(leaves) == 1 else None
