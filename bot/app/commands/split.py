"""`/migration-safe split APP.MIGRATION`: the plan to split a migration into one per deploy phase, and the
files to commit: the same plan as `autofix: push` and the CLI's `migration-safe fix`."""
from __future__ import annotations

from migration_safe.app.commands.base import LABEL, Args, Reply, Spec, Unparsed, find
from migration_safe.app.reviewed import Reviewed
from migration_safe.report import markup


def parse(name: str, args: list[str], reason: str | None) -> Args:
    if len(args) != 1 or not LABEL.match(args[0]):
        raise Unparsed("give APP.MIGRATION")
    return Args(migration=args[0])


def finish(args: Args, reviewed: Reviewed | None) -> Reply:
    verdict = find(reviewed, args.migration)
    migration = markup.prose(args.migration or "", markup.NAME_LIMIT)
    if reviewed is None or verdict is None:
        return Reply(f"This pull request adds no migration {migration}.", False)
    if verdict.needs_split:
        lines = [f"Split {migration} into one migration per phase:"]
        lines += [f"- line {op.line} ({op.phase.value if op.phase else '?'}): {markup.prose(op.description)}"
                  for op in verdict.operations]
    else:
        lines = [f"{migration} needs no split: all its operations are "
                 f"{verdict.phase.value if verdict.phase else '?'}."]
    plan = reviewed.fixes(only={args.migration})
    if plan.files:
        lines.append("\nReady to commit (a file that exists is replaced; new parts go into the app's chain "
                     "in phase order):")
        lines += [f"- {markup.prose(done)}" for done in plan.done]
        lines += [f"- Order: {markup.prose(note)}" for note in plan.notes]
        lines += [f"\n{markup.code(path)}\n{markup.fence(source.rstrip(), 'python')}"
                  for path, source in plan.files.items()]
    if plan.left:
        lines.append("\nLeft for you, and why `migration-safe fix` cannot do it:")
        lines += [f"- {markup.prose(left)}" for left in plan.left]
    return Reply("\n".join(lines), True)


SPEC = Spec("split", "/migration-safe split APP.MIGRATION", parse, finish=finish)
