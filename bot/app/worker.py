"""Queue worker: one job = fetch the PR head, run the engine, publish. Idempotent, so retries are safe."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from migration_safe.app import autopush, publish
from migration_safe.app.checkout import Author, LimitExceeded, Mirrors, redact
from migration_safe.app.commands import CommandDeps, command_state, handle_command
from migration_safe.app.events import CommandJob, ReviewJob, job_from_dict
from migration_safe.app.github import GitHubApp
from migration_safe.app.publication import Options
from migration_safe.app.reviewed import Reviewed
from migration_safe.app.settings import AppSettings, settings_from_environment
from migration_safe.config import Config, ConfigError, load_config
from migration_safe.engine.fix.concurrent_index import uses_pg_migration_tools
from migration_safe.engine.fix.models_rewrite import Snapshot, WorkTree, app_folder
from migration_safe.engine.model import Review
from migration_safe.engine.review.pipeline import ReviewRequest, run_review
from migration_safe.engine.sandbox.isolation import available as isolation_available

log = logging.getLogger(__name__)


class Superseded(Exception):
    """A newer head of the PR arrived: its own job publishes."""


class Worker:
    def __init__(self, settings: AppSettings, latest_head: Callable[[str, int], str | None],
                 app: GitHubApp | None = None) -> None:
        self.settings = settings
        self.latest_head = latest_head
        self.app = app or GitHubApp(settings)
        self.mirrors = Mirrors(settings.cache_dir, settings.checkout_limits)

    def run(self, job_data: dict) -> None:
        job = job_from_dict(job_data)
        if isinstance(job, CommandJob):
            handle_command(CommandDeps(self.app.client, self.app.bot_login, self.review_pull), job)
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

    def review_pull(self, job: ReviewJob, repo, pull) -> Reviewed | None:
        if pull.state != "open" or not self.current(job, pull):
            log.info("skipping %s: closed or superseded", job.key)
            return None
        target = publish.Target(repo, pull, job.head_sha, self.settings.app_id)
        run = publish.find_or_start_check(target)
        if self.refuses(pull):
            publish.fail_check(run, "this pull request comes from a fork, and this service cannot isolate "
                                    "the code it would run, so it did not run it: nothing was checked "
                                    f"(sandbox: {'; '.join(isolation_available().describe(network=False))}; "
                                    "install bubblewrap, or set MIGRATION_SAFE_FORKS=review-unisolated)")
            return None
        try:
            reviewed = self.review(job, repo, pull)
        except ConfigError as exc:  # the PR's own file is wrong: say so at once, retrying cannot help
            publish.fail_check(run, f"the configuration is invalid: {exc}")
            return None
        except LimitExceeded as exc:  # neither can a retry make the pull request smaller
            publish.fail_check(run, str(exc))
            return None
        if not self.current(job, pull):
            run.edit(status="completed", conclusion="cancelled", completed_at=publish.now_dt(),
                     output={"title": "Superseded by a newer push", "summary": "A newer head is reviewed."})
            return None
        pushed = self.push_fixes(job, repo, pull, run, reviewed)
        publish_reviewed(target, run, reviewed, self.app.bot_login(), pushed)
        return reviewed

    def push_fixes(self, job: ReviewJob, repo, pull, run, reviewed: Reviewed) -> autopush.Outcome:
        """`autofix: push`: the plan's files as one commit on the PR's branch, when allowed."""
        if reviewed.config.autofix != "push":
            return autopush.Outcome()
        plan = reviewed.fixes()
        # Nothing (left) to fix: this is where a push's own review stops. Declaring the phases of
        # migrations that are fine as they are does not earn a commit on the author's branch.
        if not plan.fixes_something:
            return autopush.Outcome()
        if reviewed.review.sql_unavailable:  # a static-only review: the CLI may fix from it, a bot should not
            return autopush.not_pushed("the SQL could not be verified, so the rewrites could not be either")
        reason = self.push_refusal(job, repo, pull)
        if reason is not None:
            return autopush.not_pushed(reason)
        login, user_id = self.app.bot_user(job.installation_id)
        branch = autopush.Branch(repo.full_name, repo.clone_url, pull.head.ref, job.head_sha)
        outcome = autopush.deliver(self.mirrors, branch, self.app.token(job.installation_id), plan,
                                   Author(login, f"{user_id}+{login}@users.noreply.github.com"))
        if outcome.commit:
            # Recorded at once on this head's run: even if a later step fails, no review of
            # this head pushes again.
            run.edit(output={"title": "Pushed the safe rewrites", "summary": outcome.note})
        return outcome

    def push_refusal(self, job: ReviewJob, repo, pull) -> str | None:
        """Why the fixes of this head may not be pushed, or None; the cheapest questions first."""
        reason = autopush.refusal(pull, self.app.permissions(job.installation_id))
        if reason is not None:
            return reason
        earlier = autopush.pushed_before(publish.Target(repo, pull, job.head_sha, self.settings.app_id))
        if earlier:
            return f"the rewrites of this head were pushed once already, as {earlier}, and never twice"
        latest = self.mirrors.messages(repo.full_name, job.head_sha, autopush.MAX_ROUNDS)
        if autopush.own_rounds(latest) >= autopush.MAX_ROUNDS:
            return (f"the last {autopush.MAX_ROUNDS} commits are migration-safe's own rewrites; "
                    "what is left is for people")
        return None

    def refuses(self, pull) -> bool:
        return (autopush.is_fork(pull) and self.settings.refuse_unisolated_forks
                and not isolation_available().complete)

    def review(self, job: ReviewJob, repo, pull) -> Reviewed:
        files = [f for f in pull.get_files() if f.filename.endswith(".py")]
        if not files:
            return Reviewed(Review(migrations=[], notes=["this pull request adds no migration"]), Config())
        token = self.app.token(job.installation_id)
        state = command_state(repo, pull)
        with self.mirrors.worktree(repo.full_name, repo.clone_url, token, pull.number, pull.base.ref,
                                   [job.head_sha, pull.base.sha]) as tree:
            # Both read before the project's code runs in the review: it must not choose them.
            config = load_config(tree)
            safer = uses_pg_migration_tools(tree)
            models = Snapshot.of(WorkTree(Path(tree)), {app for f in files if (app := app_folder(f.filename))})
            review = run_review(ReviewRequest(repo=tree, base=pull.base.sha, head=job.head_sha,
                                              acknowledgements=state.acknowledgements,
                                              overrides=state.overrides, install=True,
                                              cache_namespace=cache_namespace(repo, pull)))
            return Reviewed(review, config, safer, models)


def cache_namespace(repo, pull) -> str:
    """Whose reviews may share cached states: a state is made by the code under review, so only
    pull requests from the same repository (a fork is another) share them."""
    head = pull.head.repo
    return f"github:{head.full_name}" if head is not None else f"github:{repo.full_name}#pull-{pull.number}"


def publish_reviewed(target: publish.Target, run, reviewed: Reviewed, bot_login: str,
                     pushed: autopush.Outcome = autopush.Outcome()) -> None:
    """A finished review onto the pull request: labels, the summary comment, the inline review, then
    the check run. The App's worker and `migration-safe ci` both publish through this."""
    # a push's note lists what it left; else the summary says what `fix` would leave, and why
    left = tuple(reviewed.fixes().left) if reviewed.review.migrations and not pushed.note else ()
    # a pushed commit rewrites the lines review comments would be on: its own review comments on the rest
    publish.publish(target, run, reviewed.review, bot_login,
                    Options(note=pushed.note, left=left, review_comments=pushed.commit is None))


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
        target = publish.Target(repo, None, job.head_sha, settings.app_id)
        publish.fail_check(publish.find_or_start_check(target), redact(reason, token))
    except Exception:  # GitHub itself is down: nothing more we can say
        log.exception("could not report the failure of %s", job.key)


def main() -> int:
    """`migration-safe worker`: an RQ worker on $REDIS_URL, else the single machine's SQLite queue."""
    from redis import Redis
    from rq import Queue
    from rq import Worker as RqWorker

    from migration_safe.app.queue import QUEUE_NAME

    settings = settings_from_environment()
    if not settings.redis_url:
        run_local(settings)
        return 0
    connection = Redis.from_url(settings.redis_url)
    RqWorker([Queue(QUEUE_NAME, connection=connection)], connection=connection).work(with_scheduler=True)
    return 0


def run_local(settings: AppSettings, burst: bool = False) -> None:
    """Reviews from the SQLite queue that every web process of this machine fills."""
    from migration_safe.app.sqlitequeue import SqliteQueue, queue_path

    store = SqliteQueue(queue_path(settings.cache_dir))
    worker = Worker(settings, store.latest_head)
    store.work(worker.run, lambda job, reason: report_failure(job, reason, settings), burst=burst)
