"""Pull request endpoints: pulls, files, reviews and review comments.

Review comments are anchored the way GitHub checks them: the commit must be
one of the PR's heads, the path one of its files at that commit, and the
line (or legacy position) inside that file's patch hunks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core import ApiError, Ctx, Response, not_found, validation_failed
from ..diff import DiffLine, PatchIndex
from ..shapes import file_json, pull_json, review_comment_json, review_json
from ..state import Pull, PullFile, Repo, Review, ReviewComment, now
from .base import number, pull_or_404, require_str, router
from .issues import MAX_COMMENT

REVIEW_STATES = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED", "COMMENT": "COMMENTED"}
MAX_PULL_FILES = 3000  # GitHub lists at most 3000 files of a pull request


@router.route("GET", "/repos/{owner}/{repo}/pulls")
def list_pulls(ctx: Ctx, owner: str, repo: str) -> Response:
    found = ctx.repo(owner, repo)
    state = ctx.request.arg("state", "open")
    head, base = ctx.request.arg("head"), ctx.request.arg("base")
    pulls = [
        p
        for p in sorted(found.pulls.values(), key=lambda p: -p.number)
        if state in ("all", p.state)
        and (head is None or head == f"{p.head_repo.owner.login}:{p.head_ref}")
        and (base is None or base == p.base_ref)
    ]
    return ctx.paginate(pulls, lambda p: pull_json(ctx.urls, found, p))


@router.route("GET", "/repos/{owner}/{repo}/pulls/{number}")
def get_pull(ctx: Ctx, owner: str, repo: str, number: str) -> Response:
    found = ctx.repo(owner, repo)
    return Response.json(pull_json(ctx.urls, found, pull_or_404(found, number)))


@router.route("GET", "/repos/{owner}/{repo}/pulls/{number}/files")
def list_files(ctx: Ctx, owner: str, repo: str, number: str) -> Response:
    found = ctx.repo(owner, repo)
    pull = pull_or_404(found, number)
    return ctx.paginate(pull.files[:MAX_PULL_FILES], lambda f: file_json(ctx.urls, found, pull, f))


# --- anchoring a comment in the diff ----------------------------------------


class AnchorError(Exception):
    """A comment that GitHub would refuse; `field` names the failing thread field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem

    @property
    def sentence(self) -> str:
        """How the reviews endpoint words it in its `errors` list."""
        if self.field == "path":
            return "Path could not be resolved"
        return f"Pull request review thread {self.field.replace('_', ' ')} {self.problem}"

    def validation_error(self) -> ApiError:
        """How the single review comment endpoint reports it."""
        name = f"pull_request_review_thread.{self.field}"
        return validation_failed("PullRequestReviewComment", name, "custom", f"{name} {self.problem}")


@dataclass(frozen=True)
class Anchor:
    file: PullFile
    line: DiffLine
    diff_hunk: str
    side: str
    start_line: int | None
    start_side: str | None


def _commit_or_error(pull: Pull, commit_id: Any) -> str:
    commit = commit_id or pull.head_sha
    if commit not in pull.files_by_sha:
        raise _unprocessable(f"No commit found for SHA: {commit}")
    return str(commit)


def anchor(pull: Pull, commit: str, spec: dict[str, Any]) -> Anchor:
    file = next((f for f in pull.files_by_sha[commit] if f.filename == spec.get("path")), None)
    if file is None:
        raise AnchorError("path", "could not be resolved")
    if file.patch is None:
        raise AnchorError("diff_hunk", "can't be blank")
    index = PatchIndex(file.patch)
    side = spec.get("side") or "RIGHT"
    if spec.get("line") is None and spec.get("position") is not None:
        entry = index.at_position(spec["position"])
        side = "LEFT" if entry is not None and entry.kind == "-" else side
    else:
        entry = index.locate(side, spec.get("line"))  # type: ignore[arg-type]
    if entry is None:
        raise AnchorError("line", "must be part of the diff")
    start_line, start_side = spec.get("start_line"), None
    if start_line is not None:
        start_side = spec.get("start_side") or side
        start = index.locate(start_side, start_line)
        if start is None or start.hunk != entry.hunk:
            raise AnchorError("start_line", "must be part of the same hunk as the line.")
        if start.position >= entry.position:
            raise AnchorError("start_line", "must precede the end line.")
    return Anchor(file, entry, index.hunk_until(entry), side, start_line, start_side)


def _new_comment(
    ctx: Ctx, pull: Pull, review_id: int, commit: str, body: str, where: Anchor
) -> ReviewComment:
    line = where.line.new if where.side == "RIGHT" else where.line.old
    return ReviewComment(
        id=ctx.state.new_id(),
        number=pull.number,
        review_id=review_id,
        user=ctx.actor,
        body=body,
        path=where.file.filename,
        commit_id=commit,
        diff_hunk=where.diff_hunk,
        line=line,
        side=where.side,
        position=where.line.position,
        start_line=where.start_line,
        start_side=where.start_side,
    )


