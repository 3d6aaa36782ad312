"""`migration-safe ci`: the App's review, run as a step of the team's own GitHub Actions job.

The project's interpreter and dependencies are the job's, installed by its own steps; the review is
published through the App's own code (`worker.publish_reviewed`), with PyGithub authenticated by the
workflow's token instead of an installation's. A token that may not write (a fork's pull request)
still gets workflow-command annotations, the job summary and the exit code.
"""
from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from github import Auth, Github, GithubException, RateLimitExceededException

from migration_safe.app import publication, publish
from migration_safe.app.autopush import is_fork
from migration_safe.app.checkout import CheckoutError, run_git
from migration_safe.app.commands import CommandDeps, command_state, handle_command
from migration_safe.app.events import PayloadError, ReviewJob, route
from migration_safe.app.github import retry_policy
from migration_safe.app.reviewed import Reviewed
from migration_safe.app.shapes import Repository, ShapeError, check
from migration_safe.app.worker import publish_reviewed
from migration_safe.config import Config, ConfigError, load_config
from migration_safe.engine.fix.concurrent_index import uses_pg_migration_tools
from migration_safe.engine.fix.models_rewrite import Snapshot, WorkTree, app_folder
from migration_safe.engine.model import Review
from migration_safe.engine.review import discover
from migration_safe.engine.review.pipeline import ReviewRequest, SetupError, run_review
from migration_safe.engine.sandbox.isolation import available as isolation_available
from migration_safe.report import actions as workflow_commands
from migration_safe.report import markdown, markup
from migration_safe_rules import catalogue

EXIT_OK, EXIT_BLOCKING, EXIT_USAGE, EXIT_FAILED = 0, 1, 2, 3
NO_INSTALLATION = 0  # a workflow's token belongs to no installation of ours
DEFAULT_API_URL = "https://api.github.com"
ACTIONS_BOT = "github-actions[bot]"  # whom a workflow's GITHUB_TOKEN writes as
MAX_EVENT_BYTES = 25 * 1024 * 1024  # GitHub caps a webhook payload at 25 MB
STEP_SUMMARY_LIMIT = 1024 * 1024  # GitHub refuses a larger job summary
FETCH_DEPTH = 50
DEEPEN = (200, 1000)  # then the whole history
SHA = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$")


class CiError(Exception):
    """The job is not set up as `ci` needs (environment, event): the workflow's to fix."""


class _Sha(TypedDict):
    sha: str


class _PullRequest(TypedDict):
    number: int
    state: str
    base: _Sha
    head: _Sha


class PullRequestPayload(TypedDict):
    action: str
    repository: Repository
    pull_request: _PullRequest


@dataclass(frozen=True)
class ActionsEnv:
    event_name: str
    event_path: Path
    repository: str
    api_url: str
    workspace: Path
    step_summary: Path | None
    token: str
    pace_writes: bool

    @classmethod
    def from_environment(cls, token_env: str = "GITHUB_TOKEN") -> ActionsEnv:
        env = os.environ
        missing = [name for name in ("GITHUB_EVENT_NAME", "GITHUB_EVENT_PATH", "GITHUB_REPOSITORY",
                                     "GITHUB_WORKSPACE") if not env.get(name)]
        if missing:
            raise CiError(f"not in a GitHub Actions job: {', '.join(missing)} not set")
        if not env.get(token_env):
            raise CiError(f"no token: ${token_env} is empty; pass `GITHUB_TOKEN: ${{{{ github.token }}}}` "
                          "in the step's env (or name another variable with --token-env)")
        summary = env.get("GITHUB_STEP_SUMMARY")
        return cls(env["GITHUB_EVENT_NAME"], Path(env["GITHUB_EVENT_PATH"]), env["GITHUB_REPOSITORY"],
                   env.get("GITHUB_API_URL") or DEFAULT_API_URL, Path(env["GITHUB_WORKSPACE"]),
                   Path(summary) if summary else None, env[token_env],
                   env.get("MIGRATION_SAFE_PACE_WRITES", "1") != "0")

    def client(self) -> Github:
        # PyGithub paces writes (1 s) to stay under GitHub's secondary rate limits; tests turn it off.
        pacing = {} if self.pace_writes else {"seconds_between_requests": None, "seconds_between_writes": None}
        return Github(auth=Auth.Token(self.token), base_url=self.api_url, retry=retry_policy(), per_page=100,
                      **pacing)


