"""Every `/migration-safe` command, by name: the one list that parsing, help, permissions, answers and the
acknowledgements every review reads all come from. A new command is a module beside this one (its `SPEC`)
and a line in `COMMANDS`."""
from __future__ import annotations

from migration_safe.app.commands import explain, help, ignore, phase, recheck, split, unignore
from migration_safe.app.commands.base import Spec

COMMANDS: dict[str, Spec] = {spec.name: spec for spec in (
    help.SPEC,
    recheck.SPEC,
    explain.SPEC,
    ignore.SPEC,
    unignore.SPEC,
    phase.SPEC,
    split.SPEC,
)}

USAGE = {name: spec.usage for name, spec in COMMANDS.items()}
VERDICT_CHANGING = tuple(name for name, spec in COMMANDS.items() if spec.changes_verdict)


def help_text() -> str:
    lines = ["Commands (one per line, in a PR comment):", ""]
    lines += [f"- `{usage}`" for usage in USAGE.values()]
    lines += ["", f"{listed(VERDICT_CHANGING)} need write access to the repository."]
    return "\n".join(lines)


def listed(names: tuple[str, ...]) -> str:
    """`a`, `b` and `c`."""
    quoted = [f"`{name}`" for name in names]
    return " and ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted)
