"""MS003: an existing migration was edited."""
from migration_safe.engine.model import Severity

from .base import Rule
from .context import MigrationContext


def check(ctx: MigrationContext):
    if ctx.migration.status == "modified":
        yield ctx.finding(RULE, None, f"{ctx.migration.label} already exists on the base branch and was "
                          "edited. Databases that applied it will not run it again: the edit does not "
                          "reach production.")


RULE = Rule(
    id="MS003", name="modified-migration", title="An existing migration was modified",
    severity=Severity.WARNING,
    why="Django records applied migrations by name. Editing one that production already ran changes "
        "nothing there, while fresh databases (tests, new environments) get the new version: the "
        "schemas drift apart.",
    safe_alternative="Revert the edit and put the change in a new migration.",
    example="git checkout origin/main -- shop/migrations/0003_x.py && python manage.py makemigrations shop",
    check=check,
)
