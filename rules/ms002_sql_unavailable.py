"""MS002: the sandbox could not produce the SQL; the review is static only."""
from migration_safe.engine.model import Severity

from .base import Rule
from .context import MigrationContext


def check(ctx: MigrationContext):
    if not ctx.sql_known and not ctx.migration.parse_error:
        # Without a sandbox note, the child ran but Django refused to produce the SQL; that refusal
        # is recorded on the operation and is the reason the user needs to see.
        errors = [op.error for op in ctx.operations if op.error]
        reason = "; ".join(n.removeprefix("graph:").strip() for n in ctx.notes) or (
            errors[0] if errors else "the sandbox gave no SQL")
        yield ctx.finding(RULE, None, f"The SQL of this migration could not be produced ({reason}). "
                          "Phases and findings come from reading the file only: the locks and "
                          "rewrites were not verified.")


RULE = Rule(
    id="MS002", name="sql-unavailable", title="SQL could not be produced; static review only",
    severity=Severity.WARNING,
    why="migration-safe runs Django's own `sqlmigrate` path on a throwaway PostgreSQL to see the exact "
        "SQL, locks and rewrites. When the project does not import or times out, only the file's text "
        "is reviewed, and anything that depends on the SQL (a rewrite, a lock) can be missed.",
    safe_alternative="Make the project importable in the review environment: set `django.settings` and "
                     "`python` in .github/migration-safe.yml, install the project's dependencies.",
    example="django:\n  settings: mysite.settings\npython: .venv/bin/python",
    check=check,
)
