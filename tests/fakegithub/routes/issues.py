"""Issue endpoints (every PR is an issue): comments, reactions, labels."""

from __future__ import annotations

import re
from typing import Any

from ..core import ApiError, Ctx, Response, not_found, validation_failed
from ..shapes import REACTIONS, comment_json, issue_json, label_json, reaction_json
from ..state import IssueComment, Label, Reaction, Repo, State, now
from .base import comment_or_404, number, pull_or_404, require_str, router

MAX_COMMENT = 65536
COLOR = re.compile(r"^[0-9a-fA-F]{6}$")


@router.route("GET", "/repos/{owner}/{repo}/issues/{number}")
def get_issue(ctx: Ctx, owner: str, repo: str, number: str) -> Response:
    found = ctx.repo(owner, repo)
    return Response.json(issue_json(ctx.urls, found, pull_or_404(found, number)))


# --- comments ---------------------------------------------------------------


def _comment_body(ctx: Ctx) -> str:
    body = require_str(ctx.body().get("body"), "IssueComment", "body")
    if len(body) > MAX_COMMENT:
        message = f"Body is too long (maximum is {MAX_COMMENT} characters)"
        raise validation_failed("IssueComment", "data", "unprocessable", message)
    return body


@router.route("GET", "/repos/{owner}/{repo}/issues/{number}/comments")
def list_comments(ctx: Ctx, owner: str, repo: str, number: str) -> Response:
    found = ctx.repo(owner, repo)
    pull = pull_or_404(found, number)
    comments = sorted((c for c in found.comments.values() if c.number == pull.number), key=lambda c: c.id)
    return ctx.paginate(comments, lambda c: comment_json(ctx.urls, ctx.state, found, c))


@router.route("POST", "/repos/{owner}/{repo}/issues/{number}/comments")
def create_comment(ctx: Ctx, owner: str, repo: str, number: str) -> Response:
    found = ctx.repo(owner, repo)
    pull = pull_or_404(found, number)
    comment = add_comment(ctx.state, found, pull.number, _comment_body(ctx), ctx.actor.login)
    comment.via_app = ctx.identity.kind == "installation"
    return Response.json(comment_json(ctx.urls, ctx.state, found, comment), status=201)


def add_comment(state: State, repo: Repo, issue_number: int, body: str, login: str) -> IssueComment:
    moment = now()
    comment = IssueComment(state.new_id(), issue_number, state.user(login), body, moment, moment)
    repo.comments[comment.id] = comment
    return comment


@router.route("GET", "/repos/{owner}/{repo}/issues/comments/{comment_id}")
def get_comment(ctx: Ctx, owner: str, repo: str, comment_id: str) -> Response:
    found = ctx.repo(owner, repo)
    return Response.json(comment_json(ctx.urls, ctx.state, found, comment_or_404(found, comment_id)))


@router.route("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id}")
def edit_comment(ctx: Ctx, owner: str, repo: str, comment_id: str) -> Response:
    found = ctx.repo(owner, repo)
    comment = comment_or_404(found, comment_id)
    body = _comment_body(ctx)
    comment.previous_body, comment.body, comment.updated_at = comment.body, body, now()
    return Response.json(comment_json(ctx.urls, ctx.state, found, comment))


@router.route("DELETE", "/repos/{owner}/{repo}/issues/comments/{comment_id}")
def delete_comment(ctx: Ctx, owner: str, repo: str, comment_id: str) -> Response:
    found = ctx.repo(owner, repo)
    comment = found.comments.pop(comment_or_404(found, comment_id).id)
    found.deleted_comments[comment.id] = comment
    return Response.empty()


# --- reactions --------------------------------------------------------------


@router.route("GET", "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions")
def list_reactions(ctx: Ctx, owner: str, repo: str, comment_id: str) -> Response:
    found = ctx.repo(owner, repo)
    comment = comment_or_404(found, comment_id)
    content = ctx.request.arg("content")
    reactions = [r for r in comment.reactions if content is None or r.content == content]
    return ctx.paginate(reactions, lambda r: reaction_json(ctx.urls, r))


@router.route("POST", "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions")
def create_reaction(ctx: Ctx, owner: str, repo: str, comment_id: str) -> Response:
    found = ctx.repo(owner, repo)
    comment = comment_or_404(found, comment_id)
    content = ctx.body().get("content")
    if content not in REACTIONS:
        raise validation_failed("Reaction", "content", "invalid")
    for existing in comment.reactions:
        # Reacting twice is idempotent: 200 with the existing reaction.
        if existing.user is ctx.actor and existing.content == content:
            return Response.json(reaction_json(ctx.urls, existing))
    reaction = Reaction(ctx.state.new_id(), ctx.actor, content, now())
    comment.reactions.append(reaction)
    return Response.json(reaction_json(ctx.urls, reaction), status=201)


@router.route("DELETE", "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions/{reaction_id}")
def delete_reaction(ctx: Ctx, owner: str, repo: str, comment_id: str, reaction_id: str) -> Response:
    found = ctx.repo(owner, repo)
    comment = comment_or_404(found, comment_id)
    kept = [r for r in comment.reactions if r.id != number(reaction_id)]
    if len(kept) == len(comment.reactions):
        raise not_found()
    comment.reactions = kept
    return Response.empty()


# --- repository labels ------------------------------------------------------


def _label_or_404(repo: Repo, name: str) -> Label:
    label = repo.labels.get(name.lower())
    if label is None:
        raise not_found()
    return label


def _color(value: Any) -> str:
    if not isinstance(value, str) or not COLOR.match(value.lstrip("#")):
        raise validation_failed("Label", "color", "invalid")
    return value.lstrip("#").lower()


