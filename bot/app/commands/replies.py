"""What a comment's commands get in reply, and what the PR's commands make every review apply: decided
from plain data. `handle_command` asks GitHub for that data and carries out the decision."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from migration_safe.app.commands.base import CommandState, Context, Reply, Signed
from migration_safe.app.commands.parser import MAX_COMMANDS, Command
from migration_safe.app.commands.registry import COMMANDS, USAGE, help_text
from migration_safe.app.reviewed import Reviewed
from migration_safe.report import markup

QUOTED_LINES = 5


@dataclass(frozen=True)
class Author:
    login: str
    can_write: bool  # asked of GitHub only when one of the commands changes the verdict


@dataclass(frozen=True)
class Outcome:
    lines: list[str]  # the reply's answers, in the commands' order
    reaction: str  # to the comment: all done as asked, or not


def asks_write(commands: list[Command]) -> bool:
    """Whether GitHub must be asked if the author may write: a command changes the verdict."""
    return any(command.changes_verdict and not command.error for command in commands)


def answer(command: Command, author: Author) -> Reply | None:
    """The reply that needs no review; None: the head is reviewed anew first, and `finish` answers."""
    if command.error:
        usage = USAGE.get(command.name)
        hint = f" Usage: `{usage}`." if usage else ""
        return Reply(f"{markup.code(command.text)}: {parser_text(command.error)}.{hint}\n\n{help_text()}", False)
    spec = COMMANDS[command.name]
    if spec.answer is not None:
        return spec.answer(command, Context(help_text()))
    if spec.changes_verdict and not author.can_write:
        return Reply(f"Sorry @{author.login}, `{command.name}` changes the verdict and needs write access to "
                     "this repository.", False)
    return None


def finish(command: Command, reviewed: Reviewed | None) -> Reply:
    """After the review `answer` asked for; `reviewed` is None when there was none (the head moved on,
    the pull request closed, the review could not run)."""
    return COMMANDS[command.name].finish(command, reviewed)


def conclude(replies: list[Reply], ignored: int) -> Outcome:
    lines = [reply.text for reply in replies]
    ok = all(reply.success for reply in replies)
    if ignored:
        lines.append(f"Only the first {MAX_COMMANDS} commands of a comment are run: the {ignored} "
                     "after them were ignored.")
        ok = False
    return Outcome(lines, "+1" if ok else "confused")


def parser_text(text: str) -> str:
    """A parser's error, which quotes the comment between backticks: each part as code or as prose,
    so a backtick in what it quotes only shifts which part is which."""
    parts = text.split("`")
    return "".join(markup.code(part) if i % 2 else markup.prose(part) for i, part in enumerate(parts)
                   if part or not i % 2)


def reply_body(body: str | None, login: str, lines: list[str]) -> str:
    """The commenter's first lines quoted as escaped text, a mention of the commenter (a GitHub login: no
    markup), the answers; within GitHub's size limit."""
    lines_written = (body or "").splitlines()[:QUOTED_LINES]
    quoted = "\n".join(f"> {markup.prose(line, markup.NAME_LIMIT)}" for line in lines_written if line.strip())
    text = f"{quoted}\n\n@{login}\n\n" + "\n\n".join(line for line in lines if line)
    return markup.clip_body(text, markup.COMMENT_LIMIT)


def state_of(signed: Iterable[tuple[Command, Signed]]) -> CommandState:
    """What the verdict-changing commands of people with write access, in the order they were written,
    make every review apply."""
    state = CommandState()
    for command, by in signed:
        COMMANDS[command.name].record(state, command, by)
    return state
