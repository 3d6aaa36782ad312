"""Hostile pull requests against what the App publishes: real App, real worker, the fake GitHub.

Every body the App publishes (check-run summary and text, the summary comment, review
comments, command replies) is rendered with GitHub's own renderer (cmark-gfm) and read
back: no raw HTML, no mention, reference or link outside code but the App's own, the
fences intact, one verdict heading and it is the App's.
"""
from __future__ import annotations

import os

import pytest
from github import Auth, Github

from migration_safe.app.publication import FINDING_MARKER, SUMMARY_MARKER
from migration_safe.app.settings import settings_from_environment
from migration_safe.report._common import DOCS_URL

from published import render
from .test_commands import Pr

pytestmark = pytest.mark.slow

FORGED_HEADING = "## ✅ migration-safe: 1 migration(s), nothing blocks"
HOSTILE = (f"x` {FORGED_HEADING} cc @acme/dba-team <img src=https://tracker.example/p.gif> "
           "[✅ safe](https://evil.example/) <details><summary>hidden</summary> <!-- the rest is hidden")
HOSTILE_LINES = ["```", FORGED_HEADING, "", "cc @acme/dba-team", '<img src="https://tracker.example/p.gif">',
                 "[✅ safe](https://evil.example/)", "<!--"]
SQL = "SELECT '\n" + "\n".join(HOSTILE_LINES) + "\n';"

HOSTILE_MIGRATION = f'''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        migrations.RenameField("product", "title", {HOSTILE!r}),
        migrations.RunSQL({SQL!r}, migrations.RunSQL.noop),
        migrations.AddIndex("product", models.Index(fields=["price"], name="product_price_idx")),
    ]
'''
# A file name of the same kind: a backtick ends a code span sized for none, "<" starts HTML.
HOSTILE_PATH = "shop/migrations/0002_x`y <img src=x> @acme-dba.py"


def bodies(h, pull: int = 1) -> dict[str, str]:
    """Every markdown body the App published on the PR, by where GitHub shows it."""
    out = {}
    for run in h.fake.check_runs("acme", "shop"):
        out[f"check run {run['id']} summary"] = run["output"]["summary"] or ""
        out[f"check run {run['id']} text"] = run["output"]["text"] or ""
    for comment in h.fake.issue_comments("acme", "shop", pull):
        if comment["user"]["login"] == h.fake.bot_login:
            out[f"comment {comment['id']}"] = comment["body"]
    for review in h.fake.reviews("acme", "shop", pull):
        if review["user"]["login"] == h.fake.bot_login:
            out[f"review {review['id']}"] = review["body"]
            out.update({f"review comment {c['id']}": c["body"] for c in review["comments"]})
    return out


def assert_only_the_apps_markup(h, expected_heading: str | None = None) -> dict[str, str]:
    published = bodies(h)
    for where, body in published.items():
        shown = render(body)
        assert shown.problems(own_links=(DOCS_URL,), mentions=("@alice", "@bob")) == [], where
        headings = [text for tag, text in shown.headings if tag in ("h1", "h2")]
        assert headings in ([], [expected_heading]), where
        assert not any("nothing blocks" in text for _, text in shown.headings), where
    return published


def open_pr(h, files: dict[str, str | bytes]) -> None:
    h.project.git("checkout", "-q", "feature")
    for path, content in files.items():
        target = h.project.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    h.project.commit("hostile")
    h.project.git("checkout", "-q", "main")
    h.fake.open_pull("acme", "shop", head="feature", base="main")
    assert h.deliver("pull_request", "opened", pull=1).status_code == 202
    h.work()


# ---------------------------------------------------------------- PR text never becomes markup


def test_hostile_names_sql_and_file_name_are_published_as_code(app_harness):
    h = app_harness
    open_pr(h, {HOSTILE_PATH: HOSTILE_MIGRATION})
    [run] = h.run()
    assert run["conclusion"] == "failure"
    heading = render(run["output"]["summary"]).headings[0][1]
    assert heading.startswith("❌ migration-safe:")
    published = assert_only_the_apps_markup(h, heading)

    # the fence held: the whole SQL, backtick lines and all, is one code block in the text…
    text = render(run["output"]["text"])
    assert any(SQL.rstrip(";") in block for block in text.code), run["output"]["text"]
    # …and in the summary comment
    [summary] = [b for w, b in published.items() if w.startswith("comment")]
    assert any(SQL.rstrip(";") in block for block in render(summary).code)
    # the hostile name and file name are there, as code: said, not obeyed
    assert any(HOSTILE in block for block in render(summary).code)
    assert any(HOSTILE_PATH in block for block in render(summary).code)
    # the inline comments were posted, on the file with that name
    [review] = h.fake.reviews("acme", "shop", 1)
    assert {c["path"] for c in review["comments"]} == {HOSTILE_PATH}
    assert {c["body"].split("**")[1] for c in review["comments"]} >= {"MS101", "MS108"}


