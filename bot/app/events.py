"""Webhook event -> job. Pure: no network, no queue."""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from migration_safe.app.shapes import (CheckRunEvent, CheckSuiteEvent, InstallationEvent, IssueCommentEvent,
                                       PullRequestEvent, ShapeError, check_event)

log = logging.getLogger(__name__)

PR_ACTIONS = {"opened", "synchronize", "reopened", "ready_for_review"}


class PayloadError(ValueError):
    """The delivery is not of its event's shape."""


@dataclass(frozen=True)
class ReviewJob:
    installation_id: int
    repo: str  # "owner/name"
    pr: int | None  # None: find the open PRs whose head is head_sha (check suites of forks)
    head_sha: str
    reason: str  # "pull_request.opened", "check_run.rerequested", "recheck by @x"…

    kind = "review"

    @property
    def key(self) -> str:
        return f"{self.repo}#{self.pr}@{self.head_sha}"

    def to_dict(self) -> dict:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class CommandJob:
    installation_id: int
    repo: str
    pr: int
    comment_id: int
    author: str
    action: str  # "created" | "edited" | "deleted"

    kind = "command"

    @property
    def key(self) -> str:
        return f"{self.repo}#{self.pr}/comment-{self.comment_id}-{self.action}"

    def to_dict(self) -> dict:
        return {"kind": self.kind, **asdict(self)}


Job = ReviewJob | CommandJob


def job_from_dict(data: dict) -> Job:
    fields = {k: v for k, v in data.items() if k != "kind"}
    return ReviewJob(**fields) if data["kind"] == "review" else CommandJob(**fields)


def route(event: str, payload: Any, bot_login: str | None = None) -> Job | None:
    """The job a delivery asks for, or None when there is nothing to do.

    The payload's shape is checked first (shapes.EVENTS), so that the handlers below read
    only fields that are there and of the declared type."""
    try:
        check_event(event, payload)
    except ShapeError as exc:
        raise PayloadError(f"{event} delivery of the wrong shape: {exc}") from None
    handler = ROUTES.get(event)
    return handler(payload, bot_login) if handler else None


def _pull_request(payload: PullRequestEvent, _bot: str | None) -> Job | None:
    action = payload["action"]
    pr = payload["pull_request"]
    base_changed = action == "edited" and "base" in payload.get("changes", {})
    if action not in PR_ACTIONS and not base_changed:
        return None
    if pr["state"] == "closed":
        return None
    return ReviewJob(payload["installation"]["id"], payload["repository"]["full_name"], pr["number"],
                     pr["head"]["sha"], f"pull_request.{action}")


def _check_run(payload: CheckRunEvent, _bot: str | None) -> Job | None:
    if payload["action"] != "rerequested":
        return None
    run = payload["check_run"]
    prs = run["pull_requests"]
    return ReviewJob(payload["installation"]["id"], payload["repository"]["full_name"],
                     prs[0]["number"] if prs else None, run["head_sha"], "check_run.rerequested")


def _check_suite(payload: CheckSuiteEvent, _bot: str | None) -> Job | None:
    if payload["action"] not in ("requested", "rerequested"):
        return None
    suite = payload["check_suite"]
    prs = suite["pull_requests"]
    # Forks send no pull_requests: their reviews come from pull_request events.
    if not prs:
        return None
    return ReviewJob(payload["installation"]["id"], payload["repository"]["full_name"], prs[0]["number"],
                     suite["head_sha"], f"check_suite.{payload['action']}")


def _issue_comment(payload: IssueCommentEvent, bot_login: str | None) -> Job | None:
    issue, comment = payload["issue"], payload["comment"]
    user = comment["user"] or {"login": "", "type": ""}
    if not issue.get("pull_request"):
        return None  # plain issues: nothing of ours
    if user["type"] == "Bot" or (bot_login and user["login"] == bot_login):
        return None  # our own summary edits would loop back
    if payload["action"] not in ("created", "edited", "deleted"):
        return None
    # A later review re-reads all comments; only a comment that holds, or held before an
    # edit, a command needs a job now: editing a command away must withdraw it too.
    previous = payload.get("changes", {}).get("body", {"from": ""})["from"]
    if "/migration-safe" not in (comment["body"] or "") + previous:
        return None
    return CommandJob(payload["installation"]["id"], payload["repository"]["full_name"], issue["number"],
                      comment["id"], user["login"], payload["action"])


def _installation_event(payload: InstallationEvent, _bot: str | None) -> None:
    account = payload["installation"].get("account") or {"login": None}
    log.info("installation %s by %s", payload["action"], account["login"])
    return None


ROUTES = {
    "pull_request": _pull_request,
    "check_run": _check_run,
    "check_suite": _check_suite,
    "issue_comment": _issue_comment,
    "installation": _installation_event,
    "installation_repositories": _installation_event,
}