# --- reviews ----------------------------------------------------------------


def _review_or_404(repo: Repo, pull: Pull, raw_id: str) -> Review:
    review = repo.reviews.get(number(raw_id))
    if review is None or review.number != pull.number:
        raise not_found()
    return review


@router.route("GET", "/repos/{owner}/{repo}/pulls/{number}/reviews")
def list_reviews(ctx: Ctx, owner: str, repo: str, number: str) -> Response:
    found = ctx.repo(owner, repo)
    pull = pull_or_404(found, number)
    reviews = [r for r in found.reviews.values() if r.number == pull.number]
    return ctx.paginate(reviews, lambda r: review_json(ctx.urls, found, r))


@router.route("GET", "/repos/{owner}/{repo}/pulls/{number}/reviews/{review_id}")
def get_review(ctx: Ctx, owner: str, repo: str, number: str, review_id: str) -> Response:
    found = ctx.repo(owner, repo)
    review = _review_or_404(found, pull_or_404(found, number), review_id)
    return Response.json(review_json(ctx.urls, found, review))


def _unprocessable(reason: str) -> ApiError:
    """The reviews API's 422: {"message": "Unprocessable Entity", "errors": [reason]}."""
    return ApiError(422, "Unprocessable Entity", errors=[reason])


@router.route("POST", "/repos/{owner}/{repo}/pulls/{number}/reviews")
def create_review(ctx: Ctx, owner: str, repo: str, number: str) -> Response:
    found = ctx.repo(owner, repo)
    pull = pull_or_404(found, number)
    body = ctx.body()
    commit = _commit_or_error(pull, body.get("commit_id"))
    event = body.get("event")
    specs = body.get("comments") or []
    anchors = _check_review(ctx, found, pull, commit, body)
    review = Review(
        id=ctx.state.new_id(),
        number=pull.number,
        user=ctx.actor,
        body=body.get("body") or "",
        state=REVIEW_STATES[event] if event else "PENDING",
        commit_id=commit,
        submitted_at=now() if event else None,
    )
    found.reviews[review.id] = review
    for spec, where in zip(specs, anchors, strict=True):
        comment = _new_comment(ctx, pull, review.id, commit, spec["body"], where)
        found.review_comments[comment.id] = comment
    return Response.json(review_json(ctx.urls, found, review))


def _check_review(ctx: Ctx, repo: Repo, pull: Pull, commit: str, body: dict[str, Any]) -> list[Anchor]:
    """Anchors of the review's comments; any problem refuses the whole review, as on GitHub."""
    event = body.get("event")
    if event is not None and event not in REVIEW_STATES:
        raise _unprocessable(f"Invalid event: {event}")
    anchors, problems = _anchor_all(pull, commit, body.get("comments") or [])
    if problems:
        raise _unprocessable(_join(problems))  # GitHub joins the reasons into one sentence
    if event == "REQUEST_CHANGES" and not body.get("body"):
        raise _unprocessable("Review body can't be blank")
    pending = [r for r in repo.reviews.values() if r.state == "PENDING" and r.number == pull.number]
    if event is None and any(r.user is ctx.actor for r in pending):
        raise _unprocessable("User can only have one pending review per pull request")
    return anchors


def _anchor_all(pull: Pull, commit: str, specs: list[Any]) -> tuple[list[Anchor], list[str]]:
    anchors, problems = [], []
    for spec in specs:
        if not isinstance(spec, dict) or not isinstance(spec.get("body"), str) or not spec.get("body"):
            problems.append("Body can't be blank")
            continue
        if len(spec["body"]) > MAX_COMMENT:
            problems.append(f"Body is too long (maximum is {MAX_COMMENT} characters)")
            continue
        try:
            anchors.append(anchor(pull, commit, spec))
        except AnchorError as error:
            if error.sentence not in problems:
                problems.append(error.sentence)
    return anchors, problems


def _join(sentences: list[str]) -> str:
    if len(sentences) <= 2:
        return " and ".join(sentences)
    return ", ".join(sentences[:-1]) + ", and " + sentences[-1]


@router.route("POST", "/repos/{owner}/{repo}/pulls/{number}/reviews/{review_id}/events")
def submit_review(ctx: Ctx, owner: str, repo: str, number: str, review_id: str) -> Response:
    found = ctx.repo(owner, repo)
    review = _review_or_404(found, pull_or_404(found, number), review_id)
    body = ctx.body()
    if review.state != "PENDING":
        raise _unprocessable("Can not submit a non-pending review")
    if body.get("event") not in REVIEW_STATES:
        raise _unprocessable(f"Invalid event: {body.get('event')}")
    review.state, review.submitted_at = REVIEW_STATES[body["event"]], now()
    review.body = body.get("body") or review.body
    return Response.json(review_json(ctx.urls, found, review))


