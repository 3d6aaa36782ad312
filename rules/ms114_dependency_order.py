"""MS114: a migration depends on one of the same change that runs in a later phase."""
from migration_safe.engine.model import Phase, Severity

from .base import Rule
from .context import MigrationContext


def check(ctx: MigrationContext):
    if ctx.phase is None:
        return
    for app_label, name in ctx.migration.dependencies:
        label = f"{app_label}.{name}"
        dependency = ctx.phases.get(label)
        if label not in ctx.files or dependency is None or dependency.order <= ctx.phase.order:
            continue
        severity = Severity.ERROR if ctx.phase is Phase.PRE_DEPLOY else Severity.WARNING
        yield ctx.finding(RULE, None, f"This {ctx.phase.value} migration depends on {label}, which is "
                          f"{dependency.value}: it cannot run before that dependency has run.",
                          severity=severity)


RULE = Rule(
    id="MS114", name="dependency-phase-order", title="Depends on a migration of a later phase",
    severity=Severity.ERROR,
    why="Django runs dependencies first. A pre-deploy migration that depends on a post-deploy or "
        "deferred one of the same change cannot run before the deploy, so the pipeline either stalls or "
        "runs the later-phase work too early.",
    safe_alternative="Reorder: make the earlier-phase migration depend only on migrations of the same or "
                     "an earlier phase, or ship the later-phase dependency in an earlier release.",
    example="dependencies = [(\"shop\", \"0007_add_sku\")]  # not the deferred 0008_backfill_sku",
    check=check,
)
