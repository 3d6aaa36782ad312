"""The App under stress: forks, huge PRs, GitHub failing, jobs failing, superseded heads, secrets.

Same harness as the end-to-end tests: real Flask over HTTP, real RQ on real
Redis, the fake GitHub over HTTP. RQ's own retries are used: a failed attempt
is scheduled (5 s, 30 s, 120 s later); `work_with_retries` makes each
scheduled retry due at once, as if its interval had passed.
"""
from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import redis
import requests
from fakegithub import sign
from rq.job import Job

from migration_safe.app.queue import RedisDispatcher
from migration_safe.app.settings import settings_from_environment
from migration_safe.app.web import create_app
from migration_safe.engine.sandbox import statecache

from projects import GitProject
from .conftest import SECRET
from .samples import MIXED, NICKNAME
from .server import serving

pytestmark = pytest.mark.slow

SECONDARY_RATE_LIMIT = {
    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
}


# ---------------------------------------------------------------- helpers


def open_pr(h, files: dict[str, str], **kwargs) -> dict:
    h.project.git("checkout", "-q", "feature")
    for path, text in files.items():
        h.project.write(path, text)
    h.project.commit("change")
    h.project.git("checkout", "-q", "main")
    return h.fake.open_pull("acme", "shop", head="feature", base="main", **kwargs)


def work_with_retries(h, rounds: int = 10) -> int:
    """Work the queue until no retry is scheduled; returns how many retries were made due."""
    registry = h.queue.scheduled_job_registry
    for done in range(rounds):
        h.work()
        due = registry.get_jobs_to_schedule(int(time.time()) + 24 * 3600)
        if not due:
            return done
        for job_id in due:  # the retry interval has "passed": what RQ's scheduler does at that time
            job = Job.fetch(job_id, connection=h.queue.connection)
            registry.remove(job)
            h.queue.enqueue_job(job)
    raise AssertionError("the job was still being retried")


def runs_of(h, sha: str) -> list[dict]:
    return h.fake.check_runs("acme", "shop", head_sha=sha)


def summaries(h, pull: int = 1) -> list[dict]:
    return [c for c in h.fake.issue_comments("acme", "shop", pull) if "migration-safe:summary" in c["body"]]


def patched_annotations(h) -> list[int]:
    """Number of annotations in each check-run update the App sent, in order."""
    return [len(((r.json or {}).get("output") or {}).get("annotations") or [])
            for r in h.fake.find_requests("PATCH", r"/check-runs/\d+$")]


def assert_healthy_and_serving(h) -> None:
    """/healthz is green and a new push is still reviewed to the end."""
    assert requests.get(f"{h.url}/healthz", timeout=5).json()["ok"] is True
    h.push({"shop/migrations/0002_mixed.py": NICKNAME})
    assert h.deliver("pull_request", "synchronize", pull=1).status_code == 202
    h.work()
    [run] = h.run()
    assert run["status"] == "completed" and run["conclusion"] == "success", run["output"]["summary"]


@pytest.fixture
def risky_pr(app_harness):
    open_pr(app_harness, {"shop/migrations/0002_mixed.py": MIXED})
    return app_harness


# ---------------------------------------------------------------- forks


