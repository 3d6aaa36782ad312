"""`/migration-safe` commands end to end: webhook over HTTP, RQ worker on Redis, fake GitHub.

Each test opens a PR, lets the App review it, then writes PR comments as people
with a given role on the repository and reads back what GitHub shows: replies,
reactions, the check run, the summary comment and labels.
"""
from __future__ import annotations

import re

import pytest

from migration_safe.app.commands.registry import USAGE
from migration_safe.app.events import route
from migration_safe_rules import catalogue

from .samples import HEAD_FILES, UNIQUES

pytestmark = pytest.mark.slow

INDEX = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        migrations.AddIndex(
            model_name="product",
            index=models.Index(fields=["price"], name="product_price_idx"),
        ),
    ]
'''

RENAME = '''
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("shop", "0002_x")]

    operations = [
        migrations.RenameField(model_name="product", old_name="title", new_name="name"),
    ]
'''

BACKFILL = '''
from django.db import migrations


def fill(apps, schema_editor):
    pass


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
'''

NICKNAME = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0002_backfill")]

    operations = [
        migrations.AddField("customer", "nickname", models.CharField(max_length=50, null=True)),
    ]
'''

MIXED = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        migrations.AddField("customer", "nickname", models.CharField(max_length=50, null=True)),
        migrations.RemoveField("product", "legacy_code"),
    ]
