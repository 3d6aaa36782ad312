"""Runs the child (the project's own code) contained: clean environment, limits, no network."""
from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from migration_safe.engine import statecache
from migration_safe.engine.database import cache_dir
from migration_safe.engine.isolation import (
    Isolation, ProjectView, drop_privileges, enter_namespaces, give_tree, lease, project_view,
)

CHILD = Path(__file__).with_name("child.py")
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    wall_seconds: float = 600
    cpu_seconds: int = 600
    memory_bytes: int = 4 << 30
    file_bytes: int = 64 << 20  # any file it writes, its log and answer included
    output_bytes: int = 64 << 20  # the child's answer file
    processes: int = 256
    log_bytes: int = 16 << 10  # what we keep of its stdout/stderr


@dataclass
class ChildResult:
    answer: dict | None
    error: str | None = None  # why there is no answer
    log_tail: str = ""  # the end of what the project's code printed
    limit: str | None = None  # which limit was hit, if any
    isolation: list[str] = field(default_factory=list)  # what contained the child, in words
    isolated: bool = False  # another user and namespaces: fully contained


def run_child(python: str, request: dict, limits: Limits = Limits(),
              network: bool = False, cache: Path | None = None) -> ChildResult:
    """Run child.py under `python` on a read-only view or a throwaway copy of the project; never raises
    for the child's failures. `cache`: the state cache's folder for this repository, if any."""
    with lease() as isolation:
        return run_isolated(python, request, limits, network, isolation, cache)


def run_isolated(python: str, request: dict, limits: Limits, network: bool, isolation: Isolation,
                 cache: Path | None = None) -> ChildResult:
    workdir = Path(tempfile.mkdtemp(prefix="review-", dir=sandbox_root()))
    try:
        project = workdir / "project"
        view = prepare_project(request["root"], project, isolation)
        (workdir / "home").mkdir()
        moved = {**request, "root": str(project),
                 "targets": [relocate(t, request["root"], project) for t in request["targets"]]}
        if cache is not None:
            moved["state_cache"] = statecache.offer(cache, workdir)
        request_path, answer_path = workdir / "request.json", workdir / "answer.json"
        request_path.write_text(json.dumps(moved))
        give_tree(str(workdir), isolation)
        keep = (str(workdir), request["database"].get("host") or "", *interpreter_paths(python), str(CHILD))
        child = functools.partial(run, python, project, request_path, answer_path, workdir / "child.log",
                                  workdir / "home", limits, network, isolation, keep)
        result = child(view)
        if result is None:  # the view could not be mounted: never let the child run on the bare mount point
            logger.warning("could not mount %s read-only for the sandbox (%s); reviewing a copy",
                           request["root"], read_tail(workdir / "child.log", 1024).strip())
            copy_project(request["root"], project, isolation)
            result = child(None)
        result.isolated = isolation.complete and not network
        if cache is not None and result.answer and "fatal" not in result.answer:
            statecache.keep(cache, workdir, result.answer)
        if result.answer:
            files = result.answer.get("migration_files", {})
            result.answer["migration_files"] = {k: relocate(v, str(project), request["root"])
                                                for k, v in files.items()}
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def prepare_project(source: str, project: Path, isolation: Isolation) -> ProjectView | None:
    """With mount namespaces, an empty mount point for a read-only view of `source` (copying 10,000
    files costs seconds per review); else, or when the sandbox user could not read the tree as it
    is, a copy without `.git`."""
    view = project_view(source, str(project)) if isolation.namespaces else None
    if view is None:
        copy_without_git(source, project)
    else:
        project.mkdir()
    return view


def copy_project(source: str, project: Path, isolation: Isolation) -> None:
    """The fallback when the view failed: the mount point becomes a copy the child owns."""
    project.rmdir()
    copy_without_git(source, project)
    give_tree(str(project), isolation)


def copy_without_git(source: str, project: Path) -> None:
    shutil.copytree(source, project, symlinks=True, ignore=shutil.ignore_patterns(".git"))


def run(python: str, cwd: Path, request_path: Path, answer_path: Path, log_path: Path, home: Path,
        limits: Limits, network: bool, isolation: Isolation, keep: tuple[str, ...],
        view: ProjectView | None = None) -> ChildResult | None:
    """None: the child could not start with `view` (the mount failed before any project code ran)."""
    command = [python, "-I", "-B", str(CHILD), str(request_path), str(answer_path)]
    env = child_environment(python, str(home))
    outcome = execute(command, cwd, env, log_path, limits, network, isolation, keep, view)
    if outcome.start_error and view is not None:
        return None
    if outcome.start_error:
        return ChildResult(None, f"could not start {python}: {outcome.start_error}")
    return finish(outcome.returncode, answer_path, limits, outcome.limit, outcome.log_tail,
                  isolation.describe(network))


