"""Cached bare mirror per repository; a temporary work tree per review; fix commits pushed from it.

The installation token reaches git only through its environment (an HTTP
header in GIT_CONFIG_*), never in a URL, an argument, a log line or the
mirror's config, and never in the sandbox.
"""
from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator


class CheckoutError(RuntimeError):
    """git could not fetch or check out the PR."""


class PushRefused(CheckoutError):
    """The remote refused to update the branch: it moved (the lease failed), or a rule of the
    repository forbids it (a protected branch)."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.moved = status.startswith("[rejected]")  # git's own verdict: "[remote rejected]" is the server's


@dataclass(frozen=True)
class Author:
    name: str
    email: str


_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(str(path), threading.Lock())


class Mirrors:
    def __init__(self, cache_dir: Path) -> None:
        self.root = cache_dir / "mirrors"

    def private_root(self) -> Path:
        """Ours alone: the sandboxed child can reach the cache folder above (its own folder is in
        it), and other repositories' mirrors must stay out of its reach."""
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        return self.root

    def mirror_path(self, full_name: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", full_name.replace("/", "__"))
        return self.root / f"{safe}.git"

    @contextlib.contextmanager
    def worktree(self, full_name: str, clone_url: str, token: str, pr: int, base_ref: str,
                 shas: list[str]) -> Iterator[Path]:
        """A work tree at shas[0] (the head) with the other shas fetched too; removed on exit."""
        mirror = self.mirror_path(full_name)
        with _lock_for(mirror):
            self._fetch(mirror, clone_url, token, pr, base_ref, shas)
            tmp = Path(tempfile.mkdtemp(prefix="migration-safe-pr-"))
            tree = tmp / "tree"
            run_git(mirror, ["worktree", "add", "--detach", "--quiet", str(tree), shas[0]], token)
        try:
            yield tree
        finally:
            with _lock_for(mirror):
                with contextlib.suppress(CheckoutError):
                    run_git(mirror, ["worktree", "remove", "--force", str(tree)], token)
                shutil.rmtree(tmp, ignore_errors=True)
                with contextlib.suppress(CheckoutError):
                    run_git(mirror, ["worktree", "prune"], token)

    def _fetch(self, mirror: Path, clone_url: str, token: str, pr: int, base_ref: str,
               shas: list[str]) -> None:
        if not (mirror / "HEAD").exists():
            self.private_root()
            run_git(mirror.parent, ["init", "--quiet", "--bare", str(mirror)], token)
        missing = [sha for sha in shas if not has_commit(mirror, sha)]
        if not missing:
            return  # everything is cached: no network at all
        refspecs = [f"+refs/pull/{pr}/head:refs/pull/{pr}/head",
                    f"+refs/heads/{base_ref}:refs/heads/{base_ref}"]
        run_git(mirror, ["fetch", "--quiet", "--no-tags", clone_url, *refspecs], token)
        still = [sha for sha in missing if not has_commit(mirror, sha)]
        if still:  # a force-pushed base or head: ask for the commits themselves
            run_git(mirror, ["fetch", "--quiet", "--no-tags", clone_url, *still], token)

    def commit(self, full_name: str, parent: str, files: dict[str, str], message: str, author: Author) -> str:
        """A commit of `files` (path -> text) on top of `parent`, made in the mirror: its SHA.

        A temporary index built from `parent` alone, so nothing the review left in a work tree
        (bytecode, files the project's code wrote) can slip in.
        """
        mirror = self.mirror_path(full_name)
        people = {"GIT_AUTHOR_NAME": author.name, "GIT_AUTHOR_EMAIL": author.email,
                  "GIT_COMMITTER_NAME": author.name, "GIT_COMMITTER_EMAIL": author.email}
        with _lock_for(mirror), tempfile.TemporaryDirectory(prefix="migration-safe-index-") as tmp:
            index = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            run_git(mirror, ["read-tree", parent], "", env=index)
            for path, text in sorted(files.items()):
                blob = run_git(mirror, ["hash-object", "-w", "--stdin"], "", stdin=text).strip()
                run_git(mirror, ["update-index", "--add", "--cacheinfo", f"100644,{blob},{path}"], "", env=index)
            tree = run_git(mirror, ["write-tree"], "", env=index).strip()
            return run_git(mirror, ["commit-tree", tree, "-p", parent, "-F", "-"], "",
                           env=people, stdin=message).strip()

    def push(self, full_name: str, clone_url: str, token: str, commit: str, branch: str, expected: str) -> None:
        """Sets `branch` to `commit` only if it is still at `expected` (raises PushRefused otherwise).

        The lease is checked by the server too, under its lock on the ref: a push that raced
        in between makes this one fail, never the other way round.
        """
        mirror = self.mirror_path(full_name)
        ref = f"refs/heads/{branch}"
        args = ["push", "--porcelain", f"--force-with-lease={ref}:{expected}", clone_url, f"{commit}:{ref}"]
        with _lock_for(mirror):
            done = _git(mirror, args, token)
        if done.returncode == 0:
            return
        # --porcelain: "!<TAB>from:to<TAB>[rejected] (stale info)" for each ref not updated
        refused = [line.split("\t")[-1] for line in done.stdout.splitlines() if line.startswith("!")]
        if refused:
            raise PushRefused(redact(refused[0], token))
        raise CheckoutError(redact(f"git push failed: {last_line(done.stderr)}", token))

    def messages(self, full_name: str, sha: str, count: int) -> list[str]:
        """The messages of `sha` and its first ancestors, newest first."""
        out = run_git(self.mirror_path(full_name), ["log", f"--max-count={count}", "--format=%B%x00", sha], "")
        return [message.strip() for message in out.split("\0")[:-1]]


def has_commit(mirror: Path, sha: str) -> bool:
    done = subprocess.run(["git", "-C", str(mirror), "cat-file", "-e", f"{sha}^{{commit}}"],
                          capture_output=True)
    return done.returncode == 0


def run_git(cwd: Path, args: list[str], token: str, env: dict[str, str] | None = None,
            stdin: str | None = None) -> str:
    """git's output; CheckoutError (the token redacted) when it fails. `token`: "" for local work."""
    done = _git(cwd, args, token, env, stdin)
    if done.returncode != 0:
        raise CheckoutError(redact(f"git {args[0]} failed: {last_line(done.stderr)}", token))
    return done.stdout


def _git(cwd: Path, args: list[str], token: str, env: dict[str, str] | None = None,
         stdin: str | None = None) -> subprocess.CompletedProcess:
    full_env = {**{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
                "GIT_TERMINAL_PROMPT": "0", **git_config(token), **(env or {})}
    try:
        return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, encoding="utf-8",
                              env=full_env, input=stdin, timeout=600)
    except (OSError, subprocess.SubprocessError) as exc:
        raise CheckoutError(redact(f"git {args[0]} failed: {exc}", token)) from None


def last_line(stderr: str) -> str:
    return stderr.strip().splitlines()[-1] if stderr.strip() else "no output"


def git_config(token: str) -> dict[str, str]:
    """Configuration through the environment: the token as an HTTP header, and no hooks, so
    nothing written into a mirror (by a project's code in a review) runs with the token."""
    pairs = [("core.hooksPath", os.devnull)]
    if token:
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        pairs.append(("http.extraHeader", f"Authorization: Basic {basic}"))
    env = {"GIT_CONFIG_COUNT": str(len(pairs))}
    for i, (key, value) in enumerate(pairs):
        env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = key, value
    return env


def redact(text: str, *secrets: str) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
            text = text.replace(base64.b64encode(f"x-access-token:{secret}".encode()).decode(), "***")
    return text
