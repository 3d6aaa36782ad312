"""`autofix: push` end to end: the App commits a review's safe rewrites to the PR's own branch.

Real Flask over HTTP, a real RQ worker on real Redis, the fake GitHub over HTTP,
and git's smart HTTP for the push: what lands is read back from the fake's
git repository.
"""
from __future__ import annotations

import subprocess

import pytest

from migration_safe.app import autopush, checkout
from migration_safe.config import ConfigError, load_config
from migration_safe.engine.fix.plan import FixPlan, plan_fixes
from migration_safe.engine.review.pipeline import ReviewRequest, run_review
from projects import GitProject

from .samples import HEAD_FILES, LARGE_ORDERS, NICKNAME, UNIQUES

pytestmark = pytest.mark.slow

# An index built without CONCURRENTLY on an existing table: MS101 blocks, and one rewrite fixes it.
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
MIGRATION = "shop/migrations/0002_price_index.py"
PUSH = "autofix: push\n"


def open_pr(h, files: dict[str, str]) -> str:
    """A PR from `feature` adding `files`; its head SHA."""
    h.project.git("checkout", "-q", "feature")
    for path, text in files.items():
        h.project.write(path, text)
    h.project.commit("an index")
    h.project.git("checkout", "-q", "main")
    return h.fake.open_pull("acme", "shop", head="feature", base="main")["head"]["sha"]


def review_and_work(h, action: str = "opened") -> None:
    assert h.deliver("pull_request", action, pull=1).status_code == 202
    h.work()


def tip(project: GitProject, branch: str = "feature") -> str:
    return project.git("rev-parse", f"refs/heads/{branch}")


def summary_of(h, head: str) -> str:
    *_, run = h.fake.check_runs("acme", "shop", head_sha=head)
    assert run["status"] == "completed"
    return run["output"]["summary"]


def expected_plan(h, head: str) -> FixPlan:
    """What plan_fixes makes of the same head, reviewed here directly."""
    return plan_fixes(run_review(ReviewRequest(repo=h.project.root, base=h.project.base, head=head)))


def test_opted_in_pr_gets_one_commit_of_its_safe_rewrites_then_a_clean_review(app_harness, monkeypatch):
    h = app_harness
    argv: list[list[str]] = []
    real_run = subprocess.run

    def recording_run(args, *rest, **kwargs):
        argv.append([str(a) for a in args])
        return real_run(args, *rest, **kwargs)

    monkeypatch.setattr(checkout.subprocess, "run", recording_run)
    head = open_pr(h, {".github/migration-safe.yml": PUSH, MIGRATION: INDEX})
    review_and_work(h)

    pushed = tip(h.project)
    assert pushed != head
    assert h.project.git("rev-list", f"{head}..feature").split() == [pushed]  # one commit
    assert h.project.git("rev-parse", f"{pushed}^") == head  # on top of exactly the reviewed head
    plan = expected_plan(h, head)
    assert plan.files and set(h.project.git("diff", "--name-only", head, pushed).split()) == set(plan.files)
    for path, text in plan.files.items():
        assert h.project.git("show", f"{pushed}:{path}") == text.rstrip("\n")
    message = h.project.git("log", "-1", "--format=%B", pushed)
    assert message.startswith(f"migration-safe: safe rewrites of {len(plan.files)} migration(s)\n")
    assert all(f"- {done}" in message for done in plan.done)
    assert f"{autopush.TRAILER}: {head}" in message
    author = h.project.git("log", "-1", "--format=%an <%ae>", pushed)
    assert author.startswith(f"{h.fake.bot_login} <") and author.endswith("@users.noreply.github.com>")

    # The reviewed head's check run and the summary say what was pushed; no inline comments on
    # lines the commit already rewrote.
    summary = summary_of(h, head)
    assert "Pushed the safe rewrites" in summary and pushed in summary
    [comment] = [c["body"] for c in h.fake.issue_comments("acme", "shop", 1)]
    assert pushed in comment
    assert h.fake.reviews("acme", "shop", 1) == []
    assert h.fake.pull("acme", "shop", 1)["head"]["sha"] == pushed  # the PR follows its branch
    # The token reached git only through its environment.
    tokens = h.fake.issued_tokens
    assert any("push" in args for args in argv)
    assert not [args for args in argv if any(token in arg for token in tokens for arg in args)]

    # GitHub's synchronize for the pushed head: reviewed like any other, green, nothing more pushed.
    review_and_work(h, "synchronize")
    assert tip(h.project) == pushed
    [run] = h.fake.check_runs("acme", "shop", head_sha=pushed)
    assert run["conclusion"] == "success", run["output"]["summary"]
    assert "autofix" not in run["output"]["summary"]
    assert not plan_fixes(run_review(ReviewRequest(repo=h.project.root, base=h.project.base, head=pushed))).files


def test_the_pushed_commit_is_what_migration_safe_fix_writes_on_the_head(app_harness, tmp_path):
    # The head's config and its use of django-pg-migration-tools shape the rewrite, for the App as for the CLI.
    h = app_harness
    head = open_pr(h, {**HEAD_FILES, ".github/migration-safe.yml": PUSH + LARGE_ORDERS,
                       "shop/migrations/0002_uniques.py": UNIQUES})
    review_and_work(h)

    pushed = tip(h.project)
    fixed = h.fixed_by_cli(head, tmp_path / "cli")
    assert set(h.project.git("diff", "--name-only", head, pushed).split()) == set(fixed)
    for path, text in fixed.items():
        assert h.project.git("show", f"{pushed}:{path}") == text.rstrip("\n")
    migration = fixed["shop/migrations/0002_uniques.py"]
    part = fixed["shop/migrations/0003_uniques_concurrent_indexes.py"]  # shop_order's build, deferred
    assert "SaferAddUniqueConstraint(" in migration and "customer_email_uniq" in migration
    assert "SaferAddUniqueConstraint(" in part and "order_line_uniq" in part