'''

FILES = r"`(shop/migrations/[\w.]+)`\n```python\n(.*?)\n```"
IGNORE = "/migration-safe ignore MS101 shop.0002_x -- product has 40 rows, the lock lasts milliseconds"
REASON = "product has 40 rows, the lock lasts milliseconds"


class Pr:
    """One PR of the harness's repository, and the people who comment on it."""

    def __init__(self, h) -> None:
        self.h, self.fake = h, h.fake
        for login, role in (("alice", "write"), ("mia", "maintain"), ("bob", "read")):
            self.fake.set_role("acme", "shop", login, role)

    def open(self, migrations: dict[str, str], review: bool = True,
             files: dict[str, str] | None = None) -> "Pr":
        """`files`: other files of the head (path -> text), besides the shop app's migrations."""
        h = self.h
        h.project.git("checkout", "-q", "feature")
        for name, text in migrations.items():
            h.project.migration("shop", name, text)
        for path, text in (files or {}).items():
            h.project.write(path, text)
        h.project.commit("migrations")
        h.project.git("checkout", "-q", "main")
        h.fake.open_pull("acme", "shop", head="feature", base="main")
        if review:
            assert h.deliver("pull_request", "opened", pull=1).status_code == 202
            h.work()
        return self

    def say(self, body: str, user: str = "alice") -> int:
        """`user` comments on the PR; the App gets the delivery and its worker runs."""
        comment = self.fake.add_comment("acme", "shop", 1, body, user=user)
        self.deliver("created", comment["id"])
        return comment["id"]

    def edit(self, comment_id: int, body: str) -> None:
        self.fake.edit_comment("acme", "shop", comment_id, body)
        self.deliver("edited", comment_id)

    def delete(self, comment_id: int) -> None:
        self.fake.delete_comment("acme", "shop", comment_id)
        self.deliver("deleted", comment_id)

    def deliver(self, action: str, comment_id: int) -> None:
        response = self.h.deliver("issue_comment", action, pull=1, comment=comment_id)
        assert response.status_code in (200, 202), response.text
        self.h.work()

    # --- what GitHub shows ----------------------------------------------------

    def run(self) -> dict:
        """The check run GitHub shows for the head: the latest of its name (a re-review adds one)."""
        run = self.h.run()[-1]
        assert run["status"] == "completed"
        return run

    @property
    def conclusion(self) -> str:
        run = self.run()
        if run["conclusion"] == "neutral":  # the SQL could not be verified: say why, the test cannot pass
            pytest.fail(f"the review fell back to static analysis:\n{run['output']['summary']}")
        return run["conclusion"]

    def bot_comments(self) -> list[dict]:
        comments = self.fake.issue_comments("acme", "shop", 1)
        return [c for c in comments if c["user"]["login"] == self.fake.bot_login]

    def replies(self) -> list[str]:
        return [c["body"] for c in self.bot_comments() if "migration-safe:summary" not in c["body"]]

    def reply(self) -> str:
        """The App's one reply so far."""
        [reply] = self.replies()
        return reply

    def summary(self) -> str:
        [summary] = [c["body"] for c in self.bot_comments() if "migration-safe:summary" in c["body"]]
        return summary

    def reactions(self, comment_id: int) -> list[str]:
        return [r["content"] for r in self.fake.reactions("acme", "shop", comment_id)
                if r["user"]["login"] == self.fake.bot_login]

    def annotations(self) -> dict[str, str]:
        """rule -> annotation level on the current head."""
        return {a["title"].split()[0]: a["annotation_level"] for a in self.run()["output"]["annotations"]}


@pytest.fixture
def pr(app_harness) -> Pr:
    return Pr(app_harness)


@pytest.fixture
def index_pr(pr) -> Pr:
    """A PR whose only migration builds an index without CONCURRENTLY: MS101 blocks."""
    pr.open({"0002_x": INDEX})
    assert pr.conclusion == "failure"
    assert pr.annotations()["MS101"] == "failure"
    return pr


# ---------------------------------------------------------------- commands anyone may use


def test_help_is_answered_with_every_command_and_reactions(pr):
    pr.open({"0002_x": INDEX}, review=False)
    comment = pr.say("Which commands are there?\n/migration-safe help", user="bob")
    reply = pr.reply()
    assert reply.startswith("> Which commands are there?\n> /migration-safe help")  # says what it answers
    assert "@bob" in reply
    for usage in USAGE.values():
        assert f"`{usage}`" in reply
    assert pr.reactions(comment) == ["eyes", "+1"]
    assert pr.h.run() == []  # help does not review


def test_explain_replies_with_the_rules_documentation(pr):
    pr.open({"0002_x": INDEX}, review=False)
    comment = pr.say("/migration-safe explain ms101", user="bob")
    docs = catalogue()["MS101"].docs
    assert docs.strip() in pr.reply()
    assert pr.reactions(comment) == ["eyes", "+1"]


def test_explain_of_an_unknown_rule_is_refused(pr):
    pr.open({"0002_x": INDEX}, review=False)
    comment = pr.say("/migration-safe explain MS999", user="bob")
    assert "There is no rule MS999." in pr.reply()
    assert pr.reactions(comment) == ["eyes", "confused"]


def test_recheck_by_anyone_reviews_the_head_again(index_pr):
    pr = index_pr
    pr.fake.clear_requests()
    comment = pr.say("/migration-safe recheck", user="bob")
    assert "Re-reviewed the current head." in pr.reply()
    assert pr.reactions(comment) == ["eyes", "+1"]
    assert pr.fake.find_requests("PATCH", r"/check-runs/\d+$")  # a check run was completed again
    assert pr.conclusion == "failure"


def test_split_replies_with_the_plan(pr):
    pr.open({"0002_mixed": MIXED})
    assert "migration: needs-split" in pr.fake.labels("acme", "shop", 1)
    comment = pr.say("/migration-safe split shop.0002_mixed", user="bob")
    reply = pr.reply()
    assert "Split shop.0002_mixed into one migration per phase" in reply
    assert "line 8 (pre-deploy): Add field nickname to customer" in reply
    # The files come from plan_fixes, as `autofix: push` and `migration-safe fix` write them.
    assert "split into 0002_mixed (pre-deploy), 0003_mixed_post_deploy (post-deploy)" in reply
    files = re.findall(FILES, reply, re.S)
    assert [path for path, _ in files] == ["shop/migrations/0002_mixed.py", "shop/migrations/0003_mixed_post_deploy.py"]
    first, second = (source for _, source in files)
    compile(first, "first", "exec")
    compile(second, "second", "exec")
    assert 'deploy_phase = "pre-deploy"' in first and "RemoveField" not in first
    assert 'deploy_phase = "post-deploy"' in second and "AddField" not in second
    assert "[('shop', '0002_mixed')]" in second
    assert pr.reactions(comment) == ["eyes", "+1"]


def test_split_of_a_single_phase_migration_still_offers_its_safe_rewrite(index_pr):
    pr = index_pr
    comment = pr.say("/migration-safe split shop.0002_x", user="bob")
    reply = pr.reply()
    assert "shop.0002_x needs no split: all its operations are pre-deploy." in reply
    [(path, source)] = re.findall(FILES, reply, re.S)
    assert path == "shop/migrations/0002_x.py"
    assert "AddIndexConcurrently(" in source and "atomic = False" in source
    assert pr.reactions(comment) == ["eyes", "+1"]


def test_split_offers_what_migration_safe_fix_writes_on_the_head(pr, tmp_path):
    # The head's config places shop_order's build; its requirements ask for django-pg-migration-tools.
    pr.open({"0002_uniques": UNIQUES}, files=HEAD_FILES)
    comment = pr.say("/migration-safe split shop.0002_uniques", user="bob")
    offered = dict(re.findall(FILES, pr.reply(), re.S))
    fixed = pr.h.fixed_by_cli(pr.fake.pull("acme", "shop", 1)["head"]["sha"], tmp_path / "cli")
    assert offered == {path: text.rstrip() for path, text in fixed.items()}
    assert "SaferAddUniqueConstraint(" in offered["shop/migrations/0002_uniques.py"]
    assert "SaferAddUniqueConstraint(" in offered["shop/migrations/0003_uniques_concurrent_indexes.py"]
    assert pr.reactions(comment) == ["eyes", "+1"]


BIGGER = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [migrations.AlterField("product", "price", models.CharField(max_length=20))]
'''


