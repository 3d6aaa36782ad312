"""What every `/migration-safe` command is made of: its registry entry (`Spec`) and the plain data
its parts take and return. A command's module imports from here only; nothing here does I/O."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from migration_safe.app.reviewed import Reviewed
from migration_safe.engine.model import Acknowledgement, MigrationVerdict, Phase, PhaseOverride, Review

PREFIX = "/migration-safe"
LABEL = re.compile(r"^[A-Za-z_][\w]*\.\w+$")
RULE = re.compile(r"^MS\d{3}$", re.IGNORECASE)
REASON_REQUIRED = "a reason is required after ` -- `"


@dataclass(frozen=True, kw_only=True)
class Args:
    """What a command line says besides the command's name: each command fills the fields it takes."""

    rule: str | None = None
    migration: str | None = None  # APP.MIGRATION
    phase: Phase | None = None
    reason: str | None = None  # what follows " -- "


class Unparsed(ValueError):
    """A line its command does not understand; the message says what is wrong (backticks quote the line)."""


@dataclass(frozen=True)
class Reply:
    """One command's part of the reply comment."""

    text: str
    success: bool  # understood, allowed, and done as asked: the comment's reaction is 👍 only if all are


@dataclass(frozen=True)
class Context:
    """Plain data an answer may read besides its command."""

    help: str  # every command's usage, as `/migration-safe help` lists them


@dataclass(frozen=True)
class Signed:
    """Who wrote a command that changes the verdict, and when (the comment's last edit)."""

    login: str
    at: str


@dataclass
class CommandState:
    """The verdict-changing commands of a pull request's comments, applied in order: what a review uses."""

    acknowledged: dict[tuple[str, str | None], Acknowledgement] = field(default_factory=dict)  # (rule, label)
    overrides: dict[str, PhaseOverride] = field(default_factory=dict)  # by label

    @property
    def acknowledgements(self) -> list[Acknowledgement]:
        return list(self.acknowledged.values())


Parse = Callable[[str, list[str], str | None], Args]  # (name, words after the name, reason) -> Args


@dataclass(frozen=True)
class Spec:
    """One command: its registry entry. It has `answer` (answered at once) or `finish` (answered after the
    head is reviewed anew, its answer read from that review); a command with `record` changes the verdict:
    only people with write access may use it, and every later review applies it."""

    name: str
    usage: str  # as help lists it
    parse: Parse  # raises Unparsed
    answer: Callable[[Args, Context], Reply] | None = None
    finish: Callable[[Args, Reviewed | None], Reply] | None = None  # None: the head was not reviewed
    record: Callable[[CommandState, Args, Signed], None] | None = None

    def __post_init__(self) -> None:
        if (self.answer is None) == (self.finish is None):
            raise TypeError(f"command {self.name}: give it either an answer or a finish")

    @property
    def changes_verdict(self) -> bool:
        return self.record is not None


def no_args(name: str, args: list[str], reason: str | None) -> Args:
    if args:
        raise Unparsed(f"`{name}` takes no arguments")
    return Args()


def find(reviewed: Reviewed | None, label: str | None) -> MigrationVerdict | None:
    if reviewed is None:
        return None
    return next((m for m in reviewed.review.migrations if m.file.label == label), None)


def has_finding(review: Review, rule: str | None, label: str | None) -> bool:
    return any(f.rule == rule for m in review.migrations if label in (None, m.file.label) for f in m.findings)
