"""In-memory model of the part of GitHub the app talks to.

Plain dataclasses, all guarded by `State.lock`: the HTTP server is threaded
and tests read the same objects from the main thread. `eq=False` everywhere:
objects are compared by identity (pulls point back at repos).
"""

from __future__ import annotations

import itertools
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .diff import count_changes

# GitHub shows what an "Organization" or a "Bot" is through `user.type`.
USER, ORGANIZATION, BOT = "User", "Organization", "Bot"

# role_name -> the coarse `permission` GitHub reports next to it.
ROLE_PERMISSION = {
    "admin": "admin",
    "maintain": "write",
    "write": "write",
    "triage": "read",
    "read": "read",
    "none": "none",
}


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def random_sha() -> str:
    return secrets.token_hex(20)


@dataclass(eq=False)
class User:
    login: str
    id: int
    type: str = USER


@dataclass(eq=False)
class Label:
    id: int
    name: str
    color: str = "ededed"
    description: str | None = None
    default: bool = False


@dataclass(eq=False)
class PullFile:
    filename: str
    status: str = "modified"
    patch: str | None = None
    sha: str = field(default_factory=random_sha)
    previous_filename: str | None = None
    additions: int = 0
    deletions: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PullFile:
        """Builds a file from a test's dict; counts come from the patch when absent."""
        patch = data.get("patch")
        added, deleted = count_changes(patch) if patch else (0, 0)
        return cls(
            filename=data["filename"],
            status=data.get("status", "modified"),
            patch=patch,
            sha=data.get("sha") or random_sha(),
            previous_filename=data.get("previous_filename"),
            additions=data.get("additions", added),
            deletions=data.get("deletions", deleted),
        )


@dataclass(eq=False)
class Reaction:
    id: int
    user: User
    content: str
    created_at: datetime


@dataclass(eq=False)
class IssueComment:
    id: int
    number: int
    user: User
    body: str
    created_at: datetime
    updated_at: datetime
    via_app: bool = False
    previous_body: str | None = None
    reactions: list[Reaction] = field(default_factory=list)


@dataclass(eq=False)
class CheckRun:
    id: int
    name: str
    head_sha: str
    suite_id: int
    app_id: int  # the App that created it, the only one GitHub lets update it
    status: str = "queued"
    conclusion: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    details_url: str | None = None
    external_id: str = ""
    title: str | None = None
    summary: str | None = None
    text: str | None = None
    annotations: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)


@dataclass(eq=False)
class Review:
    id: int
    number: int
    user: User
    body: str
    state: str
    commit_id: str
    submitted_at: datetime | None


@dataclass(eq=False)
class ReviewComment:
    id: int
    number: int
    review_id: int
    user: User
    body: str
    path: str
    commit_id: str
    diff_hunk: str
    line: int | None
    side: str
    position: int | None
    start_line: int | None = None
    start_side: str | None = None
    in_reply_to_id: int | None = None
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)


@dataclass(eq=False)
class Pull:
    number: int
    id: int
    issue_id: int
    title: str
    body: str
    user: User
    head_repo: Repo = field(repr=False)
    head_ref: str
    head_sha: str
    base_ref: str
    base_sha: str
    # Every head the PR has had, oldest first, with the files at that head:
    # reviews may target an older commit of the PR, as on GitHub.
    files_by_sha: dict[str, list[PullFile]] = field(default_factory=dict)
    state: str = "open"
    draft: bool = False
    merged: bool = False
    labels: list[Label] = field(default_factory=list)
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)
    closed_at: datetime | None = None
    merged_at: datetime | None = None

    @property
    def files(self) -> list[PullFile]:
        return self.files_by_sha[self.head_sha]

    @property
    def previous_head_sha(self) -> str | None:
        heads = list(self.files_by_sha)
        return heads[-2] if len(heads) > 1 else None


@dataclass(eq=False)
class Repo:
    id: int
    owner: User
    name: str
    default_branch: str
    path: Path | None
    installation_id: int
    private: bool = False
    fork: bool = False
    created_at: datetime = field(default_factory=now)
    # Keyed by lower-cased name: GitHub label names are case-insensitive.
    labels: dict[str, Label] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    next_number: int = 1
    pulls: dict[int, Pull] = field(default_factory=dict, repr=False)
    comments: dict[int, IssueComment] = field(default_factory=dict, repr=False)
    # Deleted comments stay known so that an issue_comment.deleted delivery can still describe them.
    deleted_comments: dict[int, IssueComment] = field(default_factory=dict, repr=False)
    check_runs: dict[int, CheckRun] = field(default_factory=dict, repr=False)
    check_suites: dict[tuple[int, str], int] = field(default_factory=dict, repr=False)  # (app id, sha) -> id
    reviews: dict[int, Review] = field(default_factory=dict, repr=False)
    review_comments: dict[int, ReviewComment] = field(default_factory=dict, repr=False)

    @property
    def full_name(self) -> str:
        return f"{self.owner.login}/{self.name}"

    def role_of(self, login: str) -> str:
        """Role of a user; outsiders can read a public repository and nothing else."""
        if login.lower() == self.owner.login.lower():
            return "admin"
        return self.roles.get(login.lower(), "none" if self.private else "read")