def test_what_fix_leaves_is_said_with_its_reason_in_the_summary_and_the_split_reply(pr):
    pr.open({"0002_bigger": BIGGER})
    reason = "MS105: a type change rewrites the table: expand and contract"
    assert "Left for you by `migration-safe fix`, and why" in pr.summary() and reason in pr.summary()
    pr.say("/migration-safe split shop.0002_bigger", user="bob")
    reply = pr.reply()
    assert "Left for you, and why `migration-safe fix` cannot do it:" in reply and reason in reply


def test_split_of_a_migration_the_pull_request_does_not_add_is_refused(pr):
    pr.open({"0002_mixed": MIXED})
    comment = pr.say("/migration-safe split shop.0009_nope", user="bob")
    assert "This pull request adds no migration shop.0009_nope." in pr.reply()
    assert pr.reactions(comment) == ["eyes", "confused"]


def test_unknown_command_and_bad_arguments_get_the_usage(pr):
    pr.open({"0002_x": INDEX}, review=False)
    comment = pr.say("/migration-safe approve\n/migration-safe ignore MS101 shop.0002_x", user="alice")
    reply = pr.reply()
    assert "`/migration-safe approve`: unknown command `approve`." in reply
    assert ("`/migration-safe ignore MS101 shop.0002_x`: a reason is required after `  --  `. "
            f"Usage: `{USAGE['ignore']}`.") in reply
    assert f"`{USAGE['phase']}`" in reply  # the whole list follows
    assert pr.reactions(comment) == ["eyes", "confused"]
    assert pr.h.run() == []  # nothing was understood: no review


# ---------------------------------------------------------------- acknowledgements


def test_ignore_by_a_writer_turns_the_check_green_and_says_who_and_why(index_pr):
    pr = index_pr
    comment = pr.say(IGNORE, user="alice")
    assert pr.conclusion == "success"
    run = pr.run()
    when = r"acknowledged by alice on \d{4}-\d\d-\d\d[ T][\d:]+(\+00:00|Z)?: "
    assert re.search(when + re.escape(REASON), run["output"]["summary"])
    assert re.search(when + re.escape(REASON), pr.summary())
    assert pr.annotations()["MS101"] == "notice"
    assert f"MS101 acknowledged for shop.0002_x: it no longer blocks. Reason: {REASON}" in pr.reply()
    assert pr.reactions(comment) == ["eyes", "+1"]
    # the permission was asked of the API, not taken from the delivery
    assert pr.fake.find_requests("GET", "/collaborators/alice/permission")


def test_a_maintainer_may_ignore_too(index_pr):
    pr = index_pr
    pr.say(IGNORE, user="mia")
    assert pr.conclusion == "success"
    assert "acknowledged by mia" in pr.summary()


def test_ignore_by_a_reader_is_refused_politely_and_never_applies(index_pr):
    pr = index_pr
    comment = pr.say(IGNORE, user="bob")
    assert "Sorry @bob, `ignore` changes the verdict and needs write access to this repository." in pr.reply()
    assert pr.reactions(comment) == ["eyes", "confused"]
    assert pr.conclusion == "failure"
    # a later review re-reads the comments: bob's command still does not count
    pr.say("/migration-safe recheck", user="alice")
    assert pr.conclusion == "failure"
    assert "acknowledged by bob" not in pr.summary()


def test_ignore_for_the_whole_pull_request(index_pr):
    pr = index_pr
    pr.say("/migration-safe ignore MS101 -- all tables here are tiny", user="alice")
    assert pr.conclusion == "success"
    assert "MS101 acknowledged for every migration of this pull request" in pr.reply()


