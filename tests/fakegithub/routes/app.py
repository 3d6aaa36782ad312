"""The GitHub App's own endpoints: the app, its installations, installation tokens."""

from __future__ import annotations

import secrets
import string
from datetime import timedelta

from ..core import ApiError, Ctx, Response, not_found
from ..shapes import app_json, installation_json, repo_json, user_json
from ..state import Token, iso, now
from .base import number, router

TOKEN_LIFETIME = timedelta(hours=1)
_ALPHABET = string.ascii_letters + string.digits
LEVELS = ("none", "read", "write", "admin")  # a token may ask for less than the installation has, never more


def new_token_value() -> str:
    """Installation tokens look like GitHub's: "ghs_" and 36 alphanumerics."""
    return "ghs_" + "".join(secrets.choice(_ALPHABET) for _ in range(36))


@router.route("GET", "/app", auth="jwt")
def get_app(ctx: Ctx) -> Response:
    return Response.json(app_json(ctx.urls, ctx.state.app))


@router.route("GET", "/app/installations", auth="jwt")
def list_installations(ctx: Ctx) -> Response:
    installations = list(ctx.state.installations.values())
    return ctx.paginate(installations, lambda i: installation_json(ctx.urls, ctx.state, i))


@router.route("GET", "/app/installations/{installation_id}", auth="jwt")
def get_installation(ctx: Ctx, installation_id: str) -> Response:
    inst = ctx.state.installations.get(number(installation_id))
    if inst is None:
        raise not_found()
    return Response.json(installation_json(ctx.urls, ctx.state, inst))


@router.route("POST", "/app/installations/{installation_id}/access_tokens", auth="jwt")
def create_access_token(ctx: Ctx, installation_id: str) -> Response:
    inst = ctx.state.installations.get(number(installation_id))
    if inst is None:
        raise not_found()
    body = ctx.body()
    granted = inst.permissions
    permissions = body.get("permissions") or granted
    if not all(_covers(granted.get(name), level) for name, level in permissions.items()):
        raise ApiError(422, "The permissions requested are not granted to this installation.")
    token = Token(
        value=new_token_value(),
        expires_at=now() + TOKEN_LIFETIME,
        login=ctx.state.app.bot.login,
        installation_id=inst.id,
        permissions=dict(permissions),
        app_id=ctx.state.app.id,
    )
    ctx.state.tokens[token.value] = token
    data = {
        "token": token.value,
        "expires_at": iso(token.expires_at),
        "permissions": token.permissions,
        "repository_selection": "selected",
    }
    return Response.json(data, status=201)


def _covers(granted: str | None, level: object) -> bool:
    return level in LEVELS and LEVELS.index(granted or "none") >= LEVELS.index(level)


@router.route("GET", "/repos/{owner}/{repo}/installation", auth="jwt")
def get_repo_installation(ctx: Ctx, owner: str, repo: str) -> Response:
    found = ctx.state.repo(owner, repo)
    if found is None:
        raise not_found()
    inst = ctx.state.installation(found.installation_id)
    return Response.json(installation_json(ctx.urls, ctx.state, inst))


@router.route("GET", "/installation/repositories")
def list_installation_repos(ctx: Ctx) -> Response:
    if ctx.identity.kind != "installation":
        raise ApiError(403, "This endpoint can only be accessed with an installation token")
    repos = [r for r in ctx.state.repos.values() if r.installation_id == ctx.identity.installation_id]
    return ctx.paginate(repos, lambda r: repo_json(ctx.urls, r), key="repositories")


@router.route("GET", "/users/{login}")
def get_user(ctx: Ctx, login: str) -> Response:
    return Response.json(user_json(ctx.urls, ctx.state.user(login)))


@router.route("GET", "/rate_limit")
def rate_limit(ctx: Ctx) -> Response:
    reset = int((now() + timedelta(hours=1)).timestamp())
    core = {"limit": 5000, "used": 0, "remaining": 5000, "reset": reset}
    return Response.json({"resources": {"core": core}, "rate": core})
