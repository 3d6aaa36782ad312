from __future__ import annotations

import re

from migration_safe.engine.model import Review
from migration_safe.report import actions

from .conftest import TRICKY

COMMAND = re.compile(r"^::(?P<name>[a-z]+)(?: (?P<props>[^:]*))?::(?P<data>.*)$")


def unescape(text: str, prop: bool = False) -> str:
    # The runner's decoding, the inverse of GitHub's escaping rules (%25 last).
    pairs = [("%0D", "\r"), ("%0A", "\n")] + ([("%3A", ":"), ("%2C", ",")] if prop else [])
    for code, char in pairs + [("%25", "%")]:
        text = text.replace(code, char)
    return text


def parse(line: str) -> tuple[str, dict[str, str], str]:
    match = COMMAND.match(line)
    assert match, line
    props = dict(p.split("=", 1) for p in (match["props"] or "").split(",") if p)
    return match["name"], {k: unescape(v, prop=True) for k, v in props.items()}, unescape(match["data"])


def commands(review: Review, **opts: object) -> list[tuple[str, dict[str, str], str]]:
    out = actions.render(review, **opts)
    assert "\r" not in out
    return [parse(line) for line in out.splitlines()]


def test_one_line_per_finding_then_summaries(review: Review, rules: dict) -> None:
    parsed = commands(review, rules=rules)
    assert len(parsed) == 3 + 4
    name, props, data = parsed[0]
    assert name == "error"
    assert props == {"file": "shop/migrations/0007_add_sku.py", "line": "14", "endLine": "18",
                     "title": "MS102 NOT NULL field without a database default"}
    assert data == ("NOT NULL column without a database default. "
                    "Safe alternative: Add the field with db_default, then drop the default later.")


def test_escaping_round_trips(review: Review) -> None:
    name, props, data = commands(review)[1]
    assert (name, props["line"], props["endLine"], props["title"]) == ("notice", "9", "12", "MS301")
    assert data == TRICKY


def test_property_values_escape_colon_and_comma() -> None:
    line = actions.command("warning", "a\nb", title="x: 1, 2%")
    assert line == "::warning title=x%3A 1%2C 2%25::a%0Ab"
    assert parse(line) == ("warning", {"title": "x: 1, 2%"}, "a\nb")


def test_acknowledged_error_becomes_notice(review: Review) -> None:
    name, _props, data = commands(review)[2]
    assert name == "notice"
    assert data.endswith("(acknowledged by alice: table has 12 rows)")


def test_summary_per_migration_with_phase(review: Review) -> None:
    summaries = [data for name, props, data in commands(review)[3:]]
    assert all(name == "notice" and not props for name, props, _ in commands(review)[3:])
    assert summaries[0] == "shop.0007_add_sku: phase pre-deploy (blocking)"
    assert summaries[1] == "shop.0008_remove_legacy: phase post-deploy"
    assert summaries[2].startswith("billing.0003_backfill: phase deferred; SQL unavailable")
    assert summaries[3] == "shop.0009_mixed: needs split (blocking)"