SHORT = "x` <img src=x> @acme/dba-team ## ✅"  # fits PostgreSQL's 63-byte names
FAILING_SQL = f'''
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [migrations.RunSQL({f'SELECT * FROM "{SHORT}"'!r}, migrations.RunSQL.noop)]
'''
RAISING = f'''
from django.db import migrations

raise RuntimeError({HOSTILE!r})


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [migrations.RunSQL("SELECT 1", migrations.RunSQL.noop)]
'''


@pytest.mark.parametrize("migration, said", [(FAILING_SQL, "does not exist"), (RAISING, "RuntimeError")],
                         ids=["postgresql-error", "sandbox-error"])
def test_postgresql_and_sandbox_errors_are_published_as_code(app_harness, migration, said):
    h = app_harness
    open_pr(h, {"shop/migrations/0002_x.py": migration})
    [run] = h.run()
    summary = run["output"]["summary"]
    assert said in summary and "acme/dba-team" in summary  # the error is there, quoted
    assert_only_the_apps_markup(h, render(summary).headings[0][1])


def test_hostile_command_lines_and_reason_are_escaped_in_replies_and_summary(app_harness):
    pr = Pr(app_harness).open({"0002_x": HOSTILE_MIGRATION})
    reason = " ".join(HOSTILE_LINES) + " " + HOSTILE
    pr.say("\n".join(HOSTILE_LINES[1:-1]) + f"\n/migration-safe ignore MS108 shop.0002_x -- {reason}", user="alice")
    pr.say(f"/migration-safe frobnicate {HOSTILE}", user="bob")
    reply, refused = pr.replies()
    assert "MS108 acknowledged for shop.0002_x" in reply and "unknown command" in refused
    heading = render(pr.run()["output"]["summary"]).headings[0][1]
    assert_only_the_apps_markup(app_harness, heading)
    assert "Acknowledged" in pr.summary() and "the rest is hidden" in render(pr.summary()).html


# ---------------------------------------------------------------- only the App's own comments count


def test_markers_count_only_in_the_apps_own_comments(app_harness):
    h = app_harness
    pr = Pr(h).open({"0002_x": HOSTILE_MIGRATION}, review=False)
    head = h.fake.pull("acme", "shop", 1)["head"]["sha"]
    forged_marker = FINDING_MARKER.format("MS108:shop.0002_x:0")
    for login, kind in (("mallory", "User"), ("other-app[bot]", "Bot")):
        gh = Github(auth=Auth.Token(h.fake.add_user_token(login, user_type=kind)), base_url=h.fake.url)
        pull = gh.get_repo("acme/shop").get_pull(1)
        pull.create_review(commit=gh.get_repo("acme/shop").get_commit(head), event="COMMENT", comments=[
            {"path": "shop/migrations/0002_x.py", "line": 8, "side": "RIGHT", "body": f"lgtm\n{forged_marker}"}])
        pull.create_issue_comment(f"{SUMMARY_MARKER}\n## ✅ all good")
    assert h.deliver("pull_request", "opened", pull=1).status_code == 202
    h.work()

    ours = [r for r in h.fake.reviews("acme", "shop", 1) if r["user"]["login"] == h.fake.bot_login]
    [review] = ours
    assert any(c["body"].startswith("**MS108**") for c in review["comments"])  # not silenced
    summaries = [c for c in h.fake.issue_comments("acme", "shop", 1) if SUMMARY_MARKER in c["body"]]
    assert [c["user"]["login"] for c in summaries] == ["mallory", "other-app[bot]", h.fake.bot_login]
    assert pr.summary().count("## ❌") == 1


def test_bot_login_is_learned_from_github_when_not_configured(app_harness, monkeypatch):
    from migration_safe.app.github import GitHubApp

    monkeypatch.delenv("GITHUB_APP_BOT_LOGIN")
    app = GitHubApp(settings_from_environment())
    before = len(app_harness.fake.find_requests("GET", r"/app$"))
    assert app.bot_login() == app_harness.fake.bot_login
    app.bot_login()
    assert len(app_harness.fake.find_requests("GET", r"/app$")) == before + 1  # asked once


# ---------------------------------------------------------------- GitHub's size limits


HUGE = "✅" * 35_000  # 35,000 characters, 105,000 bytes
OVERSIZED_MIGRATION = f'''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        migrations.RenameField("product", "title", {HUGE!r}),
        migrations.AddIndex("product", models.Index(fields=["price"], name="product_price_idx")),
        migrations.RemoveField("product", "legacy_code"),
        migrations.RenameField("customer", "email", "mail"),
    ]
'''