@dataclass
class Outcome:
    returncode: int = 0
    limit: str | None = None
    log_tail: str = ""
    start_error: str | None = None


def execute(command: list[str], cwd: Path, env: dict[str, str], log_path: Path, limits: Limits,
            network: bool, isolation: Isolation, keep: tuple[str, ...],
            view: ProjectView | None = None) -> Outcome:
    """Run one command contained: namespaces, limits, another user, the whole session killed after."""
    prepare = functools.partial(enter_sandbox, limits, isolation, network, keep, view)
    with open(log_path, "wb") as log:
        if isolation.uid is not None:
            os.chown(log_path, isolation.uid, isolation.gid)
        try:
            proc = subprocess.Popen(command, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=prepare)
        except (OSError, subprocess.SubprocessError) as exc:
            return Outcome(start_error=str(exc))
        limit = wait(proc, limits)
        sweep_session(proc.pid)
    return Outcome(proc.returncode, limit, read_tail(log_path, limits.log_bytes))


def interpreter_paths(python: str) -> tuple[str, ...]:
    """Where the interpreter and its packages live: a private /tmp must not hide them."""
    executable = Path(python)
    return (str(executable.parent.parent), os.path.realpath(python))


def relocate(path: str, old_root: str, new_root) -> str:
    relative = os.path.relpath(os.path.realpath(path), os.path.realpath(old_root))
    return path if relative.startswith("..") else str(Path(new_root) / relative)


def sandbox_root() -> Path:
    """Outside /tmp, which the child sees as its own empty tmpfs."""
    return traversable(cache_dir() / "sandbox")


def traversable(path: Path) -> Path:
    """Create `path`; it and the cache above it must let the sandbox users pass (not list)."""
    path.mkdir(parents=True, exist_ok=True)
    for level in (cache_dir(), path):
        mode = level.stat().st_mode
        if mode & 0o111 != 0o111:
            os.chmod(level, mode | 0o111)
    return path


def finish(code: int, answer_path: Path, limits: Limits, limit: str | None, tail: str,
           isolation: list[str]) -> ChildResult:
    if limit is None and code < 0:
        limit = {signal.SIGXCPU: "cpu time", signal.SIGXFSZ: "file size",
                 signal.SIGKILL: "cpu time or memory (killed by the kernel)"}.get(-code)
    if limit:
        return ChildResult(None, f"the project's code hit the sandbox's {limit} limit", tail, limit, isolation)
    if not answer_path.exists():
        return ChildResult(None, f"the child exited with status {code} without an answer", tail,
                           isolation=isolation)
    if answer_path.stat().st_size > limits.output_bytes:
        return ChildResult(None, "the child's answer exceeded the output limit", tail, "output size", isolation)
    try:
        return ChildResult(json.loads(answer_path.read_text(encoding="utf-8")), None, tail, isolation=isolation)
    except (ValueError, UnicodeDecodeError) as exc:
        return ChildResult(None, f"the child's answer was not valid JSON: {exc}", tail, isolation=isolation)


def wait(proc: subprocess.Popen, limits: Limits) -> str | None:
    try:
        proc.wait(timeout=limits.wall_seconds)
        return None
    except subprocess.TimeoutExpired:
        kill_group(proc)
        return f"wall time ({limits.wall_seconds:g} s)"


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def sweep_session(session: int, seconds: float = 5.0) -> None:
    """Kill whatever the child left in its session: a process forked while the group was being
    killed escapes one killpg, so repeat until the session is empty."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        members = [pid for pid in _pids() if _session_of(pid) == session]
        if not members:
            return
        for pid in members:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def _pids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


def _session_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return int(fields[3])  # after ")": state, ppid, pgrp, session
    except (OSError, IndexError, ValueError):
        return None


def enter_sandbox(limits: Limits, isolation: Isolation, network: bool, keep: tuple[str, ...],
                  view: ProjectView | None = None) -> None:
    """Runs in the child between fork and exec: namespaces (the project's view), limits, then another user."""
    for sig in (signal.SIGXCPU, signal.SIGPIPE):  # an ignored disposition survives exec
        signal.signal(sig, signal.SIG_DFL)
    if isolation.namespaces:
        enter_namespaces(network, keep, view)
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if isolation.uid is not None:
        # per user, so only meaningful once we are not root; counts every review's children
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
        drop_privileges(isolation)


def child_environment(python: str, tmp: str) -> dict[str, str]:
    """Built from nothing: the child never inherits the service's secrets."""
    path_dirs = [str(Path(python).parent), "/usr/local/bin", "/usr/bin", "/bin"]
    return {"PATH": os.pathsep.join(path_dirs), "HOME": tmp, "TMPDIR": tmp,
            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1"}


def read_tail(path: Path, limit: int) -> str:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - limit))
        return fh.read().decode("utf-8", "replace")
