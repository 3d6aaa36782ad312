"""Slash commands as a registry: what each command answers, decided from plain data (no server, no GitHub),
and the registry as the one place a command is declared."""
from __future__ import annotations

import re

import grimp
import pytest

from migration_safe.app.commands.base import PREFIX, CommandState, Reply, Signed, Spec, no_args
from migration_safe.app.commands.parser import MAX_COMMANDS, parse_line
from migration_safe.app.commands.registry import COMMANDS, USAGE, VERDICT_CHANGING, help_text
from migration_safe.app.commands.replies import Author, answer, asks_write, conclude, finish, reply_body, state_of
from migration_safe.app.reviewed import Reviewed
from migration_safe.config import Config
from migration_safe.engine.model import (Finding, MigrationFile, MigrationVerdict, Phase, PhaseOverride, Review,
                                         Severity)
from migration_safe_rules import catalogue

READER, WRITER = Author("rita", False), Author("walt", True)
LABEL = "shop.0002_add_sku"


def reviewed(*verdicts: MigrationVerdict) -> Reviewed:
    return Reviewed(Review(migrations=list(verdicts)), Config())


def verdict(phase: Phase | None = Phase.POST_DEPLOY, *, override: Phase | None = None,
            rules: tuple[str, ...] = ()) -> MigrationVerdict:
    app, name = LABEL.split(".")
    return MigrationVerdict(
        MigrationFile(f"{app}/migrations/{name}.py", name, app), operations=[],
        findings=[Finding(rule, Severity.ERROR, "locks the table", "do it concurrently") for rule in rules],
        phase=phase, needs_split=phase is None, sql_status="ok",
        phase_override=PhaseOverride(LABEL, override, "walt", "tiny table") if override else None)


def reply_to(line: str, author: Author = WRITER, after: Reviewed | None = None) -> Reply:
    command = parse_line(line)
    return answer(command, author) or finish(command, after)


# ---------------------------------------------------------------- the registry is the single source


def test_every_command_in_help_has_a_parser_an_answer_and_a_usage():
    listed = re.findall(r"^- `" + re.escape(PREFIX) + r" (\w+)", help_text(), re.MULTILINE)
    assert listed == list(COMMANDS) == list(USAGE)
    for name, spec in COMMANDS.items():
        assert spec.usage.startswith(f"{PREFIX} {name}")
        assert parse_line(f"{PREFIX} {name}").error != f"unknown command `{name}`"
        assert (spec.answer is None) != (spec.finish is None)


def test_a_command_with_neither_or_both_ways_of_answering_is_refused_at_registration():
    def answered(args, context):
        return Reply("", True)

    def finished(args, reviewed):
        return Reply("", True)

    with pytest.raises(TypeError, match="either an answer or a finish"):
        Spec("noop", f"{PREFIX} noop", no_args)
    with pytest.raises(TypeError, match="either an answer or a finish"):
        Spec("noop", f"{PREFIX} noop", no_args, answer=answered, finish=finished)


def test_only_the_commands_that_record_something_change_the_verdict_and_help_says_who_may_use_them():
    assert VERDICT_CHANGING == ("ignore", "unignore", "phase")
    assert [name for name, spec in COMMANDS.items() if spec.record] == list(VERDICT_CHANGING)
    assert help_text().endswith("\n\n`ignore`, `unignore` and `phase` need write access to the repository.")
    assert [parse_line(f"{PREFIX} {name}").changes_verdict for name in COMMANDS] == \
        [name in VERDICT_CHANGING for name in COMMANDS]


def test_an_unknown_name_is_refused_with_the_help_and_no_usage():
    reply = reply_to(f"{PREFIX} approve everything")
    assert reply == Reply(f"`{PREFIX} approve everything`: unknown command `approve`.\n\n{help_text()}", False)
    assert not parse_line(f"{PREFIX} approve everything").changes_verdict


def test_a_line_its_command_does_not_understand_gets_that_commands_usage_and_the_help():
    reply = reply_to(f"{PREFIX} phase {LABEL} sideways -- why not")
    assert reply.text.startswith(f"`{PREFIX} phase {LABEL} sideways -- why not`: unknown phase 'sideways'")
    assert f"Usage: `{USAGE['phase']}`.\n\n{help_text()}" in reply.text and not reply.success


# ---------------------------------------------------------------- answered at once


def test_help_and_the_bare_prefix_answer_the_help_text():
    assert reply_to(f"{PREFIX} help", READER) == reply_to(PREFIX, READER) == Reply(help_text(), True)


def test_explain_answers_the_rules_docs_and_refuses_a_rule_that_does_not_exist():
    rule = next(iter(catalogue().values()))
    reply = reply_to(f"{PREFIX} explain {rule.id.lower()}", READER)
    assert reply.success and rule.docs.splitlines()[0] in reply.text and reply.text.startswith("```")
    assert reply_to(f"{PREFIX} explain MS999", READER) == Reply("There is no rule MS999.", False)


@pytest.mark.parametrize("line", [f"{PREFIX} ignore MS101 -- tiny table", f"{PREFIX} unignore MS101",
                                  f"{PREFIX} phase {LABEL} deferred -- tiny table"])
def test_a_command_that_changes_the_verdict_needs_write_access(line):
    command = parse_line(line)
    assert answer(command, READER) == Reply(f"Sorry @rita, `{command.name}` changes the verdict and needs write "
                                            "access to this repository.", False)
    assert answer(command, WRITER) is None  # the head is reviewed anew first
    assert asks_write([command])


