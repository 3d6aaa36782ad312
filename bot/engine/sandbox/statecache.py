"""Pre-states kept across reviews of one repository, so a review costs what its new migrations cost.

The child builds the state of every other migration file once (cold) and leaves it in its
output folder; we keep it here, root-owned and shown read-only to the sandbox, under a namespace
of the repository (a fork's pull requests get their own: an entry is made by the code under
review, so it may only serve reviews of code from the same place). The child itself decides
whether an offered entry matches its files, settings and code (child.py, `StateCache`).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import time
from pathlib import Path

from migration_safe.engine.sandbox.database import cache_dir
from migration_safe.engine.sandbox.isolation import Bind

ENTRIES_KEPT = 4  # per namespace: a few base commits in flight at once
UNUSED_DAYS = 14  # a namespace nobody reviewed for this long goes
MAX_ENTRY_BYTES = 1 << 30
FILES = ("header.json", "state.pickle")


def namespace_folder(namespace: str, python: str) -> Path:
    digest = hashlib.sha256(f"{namespace}\0{os.path.realpath(python)}".encode()).hexdigest()[:24]
    return cache_dir() / "states" / digest


def offer(folder: Path, inside: str | None) -> list[Bind]:
    """The newest entries, each shown to the child read-only at `inside`/<name>, as they are (no
    copy); None: at their own path."""
    return [Bind(str(entry), f"{inside}/{entry.name}" if inside else str(entry))
            for entry in newest(folder)[:ENTRIES_KEPT]]


def keep(folder: Path, produced: Path, answer: dict) -> None:
    """Store what a child left in `produced` (call only once nothing of the sandbox runs); mark the
    entry it used as fresh. The child owned `produced`: nothing in it is followed or read uncapped."""
    used = re.match(r"hit ([0-9a-f]{16})\b", str(answer.get("state_cache") or ""))
    if used:
        touch(folder / used.group(1))
    contents = read_entry(produced)
    if contents is None:
        return
    try:
        json.loads(contents["header.json"].decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):  # written by the project's process
        return
    store(folder, contents)
    prune(folder)
    forget_unused(folder.parent)


def read_entry(produced: Path) -> dict[str, bytes] | None:
    """The entry's files, if each is a regular file (no link, FIFO or device) and all fit the cap."""
    try:
        directory = os.open(produced, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        contents, left = {}, MAX_ENTRY_BYTES
        for name in FILES:
            data = read_capped(name, directory, left)
            if data is None:
                return None
            contents[name], left = data, left - len(data)
        return contents
    finally:
        os.close(directory)


def read_capped(name: str, directory: int, cap: int) -> bytes | None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > cap:
            return None
        data = fh.read(cap + 1)
    return data if len(data) <= cap else None


def store(folder: Path, contents: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder.parent, 0o700)  # no other repository's state for anyone but us
    name = hashlib.sha256(contents["header.json"]).hexdigest()[:16]
    staging = Path(tempfile.mkdtemp(prefix=".new-", dir=folder))
    for file, data in contents.items():
        (staging / file).write_bytes(data)
        os.chmod(staging / file, 0o644)
    os.chmod(staging, 0o755)
    try:
        os.rename(staging, folder / name)
    except OSError:  # the same entry already stored
        shutil.rmtree(staging, ignore_errors=True)


def prune(folder: Path) -> None:
    for entry in newest(folder)[ENTRIES_KEPT:]:
        shutil.rmtree(entry, ignore_errors=True)


def forget_unused(states: Path) -> None:
    horizon = time.time() - UNUSED_DAYS * 86400
    for namespace in newest(states):
        if mtime(namespace) < horizon:
            shutil.rmtree(namespace, ignore_errors=True)


def newest(folder: Path) -> list[Path]:
    try:
        entries = [e for e in folder.iterdir() if e.is_dir() and not e.name.startswith(".")]
    except OSError:
        return []
    return sorted(entries, key=mtime, reverse=True)


def mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def touch(entry: Path) -> None:
    if entry.is_dir():
        os.utime(entry)
        os.utime(entry.parent)  # the namespace is in use
