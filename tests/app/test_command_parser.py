"""`/migration-safe` lines in a comment body -> Command objects (pure text, no network)."""
from __future__ import annotations

import pytest

from migration_safe.app.commands.parser import MAX_COMMANDS, Command, Found, commands_in, find_commands, parse_line
from migration_safe.app.commands.registry import USAGE, help_text
from migration_safe.engine.model import Phase


def names(body: str) -> list[str]:
    return [c.name for c in commands_in(body)]


# ---------------------------------------------------------------- where commands are found


def test_a_line_starting_with_the_prefix_is_a_command():
    [command] = commands_in("/migration-safe recheck")
    assert command == Command("recheck", "/migration-safe recheck")
    assert not command.error and not command.changes_verdict


def test_text_around_commands_is_ignored_and_each_line_is_one_command():
    body = ("Thanks for the review!\n\n/migration-safe explain MS101\r\n"
            "some words\n  /migration-safe recheck  \n/migration-safe\thelp\nbye")
    assert names(body) == ["explain", "recheck", "help"]


def test_the_prefix_must_start_the_line_and_be_a_word_of_its_own():
    body = ("please run /migration-safe recheck\n- /migration-safe recheck\n"
            "`/migration-safe recheck`\n/migration-safer recheck\n/migration-safe-recheck")
    assert commands_in(body) == []


def test_the_bare_prefix_asks_for_help():
    assert names("/migration-safe") == ["help"]


def test_empty_bodies_hold_no_command():
    assert commands_in("") == [] and commands_in(None) == []


@pytest.mark.parametrize("body", [
    "```\n/migration-safe ignore MS101 -- in a code block\n```",
    "~~~\n/migration-safe ignore MS101 -- in a tilde block\n~~~",
    "```text\n/migration-safe ignore MS101 -- with an info string\n```",
    # a ``` line inside a ~~~ block is content, not the end of the block
    "~~~\n```\n/migration-safe ignore MS101 -- still in the tilde block\n~~~",
    # a longer fence is closed by a fence at least as long, not by ```
    "````\n```\n/migration-safe ignore MS101 -- still in the long fence\n````",
    # ```python inside a block is content: a closing fence has no info string
    "```\n```python\n/migration-safe ignore MS101 -- still in the block\n```",
    # an unterminated block runs to the end of the comment
    "```\n/migration-safe ignore MS101 -- never closed",
    # indented code block
    "Example:\n\n    /migration-safe ignore MS101 -- indented code\n",
    "\t/migration-safe ignore MS101 -- indented with a tab",
])
def test_commands_in_code_blocks_are_ignored(body):
    assert commands_in(body) == []


def test_commands_after_a_closed_code_block_count():
    body = "```\n/migration-safe explain MS102\n```\n/migration-safe explain MS101"
    [command] = commands_in(body)
    assert command.rule == "MS101"


@pytest.mark.parametrize("body", [
    "> /migration-safe ignore MS101 shop.0002_x -- quoted",
    ">/migration-safe ignore MS101 shop.0002_x -- quoted without a space",
    "> > /migration-safe ignore MS101 shop.0002_x -- nested quote",
    "  > /migration-safe ignore MS101 shop.0002_x -- indented quote",
    # GitHub's "Quote reply" then lazy continuation: the second line renders inside the quote
    "> @alice wrote:\n/migration-safe ignore MS101 shop.0002_x -- lazy continuation of the quote",
])
def test_commands_in_quotes_are_ignored(body):
    assert commands_in(body) == []


def test_a_command_after_a_quote_and_a_blank_line_counts():
    body = "> /migration-safe ignore MS101 -- quoted\n\n/migration-safe recheck"
    assert names(body) == ["recheck"]


@pytest.mark.parametrize("body", [
    "<!-- /migration-safe ignore MS101 -- hidden -->",
    "<!--\n/migration-safe ignore MS101 -- hidden in a multi-line HTML comment\n-->",
])
def test_commands_hidden_in_html_comments_are_ignored(body):
    # Invisible to reviewers, so they must not change the verdict.
    assert commands_in(body) == []


def test_a_command_after_an_html_comment_counts():
    assert names("<!--\nnote\n-->\n/migration-safe recheck") == ["recheck"]


def test_several_commands_in_one_comment_keep_their_order():
    body = ("/migration-safe ignore MS101 shop.0002_x -- tiny table\n"
            "/migration-safe phase shop.0003_fill pre-deploy -- ten rows\n"
            "/migration-safe split shop.0004_mixed\n"
            "/migration-safe frobnicate")
    ignore, phase, split, unknown = commands_in(body)
    assert (ignore.name, ignore.rule, ignore.migration, ignore.reason) == (
        "ignore", "MS101", "shop.0002_x", "tiny table")
    assert (phase.name, phase.migration, phase.phase, phase.reason) == (
        "phase", "shop.0003_fill", Phase.PRE_DEPLOY, "ten rows")
    assert (split.name, split.migration, split.error) == ("split", "shop.0004_mixed", None)
    assert unknown.error == "unknown command `frobnicate`"


# ---------------------------------------------------------------- arguments


def test_explain_takes_one_rule_id_in_any_case():
    assert parse_line("/migration-safe explain ms101").rule == "MS101"
    assert parse_line("/migration-safe EXPLAIN MS101").name == "explain"