@dataclass(frozen=True)
class Options:
    config: str | None = None  # the workflow's own config file, else the head's .github/migration-safe.yml
    base: str | None = None  # a revision instead of the pull request's base
    python: str | None = None  # the interpreter that runs the project, else the config's, else this one
    token_env: str = "GITHUB_TOKEN"


def run(options: Options) -> int:
    try:
        env = ActionsEnv.from_environment(options.token_env)
        payload = read_event(env.event_path)
    except CiError as exc:
        print(f"migration-safe ci: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if env.event_name == "pull_request_target":
        print("migration-safe ci: refusing pull_request_target: it would run the pull request's code with a "
              "token that can write to the repository; run on pull_request", file=sys.stderr)
        return EXIT_USAGE
    handler = {"pull_request": on_pull_request, "issue_comment": on_issue_comment}.get(env.event_name)
    if handler is None:
        print(f"migration-safe ci: nothing to do for a {env.event_name} event; run it on pull_request "
              "(and issue_comment for commands)", file=sys.stderr)
        return EXIT_USAGE
    try:
        return handler(CiWorker(env, options), payload)
    except CiError as exc:
        print(f"migration-safe ci: {exc}", file=sys.stderr)
        return EXIT_USAGE


def read_event(path: Path) -> Any:
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_EVENT_BYTES + 1)
    except OSError as exc:
        raise CiError(f"cannot read GITHUB_EVENT_PATH: {exc}") from None
    if len(data) > MAX_EVENT_BYTES:
        raise CiError(f"GITHUB_EVENT_PATH holds more than {MAX_EVENT_BYTES // (1024 * 1024)} MB")
    try:
        return json.loads(data)
    except ValueError as exc:
        raise CiError(f"GITHUB_EVENT_PATH is not JSON: {exc}") from None


def on_pull_request(worker: CiWorker, payload: Any) -> int:
    try:
        check(payload, PullRequestPayload)
    except ShapeError as exc:
        raise CiError(f"the event is not a pull_request payload: {exc}") from None
    # Every action of an open pull request is reviewed, not only the App's: the job's exit code may be
    # the required check, and a run that passed without reviewing (a `labeled`) would replace a failing one.
    if payload["pull_request"]["state"] != "open":
        print("migration-safe ci: nothing to review for a closed pull request", file=sys.stderr)
        return EXIT_OK
    repo = worker.gh.get_repo(worker.env.repository)
    pull = repo.get_pull(payload["pull_request"]["number"])
    job = ReviewJob(NO_INSTALLATION, repo.full_name, pull.number, payload["pull_request"]["head"]["sha"],
                    f"pull_request.{payload['action']}")
    reviewed = worker.review_pull(job, repo, pull)
    return worker.finish(pull, reviewed)


def on_issue_comment(worker: CiWorker, payload: Any) -> int:
    """`/migration-safe` commands, answered by the App's own handler; it re-reviews the head through
    `worker.review_pull` when a command changes the verdict."""
    try:
        # The App's own routing, which reads the installation an App's delivery carries: a
        # workflow's event has none, and the workflow's token needs none.
        job = route("issue_comment", {**payload, "installation": {"id": NO_INSTALLATION}},
                    worker.app.bot_login())
    except PayloadError as exc:
        raise CiError(str(exc)) from None
    if job is None:
        print("migration-safe ci: this comment holds no /migration-safe command", file=sys.stderr)
        return EXIT_OK
    worker.privileged = True
    try:
        handle_command(CommandDeps(worker.app.client, worker.app.bot_login, worker.review_pull), job)
    except GithubException as exc:
        if exc.status != 403:
            raise
        print(f"migration-safe ci: GitHub refused to let this job answer the command ({exc.status}): give the "
              "job `permissions:` checks: write, pull-requests: write, issues: write", file=sys.stderr)
        return EXIT_FAILED
    if worker.reviewed is None:
        return EXIT_OK
    repo = worker.gh.get_repo(worker.env.repository)
    return worker.finish(repo.get_pull(job.pr), worker.reviewed)


class TokenApp:
    """The part of `GitHubApp` that command handling uses, for a workflow's token."""

    def __init__(self, gh: Github) -> None:
        self.gh = gh
        self._login: str | None = None

    def client(self, _installation_id: int) -> Github:
        return self.gh

    def bot_login(self) -> str:
        """Whose comments and markers are ours: MIGRATION_SAFE_BOT_LOGIN, else the token's own user (a
        personal token), else github-actions[bot], for which GitHub answers /user with 403."""
        if self._login is None:
            self._login = os.environ.get("MIGRATION_SAFE_BOT_LOGIN") or self._ask()
        return self._login

    def _ask(self) -> str:
        try:
            return self.gh.get_user().login
        except GithubException:
            return ACTIONS_BOT


