"""Review -> the files that fix it: local rewrites, then one migration per phase where needed."""
from __future__ import annotations

from dataclasses import dataclass, field

from migration_safe.engine.fixes import apply_suggestion
from migration_safe.engine.model import MigrationVerdict, Review
from migration_safe.engine.split import SplitError, chain_end, split_migration


@dataclass
class FixPlan:
    files: dict[str, str] = field(default_factory=dict)  # repo-relative path -> new content
    done: list[str] = field(default_factory=list)  # what was fixed, for people
    left: list[str] = field(default_factory=list)  # blocking findings with no automatic fix


def plan_fixes(review: Review) -> FixPlan:
    plan = FixPlan()
    for verdict in review.migrations:
        source = apply_local(verdict, plan)
        if verdict.needs_split:
            split(verdict, review, source, plan)
        plan.left += [f"{verdict.file.path}:{f.line} {f.rule} {f.message}" for f in verdict.findings
                      if f.blocks and f.suggestion is None]
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


def split(verdict: MigrationVerdict, review: Review, source: str, plan: FixPlan) -> None:
    app = verdict.file.app_label
    chain = {m.file.name: [d[1] for d in m.file.dependencies if d[0] == app]
             for m in review.migrations if m.file.app_label == app}
    phases = [op.phase for op in verdict.operations]
    if any(phase is None for phase in phases):
        return
    try:
        parts = split_migration(source, verdict.file.path, app, verdict.file.name, phases,
                                after=chain_end(verdict.file.name, chain))
    except (SplitError, ValueError):
        plan.left.append(f"{verdict.file.path}: mixes phases and could not be split automatically")
        return
    for part in parts:
        plan.files[part.path] = part.source
    plan.done.append(f"{verdict.file.path}: split into " + ", ".join(
        f"{part.name} ({part.phase.value})" for part in parts))
