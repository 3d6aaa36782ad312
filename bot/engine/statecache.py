"""Pre-states kept across reviews of one repository, so a review costs what its new migrations cost.

The child builds the state of every other migration file once (cold) and leaves it in its
workdir; we keep it here, root-owned and read-only to the sandbox, under a namespace of the
repository (a fork's pull requests get their own: an entry is made by the code under review, so
it may only serve reviews of code from the same place). The child itself decides whether an
offered entry matches its files, settings and code (child.py, `StateCache`).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from migration_safe.engine.database import cache_dir

ENTRIES_KEPT = 4  # per namespace: a few base commits in flight at once
UNUSED_DAYS = 14  # a namespace nobody reviewed for this long goes
MAX_ENTRY_BYTES = 1 << 30
FILES = ("header.json", "state.pickle")


def namespace_folder(namespace: str, python: str) -> Path:
    digest = hashlib.sha256(f"{namespace}\0{os.path.realpath(python)}".encode()).hexdigest()[:24]
    return cache_dir() / "states" / digest


def offer(folder: Path, workdir: Path) -> dict:
    """Copies of the newest entries for the child (copies: the workdir becomes the sandbox user's),
    and a folder for the entry it may leave."""
    offered = workdir / "state-cache"
    offered.mkdir()
    (workdir / "state-out").mkdir()
    entries = []
    for entry in newest(folder)[:ENTRIES_KEPT]:
        copy = offered / entry.name
        try:
            copy.mkdir()
            for name in FILES:
                shutil.copyfile(entry / name, copy / name)
        except OSError:
            continue  # pruned meanwhile by another review
        entries.append(str(copy))
    return {"entries": entries, "out": str(workdir / "state-out")}


def keep(folder: Path, workdir: Path, answer: dict) -> None:
    """Store what a child left, when it answered; mark the entry it used as fresh."""
    used = re.match(r"hit ([0-9a-f]{16})\b", str(answer.get("state_cache") or ""))
    if used:
        touch(folder / used.group(1))
    produced = workdir / "state-out"
    if not all((produced / name).is_file() and not (produced / name).is_symlink() for name in FILES):
        return
    if sum((produced / name).stat().st_size for name in FILES) > MAX_ENTRY_BYTES:
        return
    try:
        json.loads((produced / "header.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    store(folder, produced)
    prune(folder)
    forget_unused(folder.parent)


def store(folder: Path, produced: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder.parent, 0o700)  # the child reaches the cache folder: no other repository's state
    name = hashlib.sha256((produced / "header.json").read_bytes()).hexdigest()[:16]
    staging = Path(tempfile.mkdtemp(prefix=".new-", dir=folder))
    for file in FILES:
        shutil.copyfile(produced / file, staging / file)  # ours now: root-owned, not the child's
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
