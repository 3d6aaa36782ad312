"""What the platform lets us take away from the child: another user, namespaces.

As root (the App's workers, CI): the child runs as an unprivileged system user
(one of a pool, `migration-safe-sandbox-N`, leased per review), so it can read neither the service's key files nor
/proc of its parent, and RLIMIT_NPROC bounds its processes; in new mount and
network namespaces, so it has no network (the database is a Unix socket) and
writes to /tmp land on a private tmpfs that vanishes with it; there the project
is a read-only bind mount of the source tree (`ProjectView`) when the sandbox
user can read that tree as it is, else a copy.
Without root none of that is possible here, and `describe()` says so.
"""
from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import grp
import os
import pwd
import random
import signal
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

SANDBOX_USER = "migration-safe-sandbox"  # the group; users are SANDBOX_USER-0 … -(POOL-1)
POOL = 8  # reviews running at once on one machine, each under a user of its own
CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND = 1, 2, 4, 8, 32, 4096
MS_REC, MS_PRIVATE = 16384, 1 << 18
READ_ONLY = MS_RDONLY | MS_NOSUID | MS_NODEV
PRIVATE_TMP = ("/tmp", "/var/tmp", "/dev/shm")


@dataclass(frozen=True)
class Isolation:
    uid: int | None = None  # run the child as this user (None: as ourselves)
    gid: int | None = None
    namespaces: bool = False  # new mount + network namespaces

    def describe(self, network: bool) -> list[str]:
        parts = []
        if self.uid is not None:
            parts.append(f"runs as the unprivileged user {SANDBOX_USER}")
        if self.namespaces:
            parts.append("private /tmp" + ("" if network else ", no network"))
        return parts or ["NOT ISOLATED: the project's code runs as this user, with network access"]

    @property
    def complete(self) -> bool:
        return self.uid is not None and self.namespaces


@functools.lru_cache(maxsize=1)
def available() -> Isolation:
    """What this machine allows; `lease()` hands out a user of the pool for one review."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0 or os.environ.get("MIGRATION_SAFE_NO_ISOLATION"):
        return Isolation()
    user = ensure_user(0)
    if user is None:
        return Isolation()
    return Isolation(user.pw_uid, user.pw_gid, namespaces=probe_namespaces())


LOCK_DIR = Path("/run/lock/migration-safe" if os.path.isdir("/run/lock") else "/var/tmp/migration-safe-locks")


@contextlib.contextmanager
def lease(lock_dir: Path = LOCK_DIR) -> Iterator[Isolation]:
    """A sandbox user nobody else uses meanwhile: its process limit and its final sweep are this review's own.

    The users are the machine's, so the locks are too (not per cache directory).
    """
    base = available()
    if base.uid is None:
        yield base
        return
    lock_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    order = list(range(POOL))
    random.shuffle(order)
    handle, user = None, None
    for attempt in range(2):
        for index in order:
            fh = open(lock_dir / f"sandbox-{index}.lock", "w")
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | (fcntl.LOCK_NB if attempt == 0 else 0))
            except BlockingIOError:
                fh.close()
                continue
            handle, user = fh, ensure_user(index)
            break
        if handle:
            break
    try:
        yield Isolation(user.pw_uid, user.pw_gid, base.namespaces) if user else base
    finally:
        if user:
            kill_everything_of(user.pw_uid)
        handle.close()


def kill_everything_of(uid: int) -> None:
    """kill(-1) as that user: every process it owns dies, whatever session or group it fled to."""
    for _ in range(3):
        if not owned_by(uid):
            return
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the forked child
            try:
                os.setuid(uid)
                os.kill(-1, signal.SIGKILL)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        time.sleep(0.1)


def owned_by(uid: int) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError):
                if os.stat(f"/proc/{name}").st_uid == uid and not _zombie(name):
                    out.append(int(name))
    return out


def _zombie(pid: str) -> bool:
    with open(f"/proc/{pid}/stat", "rb") as fh:
        return fh.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")


def ensure_user(index: int) -> pwd.struct_passwd | None:
    name = f"{SANDBOX_USER}-{index}"
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    try:
        if ensure_group() is None:
            return None
        subprocess.run(["useradd", "--system", "--no-create-home", "--gid", SANDBOX_USER, "--shell",
                        "/usr/sbin/nologin", name], capture_output=True, timeout=30)
        return pwd.getpwnam(name)
    except (OSError, subprocess.SubprocessError, KeyError):
        return None


def probe_namespaces() -> bool:
    try:
        done = subprocess.run(["true"], preexec_fn=functools.partial(enter_namespaces, False),
                              capture_output=True, timeout=10)
        return done.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@dataclass(frozen=True)
class ProjectView:
    """The source tree shown read-only at `target` in the child's mount namespace, instead of a copy.

    `.git` entries are hidden as the copy left them out: a work tree's `.git`
    file names the cached mirror, a clone's folder holds its config.
    """
    source: str
    target: str  # an empty folder the parent made: the child must never run on it bare
    identity: tuple[int, int]  # (st_dev, st_ino) of `source`, to check the mount took
    git_dirs: tuple[str, ...] = ()  # relative to `source`
    git_files: tuple[str, ...] = ()


def project_view(source: str, target: str) -> ProjectView | None:
    """A view of `source` for the sandbox user, or None when only a copy will do: a file without
    o+r or a folder without o+rx (the copy is chowned to the child; the view keeps the owners),
    or a `.git` that is neither a file nor a folder (a symlink could lead out of the tree)."""
    try:
        found = readable_by_others(source)
        info = os.stat(source)
    except OSError:
        return None  # the copy reports what is wrong with the tree
    if found is None:
        return None
    return ProjectView(source, target, (info.st_dev, info.st_ino), *found)


def readable_by_others(root: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The tree's `.git` folders and files (relative), or None if some entry is not world-readable."""
    if not _others_can_read(os.stat(root).st_mode):
        return None
    git_dirs, git_files, pending = [], [], [root]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                mode = entry.stat(follow_symlinks=False).st_mode
                if entry.name == ".git":
                    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                        return None
                    (git_dirs if stat.S_ISDIR(mode) else git_files).append(os.path.relpath(entry.path, root))
                elif not stat.S_ISLNK(mode) and not _others_can_read(mode):
                    return None
                elif stat.S_ISDIR(mode):
                    pending.append(entry.path)
    return tuple(git_dirs), tuple(git_files)


