"""MS005: two leaf migrations in one app."""
from migration_safe.engine.model import Severity

from .base import Rule
from .context import MigrationContext


def check(ctx: MigrationContext):
    for note in ctx.notes:
        if note.startswith("conflict:"):
            yield ctx.finding(RULE, None, note.removeprefix("conflict:").strip())


RULE = Rule(
    id="MS005", name="migration-conflict", title="Conflicting migrations (several leaves in one app)",
    severity=Severity.ERROR,
    why="Two migrations of the same app have no order between them; `migrate` refuses to run until a "
        "merge migration joins them.",
    safe_alternative="Rebase on the base branch and renumber, or add a merge migration.",
    example="python manage.py makemigrations --merge shop",
    check=check,
)
