"""What the platform lets us take away from the child: another user, namespaces.

As root (the App's workers, CI): the child runs as an unprivileged system user
(one of a pool, `migration-safe-sandbox-N`, leased per review), so it can read neither the service's key files nor
/proc of its parent, and RLIMIT_NPROC bounds its processes; in new mount and
network namespaces, so it has no network (the database is a Unix socket) and
writes to /tmp land on a private tmpfs that vanishes with it. Without root
none of that is possible here, and `describe()` says so.
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
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

SANDBOX_USER = "migration-safe-sandbox"  # the group; users are SANDBOX_USER-0 … -(POOL-1)
POOL = 8  # reviews running at once on one machine, each under a user of its own
CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 2, 4, 16384, 1 << 18
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


def enter_namespaces(network: bool, keep: tuple[str, ...] = ()) -> None:
    """Between fork and exec: new mount (+ network) namespace with private temp dirs.

    A temp dir that holds one of `keep` (the review's own folder, the database
    socket) stays shared, or the child could not reach them.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    flags = CLONE_NEWNS | (0 if network else CLONE_NEWNET)
    if libc.unshare(flags) != 0:
        raise OSError(ctypes.get_errno(), "unshare failed")
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "making mounts private failed")
    for path in PRIVATE_TMP:
        if os.path.isdir(path) and not any(k == path or k.startswith(path + "/") for k in keep):
            libc.mount(b"tmpfs", path.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"size=256m,mode=1777")


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
    """Make a throwaway copy the child's own."""
    if isolation.uid is None:
        return
    for root, _dirs, files in os.walk(path):
        os.chown(root, isolation.uid, isolation.gid)
        for name in files:
            os.chown(os.path.join(root, name), isolation.uid, isolation.gid, follow_symlinks=False)
