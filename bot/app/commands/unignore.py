"""`/migration-safe unignore RULE [APP.MIGRATION]`: withdraw acknowledgements of a rule made with `ignore`;
without a migration, for every migration."""
from __future__ import annotations

from migration_safe.app.commands import ignore
from migration_safe.app.commands.base import Args, CommandState, Reply, Signed, Spec
from migration_safe.app.reviewed import Reviewed
from migration_safe.report import markup


def record(state: CommandState, args: Args, by: Signed) -> None:
    for key in [k for k in state.acknowledged if k[0] == args.rule and args.migration in (None, k[1])]:
        del state.acknowledged[key]


def finish(args: Args, reviewed: Reviewed | None) -> Reply:
    rule = markup.prose(args.rule or "", markup.NAME_LIMIT)
    scope = f" for {markup.prose(args.migration, markup.NAME_LIMIT)}" if args.migration else ""
    return Reply(f"{rule} is no longer acknowledged{scope}.", True)


SPEC = Spec("unignore", "/migration-safe unignore RULE [APP.MIGRATION]", ignore.parse, finish=finish,
            record=record)
