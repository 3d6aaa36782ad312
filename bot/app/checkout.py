"""Cached bare mirror per repository; a temporary work tree per review.

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
from pathlib import Path
from typing import Iterator


class CheckoutError(RuntimeError):
    """git could not fetch or check out the PR."""


_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(str(path), threading.Lock())


class Mirrors:
    def __init__(self, cache_dir: Path) -> None:
        self.root = cache_dir / "mirrors"

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
            mirror.parent.mkdir(parents=True, exist_ok=True)
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


def has_commit(mirror: Path, sha: str) -> bool:
    done = subprocess.run(["git", "-C", str(mirror), "cat-file", "-e", f"{sha}^{{commit}}"],
                          capture_output=True)
    return done.returncode == 0


def run_git(cwd: Path, args: list[str], token: str) -> str:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
           "GIT_TERMINAL_PROMPT": "0", **auth_env(token)}
    try:
        done = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, env=env,
                              timeout=600)
    except (OSError, subprocess.SubprocessError) as exc:
        raise CheckoutError(redact(f"git {args[0]} failed: {exc}", token)) from None
    if done.returncode != 0:
        message = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "no output"
        raise CheckoutError(redact(f"git {args[0]} failed: {message}", token))
    return done.stdout


def auth_env(token: str) -> dict[str, str]:
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}"}


def redact(text: str, *secrets: str) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
            text = text.replace(base64.b64encode(f"x-access-token:{secret}".encode()).decode(), "***")
    return text
