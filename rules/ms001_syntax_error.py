"""MS001: a migration file that does not parse."""
from migration_safe.engine.model import Finding, Severity

from .base import Rule
from .context import MigrationContext


def check(ctx: MigrationContext):
    file = ctx.migration
    if file.parse_error:
        yield Finding(RULE.id, RULE.severity, f"{file.path} cannot be read: {file.parse_error}",
                      RULE.safe_alternative, line=file.parse_error_line or 1)


RULE = Rule(
    id="MS001", name="unparsable-migration", title="The migration file does not parse",
    severity=Severity.ERROR,
    why="A file that Python cannot read cannot be reviewed, and Django cannot run it either: "
        "the deploy would fail at the first `migrate`.",
    safe_alternative="Fix the syntax error (run `python -m py_compile` on the file) and push again.",
    example="python -m py_compile shop/migrations/0007_add_sku.py",
    check=check,
)
