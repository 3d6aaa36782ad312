"""`autofix: push`: a review's safe rewrites as one commit on the pull request's own branch.

The commit goes on top of exactly the reviewed head, pushed with a lease: if the
branch moved meanwhile, nothing is pushed and the new head gets its own review.
A push makes a new head, hence a new review; loops are bounded three ways:
nothing is pushed when the plan has no files, never twice for one head (the
head's check run records the push), and never on top of MAX_ROUNDS commits of
ours in a row (some fixes only show once an earlier one is in, but a plan that
never settles must not push forever).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from migration_safe.app import publish
from migration_safe.app.checkout import Author, CheckoutError, Mirrors, PushRefused
from migration_safe.engine.fix.plan import FixPlan
from migration_safe.report import markup

log = logging.getLogger(__name__)

MAX_ROUNDS = 3
TRAILER = "Migration-Safe-Reviewed"  # in our commits: the head whose review they fix
PUSHED = "<!-- migration-safe:pushed {} -->"  # in the check run of the head the push fixed
PUSHED_PATTERN = re.compile(r"<!-- migration-safe:pushed ([0-9a-f]{40}) -->")


@dataclass(frozen=True)
class Outcome:
    commit: str | None = None  # the commit pushed
    note: str = ""  # for the summary: what was pushed, or why nothing was


@dataclass(frozen=True)
class Branch:
    """Where the fixes would go: the PR's head branch, as the worker fetched it."""
    full_name: str
    clone_url: str
    name: str
    head: str  # the reviewed head SHA


def refusal(pull, permissions: dict[str, str]) -> str | None:
    """Why the App may not push to this PR's branch, or None.

    The installation token's permissions decide (what the account granted the
    App), not the webhook payload: pull_request deliveries carry only the
    installation's id.
    """
    if is_fork(pull):
        return "the branch is in a fork, and the App pushes only to branches of this repository"
    if permissions.get("contents") != "write":
        return ("the App's installation may not write to this repository: it needs the Contents "
                "permission set to write (app.yml asks for it; the account must accept it)")
    return None


def is_fork(pull) -> bool:
    """The head branch lives in another repository (a deleted fork has none)."""
    return pull.head.repo is None or pull.head.repo.full_name != pull.base.repo.full_name


def pushed_before(target: publish.Target) -> str | None:
    """The commit an earlier review of this head pushed, if one did (whatever became of it)."""
    for run in publish.earlier_runs(target, latest=False):  # another App's summary says nothing of ours
        found = PUSHED_PATTERN.search((run.output and run.output.summary) or "")
        if found:
            return found.group(1)
    return None


def own_rounds(messages: list[str]) -> int:
    """How many of the newest commits in a row are fix commits of ours."""
    rounds = 0
    for message in messages:
        if not re.search(rf"^{TRAILER}: [0-9a-f]{{40}}$", message, re.M):
            break
        rounds += 1
    return rounds


def commit_message(plan: FixPlan, head: str) -> str:
    lines = [f"migration-safe: safe rewrites of {len(plan.files)} migration(s)", ""]
    lines += [f"- {done}" for done in plan.done]
    if plan.left:
        lines += ["", "Left for people (no automatic fix):"] + [f"- {left}" for left in plan.left]
    return "\n".join(lines + ["", f"{TRAILER}: {head}"]) + "\n"


def deliver(mirrors: Mirrors, branch: Branch, token: str, plan: FixPlan, author: Author) -> Outcome:
    """Commit the plan on top of the reviewed head and push it; say what happened either way."""
    try:
        commit = mirrors.commit(branch.full_name, branch.head, plan.files, commit_message(plan, branch.head),
                                author)
        mirrors.push(branch.full_name, branch.clone_url, token, commit, branch.name, branch.head)
    except PushRefused as exc:
        log.info("push to %s %s refused: %s", branch.full_name, branch.name, exc)
        if exc.moved:
            return not_pushed(f"{markup.code(branch.name)} moved since this head was reviewed "
                              f"(git: {markup.prose(str(exc))}); the new head gets its own review")
        return not_pushed(f"GitHub refused the push to {markup.code(branch.name)} ({markup.prose(str(exc))})")
    except CheckoutError as exc:  # the review is still worth publishing: say what failed instead
        log.warning("push to %s %s failed: %s", branch.full_name, branch.name, exc)
        return not_pushed(f"the push failed ({markup.prose(str(exc))}); `/migration-safe recheck` tries again")
    return Outcome(commit, pushed_note(commit, branch.name, plan))


def pushed_note(commit: str, branch: str, plan: FixPlan) -> str:
    lines = [f"**Pushed the safe rewrites** (`autofix: push`) to {markup.code(branch)} as {commit}:"]
    lines += [f"- {markup.prose(done)}" for done in plan.done]
    if plan.left:
        lines += ["", "Left for you (no automatic fix):"] + [f"- {markup.prose(left)}" for left in plan.left]
    lines += ["", "That commit gets its own review; this one is of the head before it.", PUSHED.format(commit)]
    return "\n".join(lines)


def not_pushed(reason: str) -> Outcome:
    """`reason`: markdown, any text of the pull request's already through `markup`."""
    return Outcome(note=f"`autofix: push` is on, but nothing was pushed: {reason}.")
