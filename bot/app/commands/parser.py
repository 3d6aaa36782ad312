"""`/migration-safe` commands in a comment body -> Command objects, each line's arguments read by its
command's own parser (from the registry). Pure text handling."""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from migration_safe.app.commands.base import PREFIX, Args, Unparsed
from migration_safe.app.commands.registry import COMMANDS, VERDICT_CHANGING

COMMAND = re.compile(re.escape(PREFIX) + r"(\s|$)")
FENCE = re.compile(r"^(`{3,}|~{3,})")
REASON = re.compile(r"\s--(?:\s|$)")  # " -- reason"; a bare trailing " --" is a missing reason
# Commands run per comment: a comment of 200,000 command lines must not become 200,000 answers.
MAX_COMMANDS = 10


@dataclass(frozen=True)
class Command(Args):
    name: str
    text: str  # the line as written
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
    spec = COMMANDS.get(name)
    if spec is None:
        return Command(name, line, error=f"unknown command `{name}`")
    try:
        parsed = spec.parse(name, args, reason)
    except Unparsed as exc:
        return Command(name, line, error=str(exc))
    return Command(name, line, **vars(parsed))
