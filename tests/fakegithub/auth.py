"""Who is calling: the app (a JWT), an installation or a user (a token).

App endpoints take only a JWT signed with the app's key; everything else
takes a token the fake issued. Git over HTTP takes the token as the password
of basic auth (`x-access-token:<token>`), as GitHub does.
"""

from __future__ import annotations

import base64
import re
import time

import jwt

from .core import ApiError, Identity, Request
from .state import Repo, State, now

# GitHub refuses app JWTs that expire more than ten minutes ahead.
MAX_JWT_LIFETIME = 600


def _credentials(request: Request) -> tuple[str, str]:
    scheme, _, credential = request.headers.get("authorization", "").strip().partition(" ")
    return scheme.lower(), credential.strip()


def _looks_like_jwt(value: str) -> bool:
    return value.count(".") == 2


def app_identity(request: Request, state: State, public_key: str | None) -> Identity:
    scheme, credential = _credentials(request)
    if not credential:
        raise ApiError(401, "Requires authentication")
    if scheme != "bearer" or not _looks_like_jwt(credential):
        raise ApiError(401, "A JSON web token could not be decoded")
    verify_jwt(credential, state.app.id, public_key)
    return Identity("app")


def verify_jwt(token: str, app_id: int, public_key: str | None) -> None:
    """Checks expiry and issuer, and the signature when the app's public key is known."""
    try:
        claims = jwt.decode(
            token,
            public_key or "",
            algorithms=["RS256"],
            options={"verify_signature": public_key is not None, "verify_exp": True, "verify_iat": True},
        )
    except jwt.ExpiredSignatureError:
        raise ApiError(
            401,
            "'Expiration time' claim ('exp') must be a numeric value representing the future time"
            " at which the assertion expires",
        ) from None
    except jwt.PyJWTError:
        raise ApiError(401, "A JSON web token could not be decoded") from None
    if str(claims.get("iss")) != str(app_id):
        raise ApiError(401, "Integration not found")
    if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] - time.time() > MAX_JWT_LIFETIME:
        raise ApiError(401, "'Expiration time' claim ('exp') is too far in the future")


def token_identity(request: Request, state: State) -> Identity:
    scheme, credential = _credentials(request)
    if not credential:
        raise ApiError(401, "Requires authentication")
    if scheme not in ("token", "bearer"):
        raise ApiError(401, "Bad credentials")
    if _looks_like_jwt(credential):
        # A JWT authenticates as the app, which owns no repositories.
        raise ApiError(403, "Resource not accessible by integration")
    return _identity_for_token(state, credential)


def _identity_for_token(state: State, value: str) -> Identity:
    token = state.tokens.get(value)
    if token is None or token.expires_at <= now():
        raise ApiError(401, "Bad credentials")
    user = state.user(token.login)
    if token.installation_id is None:
        return Identity("user", user)
    return Identity("installation", user, token.installation_id, dict(token.permissions), token.app_id)


def git_identity(request: Request, state: State, repo: Repo) -> Identity | None:
    """The identity behind basic auth on a git request, or None (then: 401)."""
    scheme, credential = _credentials(request)
    if scheme != "basic":
        return None
    try:
        _user, _, password = base64.b64decode(credential).decode().partition(":")
        identity = _identity_for_token(state, password)
    except (ValueError, ApiError):
        return None
    if identity.kind == "installation" and identity.installation_id != repo.installation_id:
        return None
    if identity.kind == "user" and repo.private and repo.role_of(identity.user.login) == "none":  # type: ignore[union-attr]
        return None
    return identity


def may_push(identity: Identity, repo: Repo) -> bool:
    """A push needs contents: write on an installation's token, or a user's write role or above."""
    if identity.kind == "installation":
        return identity.permissions.get("contents") == "write"
    assert identity.user is not None
    return repo.role_of(identity.user.login) in ("admin", "maintain", "write")


# The permission a write through an installation's token needs, by path (GitHub's "Permissions
# required for GitHub Apps"): a comment on a pull request is an issue's, so either suffices there.
WRITE_PERMISSIONS = (
    (re.compile(r"/check-runs(/|$)"), ("checks",)),
    (re.compile(r"/pulls/"), ("pull_requests",)),
    (re.compile(r"/issues/|/labels(/|$)"), ("issues", "pull_requests")),
)
WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})


def require_write(identity: Identity, method: str, path: str) -> None:
    """The 403 GitHub answers a token without the write permission an endpoint needs, e.g. the
    read-only GITHUB_TOKEN of a workflow run for a fork's pull request."""
    if identity.kind != "installation" or method not in WRITES:
        return
    for pattern, names in WRITE_PERMISSIONS:
        if pattern.search(path):
            if not any(identity.permissions.get(name) == "write" for name in names):
                raise ApiError(403, "Resource not accessible by integration")
            return
