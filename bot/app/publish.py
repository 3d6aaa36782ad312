"""Review -> GitHub: reads what the pull request shows, has `publication` plan the writes, makes them.

Every step is idempotent: the plan updates what an earlier attempt (or an earlier head of the same
PR) left, so a retried job never duplicates.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

from github import GithubException
from github.CheckRun import CheckRun
from github.IssueComment import IssueComment
from github.NamedUser import NamedUser
from github.PullRequest import PullRequest
from github.PullRequestComment import PullRequestComment
from github.Repository import Repository

from migration_safe.app.publication import (
    CHECK_NAME, CheckOutput, Comment, Label, LabelChanges, Options, PullRequestState, ReviewComment,
    SummaryComment, failed_check, plan_publication, review_body, written_by_us,
)
from migration_safe.engine.model import Review

log = logging.getLogger(__name__)


@dataclass
class Target:
    repo: Repository
    pull: PullRequest | None  # None: a failure's check run only, which needs no pull request
    head_sha: str
    # The GitHub App whose check runs are ours: any workflow or other App can make one of the same
    # name, whose summary must not speak for us and which GitHub would not let us edit. None: no
    # earlier run can be told apart as ours (a workflow's token acts as GitHub Actions, like every
    # other workflow of the repository), so none is.
    app_id: int | None


def publish(target: Target, run: CheckRun, review: Review, bot_login: str, options: Options = Options()) -> None:
    """A finished review onto the pull request: labels, the summary comment, the inline review, then
    the check run."""
    if options.check_only:  # nothing of the pull request is read
        finish_check(run, plan_publication(review, PullRequestState(), bot_login, options).check)
        return
    pull = target.pull
    if pull is None:
        raise ValueError("a review is published on its pull request")
    state, issue_comments = read(pull, options)
    plan = plan_publication(review, state, bot_login, options)
    sync_labels(target.repo, pull, plan.labels)
    if plan.summary is not None:
        write_summary(pull, plan.summary, issue_comments)
    if plan.comments:
        post_review(target, pull, plan.comments)
    # Last: the required check turns green only once everything is published, and an attempt
    # that fails before this leaves its run in progress, without annotations, for the retry to reuse.
    finish_check(run, plan.check)


def read(pull: PullRequest, options: Options) -> tuple[PullRequestState, dict[int, IssueComment]]:
    """What the pull request shows, as plain data, and its issue comments (the summary's edit needs ours)."""
    labels = frozenset(label.name for label in pull.get_labels())
    issue_comments = {c.id: c for c in pull.get_issue_comments()}
    patches, review_comments = {}, ()
    if options.review_comments:  # else neither matters
        patches = {f.filename: f.patch for f in pull.get_files()}
        review_comments = tuple(comment(c) for c in pull.get_review_comments())
    return PullRequestState(labels, tuple(comment(c) for c in issue_comments.values()), review_comments,
                            patches), issue_comments


def comment(found: IssueComment | PullRequestComment) -> Comment:
    return Comment(found.id, found.user.login if found.user is not None else None, found.body or "")


def is_ours(user: NamedUser | None, bot_login: str) -> bool:
    return user is not None and written_by_us(user.login, bot_login)


# ---------------------------------------------------------------- check run


def now_dt() -> datetime:
    return datetime.now(timezone.utc)


def find_or_start_check(target: Target) -> CheckRun:
    """The run an earlier attempt of this review left unfinished, else a new run.

    GitHub appends the annotations of every update to those a run already has,
    so a finished run (a re-review of the same head: recheck, "Re-run", a command)
    or one already holding annotations is never reused: every annotation would
    show twice. GitHub shows the latest run of a name on a commit.
    """
    for run in earlier_runs(target):  # our latest run of that name only
        if run.status != "completed":
            if not (run.output and run.output.annotations_count):
                return run
            # An attempt died between annotation batches, which cannot be taken back: close its run.
            run.edit(status="completed", conclusion="cancelled", completed_at=now_dt(),
                     output={"title": "Interrupted", "summary": "A newer run of this review replaces this one."})
        break
    return target.repo.create_check_run(name=CHECK_NAME, head_sha=target.head_sha, status="in_progress",
                                        started_at=now_dt(),
                                        output={"title": "Reviewing migrations…",
                                                "summary": "The review has started."})


def earlier_runs(target: Target, latest: bool = True) -> Iterator[CheckRun]:
    """The runs of our check on the head that our App created, newest first; `latest`: only the newest
    (GitHub's newest of each App's), else every one."""
    if target.app_id is None:
        return
    commit = target.repo.get_commit(target.head_sha)
    # PyGithub does not pass the list's app_id parameter: the runs say which App created them.
    for run in commit.get_check_runs(check_name=CHECK_NAME, filter="latest" if latest else "all"):
        if run.app.id == target.app_id:
            yield run


def fail_check(run: CheckRun, reason: str) -> None:
    finish_check(run, failed_check(reason))


def finish_check(run: CheckRun, check: CheckOutput) -> None:
    output: dict[str, object] = {"title": check.title, "summary": check.summary}
    if check.text is not None:
        output["text"] = check.text
    for batch in check.batches[:-1]:
        run.edit(output={**output, "annotations": [a.as_dict() for a in batch]})
    if check.batches:
        output["annotations"] = [a.as_dict() for a in check.batches[-1]]
    run.edit(status="completed", conclusion=check.conclusion, completed_at=now_dt(), output=output)


# ---------------------------------------------------------------- labels, summary comment


def sync_labels(repo: Repository, pull: PullRequest, changes: LabelChanges) -> None:
    for label in changes.add:
        ensure_label(repo, label)
    if changes.add:  # add_to_labels() with no labels would remove them all
        pull.add_to_labels(*(label.name for label in changes.add))
    for name in changes.remove:
        pull.remove_from_labels(name)


def ensure_label(repo: Repository, label: Label) -> None:
    try:
        repo.get_label(label.name)
    except GithubException as exc:
        if exc.status != 404:
            raise
        repo.create_label(name=label.name, color=label.color, description=label.description)


def write_summary(pull: PullRequest, summary: SummaryComment, comments: dict[int, IssueComment]) -> None:
    if summary.edit is None:
        pull.create_issue_comment(summary.body)
    else:
        comments[summary.edit].edit(summary.body)


# ---------------------------------------------------------------- review comments


def post_review(target: Target, pull: PullRequest, comments: tuple[ReviewComment, ...]) -> None:
    if submit_review(target, pull, comments):
        return
    # GitHub refused the review, which refuses all its comments for one it cannot place (a line it
    # does not see in the diff, a head that moved): each comment alone, so one costs no other.
    for one in comments:
        submit_review(target, pull, (one,))


def submit_review(target: Target, pull: PullRequest, comments: tuple[ReviewComment, ...]) -> bool:
    """One review holding `comments`; False when GitHub refuses it (422), which a retry would not change.

    The findings are in the check run's annotations and the summary comment either way.
    """
    commit = target.repo.get_commit(target.head_sha)
    try:
        pull.create_review(commit=commit, event="COMMENT", comments=[c.as_dict() for c in comments],
                           body=review_body(len(comments)))
    except GithubException as exc:
        if exc.status != 422:
            raise
        log.warning("review comments refused for %s: %s", target.head_sha, exc.data)
        return False
    return True
