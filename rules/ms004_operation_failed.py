"""MS004: PostgreSQL or Django refused an operation in the sandbox."""
from migration_safe.engine.model import Severity

from .base import Rule
from .context import MigrationContext
from .ms102_concurrently_in_atomic import explains as concurrently_explains


def check(ctx: MigrationContext):
    for operation in ctx.operations:
        error = operation.error or next((s.error for s in operation.statements if s.error), None)
        if error and not concurrently_explains(ctx, operation):
            yield ctx.finding(RULE, operation, f"{operation.description} failed in the sandbox "
                              f"database: {error}")


RULE = Rule(
    id="MS004", name="operation-failed", title="The operation fails on PostgreSQL",
    severity=Severity.ERROR,
    why="The operation raised an error when run against a PostgreSQL database holding the schema of "
        "everything before it. It would most likely fail the same way in production, in the middle of "
        "a deploy. (Objects created by RunSQL in older migrations are not rebuilt in the sandbox; if the "
        "error names one, acknowledge the finding.)",
    safe_alternative="Run `python manage.py migrate` against a copy of the schema and fix the error.",
    example="python manage.py sqlmigrate shop 0007 | psql $STAGING_URL",
    check=check,
)
