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
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              timeout=300)
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


def changed_python_files(repo: Path, base: str, head: str) -> list[ChangedFile]:
    """Python files added or modified on head since it forked from base."""
    base_sha = resolve(repo, base)
    if head == WORKTREE:
        fork = git(repo, "merge-base", base_sha, "HEAD").strip()
        out = git(repo, "diff", "--name-status", "--no-renames", fork)
        untracked = git(repo, "ls-files", "--others", "--exclude-standard").splitlines()
        lines = out.splitlines() + [f"A\t{path}" for path in untracked]
    else:
        head_sha = resolve(repo, head)
        out = git(repo, "diff", "--name-status", "--no-renames", f"{base_sha}...{head_sha}")
        lines = out.splitlines()
    files = []
    for line in lines:
        status, _, path = line.partition("\t")
        if path.endswith(".py") and status[:1] in ("A", "M"):
            files.append(ChangedFile(path, "added" if status[0] == "A" else "modified"))
    return files


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
    if sha == resolve(repo, "HEAD") and not git(repo, "status", "--porcelain", "--untracked-files=no").strip():
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
