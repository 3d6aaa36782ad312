"""`/migration-safe help` (also the bare prefix): every command's usage."""
from __future__ import annotations

from migration_safe.app.commands.base import Args, Context, Reply, Spec, no_args


def answer(args: Args, context: Context) -> Reply:
    return Reply(context.help, True)


SPEC = Spec("help", "/migration-safe help", no_args, answer=answer)
