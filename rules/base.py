"""What every rule module provides."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from migration_safe.engine.model import Finding, Severity

from .context import MigrationContext


@dataclass(frozen=True)
class Rule:
    id: str  # "MS101", stable across releases
    name: str  # short slug: "non-concurrent-index"
    title: str  # one line for lists and report headings
    severity: Severity  # default severity; config may re-grade
    why: str  # why it is risky
    safe_alternative: str  # what to do instead, in prose
    example: str  # a code example of the safe way
    check: Callable[[MigrationContext], Iterable[Finding]]

    @property
    def docs(self) -> str:
        return (
            f"{self.id} {self.name}: {self.title}\n\n"
            f"Why it is risky\n{self.why}\n\n"
            f"Safe alternative\n{self.safe_alternative}\n\n"
            f"Example\n{self.example}\n"
        )
