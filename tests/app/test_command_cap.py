"""A comment of many commands: the first MAX_COMMANDS run, and the reply says the rest were ignored."""
from __future__ import annotations

import pytest

from migration_safe.app.commands.parser import MAX_COMMANDS
from migration_safe_rules import catalogue

from .test_commands import IGNORE, index_pr, pr  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow


def test_commands_past_the_cap_are_ignored_and_the_reply_says_so(index_pr):  # noqa: F811
    pr = index_pr
    body = "\n".join(["/migration-safe explain MS101"] * MAX_COMMANDS + [IGNORE] * 3)
    comment = pr.say(body, user="alice")  # alice may acknowledge: only the cap stops her ignore
    reply = pr.reply()
    assert reply.count(catalogue()["MS101"].docs.strip()) == MAX_COMMANDS
    assert f"Only the first {MAX_COMMANDS} commands of a comment are run: the 3 after them were ignored." in reply
    assert "acknowledged" not in reply
    assert pr.reactions(comment) == ["eyes", "confused"]
    pr.say("/migration-safe recheck", user="mia")  # a later review re-reads every comment
    assert pr.conclusion == "failure"