def test_ignore_of_another_migration_does_not_apply(index_pr):
    pr = index_pr
    comment = pr.say("/migration-safe ignore MS101 shop.0009_other -- not this one", user="alice")
    assert pr.conclusion == "failure"
    assert ("MS101 acknowledged for shop.0009_other, but no migration there has a MS101 finding now; "
            "the acknowledgement applies if one appears.") in pr.reply()
    assert pr.reactions(comment) == ["eyes", "+1"]  # taken: it applies if that migration comes


def test_a_quoted_command_is_not_run(index_pr):
    pr = index_pr
    comment = pr.say(f"> {IGNORE}\n\nI don't think we should do that.", user="alice")
    assert pr.replies() == [] and pr.reactions(comment) == []
    assert pr.conclusion == "failure"
    pr.say("/migration-safe recheck", user="alice")  # and a later review does not read it either
    assert pr.conclusion == "failure"


def test_a_command_in_a_code_block_is_not_run(index_pr):
    pr = index_pr
    comment = pr.say(f"To silence it, write:\n```\n{IGNORE}\n```", user="alice")
    assert pr.replies() == [] and pr.reactions(comment) == []
    assert pr.conclusion == "failure"


def test_the_bots_own_comments_are_never_commands(index_pr):
    pr = index_pr
    comment = pr.say(IGNORE, user=pr.fake.bot_login)
    assert pr.reactions(comment) == []
    pr.say("/migration-safe recheck", user="alice")
    assert pr.conclusion == "failure"


def test_two_commands_in_one_comment_get_one_reply(index_pr):
    pr = index_pr
    comment = pr.say(f"/migration-safe explain MS101\n{IGNORE}", user="alice")
    reply = pr.reply()
    assert catalogue()["MS101"].docs.strip() in reply
    assert "MS101 acknowledged for shop.0002_x" in reply
    assert reply.index("non-concurrent-index") < reply.index("MS101 acknowledged")  # in the order written
    assert pr.reactions(comment) == ["eyes", "+1"]
    assert pr.conclusion == "success"


def test_unignore_brings_the_failure_back(index_pr):
    pr = index_pr
    pr.say(IGNORE, user="alice")
    assert pr.conclusion == "success"
    refused = pr.say("/migration-safe unignore MS101 shop.0002_x", user="bob")
    assert pr.reactions(refused) == ["eyes", "confused"]
    assert pr.conclusion == "success"
    comment = pr.say("/migration-safe unignore MS101", user="mia")
    assert "MS101 is no longer acknowledged." in pr.replies()[-1]
    assert pr.reactions(comment) == ["eyes", "+1"]
    assert pr.conclusion == "failure"


def test_editing_the_command_changes_the_result(index_pr):
    pr = index_pr
    comment = pr.say(IGNORE, user="alice")
    assert pr.conclusion == "success"

    pr.edit(comment, IGNORE.replace("shop.0002_x", "shop.0003_other"))  # now about another migration
    assert pr.conclusion == "failure"
    assert "MS101 acknowledged for shop.0003_other" in pr.replies()[-1]

    pr.edit(comment, "/migration-safe ignore MS101 shop.0002_x")  # the reason edited away
    assert pr.conclusion == "failure"
    assert "a reason is required" in pr.replies()[-1]
    assert pr.reactions(comment) == ["eyes", "confused"]  # the +1 of the old text is gone

    pr.edit(comment, IGNORE)
    assert pr.conclusion == "success"
    assert pr.reactions(comment) == ["eyes", "+1"]

    replies = len(pr.replies())
    pr.edit(comment, "Never mind, I'll make the index concurrent.")  # no command left at all
    assert pr.conclusion == "failure"
    assert "acknowledged by alice" not in pr.summary()
    assert len(pr.replies()) == replies and pr.reactions(comment) == []


def test_deleting_the_command_brings_the_failure_back(index_pr):
    pr = index_pr
    comment = pr.say(IGNORE, user="alice")
    assert pr.conclusion == "success"
    pr.delete(comment)
    assert pr.conclusion == "failure"
    assert "acknowledged by alice" not in pr.summary()


def test_an_acknowledgement_follows_new_heads_but_new_findings_still_fail(index_pr):
    pr = index_pr
    pr.say(IGNORE, user="alice")
    assert pr.conclusion == "success"

    pr.h.push({"shop/migrations/0003_rename.py": RENAME})
    assert pr.h.deliver("pull_request", "synchronize", pull=1).status_code == 202
    pr.h.work()

    assert pr.conclusion == "failure"  # on the new head
    annotations = pr.annotations()
    assert (annotations["MS101"], annotations["MS108"]) == ("notice", "failure")
    summary = pr.summary()
    assert "acknowledged by alice" in summary and "MS108" in summary
    assert "1 of 2 migration(s)" in pr.run()["output"]["title"]


