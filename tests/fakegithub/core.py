"""HTTP-agnostic plumbing: requests, responses, errors, routing, pagination."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, TypeVar
from urllib.parse import unquote, urlencode

from .shapes import Urls
from .state import Repo, State, User

DOCS = "https://docs.github.com/rest"


@dataclass
class Request:
    method: str
    path: str  # as sent, percent-encoded, without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    @cached_property
    def json(self) -> Any:
        """The JSON body, or None when there is none or it does not parse."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        body = json.dumps(data).encode()
        all_headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        return cls(status, body, all_headers)

    @classmethod
    def empty(cls, status: int = 204) -> Response:
        return cls(status)


class ApiError(Exception):
    """An error response in GitHub's shape: {"message", "errors"?, "documentation_url", "status"}."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: list[Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = headers or {}

    def response(self) -> Response:
        data: dict[str, Any] = {"message": self.message}
        if self.errors is not None:
            data["errors"] = self.errors
        data["documentation_url"] = DOCS
        data["status"] = str(self.status)
        return Response.json(data, self.status, self.headers)


def not_found() -> ApiError:
    return ApiError(404, "Not Found")


def invalid(message: str) -> ApiError:
    """The 422 the Checks API returns for a request that breaks its schema."""
    return ApiError(422, f"Invalid request.\n\n{message}")


def validation_failed(resource: str, field_name: str, code: str, message: str | None = None) -> ApiError:
    error: dict[str, Any] = {"resource": resource, "code": code, "field": field_name}
    if message is not None:
        error["message"] = message
    return ApiError(422, "Validation Failed", errors=[error])


@dataclass(frozen=True)
class Identity:
    kind: Literal["app", "installation", "user"]  # "app": a JWT; the others: a token
    user: User | None = None
    installation_id: int | None = None
    permissions: dict[str, str] = field(default_factory=dict, hash=False)  # an installation token's
    app_id: int | None = None  # the App an installation's token acts for


T = TypeVar("T")


def _identity(item: Any) -> Any:
    return item


@dataclass
class Ctx:
    """What a route handler gets: the request, the state, who is calling."""

    request: Request
    state: State
    urls: Urls
    identity: Identity

    @property
    def actor(self) -> User:
        assert self.identity.user is not None, "route needs a token, not a JWT"
        return self.identity.user

    def repo(self, owner: str, name: str) -> Repo:
        """The repository, if the caller may see it; GitHub answers 404 otherwise."""
        repo = self.state.repo(owner, name)
        if repo is None:
            raise not_found()
        if self.identity.kind == "installation" and repo.installation_id != self.identity.installation_id:
            raise not_found()
        if self.identity.kind == "user" and repo.private and repo.role_of(self.actor.login) == "none":
            raise not_found()
        return repo

    def json_body(self) -> Any:
        """The request's JSON, whatever its type; {} when there is no body."""
        if self.request.body and self.request.json is None:
            raise ApiError(400, "Problems parsing JSON")
        return self.request.json if self.request.json is not None else {}

    def body(self) -> dict[str, Any]:
        """The request's JSON object: what nearly every endpoint takes."""
        data = self.json_body()
        if not isinstance(data, dict):
            raise ApiError(400, "Problems parsing JSON")
        return data

    def paginate(
        self,
        items: Sequence[T],
        render: Callable[[T], Any] = _identity,
        key: str | None = None,
    ) -> Response:
        """One page of `items`, rendered, with GitHub's Link header (first/prev/next/last).

        Only the page is rendered: a PR lists up to 3000 files, 30 pages of them.
        `key` wraps the page as {"total_count": n, key: [...]}, the shape of
        the check-runs list.
        """
        per_page = _int_arg(self.request.arg("per_page"), 30, 1, 100)
        last = max(1, math.ceil(len(items) / per_page))
        page = _int_arg(self.request.arg("page"), 1, 1, None)
        chunk = [render(item) for item in items[(page - 1) * per_page : page * per_page]]
        links = {}
        if page < last:
            links["next"], links["last"] = page + 1, last
        if page > 1:
            links["first"], links["prev"] = 1, min(page - 1, last)
        headers = {"Link": ", ".join(f'<{self._page_url(n)}>; rel="{rel}"' for rel, n in links.items())}
        body: Any = chunk if key is None else {"total_count": len(items), key: chunk}
        return Response.json(body, headers=headers if links else None)

    def _page_url(self, page: int) -> str:
        query = {k: v[0] for k, v in self.request.query.items()}
        query["page"] = str(page)
        return f"{self.urls.web}{self.request.path}?{urlencode(query)}"


def _int_arg(raw: str | None, default: int, low: int, high: int | None) -> int:
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        value = default
    value = max(low, value)
    return min(high, value) if high is not None else value


Handler = Callable[..., Response]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    auth: Literal["jwt", "token"]  # "jwt": the app itself; "token": an installation or a user


class Router:
    """Routes "/repos/{owner}/{repo}/pulls/{number}" style templates to handlers.

    A `{name}` matches one path segment, `{name+}` the rest of the path;
    captured values are percent-decoded (label names arrive quoted).
    """

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def route(
        self, method: str, template: str, auth: Literal["jwt", "token"] = "token"
    ) -> Callable[[Handler], Handler]:
        pattern = re.compile("^" + re.sub(r"\{(\w+)(\+?)\}", _group, template) + "$")

        def register(handler: Handler) -> Handler:
            self.routes.append(Route(method, pattern, handler, auth))
            return handler

        return register

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        allowed = False
        for route in self.routes:
            found = route.pattern.match(path)
            if not found:
                continue
            allowed = True
            if route.method == method:
                return route, {k: unquote(v) for k, v in found.groupdict().items()}
        raise ApiError(405, "Method Not Allowed") if allowed else not_found()


def _group(found: re.Match[str]) -> str:
    return f"(?P<{found.group(1)}>.+)" if found.group(2) else f"(?P<{found.group(1)}>[^/]+)"
