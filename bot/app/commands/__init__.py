"""Handling `/migration-safe` commands, and reading acknowledgements back from the PR's comments.

The PR's comments are the only store: every review re-reads them, so an
acknowledgement survives restarts, follows later heads, and disappears
when its comment is edited or deleted. Replies quote what commenters wrote
only through `markup` (code spans, fences, escaped prose).

Each command is a module of this package, listed in `registry`; `replies` decides from plain data
what to answer, and this module does the asking and the answering on GitHub.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from github import Github
from github.PullRequest import PullRequest
from github.Repository import Repository

from migration_safe.app import publish
from migration_safe.app.commands.base import CommandState, Signed
from migration_safe.app.commands.parser import Command, commands_in, find_commands
from migration_safe.app.commands.replies import Author, answer, asks_write, conclude, finish, reply_body, state_of
from migration_safe.app.events import CommandJob, ReviewJob
from migration_safe.app.reviewed import Reviewed

WRITERS = {"admin", "maintain", "write"}


@dataclass(frozen=True)
class CommandDeps:
    """What answering commands needs of whoever runs it: the App's worker, or `migration-safe ci`."""

    client: Callable[[int], Github]  # the API client of an installation
    bot_login: Callable[[], str]  # whose reactions are ours
    review_pull: Callable[[ReviewJob, Repository, PullRequest], Reviewed | None]  # review and publish; None: not


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
    return state_of(signed_commands(pull, Permissions(repo)))


def signed_commands(pull, permissions: Permissions) -> Iterator[tuple[Command, Signed]]:
    for comment in pull.get_issue_comments():
        if comment.user is None or comment.user.type == "Bot":  # commands are people's: the App's own
            continue  # replies quote them, and no other bot is trusted with a verdict
        login, at = comment.user.login, str(comment.updated_at or comment.created_at or "")
        for command in commands_in(comment.body):
            if command.changes_verdict and not command.error and permissions.can_write(login):
                yield command, Signed(login, at)


def handle_command(deps: CommandDeps, job: CommandJob) -> None:
    repo = deps.client(job.installation_id).get_repo(job.repo)
    pull = repo.get_pull(job.pr)
    if job.action == "deleted":  # a withdrawn acknowledgement: the verdict may change
        if pull.state == "open":
            review_head(deps, job, repo, pull)
        return
    comment = pull.get_issue_comment(job.comment_id)
    found = find_commands(comment.body)
    if job.action == "edited":
        # The answer to the old text no longer holds: drop our reactions before answering anew.
        clear_reactions(comment, deps.bot_login())
    if not found.commands:
        if job.action == "edited" and pull.state == "open":
            review_head(deps, job, repo, pull)  # its commands were edited away: withdraw them
        return
    login = comment.user.login
    if pull.state != "open":
        comment.create_reaction("confused")
        pull.create_issue_comment(reply_body(comment.body, login, ["This pull request is closed: commands "
                                                                   "are not run."]))
        return
    comment.create_reaction("eyes")
    author = Author(login, asks_write(found.commands) and Permissions(repo).can_write(login))
    answers = [answer(command, author) for command in found.commands]
    reviewed = review_head(deps, job, repo, pull) if any(given is None for given in answers) else None
    outcome = conclude([given or finish(command, reviewed) for command, given in zip(found.commands, answers)],
                       found.ignored)
    pull.create_issue_comment(reply_body(comment.body, login, outcome.lines))
    comment.create_reaction(outcome.reaction)


def clear_reactions(comment, bot_login: str) -> None:
    for reaction in comment.get_reactions():
        if publish.is_ours(reaction.user, bot_login):
            comment.delete_reaction(reaction.id)


def review_head(deps: CommandDeps, job: CommandJob, repo, pull) -> Reviewed | None:
    review_job = ReviewJob(job.installation_id, job.repo, pull.number, pull.head.sha, f"command by @{job.author}")
    return deps.review_pull(review_job, repo, pull)