def test_a_head_is_never_pushed_to_twice(app_harness):
    h = app_harness
    head = open_pr(h, {".github/migration-safe.yml": PUSH, MIGRATION: INDEX})
    review_and_work(h)
    pushed = tip(h.project)
    # Someone throws the commit away: the branch goes back to the head it fixed.
    h.project.git("update-ref", "refs/heads/feature", head)
    h.fake.synchronize_pull("acme", "shop", 1, head_sha=head)

    review_and_work(h, "synchronize")

    assert tip(h.project) == head
    summary = summary_of(h, head)
    assert f"nothing was pushed: the rewrites of this head were pushed once already, as {pushed}" in summary


def test_fork_pr_gets_no_push_and_is_told_why(app_harness, tmp_path):
    h = app_harness
    fork = GitProject(tmp_path / "fork")
    subprocess.run(["git", "clone", "-q", str(h.project.root), str(fork.root)], check=True)
    fork.git("checkout", "-q", "-b", "index")
    fork.write(".github/migration-safe.yml", PUSH)
    fork.write(MIGRATION, INDEX)
    head = fork.commit("an index from a fork")
    fork.git("checkout", "-q", "main")
    h.fake.add_repo("alice", "shop", fork.root, fork=True, installation_id=99)
    h.fake.open_pull("acme", "shop", head="index", head_repo="alice/shop")

    review_and_work(h)

    assert tip(fork, "index") == head
    summary = summary_of(h, head)
    assert "nothing was pushed: the branch is in a fork" in summary
    assert h.fake.find_requests("POST", r"git-receive-pack$") == []


def test_without_the_contents_write_permission_nothing_is_pushed(app_harness):
    h = app_harness
    h.fake.set_installation_permissions(contents="read")
    head = open_pr(h, {".github/migration-safe.yml": PUSH, MIGRATION: INDEX})

    review_and_work(h)

    assert tip(h.project) == head
    assert "nothing was pushed: the App's installation may not write" in summary_of(h, head)
    assert h.fake.find_requests(path=r"git-receive-pack") == []
    assert h.fake.reviews("acme", "shop", 1)  # it still suggests, inline


def test_a_safe_migration_gets_no_commit_only_to_declare_its_phase(app_harness):
    """`fix` would add `deploy_phase = "pre-deploy"`; a push for that alone is noise on the author's branch."""
    h = app_harness
    head = open_pr(h, {".github/migration-safe.yml": PUSH, "shop/migrations/0002_nickname.py": NICKNAME})
    plan = expected_plan(h, head)
    assert plan.files and not plan.fixes_something  # the declaration is all fix would write

    review_and_work(h)

    assert tip(h.project) == head
    assert h.fake.find_requests(path=r"git-receive-pack") == []
    [run] = h.fake.check_runs("acme", "shop", head_sha=head)
    assert run["conclusion"] == "success" and "autofix" not in run["output"]["summary"]


@pytest.mark.parametrize("config", [None, "autofix: suggest\n"])
def test_not_opted_in_nothing_is_pushed(app_harness, config):
    h = app_harness
    head = open_pr(h, {MIGRATION: INDEX, **({".github/migration-safe.yml": config} if config else {})})

    review_and_work(h)

    assert tip(h.project) == head
    assert "autofix" not in summary_of(h, head)
    assert h.fake.find_requests(path=r"git-receive-pack") == []


def test_branch_that_moved_during_the_review_gets_no_push(app_harness, monkeypatch):
    from migration_safe.app import worker

    h = app_harness
    head = open_pr(h, {".github/migration-safe.yml": PUSH, MIGRATION: INDEX})
    real_review = worker.run_review

    def review_then_commit(request):
        review = real_review(request)
        # A developer pushes while the review runs; GitHub has not told the App yet.
        h.project.git("checkout", "-q", "feature")
        h.project.write("shop/views.py", "def index(request):\n    return None\n")
        h.project.commit("a view")
        h.project.git("checkout", "-q", "main")
        return review

    monkeypatch.setattr(worker, "run_review", review_then_commit)
    review_and_work(h)

    assert h.project.git("log", "-1", "--format=%s", "feature") == "a view"
    assert h.project.git("rev-parse", "feature^") == head
    summary = summary_of(h, head)
    assert "nothing was pushed: `feature` moved since this head was reviewed" in summary
    assert autopush.PUSHED_PATTERN.search(summary) is None  # a later review of this head may push


def test_bad_autofix_value_is_a_config_error(tmp_path):
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "migration-safe.yml").write_text("autofix: always\n")
    with pytest.raises(ConfigError, match="autofix: must be one of off, suggest, push, not 'always'"):
        load_config(tmp_path)


def test_rounds_count_only_our_newest_commits_in_a_row():
    ours = f"migration-safe: safe rewrites of 1 migration(s)\n\n{autopush.TRAILER}: {'a' * 40}"
    assert autopush.own_rounds([ours, ours, "a fix by hand", ours]) == 2
    assert autopush.own_rounds(["a fix by hand", ours]) == 0
    message = autopush.commit_message(FixPlan({"a.py": "x"}, ["a.py: split"], ["a.py:3 MS102 …"]), "b" * 40)
    assert autopush.own_rounds([message]) == 1
    assert "- a.py: split" in message and "Left for people" in message
