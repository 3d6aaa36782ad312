"""Webhook deliveries of GitHub's real shape, filled from the fake's state.

A delivery starts from GitHub's example body for the event and action (see
the shared github-payloads folder) so that it keeps every top-level key
GitHub sends; the objects inside (repository, pull_request, issue, comment,
check_run, check_suite, installation, sender) are then replaced by what the
fake serves over its API, so a test's webhook and API agree.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import git
from .shapes import (
    Urls,
    check_run_json,
    check_suite_json,
    comment_json,
    installation_json,
    issue_json,
    pull_json,
    repo_json,
    user_json,
)
from .state import App, CheckRun, IssueComment, Pull, Repo, State, User, iso


def _default_payloads_dir() -> Path:
    """shared/github-payloads beside the repository's checkout (as on CI), else /work/shared."""
    beside_checkout = Path(__file__).resolve().parents[3] / "shared" / "github-payloads"
    return beside_checkout if beside_checkout.is_dir() else Path("/work/shared/github-payloads")


DEFAULT_PAYLOADS_DIR = _default_payloads_dir()


def sign(body: bytes, secret: str | bytes) -> str:
    """The X-Hub-Signature-256 header GitHub sends for `body`."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


@dataclass
class Subject:
    """What a delivery is about; the fields an event needs must be set."""

    repo: Repo
    sender: User
    pull: Pull | None = None
    comment: IssueComment | None = None
    check_run: CheckRun | None = None
    head_sha: str | None = None


def load_template(directory: Path, event: str, action: str | None) -> dict[str, Any]:
    """GitHub's example body for the event, or a bare one when the folder is absent."""
    name = f"{event}.{action}.json" if action else f"{event}.json"
    path = directory / name
    if path.is_file():
        template: dict[str, Any] = json.loads(path.read_text())
        return template
    return {"action": action} if action else {}


def build(
    state: State, urls: Urls, directory: Path, event: str, action: str | None, subject: Subject
) -> dict[str, Any]:
    payload = load_template(directory, event, action)
    if action:
        payload["action"] = action
    repo = subject.repo
    if "repository" in payload or event not in ("installation", "installation_repositories"):
        payload["repository"] = repo_json(urls, repo)
    payload["sender"] = user_json(urls, subject.sender)
    payload["installation"] = {
        "id": repo.installation_id,
        "node_id": installation_json(urls, state, state.installation(repo.installation_id))["node_id"],
    }
    if repo.owner.type == "Organization":
        payload["organization"] = _organization(urls, repo.owner)
    else:
        payload.pop("organization", None)
    filler = _FILLERS.get(event)
    if filler is not None:
        filler(payload, state, urls, subject)
    return payload


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Overrides win; nested dicts merge so that one field can be changed."""
    result = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result


def _organization(urls: Urls, owner: User) -> dict[str, Any]:
    user = user_json(urls, owner)
    api = f"{urls.api}/orgs/{owner.login}"
    return {
        **{key: user[key] for key in ("login", "id", "node_id", "avatar_url")},
        "url": api,
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events",
        "hooks_url": f"{api}/hooks",
        "issues_url": f"{api}/issues",
        "members_url": f"{api}/members{{/member}}",
        "public_members_url": f"{api}/public_members{{/member}}",
        "description": "",
    }


def _need(value: Any, what: str, event: str) -> Any:
    if value is None:
        raise ValueError(f"a {event} delivery needs {what}")
    return value


def _pull_request(payload: dict[str, Any], state: State, urls: Urls, subject: Subject) -> None:
    pull: Pull = _need(subject.pull, "pull=NUMBER", "pull_request")
    payload["number"] = pull.number
    payload["pull_request"] = pull_json(urls, subject.repo, pull)
    if payload.get("action") == "synchronize":
        payload["before"] = pull.previous_head_sha or pull.base_sha
        payload["after"] = pull.head_sha


def _issue_comment(payload: dict[str, Any], state: State, urls: Urls, subject: Subject) -> None:
    pull: Pull = _need(subject.pull, "pull=NUMBER", "issue_comment")
    comment: IssueComment = _need(subject.comment, "comment=ID", "issue_comment")
    payload["issue"] = issue_json(urls, subject.repo, pull)
    payload["comment"] = comment_json(urls, state, subject.repo, comment)
    if payload.get("action") == "edited":
        payload["changes"] = {"body": {"from": comment.previous_body or ""}}


def _check_run(payload: dict[str, Any], state: State, urls: Urls, subject: Subject) -> None:
    run: CheckRun = _need(subject.check_run, "check_run=ID", "check_run")
    data = check_run_json(urls, state, subject.repo, run)
    app = state.app_by_id(run.app_id)
    data["check_suite"] = _suite(state, urls, subject.repo, run.head_sha, subject.pull, app)
    payload["check_run"] = data


def _check_suite(payload: dict[str, Any], state: State, urls: Urls, subject: Subject) -> None:
    sha = subject.head_sha or (subject.pull.head_sha if subject.pull else None)
    sha = _need(sha, "pull= or head_sha=", "check_suite")
    payload["check_suite"] = _suite(state, urls, subject.repo, sha, subject.pull, state.app)


def _suite(state: State, urls: Urls, repo: Repo, sha: str, pull: Pull | None, app: App) -> dict[str, Any]:
    branch = pull.head_ref if pull is not None else repo.default_branch
    suite = check_suite_json(urls, state, repo, sha, branch, app)
    suite["head_commit"] = _head_commit(repo, sha)
    if pull is not None:
        suite["before"] = pull.previous_head_sha or pull.base_sha
    return suite


def _head_commit(repo: Repo, sha: str) -> dict[str, Any]:
    info = git.commit_info(repo.path, sha) if repo.path is not None else None
    if info is None:
        person = {"name": repo.owner.login, "email": f"{repo.owner.login}@example.com"}
        return {"id": sha, "tree_id": "0" * 40, "message": "", "timestamp": iso(repo.created_at),
                "author": person, "committer": person}  # fmt: skip
    return {
        "id": sha,
        "tree_id": info.tree,
        "message": info.message,
        "timestamp": info.committer_date,
        "author": {"name": info.author_name, "email": info.author_email},
        "committer": {"name": info.committer_name, "email": info.committer_email},
    }


def _mini_repo(repo: Repo) -> dict[str, Any]:
    data = {"id": repo.id, "name": repo.name, "full_name": repo.full_name, "private": repo.private}
    return {**data, "node_id": f"R_{repo.id}"}


def _installation(payload: dict[str, Any], state: State, urls: Urls, subject: Subject) -> None:
    repo = subject.repo
    payload["installation"] = installation_json(urls, state, state.installation(repo.installation_id))
    mine = [_mini_repo(r) for r in state.repos.values() if r.installation_id == repo.installation_id]
    if "repositories" in payload or payload.get("action") == "created":
        payload["repositories"] = mine
    if "repositories_added" in payload:
        payload["repositories_added"], payload["repositories_removed"] = [_mini_repo(repo)], []
        payload["requester"] = None


_FILLERS: dict[str, Callable[[dict[str, Any], State, Urls, Subject], None]] = {
    "pull_request": _pull_request,
    "issue_comment": _issue_comment,
    "check_run": _check_run,
    "check_suite": _check_suite,
    "installation": _installation,
    "installation_repositories": _installation,
}