@dataclass(eq=False)
class Token:
    value: str
    expires_at: datetime
    login: str
    installation_id: int | None  # None for a user's personal token
    permissions: dict[str, str] = field(default_factory=dict)
    app_id: int | None = None  # the App an installation's token acts for


# What the App asks for (app.yml's default_permissions).
APP_PERMISSIONS = {
    "checks": "write",
    "contents": "write",
    "issues": "write",
    "metadata": "read",
    "pull_requests": "write",
}


# The GitHub Actions app on github.com, as the `app` of its check runs shows it.
ACTIONS_APP_ID = 15368
ACTIONS_BOT = "github-actions[bot]"  # whom a workflow's GITHUB_TOKEN writes as
ACTIONS_PERMISSIONS = {
    "actions": "write",
    "checks": "write",
    "contents": "write",
    "deployments": "write",
    "issues": "write",
    "metadata": "read",
    "packages": "write",
    "pages": "write",
    "pull_requests": "write",
    "statuses": "write",
}


@dataclass(eq=False)
class App:
    id: int
    slug: str
    name: str
    owner: User
    bot: User
    created_at: datetime = field(default_factory=now)
    permissions: dict[str, str] = field(default_factory=lambda: dict(APP_PERMISSIONS))
    description: str = ""
    events: tuple[str, ...] = ("check_run", "check_suite", "issue_comment", "pull_request")


@dataclass(eq=False)
class Installation:
    id: int
    account: User
    # What the account accepted: an owner may not have approved a permission the App added later.
    permissions: dict[str, str]
    created_at: datetime = field(default_factory=now)


class State:
    """Everything the fake knows. Callers hold `lock` while reading or writing."""

    def __init__(self, app_id: int, app_slug: str, installation_id: int, owner: str) -> None:
        self.lock = threading.RLock()
        # One counter for every kind of id: an id used with the wrong endpoint
        # then finds nothing instead of some unrelated object.
        self._ids = itertools.count(1000)
        self.users: dict[str, User] = {}
        self.repos: dict[str, Repo] = {}
        self.tokens: dict[str, Token] = {}
        self.installations: dict[int, Installation] = {}
        owner_user = self.user(owner, ORGANIZATION)
        bot = self.user(f"{app_slug}[bot]", BOT)
        self.app = App(id=app_id, slug=app_slug, name=app_slug, owner=owner_user, bot=bot)
        # Whom a workflow's GITHUB_TOKEN acts for: its check runs are this App's, not ours.
        self.actions_app = App(id=ACTIONS_APP_ID, slug="github-actions", name="GitHub Actions",
                               owner=self.user("github", ORGANIZATION), bot=self.user(ACTIONS_BOT, BOT),
                               created_at=datetime(2018, 7, 30, 9, 30, 17, tzinfo=timezone.utc),
                               permissions=dict(ACTIONS_PERMISSIONS),
                               description="Automate your workflow from idea to production", events=())
        self.installations[installation_id] = Installation(installation_id, owner_user, dict(self.app.permissions))
        self.default_installation_id = installation_id

    def new_id(self) -> int:
        return next(self._ids)

    def user(self, login: str, type_: str = USER) -> User:
        """Gets a user by login (case-insensitive), creating it on first use."""
        key = login.lower()
        if key not in self.users:
            self.users[key] = User(login=login, id=self.new_id(), type=type_)
        return self.users[key]

    def repo(self, owner: str, name: str) -> Repo | None:
        return self.repos.get(f"{owner}/{name}".lower())

    def installation(self, installation_id: int) -> Installation:
        if installation_id not in self.installations:
            account = self.app.owner
            self.installations[installation_id] = Installation(installation_id, account, dict(self.app.permissions))
        return self.installations[installation_id]

    def app_by_id(self, app_id: int) -> App:
        return {self.app.id: self.app, self.actions_app.id: self.actions_app}[app_id]

    def suite_id(self, repo: Repo, head_sha: str, app: App) -> int:
        """GitHub groups check runs of one app on one commit into a check suite."""
        key = (app.id, head_sha)
        if key not in repo.check_suites:
            repo.check_suites[key] = self.new_id()
        return repo.check_suites[key]
