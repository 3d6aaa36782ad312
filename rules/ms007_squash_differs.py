"""MS007: a squashed migration leaves a different state than the migrations it replaces."""
from migration_safe.engine.model import Severity

from .base import Rule
from .context import MigrationContext


def check(ctx: MigrationContext):
    squash = ctx.squash
    if squash is None or not (squash.differences or squash.uncompared):
        return
    if squash.uncompared:
        yield ctx.finding(RULE, None, f"{ctx.migration.label} could not be compared with the migrations it "
                          f"replaces ({squash.uncompared}): whether it builds the same schema is unknown.")
        return
    yield ctx.finding(RULE, None, f"{ctx.migration.label} does not leave the state that "
                      f"{', '.join(squash.replaces)} leave. Django's autodetector, from theirs to its own: "
                      f"{'; '.join(squash.differences)}. Databases that applied them never run the squash: "
                      "new databases would get another schema.")


RULE = Rule(
    id="MS007", name="squash-differs", title="A squashed migration differs from the migrations it replaces",
    severity=Severity.ERROR,
    why="Where the replaced migrations are applied, Django records the squash as applied and runs none of "
        "it; new databases run only the squash. A squash that builds another schema than the migrations "
        "it replaces splits the environments in two, silently: nothing fails until code meets the "
        "schema it did not expect.",
    safe_alternative="Regenerate the squash with `squashmigrations` and keep its operations as written; "
                     "put any schema change in a new migration after it.",
    example="python manage.py squashmigrations shop 0001 0004",
    check=check,
)