@pytest.mark.parametrize("line", [
    "/migration-safe explain",
    "/migration-safe explain MS101 MS102",
    "/migration-safe explain rename",
    "/migration-safe explain MS1",
])
def test_explain_with_bad_arguments_is_not_understood(line):
    command = parse_line(line)
    assert command.name == "explain" and command.error == "give one rule id, e.g. MS101"


def test_ignore_for_the_whole_pull_request_or_one_migration():
    whole = parse_line("/migration-safe ignore MS101 -- the table has ten rows")
    assert (whole.rule, whole.migration, whole.reason, whole.error) == (
        "MS101", None, "the table has ten rows", None)
    assert whole.changes_verdict
    one = parse_line("/migration-safe ignore ms101 shop.0002_x -- reason -- with dashes")
    assert (one.rule, one.migration, one.reason) == ("MS101", "shop.0002_x", "reason -- with dashes")


@pytest.mark.parametrize("line", [
    "/migration-safe ignore MS101",
    "/migration-safe ignore MS101 shop.0002_x",
    "/migration-safe ignore MS101 shop.0002_x --",
    "/migration-safe ignore MS101 shop.0002_x --   ",
    "/migration-safe ignore MS101 -- ",
])
def test_ignore_needs_a_reason(line):
    command = parse_line(line.strip())
    assert command.error == "a reason is required after ` -- `", command


@pytest.mark.parametrize("line, error", [
    ("/migration-safe ignore", "give a rule id and optionally APP.MIGRATION"),
    ("/migration-safe ignore shop.0002_x MS101 -- why", "give a rule id and optionally APP.MIGRATION"),
    ("/migration-safe ignore MS101 shop.0002_x extra -- why", "give a rule id and optionally APP.MIGRATION"),
    ("/migration-safe ignore MS101 0002_x -- why", "`0002_x` is not APP.MIGRATION (e.g. shop.0007_add_sku)"),
])
def test_ignore_with_bad_arguments_is_not_understood(line, error):
    assert parse_line(line).error == error


def test_unignore_needs_no_reason():
    command = parse_line("/migration-safe unignore MS101 shop.0002_x")
    assert (command.name, command.rule, command.migration, command.error) == (
        "unignore", "MS101", "shop.0002_x", None)
    assert command.changes_verdict


@pytest.mark.parametrize("written, phase", [
    ("pre-deploy", Phase.PRE_DEPLOY), ("POST_DEPLOY", Phase.POST_DEPLOY), ("deferred", Phase.DEFERRED)])
def test_phase_takes_a_migration_a_phase_and_a_reason(written, phase):
    command = parse_line(f"/migration-safe phase shop.0003_fill {written} -- small table")
    assert (command.migration, command.phase, command.reason, command.error) == (
        "shop.0003_fill", phase, "small table", None)
    assert command.changes_verdict


@pytest.mark.parametrize("line, error", [
    ("/migration-safe phase shop.0003_fill pre-deploy", "a reason is required after ` -- `"),
    ("/migration-safe phase shop.0003_fill pre-deploy --", "a reason is required after ` -- `"),
    ("/migration-safe phase shop.0003_fill -- why", "give APP.MIGRATION and a phase"),
    ("/migration-safe phase pre-deploy shop.0003_fill -- why", "give APP.MIGRATION and a phase"),
    ("/migration-safe phase shop.0003_fill soon -- why",
     "unknown phase 'soon': expected one of pre-deploy, post-deploy, deferred"),
])
def test_phase_with_bad_arguments_is_not_understood(line, error):
    assert parse_line(line).error == error


def test_split_takes_one_migration():
    assert parse_line("/migration-safe split shop.0002_mixed").migration == "shop.0002_mixed"
    assert parse_line("/migration-safe split").error == "give APP.MIGRATION"
    assert parse_line("/migration-safe split 0002_mixed").error == "give APP.MIGRATION"
    assert not parse_line("/migration-safe split shop.0002_mixed").changes_verdict


@pytest.mark.parametrize("name", ["help", "recheck"])
def test_help_and_recheck_take_no_arguments(name):
    assert parse_line(f"/migration-safe {name} now").error == f"`{name}` takes no arguments"


def test_unknown_commands_keep_their_name_and_say_so():
    command = parse_line("/migration-safe approve everything")
    assert command.name == "approve" and command.error == "unknown command `approve`"
    assert not command.changes_verdict


def test_the_line_is_kept_as_written():
    line = "/migration-safe ignore MS101 shop.0002_x -- the table is tiny"
    assert parse_line(line).text == line


def test_help_lists_every_command_and_who_may_use_them():
    text = help_text()
    for usage in USAGE.values():
        assert f"`{usage}`" in text
    assert "write access" in text


def test_a_comment_holds_at_most_max_commands_and_the_rest_are_counted():
    body = "/migration-safe recheck\n" * 200_000  # 4.6 MB, as a hostile comment was
    found = find_commands(body)
    assert len(found.commands) == MAX_COMMANDS == 10 and found.ignored == 200_000 - MAX_COMMANDS
    assert commands_in(body) == found.commands


def test_lines_that_are_not_commands_do_not_count_towards_the_cap():
    body = "\n".join(["/migration-safe help"] * MAX_COMMANDS + ["> /migration-safe recheck", "text", "```",
                                                                  "/migration-safe recheck", "```"])
    assert find_commands(body) == Found(commands_in(body), 0)
