"""Reading what a pull request controls: only inside its checkout, only regular files, never unbounded.

A PR can commit a symlink (to /etc/shadow, a root-only key, /dev/zero) or name any path in its
config. The trusted side resolves every such path, refuses one that leaves the checkout, opens it
without following a final link, refuses anything but a regular file, and reads at most a cap.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

DEFAULT_CAP = 4 << 20  # a migration, a config, a manage.py: far below this


class Refused(Exception):
    """The path leaves the checkout, is not a regular file, or is larger than the cap."""


def resolve_inside(root: Path, relative: str | Path) -> Path:
    """`relative` under `root`, every symlink resolved; refused when the result leaves `root`."""
    base = Path(os.path.realpath(root))
    resolved = Path(os.path.realpath(base / relative))
    if resolved != base and base not in resolved.parents:
        raise Refused(f"{relative} resolves outside the checkout")
    return resolved


def read_bytes(root: Path, relative: str | Path, cap: int = DEFAULT_CAP) -> bytes:
    path = resolve_inside(root, relative)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise Refused(f"{relative}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Refused(f"{relative} is not a regular file")
        data = fh.read(cap + 1)
    if len(data) > cap:
        raise Refused(f"{relative} is larger than {cap} bytes")
    return data


def read_text(root: Path, relative: str | Path, cap: int = DEFAULT_CAP) -> str:
    return read_bytes(root, relative, cap).decode("utf-8")


def exists(root: Path, relative: str | Path) -> bool:
    """Whether a path exists as a file or folder inside the checkout (a link leaving it does not)."""
    try:
        return resolve_inside(root, relative).exists()
    except Refused:
        return False
