"""`/migration-safe explain RULE`: the rule's documentation, as `migration-safe explain` prints it."""
from __future__ import annotations

from migration_safe.app.commands.base import RULE, Args, Context, Reply, Spec, Unparsed
from migration_safe.report import markup
from migration_safe_rules import catalogue


def parse(name: str, args: list[str], reason: str | None) -> Args:
    if len(args) != 1 or not RULE.match(args[0]):
        raise Unparsed("give one rule id, e.g. MS101")
    return Args(rule=args[0].upper())


def answer(args: Args, context: Context) -> Reply:
    rule = catalogue().get(args.rule or "")
    if rule is None:
        return Reply(f"There is no rule {markup.prose(args.rule or '', markup.NAME_LIMIT)}.", False)
    return Reply(markup.fence(rule.docs), True)


SPEC = Spec("explain", "/migration-safe explain RULE", parse, answer=answer)
