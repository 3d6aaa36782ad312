"""`/migration-safe recheck`: review the head again (after a fix elsewhere, a changed config, a flaky run)."""
from __future__ import annotations

from migration_safe.app.commands.base import Args, Reply, Spec, no_args
from migration_safe.app.reviewed import Reviewed


def finish(args: Args, reviewed: Reviewed | None) -> Reply:
    return Reply("Re-reviewed the current head.", True)


SPEC = Spec("recheck", "/migration-safe recheck", no_args, finish=finish)
