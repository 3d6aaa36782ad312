"""Cached bare mirror per repository; a temporary work tree per review; fix commits pushed from it.

The installation token reaches git only through its environment (an HTTP
header in GIT_CONFIG_*), never in a URL, an argument, a log line or the
mirror's config, and never in the sandbox.

What a pull request may cost is capped (`CheckoutLimits`): the download, watched
while git receives it, the files of the head's tree, and the mirror kept.
"""
from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from migration_safe.app.settings import MB, CheckoutLimits

GIT_TIMEOUT = 600
WATCH_INTERVAL = 0.05  # how often a fetch's download is measured


class CheckoutError(RuntimeError):
    """git could not fetch or check out the PR."""


class LimitExceeded(CheckoutError):
    """The pull request is over one of the service's checkout limits; retrying cannot help."""


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
    def __init__(self, cache_dir: Path, limits: CheckoutLimits = CheckoutLimits()) -> None:
        self.root = cache_dir / "mirrors"
        self.limits = limits

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
            self._check_files(mirror, shas[0])
            tmp = Path(tempfile.mkdtemp(prefix="migration-safe-pr-"))
            os.chmod(tmp, 0o711)  # a sandbox user without bubblewrap's staging must pass, not list
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
        before = folder_size(mirror)
        self._fetch_capped(mirror, ["fetch", "--quiet", "--no-tags", clone_url, *refspecs], token, before)
        still = [sha for sha in missing if not has_commit(mirror, sha)]
        if still:  # a force-pushed base or head: ask for the commits themselves
            self._fetch_capped(mirror, ["fetch", "--quiet", "--no-tags", clone_url, *still], token, before)
        if folder_size(mirror) > self.limits.mirror_bytes:
            self._drop(mirror, f"the repository's mirror would exceed the mirror size limit of "
                               f"{self.limits.mirror_bytes // MB} MB (MIGRATION_SAFE_MAX_MIRROR_MB)")

    def _fetch_capped(self, mirror: Path, args: list[str], token: str, before: int) -> None:
        """git fetch, stopped as soon as what it received passes the fetch size limit."""
        limit = self.limits.fetch_bytes
        over = (f"the pull request needs more than the fetch size limit of {limit // MB} MB "
                "(MIGRATION_SAFE_MAX_FETCH_MB)")
        if not watched_git(mirror, args, token, lambda: incoming_size(mirror) > limit):
            self._drop(mirror, over)
        if folder_size(mirror) - before > limit:  # finished between two looks
            self._drop(mirror, over)

    def _check_files(self, mirror: Path, sha: str) -> None:
        names = run_git(mirror, ["ls-tree", "-r", "-z", "--name-only", sha], "")
        count = names.count("\0")
        if count > self.limits.files:
            raise LimitExceeded(f"the head's tree has {count} files, more than the file count limit of "
                                f"{self.limits.files} (MIGRATION_SAFE_MAX_FILES)")

    @staticmethod
    def _drop(mirror: Path, reason: str) -> None:
        """Nothing fetched past a limit is kept: the mirror is only a cache, the next review refetches."""
        shutil.rmtree(mirror, ignore_errors=True)
        raise LimitExceeded(reason)

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


def folder_size(path: Path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def incoming_size(mirror: Path) -> int:
    """Bytes of the packs git is receiving (fetch.unpackLimit=1 makes every fetch keep a pack)."""
    return sum(path.stat().st_size for path in (mirror / "objects" / "pack").glob("tmp_pack_*")
               if path.is_file())


def watched_git(cwd: Path, args: list[str], token: str, over: Callable[[], bool]) -> bool:
    """Runs git, killing it (and every process it started) once `over()` says so: False then.
    CheckoutError when git fails on its own."""
    env = git_env(token)
    with tempfile.TemporaryFile() as stderr:
        try:
            process = subprocess.Popen(["git", "-C", str(cwd), *args], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=stderr, env=env, start_new_session=True)
        except OSError as exc:
            raise CheckoutError(redact(f"git {args[0]} failed: {exc}", token)) from None
        deadline = time.monotonic() + GIT_TIMEOUT
        while process.poll() is None:
            stopped = over()
            if stopped or time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                for path in (cwd / "objects" / "pack").glob("tmp_*"):
                    path.unlink(missing_ok=True)
                if stopped:
                    return False
                raise CheckoutError(f"git {args[0]} failed: no answer in {GIT_TIMEOUT} s")
            time.sleep(WATCH_INTERVAL)
        if process.returncode != 0:
            stderr.seek(0)
            message = stderr.read().decode("utf-8", "replace")
            raise CheckoutError(redact(f"git {args[0]} failed: {last_line(message)}", token))
    return True


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
    try:
        return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, encoding="utf-8",
                              env=git_env(token, env), input=stdin, timeout=GIT_TIMEOUT)
    except (OSError, subprocess.SubprocessError) as exc:
        raise CheckoutError(redact(f"git {args[0]} failed: {exc}", token)) from None


def last_line(stderr: str) -> str:
    return stderr.strip().splitlines()[-1] if stderr.strip() else "no output"


def git_env(token: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
            "GIT_TERMINAL_PROMPT": "0", **git_config(token), **(extra or {})}


def git_config(token: str) -> dict[str, str]:
    """Configuration through the environment: the token as an HTTP header, and no hooks, so
    nothing written into a mirror (by a project's code in a review) runs with the token. Every
    fetch keeps what it receives as a pack (never loose objects), which the fetch limit measures."""
    pairs = [("core.hooksPath", os.devnull), ("fetch.unpackLimit", "1")]
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
