"""MS009: the change deletes migrations that a squashed migration replaces."""
from migration_safe.engine.model import Severity

from .base import Rule
from .context import MigrationContext


def check(ctx: MigrationContext):
    if ctx.squash is not None and ctx.squash.deleted:
        deleted = ctx.squash.deleted
        yield ctx.finding(RULE, None, f"This change deletes {len(deleted)} migration(s) that "
                          f"{ctx.migration.label} replaces ({', '.join(deleted)}). Before it deploys, every "
                          f"environment must have applied {ctx.migration.label} (or all the migrations it "
                          "replaces): a database that applied only some of them can no longer migrate.")


RULE = Rule(
    id="MS009", name="replaced-migrations-deleted",
    title="The migrations a squashed migration replaces are deleted",
    severity=Severity.NOTICE,
    why="While the replaced migrations exist, Django picks, per database, the squash or the migrations "
        "that database has not applied yet. Once they are deleted only the squash is left: a database "
        "that stopped part-way through them (an old staging copy, a developer's database) fails with "
        "\"Django tried to replace migration … but wasn't able to\".",
    safe_alternative="Deploy the squash alone first and run `migrate` in every environment; delete the "
                     "replaced migrations in a later release, pointing what depended on them at the "
                     "squash and removing its `replaces`.",
    example='python manage.py showmigrations shop  # [X] 0001_squashed_0004 everywhere, then delete 0001…0004',
    check=check,
)