class CiWorker:
    """What the App's worker does for one pull request (`review_pull`), in the job's own checkout."""

    def __init__(self, env: ActionsEnv, options: Options) -> None:
        self.env, self.options = env, options
        self.gh = env.client()
        self.app = TokenApp(self.gh)
        self.privileged = False  # an issue_comment workflow: the base's write token, whoever wrote the PR
        self.publisher: Publisher | None = None
        self.reviewed: Reviewed | None = None

    def review_pull(self, job: ReviewJob, repo, pull) -> Reviewed | None:
        if pull.state != "open":
            return None
        # The workflow's token acts as GitHub Actions, as does any workflow here: the only run this job
        # can tell for its own is the one it creates.
        target = publish.Target(repo, pull, job.head_sha, app_id=None)
        self.publisher = Publisher(target, self.app.bot_login())
        run_ = self.publisher.start()
        if self.privileged and is_fork(pull) and not isolation_available().complete:
            # A fork's code with the repository's write token next to it: only inside a full sandbox.
            self.publisher.fail(run_, "this pull request comes from a fork, and this job cannot isolate the "
                                      "code it would run next to a token that can write, so it did not run it: "
                                      "nothing was checked (install bubblewrap on the runner)")
            return None
        workspace = self.env.workspace
        try:
            base = fetch_commit(workspace, self.options.base or pull.base.sha, self.env.token)
            head = fetch_commit(workspace, job.head_sha, self.env.token)
            ensure_merge_base(workspace, base, head, self.env.token)
            reviewed = review(workspace, base, head, target, self.options)
        except ConfigError as exc:
            self.publisher.fail(run_, f"the configuration is invalid: {exc}")
            raise
        except Exception as exc:
            self.publisher.fail(run_, f"{type(exc).__name__}: {exc}")
            raise
        self.publisher.publish(run_, reviewed)
        self.reviewed = reviewed
        return reviewed

    def finish(self, pull, reviewed: Reviewed | None) -> int:
        """The job's own outputs: its summary, annotations when nothing else could carry them, the exit code."""
        if reviewed is None:
            if pull.state != "open":
                print("migration-safe ci: the pull request is closed: nothing to review", file=sys.stderr)
                return EXIT_OK
            print("migration-safe ci: nothing was reviewed; the check run on the pull request says why",
                  file=sys.stderr)
            return EXIT_FAILED
        write_step_summary(self.env.step_summary, reviewed)
        publisher = self.publisher
        if publisher is not None and publisher.denied:
            sys.stdout.write(workflow_commands.render(reviewed.review, rules=catalogue()))
            print(workflow_commands.command("warning", publisher.explanation(is_fork(pull)),
                                            title="migration-safe could not write to the pull request"))
        else:
            print(f"migration-safe: {publication.title(reviewed.review)} (published on pull request #{pull.number})")
        return EXIT_BLOCKING if reviewed.review.blocking else EXIT_OK


class Publisher:
    """The App's publishing steps, which stop at the first write GitHub refuses (403: a read-only
    token) and remember why, for the one message that says so."""

    def __init__(self, target: publish.Target, login: str) -> None:
        self.target, self.login = target, login
        self.denied: GithubException | None = None
        self.check_published = False

    def start(self):
        return self._attempt(lambda: publish.find_or_start_check(self.target))

    def fail(self, run_, reason: str) -> None:
        if run_ is not None:
            self._attempt(lambda: publish.fail_check(run_, reason))

    def publish(self, run_, reviewed: Reviewed) -> None:
        if run_ is None:
            return
        if self._attempt(lambda: publish_reviewed(self.target, run_, reviewed, self.login) or True):
            self.check_published = True
            return
        # The check run goes on by itself: it needs checks: write only, which the token may have.
        refused, self.denied = self.denied, None
        self.check_published = bool(self._attempt(lambda: publish.publish(
            self.target, run_, reviewed.review, self.login, publication.Options(check_only=True)) or True))
        self.denied = refused  # the warning explains what was refused first

    def _attempt(self, step):
        if self.denied is not None:
            return None
        try:
            return step()
        except RateLimitExceededException:
            raise
        except GithubException as exc:
            if exc.status != 403:
                raise
            self.denied = exc
            return None

    def explanation(self, fork: bool) -> str:
        message = (self.denied.data or {}).get("message") if isinstance(self.denied.data, dict) else None
        why = ("this pull request comes from a fork, and GitHub gives the workflows of fork pull requests "
               "a read-only token" if fork else
               "the token may not write here: give the job `permissions:` checks: write, pull-requests: "
               "write, issues: write")
        published = "only the check run was published, not " if self.check_published else "no check run, "
        return (f"GitHub refused to let this job write to the pull request ({self.denied.status}: "
                f"{markup.clip(message or 'forbidden', markup.NAME_LIMIT)}): {why}. So {published}"
                "labels, summary comment or review comments; the findings are in this job's annotations and "
                "summary, and its exit code is the verdict.")