@router.route("GET", "/repos/{owner}/{repo}/pulls/{number}/reviews/{review_id}/comments")
def list_review_comments_of_review(ctx: Ctx, owner: str, repo: str, number: str, review_id: str) -> Response:
    found = ctx.repo(owner, repo)
    review = _review_or_404(found, pull_or_404(found, number), review_id)
    comments = [c for c in found.review_comments.values() if c.review_id == review.id]
    return ctx.paginate(comments, lambda c: review_comment_json(ctx.urls, found, c))


# --- review comments --------------------------------------------------------


def _review_comment_or_404(repo: Repo, raw_id: str) -> ReviewComment:
    comment = repo.review_comments.get(number(raw_id))
    if comment is None:
        raise not_found()
    return comment


@router.route("GET", "/repos/{owner}/{repo}/pulls/comments/{comment_id}")
def get_review_comment(ctx: Ctx, owner: str, repo: str, comment_id: str) -> Response:
    found = ctx.repo(owner, repo)
    return Response.json(review_comment_json(ctx.urls, found, _review_comment_or_404(found, comment_id)))


@router.route("PATCH", "/repos/{owner}/{repo}/pulls/comments/{comment_id}")
def edit_review_comment(ctx: Ctx, owner: str, repo: str, comment_id: str) -> Response:
    found = ctx.repo(owner, repo)
    comment = _review_comment_or_404(found, comment_id)
    comment.body = require_str(ctx.body().get("body"), "PullRequestReviewComment", "body")
    comment.updated_at = now()
    return Response.json(review_comment_json(ctx.urls, found, comment))


@router.route("DELETE", "/repos/{owner}/{repo}/pulls/comments/{comment_id}")
def delete_review_comment(ctx: Ctx, owner: str, repo: str, comment_id: str) -> Response:
    found = ctx.repo(owner, repo)
    del found.review_comments[_review_comment_or_404(found, comment_id).id]
    return Response.empty()


@router.route("GET", "/repos/{owner}/{repo}/pulls/{number}/comments")
def list_review_comments(ctx: Ctx, owner: str, repo: str, number: str) -> Response:
    found = ctx.repo(owner, repo)
    pull = pull_or_404(found, number)
    comments = sorted(
        (c for c in found.review_comments.values() if c.number == pull.number), key=lambda c: c.id
    )
    return ctx.paginate(comments, lambda c: review_comment_json(ctx.urls, found, c))


@router.route("POST", "/repos/{owner}/{repo}/pulls/{number}/comments")
def create_review_comment(ctx: Ctx, owner: str, repo: str, number: str) -> Response:
    found = ctx.repo(owner, repo)
    pull = pull_or_404(found, number)
    body = ctx.body()
    text = require_str(body.get("body"), "PullRequestReviewComment", "body")
    if body.get("in_reply_to") is not None:
        return _reply(ctx, found, pull, str(body["in_reply_to"]), text)
    require_str(body.get("commit_id"), "PullRequestReviewComment", "commit_id")
    commit = body["commit_id"]
    if commit not in pull.files_by_sha:
        raise validation_failed(
            "PullRequestReviewComment", "commit_id", "custom", "commit_id is not part of the pull request"
        )
    try:
        where = anchor(pull, commit, body)
    except AnchorError as error:
        raise error.validation_error() from None
    # A lone review comment lives in a review of its own, as on GitHub.
    review = Review(ctx.state.new_id(), pull.number, ctx.actor, "", "COMMENTED", commit, now())
    found.reviews[review.id] = review
    comment = _new_comment(ctx, pull, review.id, commit, text, where)
    found.review_comments[comment.id] = comment
    return Response.json(review_comment_json(ctx.urls, found, comment), status=201)


@router.route("POST", "/repos/{owner}/{repo}/pulls/{number}/comments/{comment_id}/replies")
def reply_to_review_comment(ctx: Ctx, owner: str, repo: str, number: str, comment_id: str) -> Response:
    found = ctx.repo(owner, repo)
    pull = pull_or_404(found, number)
    text = require_str(ctx.body().get("body"), "PullRequestReviewComment", "body")
    return _reply(ctx, found, pull, comment_id, text)


def _reply(ctx: Ctx, repo: Repo, pull: Pull, parent_id: str, text: str) -> Response:
    parent = _review_comment_or_404(repo, parent_id)
    if parent.number != pull.number:
        raise not_found()
    review = Review(ctx.state.new_id(), pull.number, ctx.actor, "", "COMMENTED", parent.commit_id, now())
    repo.reviews[review.id] = review
    reply = ReviewComment(
        id=ctx.state.new_id(),
        number=pull.number,
        review_id=review.id,
        user=ctx.actor,
        body=text,
        path=parent.path,
        commit_id=parent.commit_id,
        diff_hunk=parent.diff_hunk,
        line=parent.line,
        side=parent.side,
        position=parent.position,
        start_line=parent.start_line,
        start_side=parent.start_side,
        in_reply_to_id=parent.in_reply_to_id or parent.id,
    )
    repo.review_comments[reply.id] = reply
    return Response.json(review_comment_json(ctx.urls, repo, reply), status=201)
