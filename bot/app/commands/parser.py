"""`/migration-safe` commands in a comment body -> Command objects. Pure text handling."""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from migration_safe.engine.model import Phase

PREFIX = "/migration-safe"
LABEL = re.compile(r"^[A-Za-z_][\w]*\.\w+$")
RULE = re.compile(r"^MS\d{3}$", re.IGNORECASE)
VERDICT_CHANGING = {"ignore", "unignore", "phase"}
COMMAND = re.compile(re.escape(PREFIX) + r"(\s|$)")
FENCE = re.compile(r"^(`{3,}|~{3,})")
REASON = re.compile(r"\s--(?:\s|$)")  # " -- reason"; a bare trailing " --" is a missing reason
# Commands run per comment: a comment of 200,000 command lines must not become 200,000 answers.
MAX_COMMANDS = 10

USAGE = {
    "help": "/migration-safe help",
    "recheck": "/migration-safe recheck",
    "explain": "/migration-safe explain RULE",
    "ignore": "/migration-safe ignore RULE [APP.MIGRATION] -- REASON",
    "unignore": "/migration-safe unignore RULE [APP.MIGRATION]",
    "phase": "/migration-safe phase APP.MIGRATION PHASE -- REASON",
    "split": "/migration-safe split APP.MIGRATION",
}


@dataclass(frozen=True)
class Command:
    name: str
    text: str  # the line as written
    rule: str | None = None
    migration: str | None = None
    phase: Phase | None = None
    reason: str | None = None
    error: str | None = None  # not understood: what is wrong

    @property
    def changes_verdict(self) -> bool:
        return self.name in VERDICT_CHANGING


@dataclass(frozen=True)
class Found:
    commands: list[Command]  # the first MAX_COMMANDS, in order
    ignored: int = 0  # command lines after them: counted, never parsed or run


def find_commands(body: str | None) -> Found:
    commands: list[Command] = []
    ignored = 0
    for line in command_lines(body):
        if len(commands) < MAX_COMMANDS:
            commands.append(parse_line(line))
        else:
            ignored += 1
    return Found(commands, ignored)


def commands_in(body: str | None) -> list[Command]:
    """The comment's commands that run: the first MAX_COMMANDS (a reply says the rest were ignored)."""
    return find_commands(body).commands


def command_lines(body: str | None) -> Iterator[str]:
    """Each line that starts with the prefix, outside what GitHub renders as code, quote or hidden.

    Markdown is followed as GitHub renders it, so that only a command a reader sees as
    such runs: fenced blocks close only on a bare fence of the same character at least
    as long (```` holds ```); a line indented by four spaces or a tab is code; a quote
    goes on over its lazy continuation lines up to a blank line (what GitHub's "Quote
    reply" produces); an HTML comment is invisible, and a hidden command must not
    change the verdict.
    """
    fence: str | None = None
    quote = hidden = False
    for raw in (body or "").splitlines():
        line = raw.strip()
        if fence:
            if re.fullmatch(re.escape(fence[0]) + "{%d,}" % len(fence), line):
                fence = None
            continue
        if hidden:
            hidden = "-->" not in line
            continue
        if not line:
            quote = False
            continue
        if raw.expandtabs(4).startswith("    "):  # indented code block
            continue
        marker = FENCE.match(line)
        if marker:  # a fence also ends a quote's lazy continuation
            fence, quote = marker.group(1), False
            continue
        if line.startswith(">") or quote:
            quote = True
            continue
        if line.startswith("<!--"):
            hidden = "-->" not in line[4:]
            continue
        if COMMAND.match(line):
            yield line


def parse_line(line: str) -> Command:
    # The reason follows the first " -- "; a bare trailing " --" is a missing reason, not an argument.
    head, *rest = REASON.split(line[len(PREFIX):], maxsplit=1)
    words = head.split()
    if not words:
        return Command("help", line)
    name, args = words[0].lower(), words[1:]
    reason = (rest[0].strip() if rest else "") or None
    parser = PARSERS.get(name)
    if parser is None:
        return Command(name, line, error=f"unknown command `{name}`")
    return parser(name, line, args, reason)


def _no_args(name, line, args, reason):
    return Command(name, line, error=f"`{name}` takes no arguments") if args else Command(name, line)


def _explain(name, line, args, reason):
    if len(args) != 1 or not RULE.match(args[0]):
        return Command(name, line, error="give one rule id, e.g. MS101")
    return Command(name, line, rule=args[0].upper())


def _ignore(name, line, args, reason):
    if not args or len(args) > 2 or not RULE.match(args[0]):
        return Command(name, line, error="give a rule id and optionally APP.MIGRATION")
    if len(args) == 2 and not LABEL.match(args[1]):
        return Command(name, line, error=f"`{args[1]}` is not APP.MIGRATION (e.g. shop.0007_add_sku)")
    if name == "ignore" and not reason:
        return Command(name, line, error="a reason is required after ` -- `")
    return Command(name, line, rule=args[0].upper(), migration=args[1] if len(args) == 2 else None,
                   reason=reason)


def _phase(name, line, args, reason):
    if len(args) != 2 or not LABEL.match(args[0]):
        return Command(name, line, error="give APP.MIGRATION and a phase")
    try:
        phase = Phase.parse(args[1])
    except ValueError as exc:
        return Command(name, line, error=str(exc))
    if not reason:
        return Command(name, line, error="a reason is required after ` -- `")
    return Command(name, line, migration=args[0], phase=phase, reason=reason)


def _split(name, line, args, reason):
    if len(args) != 1 or not LABEL.match(args[0]):
        return Command(name, line, error="give APP.MIGRATION")
    return Command(name, line, migration=args[0])


PARSERS = {"help": _no_args, "recheck": _no_args, "explain": _explain, "ignore": _ignore,
           "unignore": _ignore, "phase": _phase, "split": _split}


def help_text() -> str:
    lines = ["Commands (one per line, in a PR comment):", ""]
    lines += [f"- `{usage}`" for usage in USAGE.values()]
    lines += ["", "`ignore`, `unignore` and `phase` need write access to the repository."]
    return "\n".join(lines)