def test_only_comments_that_hold_or_held_a_command_are_routed(pr):
    pr.open({"0002_x": INDEX}, review=False)
    fake = pr.fake

    def job(action, comment_id):
        payload = fake.webhook_payload("issue_comment", action, pull=1, comment=comment_id)
        return route("issue_comment", payload, fake.bot_login)

    chat = fake.add_comment("acme", "shop", 1, "LGTM", user="alice")["id"]
    assert job("created", chat) is None
    fake.edit_comment("acme", "shop", chat, "LGTM!")
    assert job("edited", chat) is None
    fake.delete_comment("acme", "shop", chat)
    assert job("deleted", chat) is None  # nothing a review reads went away

    command = fake.add_comment("acme", "shop", 1, IGNORE, user="alice")["id"]
    assert job("created", command).action == "created"
    fake.delete_comment("acme", "shop", command)
    assert job("deleted", command).action == "deleted"

    edited = fake.add_comment("acme", "shop", 1, IGNORE, user="alice")["id"]
    fake.edit_comment("acme", "shop", edited, "never mind")
    assert job("edited", edited).action == "edited"  # the command was edited away
    fake.delete_comment("acme", "shop", edited)
    assert job("deleted", edited) is None  # already withdrawn by the edit


# ---------------------------------------------------------------- phase overrides


def test_phase_override_accepted_when_safe(pr):
    pr.open({"0002_backfill": BACKFILL, "0003_nickname": NICKNAME})
    assert pr.conclusion == "failure"  # MS114: a pre-deploy migration depends on a deferred one
    assert pr.annotations()["MS114"] == "failure"
    assert set(pr.fake.labels("acme", "shop", 1)) == {"migration: pre-deploy", "migration: deferred"}

    comment = pr.say("/migration-safe phase shop.0002_backfill pre-deploy -- it touches ten rows",
                     user="alice")
    assert "shop.0002_backfill now runs pre-deploy. Reason: it touches ten rows" in pr.reply()
    assert pr.reactions(comment) == ["eyes", "+1"]
    assert pr.conclusion == "success"
    assert set(pr.fake.labels("acme", "shop", 1)) == {"migration: pre-deploy"}


def test_phase_override_refused_when_the_rules_show_it_unsafe(pr):
    pr.open({"0002_backfill": BACKFILL, "0003_nickname": NICKNAME})
    comment = pr.say("/migration-safe phase shop.0003_nickname post-deploy -- later is fine", user="alice")
    assert ("Refused: shop.0003_nickname cannot run post-deploy: its changes are needed by the new code, "
            "so they must run before the deploy.") in pr.reply()
    assert pr.reactions(comment) == ["eyes", "confused"]
    assert pr.conclusion == "failure"
    assert "migration: post-deploy" not in pr.fake.labels("acme", "shop", 1)


def test_phase_override_refused_for_a_large_table_of_the_heads_config(pr):
    pr.open({"0002_x": INDEX}, files={".github/migration-safe.yml": "tables:\n  large: [shop_product]\n"})
    comment = pr.say("/migration-safe phase shop.0002_x pre-deploy -- it is quick", user="alice")
    assert ("Refused: shop.0002_x cannot run pre-deploy: it does long-running work on a large table, "
            "which must not hold up the deploy.") in pr.reply()
    assert pr.reactions(comment) == ["eyes", "confused"]


def test_phase_override_needs_write_access(pr):
    pr.open({"0002_backfill": BACKFILL, "0003_nickname": NICKNAME})
    comment = pr.say("/migration-safe phase shop.0002_backfill pre-deploy -- ten rows", user="bob")
    assert "Sorry @bob, `phase` changes the verdict" in pr.reply()
    assert pr.reactions(comment) == ["eyes", "confused"]
    assert pr.conclusion == "failure"


# ---------------------------------------------------------------- closed pull requests


def test_a_command_on_a_closed_pull_request_gets_a_short_note(index_pr):
    pr = index_pr
    pr.fake.close_pull("acme", "shop", 1)
    comment = pr.say(IGNORE, user="alice")
    reply = pr.reply()
    assert "This pull request is closed: commands are not run." in reply
    assert "@alice" in reply and len(reply) < 300
    assert pr.reactions(comment) == ["confused"]
    assert pr.conclusion == "failure"
