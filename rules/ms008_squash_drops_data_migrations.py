"""MS008: a squashed migration leaves out RunPython or RunSQL of the migrations it replaces."""
from migration_safe.engine.model import Severity

from .base import Rule
from .context import MigrationContext


def check(ctx: MigrationContext):
    if ctx.squash is not None and ctx.squash.dropped:
        yield ctx.finding(RULE, None, f"{ctx.migration.label} leaves out {len(ctx.squash.dropped)} data "
                          f"operation(s) of the migrations it replaces: {'; '.join(ctx.squash.dropped)}. "
                          "A database built from the squash never runs them.")


RULE = Rule(
    id="MS008", name="squash-drops-data-migrations",
    title="A squashed migration leaves out RunPython or RunSQL",
    severity=Severity.NOTICE,
    why="`squashmigrations` drops every RunPython and RunSQL marked `elidable=True`, and a squash edited "
        "by hand may drop others. Databases that applied the replaced migrations ran them; a new one "
        "(tests, a new environment) does not: rows they inserted or fixed, and functions, triggers or "
        "views their SQL created, exist only in the old ones. The state comparison (MS007) does not see "
        "them: they are not part of Django's model state.",
    safe_alternative="Check that nothing a new database needs came from them (seed rows, SQL functions, "
                     "triggers); if something did, keep that operation in the squash with `elidable=False`.",
    example="migrations.RunPython(seed_currencies, migrations.RunPython.noop, elidable=False)",
    check=check,
)