def test_fork_pr_is_reviewed_from_the_pull_request_event(app_harness, tmp_path):
    h = app_harness
    fork = GitProject(tmp_path / "fork")
    subprocess.run(["git", "clone", "-q", str(h.project.root), str(fork.root)], check=True)
    fork.git("checkout", "-q", "-b", "nickname")
    fork.migration("shop", "0002_mixed", MIXED)
    head = fork.commit("a migration from a fork")
    fork.git("checkout", "-q", "main")
    # The App is not installed on the fork: its token cannot read it, only the base repository.
    h.fake.add_repo("alice", "shop", fork.root, fork=True, installation_id=99)
    pull = h.fake.open_pull("acme", "shop", head="nickname", head_repo="alice/shop")
    assert pull["head"]["repo"]["full_name"] == "alice/shop" and pull["head"]["sha"] == head

    # GitHub's check suite of a fork names no pull request: nothing can be queued from it…
    suite = h.deliver("check_suite", "requested", head_sha=head)
    assert suite.status_code == 202 and "ignored" in suite.json()
    assert len(h.queue) == 0
    # …the pull_request event carries the review.
    upstream_states = set(statecache.newest(statecache.namespace_folder("github:acme/shop", sys.executable)))
    assert h.deliver("pull_request", "opened", pull=1).status_code == 202
    h.work()
    # the fork's code made the cached state: it may serve the fork's reviews, never upstream's
    assert statecache.newest(statecache.namespace_folder("github:alice/shop", sys.executable))
    assert set(statecache.newest(statecache.namespace_folder("github:acme/shop", sys.executable))) == upstream_states

    [run] = runs_of(h, head)
    assert run["status"] == "completed" and run["conclusion"] == "failure"
    assert {a["path"] for a in run["output"]["annotations"]} == {"shop/migrations/0002_mixed.py"}
    assert h.fake.check_runs("alice", "shop") == []
    assert set(h.fake.labels("acme", "shop", 1)) == {"migration: needs-split"}
    assert len(summaries(h)) == 1 and len(h.fake.reviews("acme", "shop", 1)) == 1
    # the head was fetched from the base repository (refs/pull/1/head), never from the fork
    assert h.fake.find_requests(path=r"^/acme/shop(\.git)?/") and not h.fake.find_requests(path=r"^/alice/")

    # "Re-run" on the fork's check run: the event names no PR, the App finds it by head SHA.
    assert h.deliver("check_run", "rerequested", check_run=run["id"]).status_code == 202
    h.work()
    runs = runs_of(h, head)
    assert len(runs) == 2 and runs[-1]["status"] == "completed" and runs[-1]["conclusion"] == "failure"
    assert len(runs[-1]["output"]["annotations"]) == len(run["output"]["annotations"])
    assert len(summaries(h)) == 1 and len(h.fake.reviews("acme", "shop", 1)) == 1


def test_fork_pr_is_refused_by_default_when_isolation_is_missing(app_harness, tmp_path, monkeypatch):
    """No bubblewrap (or no root): the default policy runs no fork code, and both the check run and
    /healthz say so."""
    h = app_harness
    monkeypatch.setenv("MIGRATION_SAFE_NO_ISOLATION", "1")
    from migration_safe.engine.sandbox import isolation

    isolation.available.cache_clear()
    try:
        health = requests.get(f"{h.url}/healthz", timeout=5).json()["sandbox"]
        assert health["isolated"] is False and health["fork_pull_requests"].startswith("refused")
        fork = GitProject(tmp_path / "fork")
        subprocess.run(["git", "clone", "-q", str(h.project.root), str(fork.root)], check=True)
        fork.git("checkout", "-q", "-b", "nickname")
        fork.migration("shop", "0002_mixed", MIXED)
        head = fork.commit("a migration from a fork")
        h.fake.add_repo("alice", "shop", fork.root, fork=True, installation_id=99)
        h.fake.open_pull("acme", "shop", head="nickname", head_repo="alice/shop")
        h.deliver("pull_request", "opened", pull=1)
        h.work()
        [run] = runs_of(h, head)
        assert run["conclusion"] == "failure" and "cannot isolate" in run["output"]["summary"]
        assert "nothing was checked" in run["output"]["summary"]
        assert not h.fake.find_requests(path=r"^/acme/shop\.git/")  # nothing fetched, nothing run
    finally:
        isolation.available.cache_clear()


# ---------------------------------------------------------------- scale


def index_migrations(count: int, per_migration: int) -> dict[str, str]:
    files, previous = {}, "0001_initial"
    for number in range(2, 2 + count):
        name = f"{number:04d}_indexes"
        operations = "\n".join(
            f'        migrations.AddIndex("product", models.Index(fields=["price"], name="p{number}_{k}_idx")),'
            for k in range(per_migration))
        files[f"shop/migrations/{name}.py"] = (
            "from django.db import migrations, models\n\n\n"
            "class Migration(migrations.Migration):\n"
            f'    dependencies = [("shop", "{previous}")]\n\n'
            f"    operations = [\n{operations}\n    ]\n")
        previous = name
    return files


