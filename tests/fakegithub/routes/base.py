"""The shared router and lookups that every area of the API needs."""

from __future__ import annotations

from datetime import datetime

from .. import git
from ..core import ApiError, Router, invalid, not_found
from ..state import IssueComment, Pull, Repo

router = Router()


def number(raw: str) -> int:
    """A numeric path segment; anything else is a path GitHub does not have."""
    if not raw.isdigit():
        raise not_found()
    return int(raw)


def pull_or_404(repo: Repo, raw_number: str) -> Pull:
    pull = repo.pulls.get(number(raw_number))
    if pull is None:
        raise not_found()
    return pull


def comment_or_404(repo: Repo, raw_id: str) -> IssueComment:
    comment = repo.comments.get(number(raw_id))
    if comment is None:
        raise not_found()
    return comment


def parse_time(value: object, name: str) -> datetime:
    if not isinstance(value, str):
        raise invalid(f"For 'properties/{name}', {value!r} is not a timestamp.")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(f"For 'properties/{name}', \"{value}\" is not a timestamp.") from None


def require_str(value: object, resource: str, field_name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ApiError(
            422,
            "Validation Failed",
            errors=[{"resource": resource, "code": "missing_field", "field": field_name}],
        )
    return value


def known_shas(repo: Repo) -> set[str]:
    """Commits the fake knows without git: heads and bases of the repo's PRs."""
    shas: set[str] = set()
    for pull in repo.pulls.values():
        shas.update(pull.files_by_sha)
        shas.add(pull.base_sha)
    return shas


def resolve_commit(repo: Repo, ref: str) -> str | None:
    """SHA of a commit named by SHA or branch, from git when the repo has a path."""
    if repo.path is not None:
        sha = git.rev_parse(repo.path, ref)
        if sha:
            return sha
    for pull in repo.pulls.values():
        if ref == pull.head_ref and pull.head_repo is repo:
            return pull.head_sha
        if ref == pull.base_ref:
            return pull.base_sha
    return ref if ref in known_shas(repo) else None
