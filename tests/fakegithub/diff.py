"""Unified diff hunks as GitHub reads them for review comments.

A review comment may only sit on a line shown in the file's patch: an added
or context line on the RIGHT side, a removed or context line on the LEFT.
GitHub's legacy `position` counts every line below the first hunk header,
later hunk headers included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")


@dataclass(frozen=True)
class DiffLine:
    position: int
    hunk: int
    kind: str  # "+", "-", " ", "@" (a later hunk header) or "\\" (no-newline marker)
    old: int | None
    new: int | None


def count_changes(patch: str) -> tuple[int, int]:
    """(additions, deletions) of a patch made of hunks only."""
    lines = parse_patch(patch)
    return sum(ln.kind == "+" for ln in lines), sum(ln.kind == "-" for ln in lines)


def parse_patch(patch: str) -> list[DiffLine]:
    result: list[DiffLine] = []
    hunk, old, new, position = -1, 0, 0, 0
    for text in patch.split("\n"):
        header = HUNK_HEADER.match(text)
        if header:
            hunk += 1
            old, new = int(header.group(1)), int(header.group(2))
            if hunk > 0:  # the first header is position 0, later ones count
                position += 1
                result.append(DiffLine(position, hunk, "@", None, None))
            continue
        if hunk < 0:
            continue  # file headers before the first hunk
        position += 1
        kind = text[:1] or " "  # an empty line is a context line that lost its space
        if kind == "+":
            result.append(DiffLine(position, hunk, kind, None, new))
            new += 1
        elif kind == "-":
            result.append(DiffLine(position, hunk, kind, old, None))
            old += 1
        elif kind == "\\":
            result.append(DiffLine(position, hunk, kind, None, None))
        else:
            result.append(DiffLine(position, hunk, " ", old, new))
            old, new = old + 1, new + 1
    # A patch ending in "\n" yields one empty trailing "line" that is not part of the diff.
    if patch.endswith("\n") and result and result[-1].kind == " ":
        result.pop()
    return result


class PatchIndex:
    """Looks up commentable lines of one file's patch."""

    def __init__(self, patch: str) -> None:
        self.patch = patch
        self.lines = parse_patch(patch)

    def locate(self, side: str, line: int) -> DiffLine | None:
        for entry in self.lines:
            number = entry.new if side == "RIGHT" else entry.old
            if number == line and entry.kind in ("+", "-", " "):
                return entry
        return None

    def at_position(self, position: int) -> DiffLine | None:
        for entry in self.lines:
            if entry.position == position and entry.kind in ("+", "-", " "):
                return entry
        return None

    def hunk_until(self, target: DiffLine) -> str:
        """The `diff_hunk` GitHub stores with a comment: hunk header through the line."""
        texts = self.patch.split("\n")
        header_indexes = [i for i, text in enumerate(texts) if HUNK_HEADER.match(text)]
        start = header_indexes[target.hunk]
        # Line i of `texts` after the first header has position i - first_header.
        end = header_indexes[0] + target.position
        return "\n".join(texts[start : end + 1])
