"""Repository endpoints: the repo, commits, contents, collaborator permission."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

from .. import git
from ..core import ApiError, Ctx, Response, not_found
from ..shapes import Urls, repo_json, user_json
from ..state import ROLE_PERMISSION, Repo
from .base import resolve_commit, router


@router.route("GET", "/repos/{owner}/{repo}")
def get_repo(ctx: Ctx, owner: str, repo: str) -> Response:
    return Response.json(repo_json(ctx.urls, ctx.repo(owner, repo)))


@router.route("GET", "/repos/{owner}/{repo}/collaborators/{username}/permission")
def get_permission(ctx: Ctx, owner: str, repo: str, username: str) -> Response:
    found = ctx.repo(owner, repo)
    role = found.role_of(username)
    permission = ROLE_PERMISSION[role]
    user = user_json(ctx.urls, ctx.state.user(username))
    user["permissions"] = {
        "admin": permission == "admin",
        "maintain": role in ("admin", "maintain"),
        "push": permission in ("admin", "write"),
        "triage": role != "read" and permission != "none",
        "pull": permission != "none",
    }
    user["role_name"] = role
    return Response.json({"permission": permission, "role_name": role, "user": user})


@router.route("GET", "/repos/{owner}/{repo}/commits/{ref}")
def get_commit(ctx: Ctx, owner: str, repo: str, ref: str) -> Response:
    found = ctx.repo(owner, repo)
    sha = resolve_commit(found, ref)
    if sha is None:
        raise ApiError(422, f"No commit found for SHA: {ref}")
    return Response.json(commit_json(ctx.urls, found, sha))


def commit_json(urls: Urls, repo: Repo, sha: str) -> dict[str, Any]:
    """A commit; details come from git when the fake has the repository."""
    info = git.commit_info(repo.path, sha) if repo.path is not None else None
    api, repo_api, repo_web = f"{urls.repo_api(repo)}/commits/{sha}", urls.repo_api(repo), urls.repo_web(repo)

    def person(name: str, email: str, date: str) -> dict[str, str]:
        return {"name": name, "email": email, "date": date.replace("+00:00", "Z")}

    if info is None:
        author = committer = person("unknown", "unknown@example.com", "1970-01-01T00:00:00Z")
        tree, message, parents = "0" * 40, "", []
    else:
        author = person(info.author_name, info.author_email, info.author_date)
        committer = person(info.committer_name, info.committer_email, info.committer_date)
        tree, message, parents = info.tree, info.message, info.parents
    return {
        "sha": sha,
        "node_id": base64.b64encode(f"Commit:{sha}".encode()).decode(),
        "url": api,
        "html_url": f"{repo_web}/commit/{sha}",
        "comments_url": f"{api}/comments",
        "commit": {
            "url": f"{repo_api}/git/commits/{sha}",
            "author": author,
            "committer": committer,
            "message": message,
            "tree": {"sha": tree, "url": f"{repo_api}/git/trees/{tree}"},
            "comment_count": 0,
        },
        "author": None,
        "committer": None,
        "parents": [
            {"sha": p, "url": f"{repo_api}/commits/{p}", "html_url": f"{repo_web}/commit/{p}"}
            for p in parents
        ],
        "files": [],
    }


@router.route("GET", "/repos/{owner}/{repo}/contents/{path+}")
def get_contents(ctx: Ctx, owner: str, repo: str, path: str) -> Response:
    found = ctx.repo(owner, repo)
    if found.path is None:
        raise not_found()
    ref = ctx.request.arg("ref") or found.default_branch
    sha = resolve_commit(found, ref)
    if sha is None:
        raise ApiError(404, f"No commit found for the ref {ref}")
    path = path.strip("/")
    entry = git.tree_entry(found.path, sha, path)
    if entry is None:
        raise not_found()
    if entry.type == "dir":
        entries = git.list_dir(found.path, sha, path)
        return Response.json([_content_json(ctx.urls, found, sha, e) for e in entries])
    data = _content_json(ctx.urls, found, sha, entry)
    blob = git.read_blob(found.path, entry.sha)
    # GitHub wraps the base64 at 60 characters, with a trailing newline.
    encoded = base64.encodebytes(blob).decode().replace("\n", "")
    data["content"] = "".join(encoded[i : i + 60] + "\n" for i in range(0, len(encoded), 60))
    data["encoding"] = "base64"
    return Response.json(data)


def _content_json(urls: Urls, repo: Repo, sha: str, entry: git.TreeEntry) -> dict[str, Any]:
    api = f"{urls.repo_api(repo)}/contents/{quote(entry.path)}?ref={sha}"
    kind = "blob" if entry.type != "dir" else "tree"
    git_url = f"{urls.repo_api(repo)}/git/{kind}s/{entry.sha}"
    html = f"{urls.repo_web(repo)}/{kind}/{sha}/{quote(entry.path)}"
    return {
        "type": entry.type,
        "size": entry.size,
        "name": entry.name,
        "path": entry.path,
        "sha": entry.sha,
        "url": api,
        "git_url": git_url,
        "html_url": html,
        "download_url": f"{urls.repo_web(repo)}/raw/{sha}/{quote(entry.path)}"
        if entry.type == "file"
        else None,
        "_links": {"self": api, "git": git_url, "html": html},
    }
