"""A PR adding risky migrations, reviewed by the App, then fixed by a new push."""
from __future__ import annotations

import pytest

from .samples import BACKFILL, INDEX, MIXED, NICKNAME

pytestmark = pytest.mark.slow


@pytest.fixture
def risky_pr(app_harness):
    h = app_harness
    h.project.git("checkout", "-q", "feature")
    h.project.migration("shop", "0002_mixed", MIXED)
    h.project.commit("add a mixed migration")
    h.project.git("checkout", "-q", "main")
    h.fake.open_pull("acme", "shop", head="feature", base="main")
    return h


def test_risky_pr_fails_then_fixed_push_passes(risky_pr):
    h = risky_pr
    assert h.deliver("pull_request", "opened", pull=1).status_code == 202
    h.work()

    [run] = h.run()
    assert run["name"] == "migration-safe" and run["status"] == "completed"
    assert run["conclusion"] == "failure"
    notes = {(a["path"], a["start_line"], a["title"].split()[0]) for a in run["output"]["annotations"]}
    assert ("shop/migrations/0002_mixed.py", 13, "MS101") in notes
    assert set(h.fake.labels("acme", "shop", 1)) == {"migration: needs-split"}
    comments = [c for c in h.fake.issue_comments("acme", "shop", 1) if "migration-safe:summary" in c["body"]]
    assert len(comments) == 1 and "needs split" in comments[0]["body"].lower()
    [review] = h.fake.reviews("acme", "shop", 1)
    assert any(c["line"] in (13, 16) and "MS101" in c["body"] for c in review["comments"])

    h.push({"shop/migrations/0002_mixed.py": NICKNAME, "shop/migrations/0003_price_index.py": INDEX,
            "shop/migrations/0004_backfill.py": BACKFILL})
    assert h.deliver("pull_request", "synchronize", pull=1).status_code == 202
    h.work()

    [run] = h.run()
    assert run["conclusion"] == "success", run["output"]["summary"]
    assert set(h.fake.labels("acme", "shop", 1)) == {"migration: pre-deploy", "migration: deferred"}
    summaries = [c for c in h.fake.issue_comments("acme", "shop", 1) if "migration-safe:summary" in c["body"]]
    assert len(summaries) == 1 and summaries[0]["id"] == comments[0]["id"]
    assert summaries[0]["body"] != comments[0]["body"]
    assert len(h.fake.reviews("acme", "shop", 1)) == 1  # nothing new to say inline


def test_pr_without_migrations_gets_a_quick_success(app_harness):
    h = app_harness
    h.project.git("checkout", "-q", "feature")
    h.project.write("shop/views.py", "def index(request):\n    return None\n")
    h.project.commit("a view")
    h.project.git("checkout", "-q", "main")
    h.fake.open_pull("acme", "shop", head="feature", base="main")
    h.deliver("pull_request", "opened", pull=1)
    h.work()
    [run] = h.run()
    assert run["conclusion"] == "success" and "No migrations" in run["output"]["title"]
    assert h.fake.issue_comments("acme", "shop", 1) == []


def test_broken_config_file_fails_the_check_with_its_message(app_harness):
    h = app_harness
    h.project.git("checkout", "-q", "feature")
    h.project.write(".github/migration-safe.yml", "tables:\n  large: [unclosed\n")
    h.project.migration("shop", "0002_nickname", NICKNAME)
    h.project.commit("config")
    h.project.git("checkout", "-q", "main")
    h.fake.open_pull("acme", "shop", head="feature", base="main")
    h.deliver("pull_request", "opened", pull=1)
    h.work()
    [run] = h.run()
    assert run["conclusion"] == "failure"
    assert ".github/migration-safe.yml" in run["output"]["summary"] and "YAML" in run["output"]["summary"]
    assert len(h.queue.failed_job_registry) == 0  # answered at once, not retried