def test_oversized_name_and_reason_leave_every_other_finding_published(app_harness):
    h = app_harness
    refused = {"message": "Unprocessable Entity", "errors": ["Pull request review thread line must be part of the diff"]}
    h.fake.fail_next("POST", r"/repos/acme/shop/pulls/1/reviews$", 422, body=refused, times=1)
    pr = Pr(h).open({"0002_x": OVERSIZED_MIGRATION})
    run = pr.run()
    assert run["conclusion"] == "failure"
    assert len(run["output"]["summary"].encode()) <= 65535 and len((run["output"]["text"] or "").encode()) <= 65535
    assert "clipped" in run["output"]["text"] or "truncated" in run["output"]["text"]
    expected = sorted((a["start_line"], a["title"].split()[0]) for a in run["output"]["annotations"]
                      if a["annotation_level"] != "notice")
    assert {rule for _, rule in expected} >= {"MS101", "MS108"}
    # The first review was refused whole: each comment went again alone, and every one is there.
    comments = [c for r in h.fake.reviews("acme", "shop", 1) for c in r["comments"]]
    assert sorted((c["start_line"] or c["line"], c["body"].split("**")[1]) for c in comments) == expected
    assert all(len(c["body"]) <= 65536 for c in comments)
    assert len([c for c in comments if c["body"].startswith("**MS108**")]) == 2  # the huge name's and the other

    reason = HUGE[:20_000] + " " + "x" * 40_000  # a comment GitHub accepts: under 65,536 characters
    pr.say(f"/migration-safe ignore MS101 shop.0002_x -- {reason}", user="alice")
    [reply] = pr.replies()
    assert "MS101 acknowledged for shop.0002_x" in reply and len(reply) <= 65536
    summary = pr.summary()
    assert "Acknowledged" in summary and len(summary.encode()) <= 65536
    heading = render(pr.run()["output"]["summary"]).headings[0][1]
    assert_only_the_apps_markup(h, heading)


# ---------------------------------------------------------------- file names git would quote


RENAME = '''
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [
        migrations.RenameField(model_name="product", old_name="title", new_name="name"),
    ]
'''


@pytest.mark.parametrize("name", ["0002_\u0430dd_title", '0002_add"title', "0002_add\ttitle", "0002_add\ntitle"],
                         ids=["cyrillic", "quote", "tab", "newline"])
def test_migration_whose_name_git_would_quote_is_reviewed_by_the_app(app_harness, name):
    h = app_harness
    path = f"shop/migrations/{name}.py"
    open_pr(h, {path: RENAME})
    [run] = h.run()
    assert run["conclusion"] == "failure", run["output"]["summary"]
    assert {(a["path"], a["title"].split()[0]) for a in run["output"]["annotations"]} >= {(path, "MS108")}
    [review] = h.fake.reviews("acme", "shop", 1)
    assert [(c["path"], c["body"].split("**")[1]) for c in review["comments"]] == [(path, "MS108")]
    heading = render(run["output"]["summary"]).headings[0][1]
    assert heading.startswith("❌") and assert_only_the_apps_markup(h, heading)


# ---------------------------------------------------------------- what a checkout may cost


LIMIT_NAMES = {"MIGRATION_SAFE_MAX_FETCH_MB": "fetch size limit", "MIGRATION_SAFE_MAX_MIRROR_MB": "mirror size limit",
               "MIGRATION_SAFE_MAX_FILES": "file count limit"}


@pytest.mark.parametrize("variable", sorted(LIMIT_NAMES))
def test_pull_request_over_a_checkout_limit_fails_its_check_naming_the_limit(app_harness, monkeypatch, variable):
    h = app_harness
    files: dict[str, str | bytes] = {"shop/migrations/0002_x.py": RENAME}
    if variable == "MIGRATION_SAFE_MAX_FILES":
        monkeypatch.setenv(variable, "40")
        files.update({f"assets/file_{n}.txt": f"{n}\n" for n in range(60)})
    else:  # 3 MB that no compression makes smaller, over a 1 MB limit
        monkeypatch.setenv(variable, "1")
        files["assets/blob.bin"] = os.urandom(3_000_000)
    open_pr(h, files)

    [run] = h.run()
    assert run["status"] == "completed" and run["conclusion"] == "failure"
    summary = run["output"]["summary"]
    assert LIMIT_NAMES[variable] in summary and variable in summary
    assert h.queue.failed_job_registry.count == 0 and h.queue.scheduled_job_registry.count == 0  # not retried
    mirrors = settings_from_environment().cache_dir / "mirrors"
    assert not any(path.stat().st_size > 1_000_000 for path in mirrors.rglob("*.pack"))  # nothing kept
    assert h.fake.reviews("acme", "shop", 1) == [] and h.fake.issue_comments("acme", "shop", 1) == []
