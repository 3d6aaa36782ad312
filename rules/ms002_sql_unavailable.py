"""MS002: the sandbox could not produce the SQL; the database side was not checked."""
from migration_safe.engine.model import Severity

from .base import Rule
from .context import MigrationContext
from .static import settled_statically


def check(ctx: MigrationContext):
    if ctx.sql_known or ctx.migration.parse_error:
        return
    # Without a sandbox note, the child ran but Django refused to produce the SQL; that refusal
    # is recorded on the operation and is the reason the user needs to see.
    errors = [op.error for op in ctx.operations if op.error]
    reason = "; ".join(n.removeprefix("graph:").strip() for n in ctx.notes) or (
        errors[0] if errors else "the sandbox gave no SQL")
    unchecked = (f"The database side of this migration was not checked: its SQL could not be produced "
                 f"({reason}). Phases and findings come from reading the file only; locks, rewrites "
                 "and scans were not verified.")
    if settled_statically(ctx):
        yield ctx.finding(RULE, None, unchecked + " Every operation is one the file settles for certain "
                          "(see MS002 in the README), so it does not block.", severity=Severity.WARNING)
    else:
        yield ctx.finding(RULE, None, unchecked + " It blocks until the review gets its SQL.")


RULE = Rule(
    id="MS002", name="sql-unavailable", title="SQL could not be produced; the database side was not checked",
    severity=Severity.ERROR,
    why="migration-safe runs Django's own `sqlmigrate` path on a throwaway PostgreSQL to see the exact "
        "SQL, locks and rewrites. When the project does not import or times out, only the file's text "
        "is reviewed, and anything that depends on the SQL (a rewrite, a scan, a lock) can be missed: "
        "a passing check would mean \"could not look\". So the migration blocks, unless every operation "
        "is one the file settles for certain: CreateModel; AddField of a nullable plain Django field "
        "(`models.CharField(null=True)` and the like: no index, unique, CHECK, db_default or "
        "db_collation); AlterModelOptions, AlterModelManagers; any operation on a model "
        "the same change creates except RunSQL and RunPython; SeparateDatabaseAndState whose database "
        "operations are all of these. Then it is a warning.",
    safe_alternative="Make the project importable in the review environment: set `django.settings` and "
                     "`python` in .github/migration-safe.yml, install the project's dependencies; give "
                     "settings that read environment variables non-secret values with `django.environment` "
                     "(the sandbox sees no other environment). A team "
                     "that accepts static-only reviews lowers MS002 with `rules.severity: {MS002: warning}`.",
    example="django:\n  settings: mysite.settings\n  environment:\n    DJANGO_SECRET_KEY: not-a-secret\n"
            "python: .venv/bin/python",
    check=check,
)
