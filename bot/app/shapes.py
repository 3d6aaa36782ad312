"""The shape of each webhook event the App reads, checked at the edge before any field is used.

A delivery is signed, but its shape is still GitHub's word against our code: a string where
an object belongs must be answered 400, never crash a handler. Only the fields the App reads
are declared; GitHub's other fields pass unchecked.
"""
from __future__ import annotations

import functools
import types
from typing import Any, TypedDict, Union, get_args, get_origin, get_type_hints, is_typeddict


class ShapeError(ValueError):
    """Where the payload differs from the declared shape, e.g. `$.pull_request.head: a string, not an object`."""


class Installation(TypedDict):
    id: int


class Repository(TypedDict):
    full_name: str


class Commit(TypedDict):
    sha: str


class PullRequest(TypedDict):
    number: int
    state: str
    head: Commit


class PullRef(TypedDict):
    number: int


class Checked(TypedDict):  # a check run or a check suite
    head_sha: str
    pull_requests: list[PullRef]


class User(TypedDict):
    login: str
    type: str


class _Issue(TypedDict):
    number: int


class Issue(_Issue, total=False):
    pull_request: dict[str, Any] | None  # present on pull requests only


class Comment(TypedDict):
    id: int
    body: str | None
    user: User | None


BodyChange = TypedDict("BodyChange", {"from": str})


class CommentChanges(TypedDict, total=False):
    body: BodyChange


class _Event(TypedDict):
    action: str
    repository: Repository
    installation: Installation  # deliveries to an App always carry it


class _PullRequestEvent(_Event):
    pull_request: PullRequest


class PullRequestEvent(_PullRequestEvent, total=False):
    changes: dict[str, Any]


class CheckRunEvent(_Event):
    check_run: Checked


class CheckSuiteEvent(_Event):
    check_suite: Checked


class _IssueCommentEvent(_Event):
    issue: Issue
    comment: Comment


class IssueCommentEvent(_IssueCommentEvent, total=False):
    changes: CommentChanges


class Account(TypedDict):
    login: str


class _InstallationInfo(TypedDict):
    id: int


class InstallationInfo(_InstallationInfo, total=False):
    account: Account | None


class InstallationEvent(TypedDict):
    action: str
    installation: InstallationInfo


class PingEvent(TypedDict, total=False):
    zen: str


EVENTS: dict[str, Any] = {
    "ping": PingEvent,
    "pull_request": PullRequestEvent,
    "check_run": CheckRunEvent,
    "check_suite": CheckSuiteEvent,
    "issue_comment": IssueCommentEvent,
    "installation": InstallationEvent,
    "installation_repositories": InstallationEvent,
}


def check_event(event: str, payload: Any) -> None:
    """Raise ShapeError when a delivery of an event the App reads lacks the shape it relies on."""
    shape = EVENTS.get(event)
    if shape is not None:
        check(payload, shape)


def check(value: Any, shape: Any, where: str = "$") -> None:
    origin = get_origin(shape)
    if is_typeddict(shape):
        _check_object(value, shape, where)
    elif origin in (Union, types.UnionType):
        _check_optional(value, shape, where)
    elif origin is list:
        if not isinstance(value, list):
            raise ShapeError(f"{where}: {_kind(value)}, not a list")
        for index, item in enumerate(value):
            check(item, get_args(shape)[0], f"{where}[{index}]")
    elif origin is dict:
        if not isinstance(value, dict):
            raise ShapeError(f"{where}: {_kind(value)}, not an object")
    elif not _scalar(value, shape):
        raise ShapeError(f"{where}: {_kind(value)}, not {_name(shape)}")


def _check_object(value: Any, shape: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise ShapeError(f"{where}: {_kind(value)}, not an object")
    for key in sorted(shape.__required_keys__):
        if key not in value:
            raise ShapeError(f"{where}.{key}: missing")
    for key, hint in _hints(shape).items():
        if key in value:
            check(value[key], hint, f"{where}.{key}")


def _check_optional(value: Any, shape: Any, where: str) -> None:
    if value is None and type(None) in get_args(shape):
        return
    [inner] = [option for option in get_args(shape) if option is not type(None)]  # only "X | None" is declared
    check(value, inner, where)


def _scalar(value: Any, shape: Any) -> bool:
    if shape is int:  # JSON true is not a number
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, shape)


@functools.cache
def _hints(shape: Any) -> dict[str, Any]:
    return get_type_hints(shape)


def _kind(value: Any) -> str:
    """The JSON kind of a value; never the value itself, which the sender chose."""
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(value), "a value")


def _name(shape: Any) -> str:
    return {int: "a number", str: "a string", bool: "a boolean"}[shape]
