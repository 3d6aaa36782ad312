"""Review -> GitHub: check run with annotations, labels, one summary comment, one review.

Every step is idempotent: it finds what an earlier attempt (or an earlier
head of the same PR) left and updates it, so a retried job never duplicates.
"""
from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from github import GithubException

from migration_safe.engine.model import Phase, Review, Severity
from migration_safe.report import markdown, markup
from migration_safe.report._common import span
from migration_safe_rules import catalogue

log = logging.getLogger(__name__)

CHECK_NAME = "migration-safe"
SUMMARY_MARKER = "<!-- migration-safe:summary -->"
FINDING_MARKER = "<!-- migration-safe:finding {} -->"
LABELS = {
    Phase.PRE_DEPLOY: ("migration: pre-deploy", "0e8a16", "Migrations that run before the deploy"),
    Phase.POST_DEPLOY: ("migration: post-deploy", "fbca04", "Migrations that run after the deploy"),
    Phase.DEFERRED: ("migration: deferred", "5319e7", "Migrations that run asynchronously after the deploy"),
    "split": ("migration: needs-split", "d93f0b", "A migration mixes deploy phases and must be split"),
}
LABEL_PREFIX = "migration: "
ANNOTATION_BATCH = 50
TITLE_LIMIT = 255  # an annotation's title
SUGGESTION_LIMIT = 20000  # a longer rewrite is left to `migration-safe fix`
SAFE_LABEL = re.compile(r"^[\w.]{1,200}$", re.ASCII)
LEVELS = {Severity.ERROR: "failure", Severity.WARNING: "warning", Severity.NOTICE: "notice"}


@dataclass
class Target:
    repo: object  # github.Repository.Repository
    pull: object  # github.PullRequest.PullRequest
    head_sha: str


# ---------------------------------------------------------------- check run


def now_dt() -> datetime:
    return datetime.now(timezone.utc)


def find_or_start_check(target: Target):
    """The run an earlier attempt of this review left unfinished, else a new run.

    GitHub appends the annotations of every update to those a run already has,
    so a finished run (a re-review of the same head: recheck, "Re-run", a command)
    or one already holding annotations is never reused: every annotation would
    show twice. GitHub shows the latest run of a name on a commit.
    """
    commit = target.repo.get_commit(target.head_sha)
    for run in commit.get_check_runs(check_name=CHECK_NAME):  # the latest run of that name only
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


def conclusion(review: Review) -> str:
    # Never `neutral` for "could not check": GitHub counts it as passing. An unchecked migration
    # blocks through MS002 unless the team lowered it or the file alone settles it.
    return "failure" if review.blocking else "success"


def title(review: Review) -> str:
    if not review.migrations:
        return "No migrations in this pull request"
    blocking = sum(m.blocking for m in review.migrations)
    if blocking:
        return f"{blocking} of {len(review.migrations)} migration(s) blocking"
    if review.sql_unavailable:
        return "Nothing blocking, but the SQL could not be verified"
    return f"{len(review.migrations)} migration(s) safe to deploy"


def complete_check(run, review: Review, note: str = "") -> None:
    """`note` (what `autofix: push` did) goes first in the summary."""
    rules = catalogue()
    summary = markdown.summary(review, rules=rules)
    summary = markup.clip_body(f"{note}\n\n{summary}" if note else summary, markup.CHECK_RUN_LIMIT)
    text = markdown.sql_text(review, limit=markdown.LIMIT)
    annotations = [annotation(m, f, rules) for m in review.migrations for f in m.findings]
    batches = [annotations[i:i + ANNOTATION_BATCH] for i in range(0, len(annotations), ANNOTATION_BATCH)] or [[]]
    output = {"title": title(review), "summary": summary, "text": text}
    for batch in batches[:-1]:  # GitHub appends the annotations of each update
        run.edit(output={**output, "annotations": batch})
    run.edit(status="completed", conclusion=conclusion(review), completed_at=now_dt(),
             output={**output, "annotations": batches[-1]})


