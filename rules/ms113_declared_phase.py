"""MS113: the phase declared in the file contradicts what the operations need."""
from migration_safe.engine.model import Severity
from migration_safe.engine.review.phases import refuse_phase, touches_large

from .base import Rule
from .context import MigrationContext


def check(ctx: MigrationContext):
    declared = ctx.migration.declared_phase
    if declared is None:
        return
    reason = refuse_phase(ctx.phase, declared.phase, touches_large(ctx.operations, ctx.config))
    if reason:
        computed = ctx.phase.value if ctx.phase else "a split"
        finding = ctx.finding(RULE, None, f"Declared {declared.phase.value} ({declared.source}), but the "
                              f"operations need {computed}: {reason}.")
        finding.line = declared.line
        yield finding


RULE = Rule(
    id="MS113", name="declared-phase-contradiction", title="Declared phase contradicts the operations",
    severity=Severity.ERROR,
    why="The deploy pipeline runs the migration in the phase it declares (`deploy_phase`, syzygy "
        "`stage`, safemigrate `safe`, `is_post_deployment`). Declared in a phase its operations are "
        "not safe in, it breaks the old or the new code.",
    safe_alternative="Declare the phase migration-safe computes, or split the migration so that each "
                     "part has one phase.",
    example="class Migration(migrations.Migration):\n    deploy_phase = \"post-deploy\"",
    check=check,
)
