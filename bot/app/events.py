"""Webhook event -> job. Pure: no network, no queue."""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

log = logging.getLogger(__name__)

PR_ACTIONS = {"opened", "synchronize", "reopened", "ready_for_review"}


class PayloadError(ValueError):
    """The delivery lacks a field its event must have."""


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


def route(event: str, payload: dict[str, Any], bot_login: str | None = None) -> Job | None:
    """The job a delivery asks for, or None when there is nothing to do."""
    handler = ROUTES.get(event)
    if handler is None:
        return None
    try:
        return handler(payload, bot_login)
    except (KeyError, TypeError, ValueError) as exc:
        raise PayloadError(f"{event} delivery without the expected fields: {exc}") from None


def _installation(payload: dict) -> int:
    return int(payload["installation"]["id"])


def _pull_request(payload: dict, _bot: str | None) -> Job | None:
    action = payload["action"]
    pr = payload["pull_request"]
    base_changed = action == "edited" and "base" in (payload.get("changes") or {})
    if action not in PR_ACTIONS and not base_changed:
        return None
    if pr.get("state") == "closed":
        return None
    return ReviewJob(_installation(payload), payload["repository"]["full_name"], int(pr["number"]),
                     pr["head"]["sha"], f"pull_request.{action}")


def _check_run(payload: dict, _bot: str | None) -> Job | None:
    if payload["action"] != "rerequested":
        return None
    run = payload["check_run"]
    prs = run.get("pull_requests") or []
    return ReviewJob(_installation(payload), payload["repository"]["full_name"],
                     int(prs[0]["number"]) if prs else None, run["head_sha"], "check_run.rerequested")


def _check_suite(payload: dict, _bot: str | None) -> Job | None:
    if payload["action"] not in ("requested", "rerequested"):
        return None
    suite = payload["check_suite"]
    prs = suite.get("pull_requests") or []
    # Forks send no pull_requests: their reviews come from pull_request events.
    if not prs:
        return None
    return ReviewJob(_installation(payload), payload["repository"]["full_name"], int(prs[0]["number"]),
                     suite["head_sha"], f"check_suite.{payload['action']}")


def _issue_comment(payload: dict, bot_login: str | None) -> Job | None:
    issue, comment = payload["issue"], payload["comment"]
    user = comment.get("user") or {}
    if not issue.get("pull_request"):
        return None  # plain issues: nothing of ours
    if user.get("type") == "Bot" or (bot_login and user.get("login") == bot_login):
        return None  # our own summary edits would loop back
    if payload["action"] not in ("created", "edited", "deleted"):
        return None
    # A later review re-reads all comments; only a comment that holds, or held before an
    # edit, a command needs a job now: editing a command away must withdraw it too.
    previous = ((payload.get("changes") or {}).get("body") or {}).get("from") or ""
    if "/migration-safe" not in (comment.get("body") or "") + previous:
        return None
    return CommandJob(_installation(payload), payload["repository"]["full_name"], int(issue["number"]),
                      int(comment["id"]), user.get("login") or "", payload["action"])


def _installation_event(payload: dict, _bot: str | None) -> None:
    account = (payload.get("installation") or {}).get("account") or {}
    log.info("installation %s by %s", payload.get("action"), account.get("login"))
    return None


ROUTES = {
    "pull_request": _pull_request,
    "check_run": _check_run,
    "check_suite": _check_suite,
    "issue_comment": _issue_comment,
    "installation": _installation_event,
    "installation_repositories": _installation_event,
}
