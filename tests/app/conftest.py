"""The App end to end: real Flask over HTTP, real RQ worker on real Redis, fake GitHub over HTTP."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from fakegithub import FakeGitHub
from redis import Redis
from rq import Queue, SimpleWorker

from migration_safe.app.queue import QUEUE_NAME, RedisDispatcher
from migration_safe.app.settings import settings_from_environment
from migration_safe.app.web import create_app
from migration_safe.cli import main as cli

from projects import DEMO, GitProject
from .server import serving

SECRET = "e2e-webhook-secret"


class AppHarness:
    def __init__(self, fake: FakeGitHub, project: GitProject, url: str, redis_url: str) -> None:
        self.fake, self.project, self.url = fake, project, url
        self.queue = Queue(QUEUE_NAME, connection=Redis.from_url(redis_url))

    def deliver(self, event, action, **kwargs):
        import requests

        body, headers = self.fake.delivery(event, action, secret=SECRET, **kwargs)
        return requests.post(f"{self.url}/webhook", data=body, headers=headers, timeout=10)

    def work(self) -> None:
        """Run every queued job to the end in this process."""
        SimpleWorker([self.queue], connection=self.queue.connection).work(burst=True)

    def run(self, pull=1):
        return self.fake.check_runs("acme", "shop", head_sha=self.fake.pull("acme", "shop", pull)["head"]["sha"])

    def push(self, files: dict[str, str], remove=(), message="fix", pull=1):
        self.project.git("checkout", "-q", "feature")
        for path in remove:
            (self.project.root / path).unlink()
        for path, text in files.items():
            self.project.write(path, text)
        self.project.commit(message)
        self.project.git("checkout", "-q", "main")
        self.fake.synchronize_pull("acme", "shop", pull)

    def fixed_by_cli(self, head: str, where: Path) -> dict[str, str]:
        """What `migration-safe fix` writes in a clone at `head`: path -> text, per file it changes."""
        subprocess.run(["git", "clone", "-q", str(self.project.root), str(where)], check=True)
        clone = GitProject(where)
        clone.git("checkout", "-q", "--detach", head)
        cli(["fix", "--repo", str(where), "--base", self.project.base])
        clone.git("add", "-A")
        changed = clone.git("diff", "--cached", "--name-only").split()
        return {path: (where / path).read_text() for path in changed}


@pytest.fixture
def app_harness(tmp_path, redis_url, monkeypatch):
    root = tmp_path / "shop"
    shutil.copytree(DEMO / "base", root, ignore=shutil.ignore_patterns("__pycache__"))
    project = GitProject(root)
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    project.base = project.commit("base")
    project.git("checkout", "-q", "-b", "feature")
    project.git("checkout", "-q", "main")
    with FakeGitHub() as fake:
        fake.add_repo("acme", "shop", root)
        env = {"GITHUB_APP_ID": str(fake.app_id), "GITHUB_APP_PRIVATE_KEY": fake.app_private_key,
               "GITHUB_WEBHOOK_SECRET": SECRET, "GITHUB_API_URL": fake.url, "REDIS_URL": redis_url,
               "GITHUB_APP_BOT_LOGIN": fake.bot_login, "MIGRATION_SAFE_PACE_WRITES": "0"}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        settings = settings_from_environment()
        with serving(create_app(settings, RedisDispatcher(redis_url))) as url:
            yield AppHarness(fake, project, url, redis_url)
