"""Queue worker: one job = fetch the PR head, run the engine, publish. Idempotent, so retries are safe."""
from __future__ import annotations

import logging
import sys
from typing import Callable

from migration_safe.app import publish
from migration_safe.app.checkout import Mirrors, redact
from migration_safe.app.commands import command_state, handle_command
from migration_safe.app.events import CommandJob, ReviewJob, job_from_dict
from migration_safe.app.github import GitHubApp
from migration_safe.app.settings import AppSettings, settings_from_environment
from migration_safe.config import ConfigError
from migration_safe.engine.isolation import available as isolation_available
from migration_safe.engine.model import Review
from migration_safe.engine.review import ReviewRequest, run_review

log = logging.getLogger(__name__)


class Superseded(Exception):
    """A newer head of the PR arrived: its own job publishes."""


class Worker:
    def __init__(self, settings: AppSettings, latest_head: Callable[[str, int], str | None],
                 app: GitHubApp | None = None) -> None:
        self.settings = settings
        self.latest_head = latest_head
        self.app = app or GitHubApp(settings)
        self.mirrors = Mirrors(settings.cache_dir)

    def run(self, job_data: dict) -> None:
        job = job_from_dict(job_data)
        if isinstance(job, CommandJob):
            handle_command(self, job)
            return
        gh = self.app.client(job.installation_id)
        repo = gh.get_repo(job.repo)
        pulls = [repo.get_pull(job.pr)] if job.pr is not None else [
            p for p in repo.get_pulls(state="open") if p.head.sha == job.head_sha]
        for pull in pulls:
            self.review_pull(job, repo, pull)

    def current(self, job: ReviewJob, pull) -> bool:
        if pull.head.sha != job.head_sha:
            return False
        latest = self.latest_head(job.repo, pull.number)
        if latest in (None, job.head_sha):
            return True
        # Another head was queued since. Deliveries come in any order (a redelivery, "Re-run" on an
        # older commit), so the queue's latest may be the older one: GitHub says which head is the PR's.
        pull.update()
        return pull.head.sha == job.head_sha

    def review_pull(self, job: ReviewJob, repo, pull) -> Review | None:
        if pull.state != "open" or not self.current(job, pull):
            log.info("skipping %s: closed or superseded", job.key)
            return None
        target = publish.Target(repo, pull, job.head_sha)
        run = publish.find_or_start_check(target)
        if self.refuses(pull):
            publish.fail_check(run, "this pull request comes from a fork, and this service cannot isolate "
                                    "the code it would run (MIGRATION_SAFE_FORKS=refuse-unisolated; "
                                    f"sandbox: {'; '.join(isolation_available().describe(network=False))})")
            return None
        try:
            review = self.review(job, repo, pull)
        except ConfigError as exc:  # the PR's own file is wrong: say so at once, retrying cannot help
            publish.fail_check(run, f"the configuration is invalid: {exc}")
            return None
        if not self.current(job, pull):
            run.edit(status="completed", conclusion="cancelled", completed_at=publish.now_dt(),
                     output={"title": "Superseded by a newer push", "summary": "A newer head is reviewed."})
            return None
        publish.sync_labels(target, review)
        if review.migrations or has_summary(pull):
            from migration_safe.report import markdown
            from migration_safe_rules import catalogue

            publish.upsert_summary(target, markdown.render(review, rules=catalogue(), limit=60000),
                                   self.settings.bot_login)
        publish.post_review(target, review, self.settings.bot_login)
        # Last: the required check turns green only once everything is published, and an attempt
        # that fails before this leaves its run in progress, without annotations, for the retry to reuse.
        publish.complete_check(run, review)
        return review

    def refuses(self, pull) -> bool:
        fork = (pull.head.repo is None or pull.head.repo.full_name != pull.base.repo.full_name)
        return fork and self.settings.refuse_unisolated_forks and not isolation_available().complete

    def review(self, job: ReviewJob, repo, pull) -> Review:
        if not any(f.filename.endswith(".py") and f.status != "removed" for f in pull.get_files()):
            return Review(migrations=[], notes=["this pull request adds no migration"])
        token = self.app.token(job.installation_id)
        state = command_state(repo, pull, self.settings.bot_login)
        with self.mirrors.worktree(repo.full_name, repo.clone_url, token, pull.number, pull.base.ref,
                                   [job.head_sha, pull.base.sha]) as tree:
            return run_review(ReviewRequest(repo=tree, base=pull.base.sha, head=job.head_sha,
                                            acknowledgements=state.acknowledgements,
                                            overrides=state.overrides, install=True))


def has_summary(pull) -> bool:
    return any(publish.SUMMARY_MARKER in (c.body or "") for c in pull.get_issue_comments())


# ---------------------------------------------------------------- RQ entry points


def perform(job_data: dict) -> None:
    from migration_safe.app.queue import RedisDispatcher

    settings = settings_from_environment()
    dispatcher = RedisDispatcher(settings.redis_url)
    Worker(settings, dispatcher.latest_head).run(job_data)


def on_failure(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ calls this on every failed attempt; only the last one reports, the others are retried."""
    if job.retries_left:
        return
    report_failure(job.args[0], f"{exc_type.__name__}: {exc_value}" if exc_type else "the worker died")


def report_failure(job_data: dict, reason: str, settings: AppSettings | None = None) -> None:
    """After the last retry: a completed failing check run that says what failed, never silence."""
    job = job_from_dict(job_data)
    if not isinstance(job, ReviewJob):
        return
    settings = settings or settings_from_environment()
    app = GitHubApp(settings)
    try:
        token = app.token(job.installation_id)
        repo = app.client(job.installation_id).get_repo(job.repo)
        # The check run needs only the repository and the head: not the PR, whose endpoint may be
        # the very thing that kept failing.
        target = publish.Target(repo, None, job.head_sha)
        publish.fail_check(publish.find_or_start_check(target), redact(reason, token))
    except Exception:  # GitHub itself is down: nothing more we can say
        log.exception("could not report the failure of %s", job.key)


def main() -> int:
    """`migration-safe worker`: an RQ worker on $REDIS_URL."""
    from redis import Redis
    from rq import Queue, Worker as RqWorker

    from migration_safe.app.queue import QUEUE_NAME

    settings = settings_from_environment()
    if not settings.redis_url:
        print("migration-safe worker: REDIS_URL is not set (without it, `serve` runs an in-process worker)",
              file=sys.stderr)
        return 2
    connection = Redis.from_url(settings.redis_url)
    RqWorker([Queue(QUEUE_NAME, connection=connection)], connection=connection).work(with_scheduler=True)
    return 0