def _others_can_read(mode: int) -> bool:
    needed = 0o005 if stat.S_ISDIR(mode) else 0o004  # folders: list and traverse
    return mode & needed == needed


def enter_namespaces(network: bool, keep: tuple[str, ...] = (), view: ProjectView | None = None) -> None:
    """Between fork and exec: new mount (+ network) namespace with private temp dirs.

    A temp dir that holds one of `keep` (the review's own folder, the database
    socket) stays shared, or the child could not reach them. The project view
    is mounted first: its source may live in a temp dir the child loses.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    flags = CLONE_NEWNS | (0 if network else CLONE_NEWNET)
    if libc.unshare(flags) != 0:
        raise OSError(ctypes.get_errno(), "unshare failed")
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "making mounts private failed")
    if view is not None:
        try:
            mount_view(libc, view)
        except OSError as exc:  # Popen only says "Exception occurred in preexec_fn": leave the reason in the log
            os.write(2, f"{exc}\n".encode(errors="replace"))
            raise
    for path in PRIVATE_TMP:
        if os.path.isdir(path) and not any(k == path or k.startswith(path + "/") for k in keep):
            libc.mount(b"tmpfs", path.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"size=256m,mode=1777")


def mount_view(libc, view: ProjectView) -> None:
    """Any failure raises: Popen then fails to start, and the parent falls back to a copy."""
    target = os.fsencode(view.target)
    _mount(libc, os.fsencode(view.source), target, None, MS_BIND)  # not MS_REC: submounts would stay writable
    _mount(libc, None, target, None, MS_BIND | MS_REMOUNT | READ_ONLY)
    for relative in view.git_dirs:
        _mount(libc, b"tmpfs", os.path.join(target, os.fsencode(relative)), b"tmpfs",
               READ_ONLY | MS_NOEXEC, b"size=4k,mode=0555")
    for relative in view.git_files:
        hidden = os.path.join(target, os.fsencode(relative))
        _mount(libc, b"/dev/null", hidden, None, MS_BIND)
        _mount(libc, None, hidden, None, MS_BIND | MS_REMOUNT | READ_ONLY)  # nodev: not even empty reads
    info = os.stat(target)
    if (info.st_dev, info.st_ino) != view.identity:
        raise OSError(f"{view.target} does not show {view.source} after mounting it")
    os.chdir(target)  # Popen entered the bare mount point before this ran


def _mount(libc, source: bytes | None, target: bytes, fstype: bytes | None, flags: int,
           data: bytes | None = None) -> None:
    if libc.mount(source, target, fstype, flags, data) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"mount on {os.fsdecode(target)} failed: {os.strerror(code)}")


def drop_privileges(isolation: Isolation) -> None:
    os.setgroups([])
    os.setgid(isolation.gid)
    os.setuid(isolation.uid)


def ensure_group() -> int | None:
    """The sandbox users' group; created on first use (as root), before anything is shared with it."""
    gid = sandbox_group_gid()
    if gid is None and os.geteuid() == 0:
        try:
            subprocess.run(["groupadd", "--system", SANDBOX_USER], capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        gid = sandbox_group_gid()
    return gid


def sandbox_group_gid() -> int | None:
    try:
        return grp.getgrnam(SANDBOX_USER).gr_gid
    except KeyError:
        return None


def give_tree(path: str, isolation: Isolation) -> None:
    """Make the review's folder (and a throwaway copy of the project in it) the child's own."""
    if isolation.uid is None:
        return
    for root, _dirs, files in os.walk(path):
        os.chown(root, isolation.uid, isolation.gid)
        for name in files:
            os.chown(os.path.join(root, name), isolation.uid, isolation.gid, follow_symlinks=False)
