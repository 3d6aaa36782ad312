"""PR-controlled text in the markdown outputs, rendered by GitHub's own renderer (cmark-gfm)."""
from __future__ import annotations

import pytest

from migration_safe.engine.model import (
    Acknowledgement, Finding, MigrationFile, MigrationVerdict, Operation, Phase, Review, Severity, Statement,
)
from migration_safe.report import markdown, markup
from migration_safe.report._common import DOCS_URL

from published import render

FORGED = "## ✅ migration-safe: 1 migration(s), nothing blocks"
HOSTILE = [
    FORGED,
    "cc @acme/dba-team",
    '<img src="https://tracker.example/pixel.gif">',
    "<!-- everything after this is hidden",
    "[✅ safe](https://evil.example/)",
    "<details><summary>x</summary>",
    "a `tick` and ``` three and a | pipe",
    "`",
    " padded ",
    "line\nbreak\tand tab",
    "1. starts like a list",
    "see #12 and https://evil.example",
    "\\`escaped\\` *stars* _under_ &amp; &#64;bob",
]
SQL = "INSERT INTO t VALUES ('\n```\n" + "\n".join(HOSTILE) + "\n```\n');"


@pytest.mark.parametrize("text", HOSTILE)
def test_code_span_holds_the_text_exactly(text):
    for table in (False, True):
        body = f"| a |\n|---|\n| {markup.code(text, table=True)} |" if table else f"- x {markup.code(text)} y"
        shown = render(body)
        assert shown.code == [markup.visible(text)] and shown.problems() == []


@pytest.mark.parametrize("text", HOSTILE)
def test_prose_shows_the_text_as_text(text):
    shown = render(f"- note: {markup.prose(text)}")
    assert shown.problems() == [] and shown.code == []
    assert " ".join("".join(shown.text).replace(markup.ZERO_WIDTH, "").split()) == " ".join(f"note: {text}".split())


LINE_STARTS = ["# heading", "   ## indented heading", "- item", "+ item", "12. item", "3) item", "---", "===",
               "> quote", "    indented code", "| a | b |", "***", "___", "<!-- hidden", "```", "~~~"]


def test_prose_lines_in_a_quote_stay_text():
    """A reply quotes the commenter's lines one per line: none may start a block of its own."""
    shown = render("\n".join(f"> {markup.prose(line)}" for line in LINE_STARTS))
    assert shown.tags == {"blockquote", "p"} and shown.problems() == []


def test_fence_holds_backtick_lines():
    shown = render("before\n\n" + markup.fence(SQL, "sql") + "\nafter\n")
    assert shown.code == [SQL + "\n"] and shown.problems() == [] and shown.headings == []


def test_clip_body_counts_bytes_and_closes_the_fence():
    body = "## ❌ heading\n\n" + markup.fence(("é" * 99 + "\n") * 2000, "sql") + "\ntail\n"
    out = markup.clip_body(body, 10_000)
    assert len(out.encode()) <= 10_000 and "clipped" in out
    shown = render(out)
    assert [h for h, _ in shown.headings] == ["h2"] and "clipped" in "".join(shown.text)
    assert shown.code[1:] == ["migration-safe check"]  # the fence was closed before the note


def hostile_review() -> Review:
    name = HOSTILE
    file = MigrationFile(path="shop/migrations/0002_`x`<img src=x>.py", name="0002_`x`|@acme/dba-team",
                         app_label="shop")
    statement = Statement(sql=SQL)
    op = Operation(0, "RunSQL", 7, 9, f"Raw SQL {' '.join(name)}", statements=[statement], sql_known=True,
                   phase=Phase.PRE_DEPLOY)
    findings = [
        Finding("MS108", Severity.ERROR, f"Renaming {n} breaks running code", f"Keep {n}", 0, 7)
        for n in name
    ]
    ack = Acknowledgement("MS111", None, "alice", "\n".join(HOSTILE), "2026-01-01")
    findings.append(Finding("MS111", Severity.ERROR, "data", "", 0, 7, acknowledged=True, acknowledgement=ack))
    broken = MigrationVerdict(MigrationFile("shop/migrations/0003_b.py", "0003_b", "shop"), [], [],
                              Phase.PRE_DEPLOY, False, "unavailable", sql_error="\n".join(HOSTILE))
    return Review([MigrationVerdict(file, [op], findings, Phase.PRE_DEPLOY, False, "ok"), broken],
                  notes=list(HOSTILE))


@pytest.mark.parametrize("output", ["summary", "sql_text", "render"])
def test_hostile_review_renders_only_the_apps_markup(output):
    body = getattr(markdown, output)(hostile_review())
    shown = render(body)
    assert shown.problems(own_links=(DOCS_URL,)) == []
    if output != "sql_text":
        assert [h for h in shown.headings if h[0] == "h2"] == [
            ("h2", "❌ migration-safe: 1 of 2 migration(s) must change before merge")]
    if output != "summary":
        assert SQL in "".join(shown.code)  # the fence held: the whole statement is code
    assert not any("nothing blocks" in text for _, text in shown.headings)
