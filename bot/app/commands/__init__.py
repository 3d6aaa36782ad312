"""Handling `/migration-safe` commands, and reading acknowledgements back from the PR's comments.

The PR's comments are the only store: every review re-reads them, so an
acknowledgement survives restarts, follows later heads, and disappears
when its comment is edited or deleted. Replies quote what commenters wrote
only through `markup` (code spans, fences, escaped prose).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from migration_safe.app import publish
from migration_safe.app.command_parser import MAX_COMMANDS, Command, commands_in, find_commands, help_text
from migration_safe.app.events import CommandJob, ReviewJob
from migration_safe.engine.model import Acknowledgement, PhaseOverride, Review
from migration_safe.engine.review.phases import refuse_phase, touches_large
from migration_safe.report import markup
from migration_safe_rules import catalogue

if TYPE_CHECKING:  # the worker imports this module
    from migration_safe.app.reviewed import Reviewed

log = logging.getLogger(__name__)

WRITERS = {"admin", "maintain", "write"}
QUOTED_LINES = 5


@dataclass
class CommandState:
    acknowledgements: list[Acknowledgement] = field(default_factory=list)
    overrides: dict[str, PhaseOverride] = field(default_factory=dict)


class Permissions:
    """Repository permission per user, asked of the API once per job (never read from the payload)."""

    def __init__(self, repo) -> None:
        self.repo = repo
        self.cache: dict[str, bool] = {}

    def can_write(self, login: str) -> bool:
        if login not in self.cache:
            try:
                self.cache[login] = self.repo.get_collaborator_permission(login) in WRITERS
            except Exception:  # unknown user or API error: no write access is the safe answer
                self.cache[login] = False
        return self.cache[login]


def command_state(repo, pull) -> CommandState:
    permissions = Permissions(repo)
    acks: dict[tuple[str, str | None], Acknowledgement] = {}
    overrides: dict[str, PhaseOverride] = {}
    for comment in pull.get_issue_comments():
        if comment.user is None or comment.user.type == "Bot":  # commands are people's: the App's own
            continue  # replies quote them, and no other bot is trusted with a verdict
        login, at = comment.user.login, str(comment.updated_at or comment.created_at or "")
        for command in commands_in(comment.body):
            if command.error or not command.changes_verdict or not permissions.can_write(login):
                continue
            if command.name == "ignore":
                acks[(command.rule, command.migration)] = Acknowledgement(
                    command.rule, command.migration, login, command.reason or "", at)
            elif command.name == "unignore":
                for key in [k for k in acks if k[0] == command.rule and command.migration in (None, k[1])]:
                    del acks[key]
            elif command.name == "phase":
                overrides[command.migration] = PhaseOverride(command.migration, command.phase, login,
                                                             command.reason or "", at)
    return CommandState(list(acks.values()), overrides)


def handle_command(worker, job: CommandJob) -> None:
    gh = worker.app.client(job.installation_id)
    repo = gh.get_repo(job.repo)
    pull = repo.get_pull(job.pr)
    if job.action == "deleted":  # a withdrawn acknowledgement: the verdict may change
        if pull.state == "open":
            review_head(worker, job, repo, pull)
        return
    comment = pull.get_issue_comment(job.comment_id)
    found = find_commands(comment.body)
    commands = found.commands
    if job.action == "edited":
        # The answer to the old text no longer holds: drop our reactions before answering anew.
        clear_reactions(comment, worker.app.bot_login())
    if not commands:
        if job.action == "edited" and pull.state == "open":
            review_head(worker, job, repo, pull)  # its commands were edited away: withdraw them
        return
    if pull.state != "open":
        comment.create_reaction("confused")
        pull.create_issue_comment(reply(comment, ["This pull request is closed: commands are not run."]))
        return
    comment.create_reaction("eyes")
    permissions = Permissions(repo)
    answers, ok, needs_review = [], True, False
    for command in commands:
        text, success, review = answer(command, permissions, comment.user.login)
        answers.append((command, text, success))
        ok &= success
        needs_review |= review
    reviewed = review_head(worker, job, repo, pull) if needs_review else None
    lines = [finish(command, text, success, reviewed) for command, text, success in answers]
    ok = ok and all(success for success in outcome_flags(answers, reviewed.review if reviewed else None))
    if found.ignored:
        lines.append(f"Only the first {MAX_COMMANDS} commands of a comment are run: the {found.ignored} "
                     "after them were ignored.")
        ok = False
    pull.create_issue_comment(reply(comment, lines))
    comment.create_reaction("+1" if ok else "confused")


def clear_reactions(comment, bot_login: str) -> None:
    for reaction in comment.get_reactions():
        if publish.is_ours(reaction.user, bot_login):
            comment.delete_reaction(reaction.id)


def answer(command: Command, permissions: Permissions, login: str) -> tuple[str, bool, bool]:
    """(reply text, understood and allowed, whether a review must run)."""
    if command.error:
        from migration_safe.app.command_parser import USAGE

        usage = USAGE.get(command.name)
        hint = f" Usage: `{usage}`." if usage else ""
        return (f"{markup.code(command.text)}: {parser_text(command.error)}.{hint}\n\n{help_text()}",
                False, False)
    if command.name == "help":
        return help_text(), True, False
    if command.name == "explain":
        rule = catalogue().get(command.rule)
        if rule is None:
            return f"There is no rule {markup.prose(command.rule, markup.NAME_LIMIT)}.", False, False
        return markup.fence(rule.docs), True, False
    if command.changes_verdict and not permissions.can_write(login):
        return (f"Sorry @{login}, `{command.name}` changes the verdict and needs write access to this "
                "repository."), False, False  # a name of VERDICT_CHANGING
    if command.name == "split":
        return "", True, True
    return "", True, command.name in ("recheck", "ignore", "unignore", "phase")


def parser_text(text: str) -> str:
    """A parser's error, which quotes the comment between backticks: each part as code or as prose,
    so a backtick in what it quotes only shifts which part is which."""
    parts = text.split("`")
    return "".join(markup.code(part) if i % 2 else markup.prose(part) for i, part in enumerate(parts)
                   if part or not i % 2)


def finish(command: Command, text: str, success: bool, reviewed: Reviewed | None) -> str:
    if text or not success:
        return text
    review = reviewed.review if reviewed else None
    if command.name == "recheck":
        return "Re-reviewed the current head."
    rule = markup.prose(command.rule or "", markup.NAME_LIMIT)
    migration = markup.prose(command.migration or "", markup.NAME_LIMIT)
    if command.name == "ignore":
        scope = migration if command.migration else "every migration of this pull request"
        reason = markup.prose(command.reason or "")
        if review is not None and not has_finding(review, command.rule, command.migration):
            # Say so rather than claim a change: a mistyped label would otherwise look accepted.
            return (f"{rule} acknowledged for {scope}, but no migration there has a {rule} "
                    f"finding now; the acknowledgement applies if one appears. Reason: {reason}")
        return f"{rule} acknowledged for {scope}: it no longer blocks. Reason: {reason}"
    if command.name == "unignore":
        return f"{rule} is no longer acknowledged{' for ' + migration if command.migration else ''}."
    if command.name == "phase":
        return phase_answer(command, reviewed)
    if command.name == "split":
        return split_answer(command, reviewed)
    return "Done."


def phase_answer(command: Command, reviewed: Reviewed | None) -> str:
    verdict = find(reviewed.review if reviewed else None, command.migration)
    migration = markup.prose(command.migration or "", markup.NAME_LIMIT)
    if verdict is None:
        return f"This pull request adds no migration {migration}."
    if verdict.phase_override is not None and verdict.phase_override.phase == command.phase:
        return (f"{migration} now runs {command.phase.value}. "
                f"Reason: {markup.prose(command.reason or '')}")
    # The head's config, as the review refused with: its large tables are the usual reason.
    reason = refuse_phase(verdict.phase, command.phase, touches_large(verdict.operations, reviewed.config))
    return f"Refused: {migration} cannot run {command.phase.value}: {markup.prose(reason or 'it is not safe')}."


def split_answer(command: Command, reviewed: Reviewed | None) -> str:
    """The plan in prose, then the files to commit: the same plan as `autofix: push` and the CLI."""
    verdict = find(reviewed.review if reviewed else None, command.migration)
    migration = markup.prose(command.migration or "", markup.NAME_LIMIT)
    if verdict is None:
        return f"This pull request adds no migration {migration}."
    if verdict.needs_split:
        lines = [f"Split {migration} into one migration per phase:"]
        lines += [f"- line {op.line} ({op.phase.value if op.phase else '?'}): {markup.prose(op.description)}"
                  for op in verdict.operations]
    else:
        lines = [f"{migration} needs no split: all its operations are "
                 f"{verdict.phase.value if verdict.phase else '?'}."]
    plan = reviewed.fixes(only={command.migration})
    if plan.files:
        lines.append("\nReady to commit (a file that exists is replaced; new parts go into the app's chain "
                     "in phase order):")
        lines += [f"- {markup.prose(done)}" for done in plan.done]
        lines += [f"- Order: {markup.prose(note)}" for note in plan.notes]
        lines += [f"\n{markup.code(path)}\n{markup.fence(source.rstrip(), 'python')}"
                  for path, source in plan.files.items()]
    if plan.left:
        lines.append("\nLeft for you, and why `migration-safe fix` cannot do it:")
        lines += [f"- {markup.prose(left)}" for left in plan.left]
    return "\n".join(lines)


def outcome_flags(answers, review: Review | None):
    for command, text, success in answers:
        if command.name == "phase" and success and not text:
            verdict = find(review, command.migration)
            yield bool(verdict and verdict.phase_override and verdict.phase_override.phase == command.phase)
        elif command.name == "split" and success and not text:
            yield find(review, command.migration) is not None  # no such migration: nothing to split
        else:
            yield success


def has_finding(review: Review, rule: str, label: str | None) -> bool:
    return any(f.rule == rule for m in review.migrations if label in (None, m.file.label) for f in m.findings)


def find(review: Review | None, label: str | None):
    if review is None:
        return None
    return next((m for m in review.migrations if m.file.label == label), None)


def review_head(worker, job: CommandJob, repo, pull) -> Reviewed | None:
    review_job = ReviewJob(job.installation_id, job.repo, pull.number, pull.head.sha, f"command by @{job.author}")
    return worker.review_pull(review_job, repo, pull)


def reply(comment, lines: list[str]) -> str:
    """The commenter's first lines quoted as escaped text, a mention of the commenter (a GitHub login: no
    markup), the answers; within GitHub's size limit."""
    lines_written = (comment.body or "").splitlines()[:QUOTED_LINES]
    quoted = "\n".join(f"> {markup.prose(line, markup.NAME_LIMIT)}" for line in lines_written if line.strip())
    body = f"{quoted}\n\n@{comment.user.login}\n\n" + "\n\n".join(line for line in lines if line)
    return markup.clip_body(body, markup.COMMENT_LIMIT)
