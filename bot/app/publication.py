"""What a review publishes on a pull request, decided as data: the plan `publish` carries out.

Pure: it takes the review and what the pull request already shows (read by `publish` into the
plain data below) and returns every write to make. What an earlier attempt, or an earlier head of
the same pull request, left is updated rather than written again, so a retried job never
duplicates: the labels that are there, the summary comment, the findings already commented on.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from migration_safe.engine.model import Finding, MigrationVerdict, Phase, Review, Severity
from migration_safe.report import markdown, markup
from migration_safe.report._common import on_database, span
from migration_safe_rules import catalogue
from migration_safe_rules.base import Rule

CHECK_NAME = "migration-safe"
SUMMARY_MARKER = "<!-- migration-safe:summary -->"
FINDING_MARKER = "<!-- migration-safe:finding {} -->"
FINDING_PATTERN = re.compile(r"migration-safe:finding (\S+)")
LABEL_PREFIX = "migration: "
ANNOTATION_BATCH = 50  # GitHub takes at most 50 annotations per update of a check run
TITLE_LIMIT = 255  # an annotation's title
SUGGESTION_LIMIT = 20000  # a longer rewrite is left to `migration-safe fix`
SAFE_LABEL = re.compile(r"^[\w.]{1,200}$", re.ASCII)
LEVELS = {Severity.ERROR: "failure", Severity.WARNING: "warning", Severity.NOTICE: "notice"}


@dataclass(frozen=True)
class Label:
    name: str
    color: str
    description: str  # both only for creating it where the repository lacks it


LABELS = {
    Phase.PRE_DEPLOY: Label("migration: pre-deploy", "0e8a16", "Migrations that run before the deploy"),
    Phase.POST_DEPLOY: Label("migration: post-deploy", "fbca04", "Migrations that run after the deploy"),
    Phase.DEFERRED: Label("migration: deferred", "5319e7", "Migrations that run asynchronously after the deploy"),
    "split": Label("migration: needs-split", "d93f0b", "A migration mixes deploy phases and must be split"),
}


# ---------------------------------------------------------------- what the pull request shows


@dataclass(frozen=True)
class Comment:
    """A comment already on the pull request (an issue comment or a review comment)."""

    id: int
    author: str | None  # its user's login; None when GitHub no longer knows the user
    body: str


@dataclass(frozen=True)
class PullRequestState:
    labels: frozenset[str] = frozenset()
    issue_comments: tuple[Comment, ...] = ()
    review_comments: tuple[Comment, ...] = ()
    patches: Mapping[str, str | None] = field(default_factory=dict)  # file path -> its diff's patch


@dataclass(frozen=True)
class Options:
    note: str = ""  # what `autofix: push` did (markdown): first in the check run and the summary comment
    left: tuple[str, ...] = ()  # what `migration-safe fix` leaves for people, each with why (a note says it else)
    review_comments: bool = True  # False after a push, whose commit rewrites the lines they would be on
    # Only the check run: a token that may write checks but not the pull request (`migration-safe ci`).
    check_only: bool = False


# ---------------------------------------------------------------- what to publish


@dataclass(frozen=True)
class Annotation:
    path: str
    start_line: int
    end_line: int
    annotation_level: str
    title: str
    message: str
    raw_details: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CheckOutput:
    title: str
    summary: str
    conclusion: str
    text: str | None = None
    # GitHub appends the annotations of each update of a run: one update per batch, the last one
    # completing it. No batch: an update without annotations.
    batches: tuple[tuple[Annotation, ...], ...] = ()


@dataclass(frozen=True)
class LabelChanges:
    add: tuple[Label, ...] = ()  # each created first where the repository lacks it
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class SummaryComment:
    body: str
    edit: int | None = None  # the id of our earlier summary comment, else a new comment


@dataclass(frozen=True)
class ReviewComment:
    path: str
    line: int
    body: str
    start_line: int | None = None  # a comment over several lines starts here

    def as_dict(self) -> dict[str, Any]:
        comment: dict[str, Any] = {"path": self.path, "line": self.line, "side": "RIGHT", "body": self.body}
        if self.start_line is not None:
            comment.update(start_line=self.start_line, start_side="RIGHT")
        return comment


@dataclass(frozen=True)
class Publication:
    check: CheckOutput
    labels: LabelChanges = LabelChanges()
    summary: SummaryComment | None = None  # None: nothing to write (none needed, or ours says it already)
    comments: tuple[ReviewComment, ...] = ()  # one review, posted before the check run completes


def plan_publication(review: Review, state: PullRequestState, bot_login: str,
                     options: Options = Options()) -> Publication:
    rules = catalogue()
    check = check_output(review, options.note, rules)
    if options.check_only:
        return Publication(check)
    comments = review_comments(review, state, bot_login) if options.review_comments else ()
    return Publication(check, label_changes(review, state.labels),
                       summary_comment(review, state, bot_login, options, rules), comments)


def written_by_us(author: str | None, bot_login: str) -> bool:
    """Written by this App: its own bot login. Any other bot (another App, a bot account) is
    someone else, whose markers and comments count for nothing."""
    return bool(author) and bool(bot_login) and (author or "").lower() == bot_login.lower()


# ---------------------------------------------------------------- check run


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


def check_output(review: Review, note: str, rules: Mapping[str, Rule]) -> CheckOutput:
    """`note` (what `autofix: push` did) goes first in the summary."""
    summary = markdown.summary(review, rules=rules)
    summary = markup.clip_body(f"{note}\n\n{summary}" if note else summary, markup.CHECK_RUN_LIMIT)
    annotations = [annotation(m, f, rules) for m in review.migrations for f in m.findings]
    batches = tuple(tuple(annotations[i:i + ANNOTATION_BATCH]) for i in range(0, len(annotations), ANNOTATION_BATCH))
    return CheckOutput(title(review), summary, conclusion(review), markdown.sql_text(review, limit=markdown.LIMIT),
                       batches or ((),))


def failed_check(reason: str) -> CheckOutput:
    """`reason` may quote the pull request (its config file, git's messages): shown as code."""
    after = "\nNothing was verified. Comment `/migration-safe recheck` to try again."
    room = markup.CHECK_RUN_LIMIT - markup.size(after) - 100
    summary = "The review failed:\n\n" + markup.fence(markup.clip(reason, room // 4)) + after
    return CheckOutput("migration-safe could not review this pull request", summary, "failure")


def annotation(verdict: MigrationVerdict, finding: Finding, rules: Mapping[str, Rule]) -> Annotation:
    start, end = span(verdict, finding)
    rule = rules.get(finding.rule)
    # Plain text on GitHub, but still the pull request's names: clipped like everywhere else.
    message = markup.clip(on_database(finding) + finding.message, markup.TEXT_LIMIT) \
        + ("\n(acknowledged)" if finding.acknowledged else "")
    return Annotation(verdict.file.path, start, max(start, end),
                      LEVELS[finding.severity] if not finding.acknowledged else "notice",
                      markup.clip(f"{finding.rule} {rule.title if rule else ''}".strip(), TITLE_LIMIT), message,
                      markup.clip(f"Safe alternative: {finding.safe_alternative}", markup.TEXT_LIMIT))


# ---------------------------------------------------------------- labels


def label_changes(review: Review, current: frozenset[str]) -> LabelChanges:
    wanted = {LABELS[key].name: LABELS[key] for m in review.migrations
              for key in ["split" if m.needs_split else m.phase] if key in LABELS}
    # Only our own labels go: a team's other labels are theirs.
    return LabelChanges(tuple(wanted[name] for name in sorted(wanted.keys() - current)),
                        tuple(sorted(n for n in current - wanted.keys() if n.startswith(LABEL_PREFIX))))


# ---------------------------------------------------------------- summary comment


def summary_comment(review: Review, state: PullRequestState, bot_login: str, options: Options,
                    rules: Mapping[str, Rule]) -> SummaryComment | None:
    """A pull request without migrations gets none, unless an earlier head's is there to correct."""
    ours = next((c for c in state.issue_comments
                 if SUMMARY_MARKER in c.body and written_by_us(c.author, bot_login)), None)
    if not review.migrations and ours is None:
        return None
    body = markdown.render(review, rules=rules, left=list(options.left))
    body = f"{options.note}\n\n{body}" if options.note else body
    text = f"{SUMMARY_MARKER}\n" + markup.clip_body(body, markup.COMMENT_LIMIT - markup.size(SUMMARY_MARKER) - 1)
    if ours is None:
        return SummaryComment(text)
    return None if ours.body == text else SummaryComment(text, ours.id)


# ---------------------------------------------------------------- review comments


def review_comments(review: Review, state: PullRequestState, bot_login: str) -> tuple[ReviewComment, ...]:
    """A comment for each finding worth one, on a line the diff shows, not already made.

    The others stay in the check run's annotations and the summary comment.
    """
    # Only the App's own comments say what it said already: a reader can paste a marker too.
    already = {m.group(1) for c in state.review_comments if written_by_us(c.author, bot_login)
               for m in [FINDING_PATTERN.search(c.body)] if m}
    comments = []
    for verdict in review.migrations:
        lines = commentable_lines(state.patches.get(verdict.file.path))
        for finding in verdict.findings:
            if finding.severity is Severity.NOTICE or finding.acknowledged:
                continue
            start, end = span(verdict, finding)
            fingerprint = f"{finding.rule}:{marker_label(verdict.file.label)}:{finding.operation_index}"
            if fingerprint in already or start not in lines:
                continue
            comments.append(review_comment(verdict.file.path, start, end, lines, finding, fingerprint))
    return tuple(comments)


def review_body(count: int) -> str:
    return f"migration-safe found {count} problem(s) in the new migrations."


def marker_label(label: str) -> str:
    """The label in a finding marker: as it is when it is a plain label, else a digest (a label
    holding "-->" would end the HTML comment the marker lives in)."""
    return label if SAFE_LABEL.match(label) else "sha1-" + hashlib.sha1(label.encode("utf-8", "replace")).hexdigest()


def review_comment(path: str, start: int, end: int, lines: set[int], finding: Finding,
                   fingerprint: str) -> ReviewComment:
    """Over the finding's lines when the diff shows them all, else on its first line."""
    body = comment_body(finding, fingerprint)
    if end > start and all(n in lines for n in range(start, end + 1)):
        return ReviewComment(path, end, body, start_line=start)
    return ReviewComment(path, start, body)


def comment_body(finding: Finding, fingerprint: str) -> str:
    marker = "\n" + FINDING_MARKER.format(fingerprint)
    message = on_database(finding) + finding.message
    body = (f"**{markup.prose(finding.rule, 20)}** ({finding.severity.value}): {markup.prose(message)}\n\n"
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
