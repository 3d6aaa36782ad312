"""From a request to a response: record it, inject a fault, or route it to
the REST API (under /api/v3) or to git smart HTTP (/{owner}/{name}.git)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Literal
from urllib.parse import urlencode

from . import auth, git
from .core import ApiError, Ctx, Identity, Request, Response
from .routes import router
from .shapes import Urls
from .state import Repo, State, now
from .transport import Faults, RecordedRequest, record

API_PREFIX = "/api/v3"
GIT_PATH = re.compile(
    r"^/(?P<owner>[^/]+)/(?P<name>[^/]+?)(?:\.git)?"
    r"(?P<rest>/(?:info/refs|git-upload-pack|git-receive-pack|HEAD|objects/.+))$"
)


class Dispatcher:
    """The server's application: one call per request, from any server thread."""

    def __init__(self, state: State, public_key: Callable[[], str | None]) -> None:
        self.state = state
        self.urls: Urls | None = None  # known once the server has its port
        self.faults = Faults()
        self.requests: list[RecordedRequest] = []  # guarded by state.lock
        self._public_key = public_key  # read per request: the key may be generated later
        self.on_push: Callable[[Repo], None] | None = None  # after a push over git smart HTTP

    def __call__(self, request: Request) -> Response:
        recorded = record(request)
        with self.state.lock:
            self.requests.append(recorded)
        response = self.faults.take(request.method, request.path) or self._route(request)
        recorded.status = response.status
        return response

    def _route(self, request: Request) -> Response:
        if request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/"):
            return self._api(request, request.path[len(API_PREFIX) :] or "/")
        match = GIT_PATH.match(request.path)
        if match:
            return self._git(request, match)
        return Response(404, b"Not Found\n", {"Content-Type": "text/plain"})

    def _api(self, request: Request, path: str) -> Response:
        try:
            method = "GET" if request.method == "HEAD" else request.method
            route, params = router.match(method, path)
            with self.state.lock:
                identity = self._identify(request, route.auth)
                auth.require_write(identity, method, path)
                assert self.urls is not None
                response = route.handler(Ctx(request, self.state, self.urls, identity), **params)
        except ApiError as error:
            response = error.response()
        response.headers.update(self._api_headers())
        return response

    def _identify(self, request: Request, route_auth: Literal["jwt", "token"]) -> Identity:
        if route_auth == "jwt":
            return auth.app_identity(request, self.state, self._public_key())
        return auth.token_identity(request, self.state)

    def _api_headers(self) -> dict[str, str]:
        """Headers PyGithub reads on every response (rate limit) or that GitHub always sends."""
        used = min(len(self.requests), 5000)
        reset = int((now() + timedelta(hours=1)).timestamp())
        return {
            "X-GitHub-Media-Type": "github.v3; format=json",
            "X-GitHub-Request-Id": secrets.token_hex(8).upper(),
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Remaining": str(5000 - used),
            "X-RateLimit-Used": str(used),
            "X-RateLimit-Reset": str(reset),
            "X-RateLimit-Resource": "core",
        }

    def _git(self, request: Request, match: re.Match[str]) -> Response:
        with self.state.lock:
            repo = self.state.repo(match["owner"], match["name"])
            identity = auth.git_identity(request, self.state, repo) if repo and repo.path else None
        if repo is None or repo.path is None:
            return Response(404, b"Repository not found.\n", {"Content-Type": "text/plain"})
        if identity is None or identity.user is None:
            headers = {"WWW-Authenticate": 'Basic realm="GitHub"', "Content-Type": "text/plain"}
            return Response(401, b"Invalid username or token.\n", headers)
        rest = match["rest"]
        pushing = rest.endswith("git-receive-pack") or request.arg("service") == "git-receive-pack"
        if pushing and not auth.may_push(identity, repo):
            message = f"Permission to {repo.full_name}.git denied to {identity.user.login}.\n"
            return Response(403, message.encode(), {"Content-Type": "text/plain"})
        query = urlencode(request.query, doseq=True)
        cgi = git.http_backend(
            repo.path, rest, request.method, query, request.headers, request.body, identity.user.login
        )
        if pushing and request.method == "POST" and cgi.status == 200 and self.on_push is not None:
            self.on_push(repo)
        return Response(cgi.status, cgi.body, dict(cgi.headers))