@router.route("GET", "/repos/{owner}/{repo}/labels")
def list_labels(ctx: Ctx, owner: str, repo: str) -> Response:
    found = ctx.repo(owner, repo)
    return ctx.paginate(list(found.labels.values()), lambda label: label_json(ctx.urls, found, label))


@router.route("POST", "/repos/{owner}/{repo}/labels")
def create_label(ctx: Ctx, owner: str, repo: str) -> Response:
    found = ctx.repo(owner, repo)
    body = ctx.body()
    name = require_str(body.get("name"), "Label", "name")
    if name.lower() in found.labels:
        raise validation_failed("Label", "name", "already_exists")
    color = _color(body["color"]) if body.get("color") is not None else "ededed"
    label = ensure_label(ctx.state, found, name, color, body.get("description"))
    return Response.json(label_json(ctx.urls, found, label), status=201)


def ensure_label(
    state: State, repo: Repo, name: str, color: str = "ededed", description: str | None = None
) -> Label:
    """The repo's label of that name, created like GitHub does when it is new."""
    key = name.lower()
    if key not in repo.labels:
        repo.labels[key] = Label(state.new_id(), name, color, description)
    return repo.labels[key]


@router.route("GET", "/repos/{owner}/{repo}/labels/{name}")
def get_label(ctx: Ctx, owner: str, repo: str, name: str) -> Response:
    found = ctx.repo(owner, repo)
    return Response.json(label_json(ctx.urls, found, _label_or_404(found, name)))


@router.route("PATCH", "/repos/{owner}/{repo}/labels/{name}")
def edit_label(ctx: Ctx, owner: str, repo: str, name: str) -> Response:
    found = ctx.repo(owner, repo)
    label = _label_or_404(found, name)
    body = ctx.body()
    new_name = require_str(body["new_name"], "Label", "new_name") if body.get("new_name") else label.name
    if new_name.lower() != label.name.lower() and new_name.lower() in found.labels:
        raise validation_failed("Label", "name", "already_exists")
    if body.get("color") is not None:
        label.color = _color(body["color"])
    if "description" in body:
        label.description = body["description"]
    del found.labels[label.name.lower()]
    label.name = new_name
    found.labels[new_name.lower()] = label
    return Response.json(label_json(ctx.urls, found, label))


@router.route("DELETE", "/repos/{owner}/{repo}/labels/{name}")
def delete_label(ctx: Ctx, owner: str, repo: str, name: str) -> Response:
    found = ctx.repo(owner, repo)
    label = _label_or_404(found, name)
    del found.labels[label.name.lower()]
    for pull in found.pulls.values():
        pull.labels = [x for x in pull.labels if x is not label]
    return Response.empty()


# --- labels of one issue ----------------------------------------------------


def _requested_names(ctx: Ctx) -> list[str]:
    """Names from a body GitHub accepts: ["a"], {"labels": ["a"]} or [{"name": "a"}]."""
    body = ctx.json_body()
    items = body.get("labels", []) if isinstance(body, dict) else body
    if isinstance(items, str):
        items = [items]
    if not isinstance(items, list):
        raise validation_failed("Label", "labels", "invalid")
    names = [item.get("name") if isinstance(item, dict) else item for item in items]
    if not all(isinstance(n, str) and n for n in names):
        raise validation_failed("Label", "name", "invalid")
    return [str(n) for n in names]


def _issue_labels(ctx: Ctx, repo: Repo, labels: list[Label]) -> Response:
    return Response.json([label_json(ctx.urls, repo, label) for label in labels])


@router.route("GET", "/repos/{owner}/{repo}/issues/{number}/labels")
def list_issue_labels(ctx: Ctx, owner: str, repo: str, number: str) -> Response:
    found = ctx.repo(owner, repo)
    pull = pull_or_404(found, number)
    return ctx.paginate(pull.labels, lambda label: label_json(ctx.urls, found, label))


@router.route("POST", "/repos/{owner}/{repo}/issues/{number}/labels")
def add_issue_labels(ctx: Ctx, owner: str, repo: str, number: str) -> Response:
    found = ctx.repo(owner, repo)
    pull = pull_or_404(found, number)
    for name in _requested_names(ctx):
        label = ensure_label(ctx.state, found, name)
        if label not in pull.labels:
            pull.labels.append(label)
    pull.updated_at = now()
    return _issue_labels(ctx, found, pull.labels)


@router.route("PUT", "/repos/{owner}/{repo}/issues/{number}/labels")
def set_issue_labels(ctx: Ctx, owner: str, repo: str, number: str) -> Response:
    found = ctx.repo(owner, repo)
    pull = pull_or_404(found, number)
    labels: list[Label] = []
    for name in _requested_names(ctx):
        label = ensure_label(ctx.state, found, name)
        if label not in labels:
            labels.append(label)
    pull.labels, pull.updated_at = labels, now()
    return _issue_labels(ctx, found, pull.labels)


@router.route("DELETE", "/repos/{owner}/{repo}/issues/{number}/labels")
def clear_issue_labels(ctx: Ctx, owner: str, repo: str, number: str) -> Response:
    found = ctx.repo(owner, repo)
    pull = pull_or_404(found, number)
    pull.labels, pull.updated_at = [], now()
    return Response.empty()


@router.route("DELETE", "/repos/{owner}/{repo}/issues/{number}/labels/{name}")
def remove_issue_label(ctx: Ctx, owner: str, repo: str, number: str, name: str) -> Response:
    found = ctx.repo(owner, repo)
    pull = pull_or_404(found, number)
    kept = [label for label in pull.labels if label.name.lower() != name.lower()]
    if len(kept) == len(pull.labels):
        raise ApiError(404, "Label does not exist")
    pull.labels, pull.updated_at = kept, now()
    return _issue_labels(ctx, found, pull.labels)