def test_pr_with_3000_files_is_reviewed_with_annotations_in_batches_of_50(app_harness):
    h = app_harness
    files = index_migrations(count=12, per_migration=5)  # 60 findings (MS101 each)
    # a table of known size: MS101 groups the builds on tables of unknown size into one finding
    files[".github/migration-safe.yml"] = "tables:\n  large: [shop_product]\n"
    files.update({f"assets/file_{n:04d}.txt": f"{n}\n" for n in range(3000 - len(files))})
    open_pr(h, files)
    assert len(h.fake.files("acme", "shop", 1)) == 3000

    assert h.deliver("pull_request", "opened", pull=1).status_code == 202
    h.work()

    [run] = h.run()
    assert run["status"] == "completed" and run["conclusion"] == "failure"
    notes = run["output"]["annotations"]
    assert len(notes) > 50  # at least one finding on each of the 60 operations
    assert {(a["path"], a["start_line"]) for a in notes if a["title"].startswith("MS101")} == {
        (path, line) for path in files if path.endswith(".py") for line in range(8, 13)}
    sizes = patched_annotations(h)
    assert sum(sizes) == len(notes) and max(sizes) <= 50
    assert len([s for s in sizes if s]) == -(-len(notes) // 50)
    [created] = h.fake.find_requests("POST", r"/check-runs$")
    assert not (created.json.get("output") or {}).get("annotations")
    completing = [r for r in h.fake.find_requests("PATCH", r"/check-runs/\d+$") if r.json.get("status")]
    assert len(completing) == 1 and completing[0].json["conclusion"] == "failure"
    # the files were listed page by page, all 30 of them
    pages = {int(r.query.get("page", ["1"])[0]) for r in h.fake.find_requests("GET", r"/pulls/1/files$")}
    assert pages == set(range(1, 31))
    [review] = h.fake.reviews("acme", "shop", 1)
    assert len([c for c in review["comments"] if "MS101" in c["body"]]) == 60
    assert {c["path"] for c in review["comments"]} <= {p for p in files if p.endswith(".py")}


# ---------------------------------------------------------------- GitHub failing


@pytest.mark.parametrize("path", [r"/repos/acme/shop/pulls/1$", r"/repos/acme/shop/pulls/1/files$",
                                  r"/repos/acme/shop/commits/[0-9a-f]+/check-runs$"])
def test_5xx_on_a_read_is_retried_by_the_client_and_the_review_completes(risky_pr, path):
    h = risky_pr
    h.fake.fail_next("GET", path, 502, body="<html><body>502 Bad Gateway</body></html>", times=2)
    assert h.deliver("pull_request", "opened", pull=1).status_code == 202
    h.work()

    assert h.fake.pending_faults == 0
    statuses = [r.status for r in h.fake.find_requests("GET", path)]
    assert statuses[:3] == [502, 502, 200]
    [run] = h.run()
    assert run["status"] == "completed" and run["conclusion"] == "failure"
    assert "could not review" not in run["output"]["title"]
    assert h.queue.scheduled_job_registry.count == 0 and h.queue.failed_job_registry.count == 0
    assert len(summaries(h)) == 1 and len(h.fake.reviews("acme", "shop", 1)) == 1


def test_secondary_rate_limit_on_a_write_fails_the_attempt_and_the_retry_duplicates_nothing(risky_pr):
    h = risky_pr
    h.fake.fail_next("POST", r"/repos/acme/shop/pulls/1/reviews$", 403, body=SECONDARY_RATE_LIMIT,
                     headers={"Retry-After": "1"})
    assert h.deliver("pull_request", "opened", pull=1).status_code == 202
    before = datetime.now(timezone.utc)
    h.work()
    after = datetime.now(timezone.utc)

    # The attempt failed (writes are never retried by the HTTP client) and RQ scheduled a retry,
    # about 5 s after the failure, which came between `before` and `after` (however long the review).
    [job_id] = h.queue.scheduled_job_registry.get_job_ids()
    scheduled = h.queue.scheduled_job_registry.get_scheduled_time(job_id)
    assert scheduled - before > timedelta(seconds=3) and scheduled - after <= timedelta(seconds=5)
    assert len(summaries(h)) == 1 and h.fake.reviews("acme", "shop", 1) == []
    [run] = h.run()
    assert run["status"] == "in_progress"  # completed only once everything else is published
    first_summary = summaries(h)[0]

    assert work_with_retries(h) == 1
    [run] = h.run()
    assert run["status"] == "completed" and run["conclusion"] == "failure"
    assert len(run["output"]["annotations"]) == len({(a["start_line"], a["title"])
                                                      for a in run["output"]["annotations"]})
    assert [c["id"] for c in summaries(h)] == [first_summary["id"]]
    assert len(h.fake.reviews("acme", "shop", 1)) == 1
    assert [r.status for r in h.fake.find_requests("POST", r"/pulls/1/reviews$")] == [403, 200]
    assert len(h.fake.find_requests("POST", r"/issues/1/comments$")) == 1
    assert h.queue.failed_job_registry.count == 0

    # Running the whole review again (GitHub's "Re-run") says nothing twice either.
    assert h.deliver("check_run", "rerequested", check_run=run["id"]).status_code == 202
    h.work()
    runs = h.fake.check_runs("acme", "shop", head_sha=run["head_sha"])
    assert len(runs) == 2 and runs[-1]["conclusion"] == "failure"
    assert len(runs[-1]["output"]["annotations"]) == len(run["output"]["annotations"])
    assert [c["id"] for c in summaries(h)] == [first_summary["id"]]
    assert len(h.fake.reviews("acme", "shop", 1)) == 1
    assert set(h.fake.labels("acme", "shop", 1)) == {"migration: needs-split"}


def test_rate_limited_check_run_update_is_retried_after_retry_after(risky_pr):
    h = risky_pr
    h.fake.fail_next("PATCH", r"/check-runs/\d+$", 403, body=SECONDARY_RATE_LIMIT, headers={"Retry-After": "1"})
    h.deliver("pull_request", "opened", pull=1)
    h.work()
    [run] = h.run()
    assert run["status"] == "completed" and run["conclusion"] == "failure"
    assert [r.status for r in h.fake.find_requests("PATCH", r"/check-runs/\d+$")][:2] == [403, 200]
    assert h.queue.scheduled_job_registry.count == 0 and h.queue.failed_job_registry.count == 0


def test_review_refused_with_422_still_publishes_the_rest_and_the_service_keeps_serving(risky_pr):
    h = risky_pr
    refused = {"message": "Unprocessable Entity",
               "errors": ["Pull request review thread line must be part of the diff"]}
    h.fake.fail_next("POST", r"/repos/acme/shop/pulls/1/reviews$", 422, body=refused, times=10)
    assert h.deliver("pull_request", "opened", pull=1).status_code == 202
    assert work_with_retries(h) == 0  # a 422 will not change on a retry: the job does not fail

    [run] = h.run()
    assert run["status"] == "completed" and run["conclusion"] == "failure"
    assert "could not review" not in run["output"]["title"]
    assert any(a["title"].startswith("MS101") for a in run["output"]["annotations"])
    assert set(h.fake.labels("acme", "shop", 1)) == {"migration: needs-split"}
    assert len(summaries(h)) == 1
    assert h.fake.reviews("acme", "shop", 1) == []
    assert h.queue.failed_job_registry.count == 0
    assert_healthy_and_serving(h)


# ---------------------------------------------------------------- a job that keeps failing


def test_job_failing_on_every_retry_ends_with_a_failed_check_run_saying_why(app_harness):
    h = app_harness
    # Unique content: no SHA of this PR can already sit in the shared mirror cache.
    pull = open_pr(h, {"shop/migrations/0002_mixed.py": MIXED + f"# {uuid.uuid4()}\n"})
    h.fake.fail_next("*", r"^/acme/shop(\.git)?/", 500, body="git is down", times=1000)
    assert h.deliver("pull_request", "opened", pull=1).status_code == 202

    assert work_with_retries(h) == 3  # Retry(max=3): four attempts in all
    assert len(h.fake.find_requests("GET", r"^/acme/shop(\.git)?/info/refs")) == 4
    [run] = runs_of(h, pull["head"]["sha"])
    assert run["status"] == "completed" and run["conclusion"] == "failure"
    assert "could not review" in run["output"]["title"]
    summary = run["output"]["summary"]
    assert "CheckoutError" in summary and "git fetch failed" in summary and "500" in summary
    assert run["output"]["annotations"] == []
    # Nothing was verified, so nothing else is said.
    assert h.fake.labels("acme", "shop", 1) == [] and summaries(h) == []
    assert h.fake.reviews("acme", "shop", 1) == []
    assert h.queue.failed_job_registry.count == 1 and len(h.queue) == 0
    assert all(token not in summary for token in h.fake.issued_tokens)


def test_failure_of_the_pull_request_endpoint_itself_is_still_reported(app_harness):
    h = app_harness
    pull = open_pr(h, {"shop/migrations/0002_mixed.py": NICKNAME})
    # 404 is not retried by the HTTP client: each attempt fails at once, and so would a report
    # that needed the PR.
    h.fake.fail_next("GET", r"/repos/acme/shop/pulls/1$", 404, times=1000)
    h.deliver("pull_request", "opened", pull=1)
    assert work_with_retries(h) == 3
    [run] = runs_of(h, pull["head"]["sha"])
    assert run["status"] == "completed" and run["conclusion"] == "failure"
    assert "UnknownObjectException" in run["output"]["summary"] and "404" in run["output"]["summary"]


# ---------------------------------------------------------------- superseded heads


def test_newer_head_supersedes_a_queued_review_of_an_older_one(risky_pr):
    h = risky_pr
    h.push({"shop/migrations/0002_mixed.py": MIXED.replace("max_length=50", "max_length=60")})
    head_a = h.fake.pull("acme", "shop", 1)["head"]["sha"]
    assert h.deliver("pull_request", "synchronize", pull=1).json()["queued"] is True
    h.push({"shop/migrations/0002_mixed.py": NICKNAME})
    head_b = h.fake.pull("acme", "shop", 1)["head"]["sha"]
    assert h.deliver("pull_request", "synchronize", pull=1).json()["queued"] is True
    assert len(h.queue) == 2

    h.work()

    assert runs_of(h, head_a) == []  # skipped before anything was started
    [run] = runs_of(h, head_b)
    assert run["status"] == "completed" and run["conclusion"] == "success"
    assert set(h.fake.labels("acme", "shop", 1)) == {"migration: pre-deploy"}
    [summary] = summaries(h)
    assert "nickname" in summary["body"]
    assert h.fake.reviews("acme", "shop", 1) == []  # B has nothing to say inline; A said nothing
    assert not h.fake.find_requests("GET", rf"/commits/{head_a}/check-runs$")


def test_late_delivery_of_an_older_head_does_not_supersede_the_current_one(risky_pr):
    h = risky_pr
    h.push({"shop/migrations/0002_mixed.py": MIXED.replace("max_length=50", "max_length=60")})
    head_a = h.fake.pull("acme", "shop", 1)["head"]["sha"]
    late_body, late_headers = h.fake.delivery("pull_request", "synchronize", secret=SECRET, pull=1)
    h.push({"shop/migrations/0002_mixed.py": NICKNAME})
    head_b = h.fake.pull("acme", "shop", 1)["head"]["sha"]
    assert h.deliver("pull_request", "synchronize", pull=1).status_code == 202
    # GitHub does not promise the order of deliveries: A's (a redelivery, a slow hop) lands last.
    assert requests.post(f"{h.url}/webhook", data=late_body, headers=late_headers, timeout=10).status_code == 202

    h.work()

    assert runs_of(h, head_a) == []
    [run] = runs_of(h, head_b)
    assert run["status"] == "completed" and run["conclusion"] == "success"
    assert set(h.fake.labels("acme", "shop", 1)) == {"migration: pre-deploy"}


def test_push_during_a_review_cancels_the_older_check_run(risky_pr, monkeypatch):
    from migration_safe.app import worker

    h = risky_pr
    head_a = h.fake.pull("acme", "shop", 1)["head"]["sha"]
    real_review = worker.run_review
    pushed = []

    def review_then_push(request):
        review = real_review(request)
        if not pushed:  # B arrives while A is being reviewed
            pushed.append(True)
            h.push({"shop/migrations/0002_mixed.py": NICKNAME})
            assert h.deliver("pull_request", "synchronize", pull=1).status_code == 202
        return review

    monkeypatch.setattr(worker, "run_review", review_then_push)
    h.deliver("pull_request", "opened", pull=1)
    h.work()

    head_b = h.fake.pull("acme", "shop", 1)["head"]["sha"]
    [run_a] = runs_of(h, head_a)
    assert run_a["status"] == "completed" and run_a["conclusion"] == "cancelled"
    assert run_a["output"]["annotations"] == []
    [run_b] = runs_of(h, head_b)
    assert run_b["status"] == "completed" and run_b["conclusion"] == "success"
    assert set(h.fake.labels("acme", "shop", 1)) == {"migration: pre-deploy"}
    assert len(summaries(h)) == 1 and h.fake.reviews("acme", "shop", 1) == []


# ---------------------------------------------------------------- secrets


LEAKY = '''
import json
import os

from django.db import migrations, models

try:
    with open({dump!r}, "w") as out:
        json.dump(dict(os.environ), out)
except OSError:
    pass
raise RuntimeError("environment: " + repr(dict(os.environ)))


class Migration(migrations.Migration):
    dependencies = [("shop", "0002_mixed")]

    operations = [
        migrations.AddField("product", "sku", models.CharField(max_length=20, default="x")),
    ]
'''


def test_no_secret_reaches_github_logs_reports_or_the_sandbox(app_harness, tmp_path, caplog):
    h = app_harness
    caplog.set_level(logging.DEBUG)
    dump = tmp_path / "child-environment.json"
    pull = open_pr(h, {"shop/migrations/0002_mixed.py": MIXED,
                       "shop/migrations/0003_leaky.py": LEAKY.format(dump=str(dump))})
    assert h.deliver("pull_request", "opened", pull=1).status_code == 202
    h.work()
    [run] = runs_of(h, pull["head"]["sha"])
    assert run["status"] == "completed"

    key_lines = [line for line in h.fake.app_private_key.splitlines() if line and "-----" not in line]
    tokens = h.fake.issued_tokens
    secrets = {"webhook secret": SECRET, **{f"key line {i}": line for i, line in enumerate(key_lines)},
               **{f"token {i}": token for i, token in enumerate(tokens)}}
    assert tokens and len(key_lines) > 10

    def leaks(text: str) -> list[str]:
        return [name for name, value in secrets.items() if value in text]

    # what the App sent to GitHub (everything but the Authorization header that must carry the token)
    for request in h.fake.requests:
        sent = "\n".join([request.method, request.path, json.dumps(request.query),
                          *(f"{k}: {v}" for k, v in request.headers.items() if k != "authorization"),
                          request.body.decode(errors="replace")])
        assert leaks(sent) == [], f"{request.method} {request.path}"
    # what GitHub now shows
    shown = [run["output"]["title"], run["output"]["summary"], run["output"]["text"] or "",
             json.dumps(run["output"]["annotations"]),
             *(c["body"] for c in h.fake.issue_comments("acme", "shop", 1)),
             json.dumps(h.fake.reviews("acme", "shop", 1))]
    assert leaks("\n".join(shown)) == []
    # the logs, at every level
    assert caplog.records and leaks(caplog.text) == []
    assert leaks("\n".join(r.getMessage() for r in caplog.records)) == []
    # the git mirror keeps no credential
    mirrors = settings_from_environment().cache_dir / "mirrors"
    for name in ("config", "FETCH_HEAD", "packed-refs"):
        for path in mirrors.glob(f"*.git/{name}"):
            assert leaks(path.read_text(errors="replace")) == [], path

    # The sandboxed project code saw an environment built from nothing.
    seen = "\n".join(shown)
    assert "environment: {" in seen, "the child's exception should be reported on the check run"
    assert "GITHUB_" not in seen and "REDIS_URL" not in seen
    if dump.exists():
        child_env = json.loads(dump.read_text())
        assert "PATH" in child_env
        assert not [k for k in child_env if k.startswith(("GITHUB_", "REDIS", "MIGRATION_SAFE_"))]
        assert leaks(json.dumps(child_env)) == []


# ---------------------------------------------------------------- bad input


@pytest.fixture
def webhook(app_harness):
    h = app_harness

    def post(body: bytes, event="pull_request", delivery=None, signed=True):
        headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
                   "Content-Type": "application/json"}
        if signed:
            headers["X-Hub-Signature-256"] = sign(body, SECRET)
        return requests.post(f"{h.url}/webhook", data=body, headers=headers, timeout=10)

    return post


