"""`/migration-safe phase APP.MIGRATION PHASE -- REASON`: run a migration in another deploy phase than the
review infers, when the review finds that safe."""
from __future__ import annotations

from migration_safe.app.commands.base import (LABEL, REASON_REQUIRED, Args, CommandState, Reply, Signed, Spec,
                                              Unparsed, find)
from migration_safe.app.reviewed import Reviewed
from migration_safe.engine.model import Phase, PhaseOverride
from migration_safe.engine.review.phases import refuse_phase, touches_large
from migration_safe.report import markup


def parse(name: str, args: list[str], reason: str | None) -> Args:
    if len(args) != 2 or not LABEL.match(args[0]):
        raise Unparsed("give APP.MIGRATION and a phase")
    try:
        phase = Phase.parse(args[1])
    except ValueError as exc:  # it says which phases there are
        raise Unparsed(str(exc)) from None
    if not reason:
        raise Unparsed(REASON_REQUIRED)
    return Args(migration=args[0], phase=phase, reason=reason)


def record(state: CommandState, args: Args, by: Signed) -> None:
    state.overrides[args.migration] = PhaseOverride(args.migration, args.phase, by.login, args.reason or "", by.at)


def finish(args: Args, reviewed: Reviewed | None) -> Reply:
    """Done only if the new review applied the override: it refuses an unsafe phase."""
    verdict = find(reviewed, args.migration)
    migration = markup.prose(args.migration or "", markup.NAME_LIMIT)
    if verdict is None:
        return Reply(f"This pull request adds no migration {migration}.", False)
    if verdict.phase_override is not None and verdict.phase_override.phase == args.phase:
        return Reply(f"{migration} now runs {args.phase.value}. Reason: {markup.prose(args.reason or '')}", True)
    # The head's config, as the review refused with: its large tables are the usual reason.
    reason = refuse_phase(verdict.phase, args.phase, touches_large(verdict.operations, reviewed.config))
    return Reply(f"Refused: {migration} cannot run {args.phase.value}: "
                 f"{markup.prose(reason or 'it is not safe')}.", False)


SPEC = Spec("phase", "/migration-safe phase APP.MIGRATION PHASE -- REASON", parse, finish=finish, record=record)
