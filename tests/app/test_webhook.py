"""The webhook endpoint over real HTTP, with the real Redis queue behind it."""
from __future__ import annotations

import json
import subprocess

import pytest
import requests
from fakegithub import FakeGitHub, sign
from redis import Redis
from rq import Queue

from migration_safe.app.queue import QUEUE_NAME, RedisDispatcher
from migration_safe.app.settings import AppSettings
from migration_safe.app.web import create_app

from .server import serving

SECRET = "webhook-secret-for-tests"


@pytest.fixture
def fake(tmp_path):
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "a.py").write_text("x = 1\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@e.invalid"]
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-qm", "base"], check=True)
    subprocess.run(git + ["checkout", "-qb", "feature"], check=True)
    (repo / "b.py").write_text("y = 2\n")
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-qm", "head"], check=True)
    subprocess.run(git + ["checkout", "-q", "main"], check=True)
    with FakeGitHub() as fake:
        fake.add_repo("acme", "shop", repo)
        fake.open_pull("acme", "shop", head="feature", base="main")
        yield fake


@pytest.fixture
def service(fake, redis_url):
    settings = AppSettings(app_id=fake.app_id, private_key="unused", webhook_secret=SECRET,
                           api_url=fake.url, redis_url=redis_url, bot_login=fake.bot_login)
    with serving(create_app(settings, RedisDispatcher(redis_url))) as url:
        yield url, Queue(QUEUE_NAME, connection=Redis.from_url(redis_url))


def post(url, body: bytes, headers: dict):
    return requests.post(f"{url}/webhook", data=body, headers=headers, timeout=10)


def test_pull_request_opened_becomes_one_queued_review(fake, service):
    url, queue = service
    body, headers = fake.delivery("pull_request", "opened", secret=SECRET, pull=1)
    response = post(url, body, headers)
    assert response.status_code == 202 and response.json()["queued"] is True
    [job] = queue.get_jobs()
    payload = job.args[0]
    assert payload["kind"] == "review" and payload["repo"] == "acme/shop" and payload["pr"] == 1
    assert payload["head_sha"] == fake.pull("acme", "shop", 1)["head"]["sha"]


def test_redelivery_with_the_same_id_is_ignored(fake, service):
    url, queue = service
    body, headers = fake.delivery("pull_request", "synchronize", secret=SECRET, pull=1)
    assert post(url, body, headers).status_code == 202
    again = post(url, body, headers)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert len(queue) == 1


def test_same_head_from_two_deliveries_is_queued_once(fake, service):
    url, queue = service
    for action in ("opened", "reopened"):
        body, headers = fake.delivery("pull_request", action, secret=SECRET, pull=1)
        assert post(url, body, headers).status_code == 202
    assert len(queue) == 1


@pytest.mark.parametrize("signature", [None, "sha256=" + "0" * 64, "sha1=abc"])
def test_unsigned_or_missigned_is_401_and_queues_nothing(fake, service, signature):
    url, queue = service
    body, headers = fake.delivery("pull_request", "opened", secret=SECRET, pull=1)
    headers.pop("X-Hub-Signature-256")
    if signature:
        headers["X-Hub-Signature-256"] = signature
    assert post(url, body, headers).status_code == 401
    assert len(queue) == 0


def test_malformed_json_and_missing_headers_are_400(service):
    url, queue = service
    body = b"{not json"
    headers = {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "d1",
               "X-Hub-Signature-256": sign(body, SECRET.encode())}
    assert post(url, body, headers).status_code == 400
    good = json.dumps({"action": "opened"}).encode()
    assert post(url, good, {"X-Hub-Signature-256": sign(good, SECRET.encode())}).status_code == 400
    truncated = json.dumps({"action": "opened", "pull_request": {}}).encode()
    headers = {**headers, "X-Hub-Signature-256": sign(truncated, SECRET.encode()), "X-GitHub-Delivery": "d2"}
    assert post(url, truncated, headers).status_code == 400
    assert len(queue) == 0


def test_ping_and_unknown_events_are_answered_without_jobs(fake, service):
    url, queue = service
    body, headers = fake.delivery("ping", None, secret=SECRET)
    assert post(url, body, headers).status_code == 200
    body = b'{"action": "created"}'
    headers = {"X-GitHub-Event": "star", "X-GitHub-Delivery": "d3",
               "X-Hub-Signature-256": sign(body, SECRET.encode())}
    assert post(url, body, headers).status_code == 202
    assert len(queue) == 0


def test_comments_by_the_bot_and_on_plain_issues_are_ignored(fake, service):
    url, queue = service
    fake.add_comment("acme", "shop", 1, "/migration-safe recheck", user=fake.bot_login)
    body, headers = fake.delivery("issue_comment", "created", secret=SECRET, pull=1,
                                  comment=fake.issue_comments("acme", "shop", 1)[-1]["id"])
    assert post(url, body, headers).status_code == 202
    assert len(queue) == 0


def test_command_comment_on_a_pr_is_queued(fake, service):
    url, queue = service
    comment = fake.add_comment("acme", "shop", 1, "/migration-safe help", user="alice")
    body, headers = fake.delivery("issue_comment", "created", secret=SECRET, pull=1, comment=comment["id"])
    assert post(url, body, headers).status_code == 202
    [job] = queue.get_jobs()
    assert job.args[0]["kind"] == "command" and job.args[0]["comment_id"] == comment["id"]


def test_healthz_reports_queue(service):
    url, _queue = service
    health = requests.get(f"{url}/healthz", timeout=5).json()
    assert health["ok"] and health["queue"]["queue"] == "redis" and health["queue"]["ok"]
