"""The Procfile's web line with four processes: one review per delivery and per head, with or without Redis.

Without REDIS_URL the web processes share the SQLite queue in the cache directory and the
worker line reviews from it; with it, RQ on Redis. The same deliveries must give the same
result: each delivery handled once, the older head superseded, one check run, summary and
review for the newer head.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from fakegithub import FakeGitHub

from migration_safe.app.settings import settings_from_environment
from migration_safe.app.sqlitequeue import SqliteQueue, queue_path
from migration_safe.app.web import create_app
from migration_safe.app.worker import Worker, report_failure, run_local

from projects import DEMO, GitProject
from .procfile import web
from .server import serving
from .samples import MIXED

pytestmark = pytest.mark.slow

SECRET = "single-machine-secret"
REPEATS = 6  # each delivery sent this many times at once, as GitHub's "Redeliver" pressed repeatedly


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def queue_mode(request):
    return request.param


@pytest.fixture
def shop_pr(tmp_path):
    root = tmp_path / "shop"
    shutil.copytree(DEMO / "base", root, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    project = GitProject(root)
    project.base = project.commit("base")
    project.git("checkout", "-q", "-b", "feature")
    project.migration("shop", "0002_mixed", MIXED)
    project.commit("a mixed migration")
    project.git("checkout", "-q", "main")
    with FakeGitHub() as fake:
        fake.add_repo("acme", "shop", root)
        fake.open_pull("acme", "shop", head="feature", base="main")
        yield fake, project


def push(project: GitProject, fake: FakeGitHub, text: str) -> str:
    project.git("checkout", "-q", "feature")
    project.migration("shop", "0002_mixed", text)
    project.commit("a newer head")
    project.git("checkout", "-q", "main")
    return fake.synchronize_pull("acme", "shop", 1)["head"]["sha"]


def send_repeatedly(url: str, delivery: tuple[bytes, dict]) -> list[int]:
    body, headers = delivery
    with ThreadPoolExecutor(REPEATS) as pool:
        answers = pool.map(lambda _: requests.post(f"{url}/webhook", data=body, headers=headers, timeout=30),
                           range(REPEATS))
        return sorted(answer.status_code for answer in answers)


def test_four_web_processes_review_each_head_once(shop_pr, queue_mode, request, tmp_path, monkeypatch):
    fake, project = shop_pr
    env = {"GITHUB_APP_ID": str(fake.app_id), "GITHUB_APP_PRIVATE_KEY": fake.app_private_key,
           "GITHUB_WEBHOOK_SECRET": SECRET, "GITHUB_API_URL": fake.url, "GITHUB_APP_BOT_LOGIN": fake.bot_login,
           "MIGRATION_SAFE_PACE_WRITES": "0", "MIGRATION_SAFE_CACHE": str(tmp_path / "cache")}
    if queue_mode == "redis":
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
    head_a = fake.pull("acme", "shop", 1)["head"]["sha"]
    opened = fake.delivery("pull_request", "opened", secret=SECRET, pull=1)
    suite_a = fake.delivery("check_suite", "requested", secret=SECRET, pull=1)
    head_b = push(project, fake, MIXED.replace("max_length=50", "max_length=60"))
    pushed = fake.delivery("pull_request", "synchronize", secret=SECRET, pull=1)
    suite_b = fake.delivery("check_suite", "requested", secret=SECRET, pull=1)

    with web(env, tmp_path, workers=4) as served:
        assert served.log.read_text().count("Booting worker with pid") == 4
        for delivery in (opened, suite_a, pushed, suite_b):  # in quick succession, each several times at once
            assert send_repeatedly(served.url, delivery) == [200] * (REPEATS - 1) + [202]
        spread = {pid for delivery in (opened, pushed) for pid in served.served(delivery[1]["X-GitHub-Delivery"])}
        assert len(spread) > 1, "every copy reached one process: the test proves nothing"
        health = requests.get(f"{served.url}/healthz", timeout=5).json()
        assert health["queue"]["queued"] == 2  # head A and head B, each once
    # The web processes are gone before any review starts: what they acknowledged must survive.

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if queue_mode == "redis":
        from redis import Redis
        from rq import Queue, SimpleWorker

        from migration_safe.app.queue import QUEUE_NAME

        queue = Queue(QUEUE_NAME, connection=Redis.from_url(env["REDIS_URL"]))
        assert len(queue) == 2
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
    else:
        run_local(settings_from_environment({**os.environ, **env}), burst=True)

    assert fake.check_runs("acme", "shop", head_sha=head_a) == []  # superseded before it started
    assert not fake.find_requests("GET", rf"/commits/{head_a}/check-runs$")
    [run] = fake.check_runs("acme", "shop", head_sha=head_b)
    assert run["status"] == "completed" and run["conclusion"] == "failure"
    assert len(fake.find_requests("POST", r"/check-runs$")) == 1
    summaries = [c for c in fake.issue_comments("acme", "shop", 1) if "migration-safe:summary" in c["body"]]
    assert len(summaries) == 1 and "0002_mixed" in summaries[0]["body"]
    [review] = fake.reviews("acme", "shop", 1)
    assert review["commit_id"] == head_b


def test_a_review_that_keeps_failing_is_retried_then_reported_on_its_check_run(shop_pr, tmp_path):
    fake, _project = shop_pr
    settings = settings_from_environment({
        "GITHUB_APP_ID": str(fake.app_id), "GITHUB_APP_PRIVATE_KEY": fake.app_private_key,
        "GITHUB_WEBHOOK_SECRET": SECRET, "GITHUB_API_URL": fake.url, "MIGRATION_SAFE_PACE_WRITES": "0",
        "MIGRATION_SAFE_CACHE": str(tmp_path / "cache")})
    store = SqliteQueue(queue_path(settings.cache_dir), retry_delays=(0, 0, 0))
    # 404 is not retried by the HTTP client: each attempt fails at once, and so would a report that needed the PR.
    fake.fail_next("GET", r"/repos/acme/shop/pulls/1$", 404, times=1000)
    with serving(create_app(settings, store)) as url:
        body, headers = fake.delivery("pull_request", "opened", secret=SECRET, pull=1)
        assert requests.post(f"{url}/webhook", data=body, headers=headers, timeout=10).status_code == 202

    store.work(Worker(settings, store.latest_head).run, lambda job, reason: report_failure(job, reason, settings),
               burst=True)

    assert len(fake.find_requests("GET", r"/repos/acme/shop/pulls/1$")) == 4  # the first attempt and 3 retries
    [run] = fake.check_runs("acme", "shop", head_sha=fake.pull("acme", "shop", 1)["head"]["sha"])
    assert run["status"] == "completed" and run["conclusion"] == "failure"
    assert "UnknownObjectException" in run["output"]["summary"] and "404" in run["output"]["summary"]
