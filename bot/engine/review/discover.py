"""Git: which migration files the head adds or modifies since the base."""
from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

WORKTREE = "WORKTREE"


class GitError(RuntimeError):
    """A revision does not exist, or the folder is not a git repository."""


@dataclass(frozen=True)
class ChangedFile:
    path: str  # repo-relative, "/" separated
    status: str  # "added" | "modified"


def git(repo: Path, *args: str) -> str:
    try:
        # surrogateescape: a path that is not UTF-8 is still a path git can be asked about.
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              encoding="utf-8", errors="surrogateescape", timeout=300)
    except (OSError, subprocess.SubprocessError) as exc:
        raise GitError(f"git {' '.join(args)}: {exc}") from exc
    if done.returncode != 0:
        raise GitError(done.stderr.strip().splitlines()[-1] if done.stderr.strip()
                       else f"git {' '.join(args)} failed")
    return done.stdout


def resolve(repo: Path, revision: str) -> str:
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}").strip()
    except GitError:
        raise GitError(f"revision {revision!r} does not exist in {repo}") from None


@dataclass(frozen=True)
class PythonChanges:
    changed: list[ChangedFile]  # added or modified
    deleted: list[str]


def python_changes(repo: Path, base: str, head: str) -> PythonChanges:
    """Python files head added, modified or deleted since it forked from base (one diff)."""
    pairs = [(status[:1], path) for status, path in diff_pairs(repo, base, head) if path.endswith(".py")]
    return PythonChanges([ChangedFile(path, "added" if status == "A" else "modified")
                          for status, path in pairs if status in ("A", "M")],
                         [path for status, path in pairs if status == "D"])


def fork_point(repo: Path, base: str, head: str) -> str:
    """The commit head forked from base at: what the change is compared with."""
    return git(repo, "merge-base", resolve(repo, base), "HEAD" if head == WORKTREE else resolve(repo, head)).strip()


def diff_pairs(repo: Path, base: str, head: str) -> list[tuple[str, str]]:
    """(status, path) of every file head changed since it forked from base.

    Paths are read NUL-separated (-z): without it git quotes any name with a byte outside
    printable ASCII, a quote, a tab or a newline, and the quoted name no longer ends in `.py`.
    """
    base_sha = resolve(repo, base)
    if head == WORKTREE:
        fork = git(repo, "merge-base", base_sha, "HEAD").strip()
        pairs = name_status(git(repo, "diff", "-z", "--name-status", "--no-renames", fork))
        untracked = git(repo, "ls-files", "-z", "--others", "--exclude-standard").split("\0")
        pairs += [("A", path) for path in untracked if path]
    else:
        head_sha = resolve(repo, head)
        pairs = name_status(git(repo, "diff", "-z", "--name-status", "--no-renames",
                                f"{base_sha}...{head_sha}"))
    return pairs


def name_status(out: str) -> list[tuple[str, str]]:
    """`git diff -z --name-status --no-renames`: status NUL path NUL, repeated."""
    fields = out.split("\0")
    return list(zip(fields[0:-1:2], fields[1::2]))


def looks_like_migration(path: str, text: str) -> bool:
    """Any module defining `class Migration(`: custom MIGRATION_MODULES may live anywhere."""
    name = PurePosixPath(path).name
    return name != "__init__.py" and "class Migration" in text


def guess_app_label(path: str) -> str:
    """The folder that holds the migrations package; the child corrects it from Django's registry."""
    parts = PurePosixPath(path).parts
    if len(parts) >= 3:
        return parts[-3]
    return parts[0] if len(parts) > 1 else ""


@contextlib.contextmanager
def checkout(repo: Path, head: str) -> Iterator[Path]:
    """A tree of `head`: the repository itself when it already is that tree, else a temporary worktree."""
    if head == WORKTREE:
        yield repo
        return
    sha = resolve(repo, head)
    if sha == resolve(repo, "HEAD") and not git(repo, "status", "-z", "--porcelain", "--untracked-files=no").strip():
        yield repo
        return
    tmp = Path(tempfile.mkdtemp(prefix="migration-safe-head-"))
    tree = tmp / "tree"
    try:
        git(repo, "worktree", "add", "--detach", "--quiet", str(tree), sha)
        yield tree
    finally:
        with contextlib.suppress(GitError):
            git(repo, "worktree", "remove", "--force", str(tree))
        shutil.rmtree(tmp, ignore_errors=True)