@pytest.mark.parametrize("body", [b"[1, 2]", b'"opened"', b"null", b"\xff\xfe{}"])
def test_json_that_is_not_an_object_is_400(app_harness, webhook, body):
    assert webhook(body).status_code == 400
    assert len(app_harness.queue) == 0


@pytest.mark.parametrize("change", [
    {"installation": None},
    {"installation": {"id": "seven"}},
    {"pull_request": {"number": "one"}},
    {"pull_request": {"head": None}},
    {"repository": "acme/shop"},
])
def test_deliveries_with_fields_of_the_wrong_type_are_400(app_harness, webhook, change):
    h = app_harness
    h.fake.open_pull("acme", "shop", head="feature", base="main")
    payload = h.fake.webhook_payload("pull_request", "opened", pull=1, **change)
    assert webhook(json.dumps(payload).encode()).status_code == 400
    assert len(h.queue) == 0


def test_oversized_body_is_refused_before_parsing(app_harness, webhook):
    assert webhook(b" " * (26 * 1024 * 1024) + b"{}").status_code == 413  # GitHub caps payloads at 25 MB
    assert len(app_harness.queue) == 0


def test_delivery_that_could_not_be_queued_is_accepted_when_redelivered(app_harness, redis_url):
    h = app_harness
    h.fake.open_pull("acme", "shop", head="feature", base="main")

    class FlakyQueue(RedisDispatcher):
        down = True

        def enqueue(self, job):
            if self.down:
                raise redis.ConnectionError("Redis went away")
            return super().enqueue(job)

    dispatcher = FlakyQueue(redis_url)
    with serving(create_app(settings_from_environment(), dispatcher)) as url:
        body, headers = h.fake.delivery("pull_request", "opened", secret=SECRET, pull=1)
        refused = requests.post(f"{url}/webhook", data=body, headers=headers, timeout=10)
        assert refused.status_code == 503 and "redeliver" in refused.json()["error"]
        assert len(h.queue) == 0
        dispatcher.down = False
        again = requests.post(f"{url}/webhook", data=body, headers=headers, timeout=10)  # GitHub's redeliver
        assert again.status_code == 202 and again.json()["queued"] is True
        replay = requests.post(f"{url}/webhook", data=body, headers=headers, timeout=10)
        assert replay.status_code == 200 and replay.json()["duplicate"] is True
    assert len(h.queue) == 1


def test_queue_down_makes_healthz_and_the_webhook_fail_loudly(app_harness):
    h = app_harness
    h.fake.open_pull("acme", "shop", head="feature", base="main")
    with serving(create_app(settings_from_environment(), RedisDispatcher("redis://127.0.0.1:1/0"))) as url:
        health = requests.get(f"{url}/healthz", timeout=10)
        assert health.status_code == 503 and health.json()["queue"]["ok"] is False
        body, headers = h.fake.delivery("pull_request", "opened", secret=SECRET, pull=1)
        assert requests.post(f"{url}/webhook", data=body, headers=headers, timeout=10).status_code == 503
