"""What a run of one phase applies and refuses, decided before anything changes.

Order is enforced, not assumed: a migration runs only when each of its dependencies is applied
or runs earlier in the same run. Anything refused refuses the whole run, so that `--plan` and
the real run agree and a half-planned phase never starts.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from migration_safe.engine.model import Phase


@dataclass(frozen=True)
class Pending:
    """An unapplied migration, in Django's plan order."""

    label: str  # "app.0007_name"
    phase: Phase | None  # None: it could not be settled (see `problem`)
    source: str  # where the phase comes from: "deploy_phase", …, "operations"
    dependencies: tuple[str, ...] = ()  # labels of the migrations it depends on
    problem: str | None = None


@dataclass(frozen=True)
class Refusal:
    label: str
    reason: str


@dataclass
class Plan:
    phase: Phase
    run: list[Pending] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    later: list[Pending] = field(default_factory=list)  # unapplied, of another phase: not this run's

    @property
    def runnable(self) -> bool:
        return not self.refused


def phases_run_by(phase: Phase) -> set[Phase]:
    # Pre-deploy work is safe at any time: after the deploy it runs first, not never.
    return {Phase.PRE_DEPLOY, Phase.POST_DEPLOY} if phase is Phase.POST_DEPLOY else {phase}


def make_plan(phase: Phase, pending: list[Pending]) -> Plan:
    """`pending`: every unapplied migration in plan order (their dependencies are applied or pending)."""
    plan = Plan(phase)
    by_label = {item.label: item for item in pending}
    runs = phases_run_by(phase)
    will_run: set[str] = set()
    refused: set[str] = set()
    for item in pending:
        if item.phase is None:
            plan.refused.append(Refusal(item.label, item.problem or "its phase is not known"))
            refused.add(item.label)
        elif item.phase not in runs:
            plan.later.append(item)
        else:
            blocker = next((by_label[d] for d in item.dependencies if d in by_label and d not in will_run),
                           None)
            if blocker is None:
                plan.run.append(item)
                will_run.add(item.label)
            else:
                plan.refused.append(Refusal(item.label, blocked(item, blocker, blocker.label in refused)))
                refused.add(item.label)
    return plan


def blocked(item: Pending, dependency: Pending, dependency_refused: bool) -> str:
    mine = f"this {item.phase.value} migration depends on {dependency.label}"
    if dependency_refused:
        return f"{mine}, which is refused"
    if dependency.phase is None:
        return f"{mine}, whose phase is not known"
    if dependency.phase.order > item.phase.order:
        return (f"{mine} ({dependency.phase.value}), which is not applied yet: run `migrate_phase "
                f"{dependency.phase.value}` first, or ship {item.label} in a later release")
    return (f"{mine} ({dependency.phase.value}), which is not applied yet: run `migrate_phase "
            f"{dependency.phase.value}` first")