def test_github_is_asked_about_write_access_only_for_a_well_formed_verdict_changing_command():
    commands = [parse_line(f"{PREFIX} recheck"), parse_line(f"{PREFIX} split {LABEL}"),
                parse_line(f"{PREFIX} ignore MS101")]  # no reason: refused before any permission matters
    assert not asks_write(commands)
    assert [answer(c, READER) is None for c in commands] == [True, True, False]


# ---------------------------------------------------------------- answered after the review


def test_recheck_says_the_head_was_reviewed():
    assert reply_to(f"{PREFIX} recheck", READER, None) == Reply("Re-reviewed the current head.", True)


def test_ignore_says_when_no_migration_has_the_finding_it_acknowledges():
    line = f"{PREFIX} ignore ms101 {LABEL} -- the table is tiny"
    assert reply_to(line, after=reviewed(verdict(rules=("MS101",)))) == Reply(
        "MS101 acknowledged for shop.0002_add_sku: it no longer blocks. Reason: the table is tiny", True)
    assert reply_to(line, after=reviewed(verdict(rules=("MS102",)))).text.startswith(
        "MS101 acknowledged for shop.0002_add_sku, but no migration there has a MS101 finding now")
    whole = reply_to(f"{PREFIX} ignore MS101 -- tiny", after=None)
    assert whole == Reply("MS101 acknowledged for every migration of this pull request: it no longer blocks. "
                          "Reason: tiny", True)


def test_unignore_names_the_migration_when_given_one():
    assert reply_to(f"{PREFIX} unignore MS101").text == "MS101 is no longer acknowledged."
    assert reply_to(f"{PREFIX} unignore MS101 {LABEL}").text == \
        "MS101 is no longer acknowledged for shop.0002_add_sku."


def test_phase_succeeds_only_if_the_review_applied_it():
    line = f"{PREFIX} phase {LABEL} deferred -- backfill can wait"
    assert reply_to(line, after=reviewed(verdict(override=Phase.DEFERRED))) == Reply(
        "shop.0002_add_sku now runs deferred. Reason: backfill can wait", True)
    refused = reply_to(f"{PREFIX} phase {LABEL} pre-deploy -- sooner", after=reviewed(verdict(Phase.POST_DEPLOY)))
    assert refused == Reply("Refused: shop.0002_add_sku cannot run pre-deploy: it removes or constrains what "
                            "the old code still uses, so it must wait until after the deploy.", False)


@pytest.mark.parametrize("line", [f"{PREFIX} phase {LABEL} deferred -- later", f"{PREFIX} split {LABEL}"])
@pytest.mark.parametrize("after", [None, reviewed()], ids=["no review", "no such migration"])
def test_phase_and_split_fail_for_a_migration_the_review_does_not_have(line, after):
    assert reply_to(line, after=after) == Reply("This pull request adds no migration shop.0002_add_sku.", False)


# ---------------------------------------------------------------- the whole reply


def test_the_comment_gets_a_thumbs_up_only_if_every_command_did_what_it_asked():
    done, refused = Reply("done", True), Reply("refused", False)
    assert conclude([done, done], 0).reaction == "+1"
    assert conclude([done, refused], 0).reaction == "confused"
    capped = conclude([done], 3)
    assert capped.lines == ["done", f"Only the first {MAX_COMMANDS} commands of a comment are run: the 3 after "
                                    "them were ignored."] and capped.reaction == "confused"


def test_the_reply_quotes_the_first_lines_as_text_and_mentions_the_author():
    body = "<b>hi</b> @team\n" + "\n".join(f"line {n}" for n in range(1, 10))
    text = reply_body(body, "walt", ["first", "", "second"])
    quoted, mention, *answers = text.split("\n\n")
    assert quoted.splitlines()[0] == "> \\<b\\>hi\\</b\\> @\u200bteam" and len(quoted.splitlines()) == 5
    assert mention == "@walt" and answers == ["first", "second"]


# ---------------------------------------------------------------- what every review applies


def test_the_acknowledgements_and_overrides_follow_the_commands_in_the_order_written():
    def by(login, line):
        return parse_line(line), Signed(login, f"2026-01-0{len(login)}")

    state = state_of([by("ann", f"{PREFIX} ignore MS101 -- first"),
                      by("bob", f"{PREFIX} ignore MS102 {LABEL} -- one migration"),
                      by("cleo", f"{PREFIX} ignore MS101 -- again, later"),
                      by("dan", f"{PREFIX} unignore MS102"),
                      by("eve", f"{PREFIX} phase {LABEL} deferred -- can wait")])
    assert [(a.rule, a.migration, a.by, a.reason) for a in state.acknowledgements] == \
        [("MS101", None, "cleo", "again, later")]
    assert state.overrides == {LABEL: PhaseOverride(LABEL, Phase.DEFERRED, "eve", "can wait", "2026-01-03")}
    assert state_of([]) == CommandState()


# ---------------------------------------------------------------- no import circle


def test_the_commands_import_nothing_of_the_worker_or_the_queue():
    graph = grimp.build_graph("migration_safe", cache_dir=None)
    for module in ("migration_safe.app.worker", "migration_safe.app.queue", "migration_safe.app.sqlitequeue"):
        assert not graph.chain_exists("migration_safe.app.commands", module, as_packages=True), \
            graph.find_shortest_chains("migration_safe.app.commands", module)
    assert graph.nominate_cycle_breakers("migration_safe.app") == set()  # no circle among the app's modules