def fail_check(run, reason: str) -> None:
    """`reason` may quote the pull request (its config file, git's messages): shown as code."""
    after = "\nNothing was verified. Comment `/migration-safe recheck` to try again."
    room = markup.CHECK_RUN_LIMIT - markup.size(after) - 100
    summary = "The review failed:\n\n" + markup.fence(markup.clip(reason, room // 4)) + after
    run.edit(status="completed", conclusion="failure", completed_at=now_dt(),
             output={"title": "migration-safe could not review this pull request", "summary": summary})


def annotation(verdict, finding, rules) -> dict:
    start, end = span(verdict, finding)
    rule = rules.get(finding.rule)
    # Plain text on GitHub, but still the pull request's names: clipped like everywhere else.
    message = markup.clip(finding.message, markup.TEXT_LIMIT) + ("\n(acknowledged)" if finding.acknowledged else "")
    return {"path": verdict.file.path, "start_line": start, "end_line": max(start, end),
            "annotation_level": LEVELS[finding.severity] if not finding.acknowledged else "notice",
            "title": markup.clip(f"{finding.rule} {rule.title if rule else ''}".strip(), TITLE_LIMIT),
            "message": message,
            "raw_details": markup.clip(f"Safe alternative: {finding.safe_alternative}", markup.TEXT_LIMIT)}


# ---------------------------------------------------------------- labels


def sync_labels(target: Target, review: Review) -> None:
    wanted = set()
    for migration in review.migrations:
        key = "split" if migration.needs_split else migration.phase
        if key in LABELS:
            wanted.add(LABELS[key][0])
    current = {label.name for label in target.pull.get_labels()}
    for name in sorted(wanted - current):
        ensure_label(target.repo, name)
    missing = sorted(wanted - current)
    if missing:  # add_to_labels() with no labels would remove them all
        target.pull.add_to_labels(*missing)
    for name in sorted(n for n in current - wanted if n.startswith(LABEL_PREFIX)):
        target.pull.remove_from_labels(name)


def ensure_label(repo, name: str) -> None:
    try:
        repo.get_label(name)
    except GithubException as exc:
        if exc.status != 404:
            raise
        _name, color, description = next(v for v in LABELS.values() if v[0] == name)
        repo.create_label(name=name, color=color, description=description)


# ---------------------------------------------------------------- summary comment


def upsert_summary(target: Target, body: str, bot_login: str) -> None:
    text = f"{SUMMARY_MARKER}\n" + markup.clip_body(body, markup.COMMENT_LIMIT - markup.size(SUMMARY_MARKER) - 1)
    for comment in target.pull.get_issue_comments():
        if SUMMARY_MARKER in (comment.body or "") and is_ours(comment.user, bot_login):
            if comment.body != text:
                comment.edit(text)
            return
    target.pull.create_issue_comment(text)


def is_ours(user, bot_login: str) -> bool:
    """Written by this App: its own bot login. Any other bot (another App, a bot account) is
    someone else, whose markers and comments count for nothing."""
    return user is not None and bool(bot_login) and (user.login or "").lower() == bot_login.lower()


# ---------------------------------------------------------------- review comments


def post_review(target: Target, review: Review, bot_login: str) -> int:
    files = {f.filename: f.patch for f in target.pull.get_files()}
    # Only the App's own comments say what it said already: a reader can paste a marker too.
    already = {m.group(1) for c in target.pull.get_review_comments() if is_ours(c.user, bot_login)
               for m in [re.search(r"migration-safe:finding (\S+)", c.body or "")] if m}
    comments = []
    for verdict in review.migrations:
        lines = commentable_lines(files.get(verdict.file.path))
        for finding in verdict.findings:
            if finding.severity is Severity.NOTICE or finding.acknowledged:
                continue
            start, end = span(verdict, finding)
            fingerprint = f"{finding.rule}:{marker_label(verdict.file.label)}:{finding.operation_index}"
            if fingerprint in already or start not in lines:
                continue
            comments.append(review_comment(verdict.file.path, start, end, lines, finding, fingerprint))
    if not comments:
        return 0
    if submit_review(target, comments):
        return len(comments)
    # GitHub refused the review, which refuses all its comments for one it cannot place (a line it
    # does not see in the diff, a head that moved): each comment alone, so one costs no other.
    return sum(submit_review(target, [comment]) for comment in comments)


def submit_review(target: Target, comments: list[dict]) -> bool:
    """One review holding `comments`; False when GitHub refuses it (422), which a retry would not change.

    The findings are in the check run's annotations and the summary comment either way.
    """
    commit = target.repo.get_commit(target.head_sha)
    try:
        target.pull.create_review(commit=commit, event="COMMENT", comments=comments,
                                  body=f"migration-safe found {len(comments)} problem(s) in the new migrations.")
    except GithubException as exc:
        if exc.status != 422:
            raise
        log.warning("review comments refused for %s: %s", target.head_sha, exc.data)
        return False
    return True


def marker_label(label: str) -> str:
    """The label in a finding marker: as it is when it is a plain label, else a digest (a label
    holding "-->" would end the HTML comment the marker lives in)."""
    return label if SAFE_LABEL.match(label) else "sha1-" + hashlib.sha1(label.encode("utf-8", "replace")).hexdigest()


def review_comment(path, start, end, lines, finding, fingerprint) -> dict:
    comment = {"path": path, "line": end if end in lines and end > start else start, "side": "RIGHT",
               "body": review_body(finding, fingerprint)}
    if comment["line"] != start and all(n in lines for n in range(start, end + 1)):
        comment.update(start_line=start, start_side="RIGHT")
    else:
        comment["line"] = start
    return comment


def review_body(finding, fingerprint: str) -> str:
    marker = "\n" + FINDING_MARKER.format(fingerprint)
    body = (f"**{markup.prose(finding.rule, 20)}** ({finding.severity.value}): {markup.prose(finding.message)}\n\n"
            f"Safe alternative: {markup.prose(finding.safe_alternative)}")
    if finding.suggestion is not None and len(finding.suggestion) <= SUGGESTION_LIMIT:
        body += "\n\n" + markup.fence(finding.suggestion, "suggestion")
    elif finding.suggestion is not None:
        body += "\n\nThe rewrite is too long to suggest here: `migration-safe fix` writes it."
    return markup.clip_body(body, markup.COMMENT_LIMIT - markup.size(marker)) + marker


def commentable_lines(patch: str | None) -> set[int]:
    """Right-side lines GitHub accepts review comments on: inside the patch's hunks."""
    lines: set[int] = set()
    if not patch:
        return lines
    number = 0
    for line in patch.splitlines():
        header = re.match(r"@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@", line)
        if header:
            number = int(header.group(1))
        elif line.startswith("-"):
            continue
        elif line.startswith("\\"):
            continue  # "\ No newline at end of file"
        else:
            lines.add(number)
            number += 1
    return lines
