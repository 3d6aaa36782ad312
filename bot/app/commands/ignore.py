"""`/migration-safe ignore RULE [APP.MIGRATION] -- REASON`: acknowledge a rule's findings, so they no longer
block; for one migration, or every migration of the pull request."""
from __future__ import annotations

from migration_safe.app.commands.base import (LABEL, REASON_REQUIRED, RULE, Args, CommandState, Reply, Signed,
                                              Spec, Unparsed, has_finding)
from migration_safe.app.reviewed import Reviewed
from migration_safe.engine.model import Acknowledgement
from migration_safe.report import markup


def parse(name: str, args: list[str], reason: str | None) -> Args:
    """Also `unignore`'s, which needs no reason."""
    if not args or len(args) > 2 or not RULE.match(args[0]):
        raise Unparsed("give a rule id and optionally APP.MIGRATION")
    if len(args) == 2 and not LABEL.match(args[1]):
        raise Unparsed(f"`{args[1]}` is not APP.MIGRATION (e.g. shop.0007_add_sku)")
    if name == "ignore" and not reason:
        raise Unparsed(REASON_REQUIRED)
    return Args(rule=args[0].upper(), migration=args[1] if len(args) == 2 else None, reason=reason)


def record(state: CommandState, args: Args, by: Signed) -> None:
    state.acknowledged[(args.rule, args.migration)] = Acknowledgement(args.rule, args.migration, by.login,
                                                                      args.reason or "", by.at)


def finish(args: Args, reviewed: Reviewed | None) -> Reply:
    rule = markup.prose(args.rule or "", markup.NAME_LIMIT)
    scope = (markup.prose(args.migration, markup.NAME_LIMIT) if args.migration
             else "every migration of this pull request")
    reason = markup.prose(args.reason or "")
    if reviewed is not None and not has_finding(reviewed.review, args.rule, args.migration):
        # Say so rather than claim a change: a mistyped label would otherwise look accepted.
        return Reply(f"{rule} acknowledged for {scope}, but no migration there has a {rule} "
                     f"finding now; the acknowledgement applies if one appears. Reason: {reason}", True)
    return Reply(f"{rule} acknowledged for {scope}: it no longer blocks. Reason: {reason}", True)


SPEC = Spec("ignore", "/migration-safe ignore RULE [APP.MIGRATION] -- REASON", parse, finish=finish,
            record=record)