def fetch_commit(workspace: Path, revision: str, token: str) -> str:
    """The commit `revision` names, fetched from origin when the (shallow) checkout lacks it."""
    if revision.startswith("-"):
        raise CiError(f"not a revision: {revision!r}")
    local = commit_of(workspace, revision)
    if local is not None:
        return local
    # A full history stays full; a shallow one gets what the review needs, deepened below if short.
    depth = [f"--depth={FETCH_DEPTH}"] if is_shallow(workspace) else []
    git_fetch(workspace, [*depth, "origin", revision], token)
    fetched = commit_of(workspace, revision if SHA.match(revision) else "FETCH_HEAD")
    if fetched is None:
        raise SetupError(f"origin has no commit {revision}")
    return fetched


def ensure_merge_base(workspace: Path, base: str, head: str, token: str) -> None:
    """The review diffs head against where it forked from base: deepen a shallow history until that
    commit is in it."""
    for depth in DEEPEN:
        if has_merge_base(workspace, base, head) or not is_shallow(workspace):
            return
        git_fetch(workspace, [f"--deepen={depth}", "origin", base, head], token)
    if not has_merge_base(workspace, base, head) and is_shallow(workspace):
        git_fetch(workspace, ["--unshallow", "origin", base, head], token)


def git_fetch(workspace: Path, args: list[str], token: str) -> None:
    # actions/checkout leaves its credentials in the checkout's config unless told not to: then
    # they serve, rather than a second Authorization header.
    own = run_config(workspace, r"^http\..*extraheader$")
    run_git(workspace, ["fetch", "--quiet", "--no-tags", *args], "" if own else token)


def run_config(workspace: Path, pattern: str) -> str:
    try:
        return run_git(workspace, ["config", "--local", "--get-regexp", pattern], "")
    except CheckoutError:  # git says 1 when nothing matches
        return ""


def commit_of(workspace: Path, revision: str) -> str | None:
    try:
        return run_git(workspace, ["rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"], "").strip()
    except CheckoutError:
        return None


def has_merge_base(workspace: Path, base: str, head: str) -> bool:
    try:
        run_git(workspace, ["merge-base", base, head], "")
        return True
    except CheckoutError:
        return False


def is_shallow(workspace: Path) -> bool:
    return run_git(workspace, ["rev-parse", "--is-shallow-repository"], "").strip() == "true"


def review(workspace: Path, base: str, head: str, target: publish.Target, options: Options) -> Reviewed:
    """What the App's worker reviews, in the job's own checkout and interpreter."""
    pull = target.pull
    files = [f for f in pull.get_files() if f.filename.endswith(".py")]
    if not files:
        return Reviewed(Review(migrations=[], notes=["this pull request adds no migration"]), Config())
    state = command_state(target.repo, pull)
    with discover.checkout(workspace, head) as tree:
        # Read before the project's code runs in the review: it must not choose them.
        config = load_config(tree, options.config)
        safer = uses_pg_migration_tools(tree)
        models = Snapshot.of(WorkTree(Path(tree)), {app for f in files if (app := app_folder(f.filename))})
    result = run_review(ReviewRequest(repo=workspace, base=base, head=head, config_path=options.config,
                                      python=options.python, acknowledgements=state.acknowledgements,
                                      overrides=state.overrides))
    return Reviewed(result, config, safer, models)


def write_step_summary(path: Path | None, reviewed: Reviewed) -> None:
    if path is None:
        return
    body = markdown.render(reviewed.review, rules=catalogue(), left=reviewed.fixes().left)
    with open(path, "a", encoding="utf-8") as file:  # other steps' summaries come before
        file.write(markup.clip_body(body, STEP_SUMMARY_LIMIT) + "\n")
