"""MS006: Django cannot build the migration graph (circular or missing dependency)."""
from migration_safe.engine.model import Severity

from .base import Rule
from .context import MigrationContext

PREFIX = "graph:"


def check(ctx: MigrationContext):
    for note in ctx.notes:
        if note.startswith(PREFIX):
            yield ctx.finding(RULE, None, note.removeprefix(PREFIX).strip())


RULE = Rule(
    id="MS006", name="broken-graph", title="The migration graph cannot be built",
    severity=Severity.ERROR,
    why="A circular dependency or a dependency on a migration that does not exist makes every "
        "`migrate` fail, in production as in tests.",
    safe_alternative="Fix the `dependencies` of the new migrations: each must name existing migrations, "
                     "and no chain may lead back to itself.",
    example="dependencies = [(\"shop\", \"0006_remove_legacy_code\")]",
    check=check,
)
