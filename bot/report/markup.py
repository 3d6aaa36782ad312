"""GitHub markdown that text from a pull request cannot turn into markup.

Names, file paths, error messages, reasons and quoted comment lines all come from
the pull request (or from code it runs). Every output that GitHub renders (the
summary comment, the check run's summary and text, review comments, command
replies) puts such text through one of these:

- `code`: an inline code span, its backtick run longer than any in the text, on one line;
- `fence`: a fenced block, its fence longer than any backtick run in the text;
- `prose`: running text with every markdown and HTML character escaped and
  mentions (`@team`) and references (`#12`) broken by a zero-width space.

Each clips its text first, and `clip_body` fits a whole body in GitHub's size
limit, in UTF-8 bytes, without leaving a fence open.
"""
from __future__ import annotations

import re

NAME_LIMIT = 300  # a file path, a label, a branch, a quoted line
TEXT_LIMIT = 2000  # a finding's message, an error, a reason
ZERO_WIDTH = "\u200b"

# GitHub's size limits: check-run summary and text; comment, review and review-comment bodies.
CHECK_RUN_LIMIT = 65535
COMMENT_LIMIT = 65536
CLIPPED = "\n\n_… clipped to fit GitHub's size limit; `migration-safe check` prints everything._\n"

_BACKTICKS = re.compile(r"`+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
# What can start markup anywhere in a line ("_" only where it is not inside a word)…
_ESCAPED = re.compile(r"[\\`*\[\]<>|~&]|(?<![^\W_])_|_(?![^\W_])")
# …and what can only at its start: a heading, a list item, a quote, a rule, a setext underline.
_LINE_START = re.compile(r"^(\s*)([#+\-=]|\d+(?=[.)]))")
_REFERENCE = re.compile(r"([@#])(?=[\w-])|(?<=:)(?=//)")  # a mention, an issue, a URL's "://"
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, an ellipsis saying some were cut."""
    return text if len(text) <= limit else text[:max(0, limit - 1)] + "…"


def visible(text: str) -> str:
    """One line: control characters (a newline, a tab) shown as escapes, never acted on."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def code(text: str, limit: int = NAME_LIMIT, *, table: bool = False) -> str:
    """`text` as an inline code span. `table`: inside a table row, where "|" must be escaped."""
    body = visible(clip(str(text), limit)) or " "
    if table:
        body = body.replace("|", "\\|")
    ticks = "`" * (_longest_run(body) + 1)
    if body[0] in "` " or body[-1] in "` ":  # one space each side is stripped by the renderer
        body = f" {body} "
    return f"{ticks}{body}{ticks}"


def fence(text: str, info: str = "") -> str:
    """`text` as a fenced code block, ending with a newline."""
    body = str(text).replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")
    body = body[:-1] if body.endswith("\n") else body  # the fence's own line ending
    ticks = "`" * max(3, _longest_run(body) + 1)
    return f"{ticks}{info}\n{body}\n{ticks}\n"


def prose(text: str, limit: int = TEXT_LIMIT) -> str:
    """`text` as plain running text on one line: nothing in it is markup, a mention or a link."""
    flat = re.sub(r"\s+", " ", clip(str(text), limit))
    flat = _CONTROL.sub("\ufffd", flat)
    escaped = _ESCAPED.sub(lambda m: "\\" + m.group(), flat)
    escaped = _LINE_START.sub(_escape_line_start, escaped)
    return _REFERENCE.sub(lambda m: (m.group(1) or "") + ZERO_WIDTH, escaped)


def _escape_line_start(found: re.Match) -> str:
    space, mark = found.groups()
    return space + (mark + "\\" if mark.isdigit() else "\\" + mark)


def size(text: str) -> int:
    return len(text.encode("utf-8"))


def clip_body(text: str, limit: int, note: str = CLIPPED) -> str:
    """`text` in at most `limit` UTF-8 bytes, cut at a line, an open fence closed, `note` added.

    A line outside a fence is kept whole or dropped (cutting a code span would let its text
    render as markdown); a line inside a fence may be cut.
    """
    if size(text) <= limit:
        return text
    room = limit - size(note)
    if room <= 0:
        return ""
    kept: list[str] = []
    used, open_fence = 0, ""
    for line in text.splitlines(keepends=True):
        after = _fence_after(open_fence, line)
        need = size(line) + (size(after) + 2 if after else 0)
        if used + need <= room:
            kept.append(line)
            used, open_fence = used + size(line), after
            continue
        if open_fence:  # code: a cut line is still code
            left = room - used - size(open_fence) - 2
            kept.append(line.encode("utf-8")[:max(0, left)].decode("utf-8", "ignore") + "\n")
        break
    if open_fence:
        kept.append(("" if not kept or kept[-1].endswith("\n") else "\n") + open_fence + "\n")
    return "".join(kept).rstrip("\n") + note


def _fence_after(open_fence: str, line: str) -> str:
    """The fence still open after `line`: "" outside any."""
    found = _FENCE.match(line)
    if not open_fence:
        return found.group(1) if found else ""
    closing = line.strip()
    if closing and set(closing) == {open_fence[0]} and len(closing) >= len(open_fence):
        return ""
    return open_fence


def _longest_run(text: str) -> int:
    return max((len(run) for run in _BACKTICKS.findall(text)), default=0)
