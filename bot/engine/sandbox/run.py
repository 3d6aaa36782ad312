"""Runs the child (the project's own code) contained: an environment built from nothing, limits,
bubblewrap (see isolation.py), and nothing read back by name.

The child answers over files the parent opened before it started (unnamed, so the child cannot
replace them), and every read of what it wrote is size-capped. What it leaves for the state cache
is read only once the sandbox is provably empty, without following links.
"""
from __future__ import annotations

import contextlib
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

import msgspec

from migration_safe.engine.sandbox import statecache
from migration_safe.engine.sandbox.database import cache_dir
from migration_safe.engine.sandbox.dbrelay import relay
from migration_safe.engine.sandbox.isolation import (
    Bind, Isolation, PreparedStart, SandboxPlan, TreeEntries, UnreadableTree, bwrap_argv, kill_everything_of,
    lease, scan_tree, staging,
)
from migration_safe.engine.sandbox.protocol import ChildAnswer, ChildRequest, FatalAnswer, ReviewAnswer

CHILD = Path(__file__).with_name("child.py")
PROTOCOL = CHILD.with_name("protocol.py")  # child.py loads it from beside itself
INSIDE = "/migration-safe"  # our own folder in the child's file system: child.py, its output, cached states
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    wall_seconds: float = 600
    cpu_seconds: int = 600
    memory_bytes: int = 4 << 30
    file_bytes: int = 64 << 20  # any file it writes, its log and answer included
    output_bytes: int = 64 << 20  # the child's answer
    processes: int = 256
    log_bytes: int = 16 << 10  # what we keep of its stdout/stderr


@dataclass
class ChildResult:
    answer: ChildAnswer | None  # as protocol.py says, or None
    error: str | None = None  # why there is no answer
    log_tail: str = ""  # the end of what the project's code printed
    limit: str | None = None  # which limit was hit, if any
    isolation: list[str] = field(default_factory=list)  # what contained the child, in words
    isolated: bool = False  # bubblewrap and another user: fully contained


@dataclass
class Outcome:
    returncode: int = 0
    limit: str | None = None
    log_tail: str = ""
    start_error: str | None = None


def run_child(python: str, request: ChildRequest, limits: Limits = Limits(), cache: Path | None = None) -> ChildResult:
    """Run child.py under `python` on a read-only view of the project, without network; never
    raises for the child's failures. `cache`: the state cache's folder for this repository, if any."""
    with lease() as isolation:
        return run_isolated(python, request, limits, isolation, cache)


def run_isolated(python: str, request: ChildRequest, limits: Limits, isolation: Isolation,
                 cache: Path | None = None) -> ChildResult:
    try:
        tree = scan_tree(request["root"], as_other_user=isolation.uid is not None)
    except (UnreadableTree, OSError) as exc:
        return ChildResult(None, f"the sandbox user cannot read the project as it is ({exc}): make the "
                                 "checkout world-readable (e.g. umask 022); it is never copied",
                           isolation=isolation.describe(False))
    workdir = Path(tempfile.mkdtemp(prefix="review-", dir=sandbox_root()))
    os.chmod(workdir, 0o711)
    try:
        with contextlib.ExitStack() as stack:
            database = reachable_database(request["database"], workdir, isolation, stack)
            return review_in(workdir, python, {**request, "database": database}, tree, limits, isolation, cache)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)  # never follows a link the child left


def reachable_database(database: dict, workdir: Path, isolation: Isolation, stack: contextlib.ExitStack) -> dict:
    """The child has no network: a server reached over TCP is relayed to a socket in a folder of its own."""
    host = database.get("host") or "localhost"
    if host.startswith("/"):
        return database
    folder = stack.enter_context(relay(host, database.get("port") or 5432, database["user"], database["name"],
                                       workdir, isolation.uid, isolation.gid))
    return {**database, "host": folder}


def review_in(workdir: Path, python: str, request: ChildRequest, tree: TreeEntries, limits: Limits,
              isolation: Isolation, cache: Path | None) -> ChildResult:
    out = workdir / "out"  # the one folder the child may write, and nothing else shares
    out.mkdir(mode=0o700)
    if isolation.uid is not None:
        os.chown(out, isolation.uid, isolation.gid)
    ours = INSIDE if isolation.bwrap else None  # without bubblewrap the child sees our own paths
    offered = statecache.offer(cache, f"{ours}/state-cache" if ours else None) if cache is not None else []
    child, output = Bind(str(CHILD), f"{ours}/child.py" if ours else str(CHILD)), \
        Bind(str(out), f"{ours}/out" if ours else str(out), writable=True)
    protocol = Bind(str(PROTOCOL), f"{ours}/protocol.py" if ours else str(PROTOCOL))
    root, socket_folder = request["root"], request["database"]["host"]
    binds = (Bind(root, root), child, protocol, output, Bind(socket_folder, socket_folder),
             *(Bind(path, path) for path in interpreter_paths(python)), *offered)
    plan = SandboxPlan(binds, cwd=root, hidden_dirs=tuple(os.path.join(root, d) for d in tree.git_dirs),
                       hidden_files=tuple(os.path.join(root, f) for f in tree.git_files))
    if cache is not None:
        request = {**request, "state_cache": {"entries": [bind.dest for bind in offered], "out": output.dest}}
    home = "/tmp" if isolation.bwrap else str(out)  # without bubblewrap /tmp is the host's
    result = run_python_child(python, request, plan, child.dest, home, limits, isolation)
    result.isolated = isolation.complete
    if cache is not None and result.answer and "fatal" not in result.answer and sandbox_is_empty(isolation):
        statecache.keep(cache, out, result.answer)
    return result


def run_python_child(python: str, request: ChildRequest, plan: SandboxPlan, child: str, home: str, limits: Limits,
                     isolation: Isolation) -> ChildResult:
    with tempfile.TemporaryFile() as request_file, tempfile.TemporaryFile() as answer_file:
        request_file.write(json.dumps(request).encode())
        request_file.seek(0)
        fds = (request_file.fileno(), answer_file.fileno())
        command = [python, "-I", "-B", child, f"fd:{fds[0]}", f"fd:{fds[1]}"]
        outcome = execute(command, plan, child_environment(python, home), limits, isolation, fds)
        if outcome.start_error:
            return ChildResult(None, f"could not start {python}: {outcome.start_error}",
                               isolation=isolation.describe(plan.network))
        return finish(outcome, answer_file, limits, isolation.describe(plan.network))


def execute(command: list[str], plan: SandboxPlan, env: dict[str, str], limits: Limits, isolation: Isolation,
            pass_fds: tuple[int, ...] = ()) -> Outcome:
    """Run one command contained; returns once every process of it is gone."""
    with tempfile.TemporaryFile() as log, staging(plan, isolation) as (sources, mounts):
        argv = bwrap_argv(isolation.bwrap, plan, sources, command) if isolation.bwrap else command
        start = PreparedStart(rlimits(limits), mounts, isolation.uid, isolation.gid)
        try:
            proc = subprocess.Popen(argv, env=env, cwd="/" if isolation.bwrap else plan.cwd,
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, pass_fds=pass_fds, preexec_fn=start)
        except (OSError, subprocess.SubprocessError) as exc:
            return Outcome(start_error=str(exc) + tail_of(log, 512))
        limit = wait(proc, limits)
        sweep_session(proc.pid)
        return Outcome(exit_status(proc.returncode, bool(isolation.bwrap)), limit, tail_of(log, limits.log_bytes))


def exit_status(code: int, through_bwrap: bool) -> int:
    """bwrap exits 128+N when its command died of signal N: negative, as subprocess says it."""
    return 128 - code if through_bwrap and 128 < code < 160 else code


def rlimits(limits: Limits) -> list[tuple[int, tuple[int, int]]]:
    out = [(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5)),
           (resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes)),
           (resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes)),
           (resource.RLIMIT_CORE, (0, 0))]
    if os.geteuid() == 0:  # counted per user: meaningful for a sandbox user, not for ourselves
        out.append((resource.RLIMIT_NPROC, (limits.processes, limits.processes)))
    return out


def interpreter_paths(python: str) -> tuple[str, ...]:
    """Where a trusted interpreter and its packages live: the child sees nothing else of this machine
    but the system folders."""
    executable = Path(python)
    found = []
    for path in (str(executable.parent.parent), str(Path(os.path.realpath(python)).parent.parent)):
        if path not in found and not path.startswith(("/usr", "/bin", "/lib")) and path != "/":
            found.append(path)
    return tuple(found)


def sandbox_root() -> Path:
    """Reviews' folders: traversable, not listable (without bubblewrap a sandbox user enters its own)."""
    folder = cache_dir() / "sandbox"
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o711)
    return folder


def sandbox_is_empty(isolation: Isolation) -> bool:
    """Nothing of the sandbox runs any more: with bubblewrap its PID namespace died with it; a
    sandbox user's strays are swept and counted."""
    return isolation.uid is None or kill_everything_of(isolation.uid)


def finish(outcome: Outcome, answer_file, limits: Limits, isolation: list[str]) -> ChildResult:
    code, limit, tail = outcome.returncode, outcome.limit, outcome.log_tail
    if limit is None and code < 0:
        limit = {signal.SIGXCPU: "cpu time", signal.SIGXFSZ: "file size",
                 signal.SIGKILL: "cpu time or memory (killed by the kernel)"}.get(-code)
    if limit:
        return ChildResult(None, f"the project's code hit the sandbox's {limit} limit", tail, limit, isolation)
    size = os.fstat(answer_file.fileno()).st_size
    if size == 0:
        return ChildResult(None, f"the child exited with status {code} without an answer", tail,
                           isolation=isolation)
    if size > limits.output_bytes:
        return ChildResult(None, "the child's answer exceeded the output limit", tail, "output size", isolation)
    answer_file.seek(0)
    try:
        answer = json.loads(answer_file.read(limits.output_bytes).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        return ChildResult(None, f"the child's answer was not valid JSON: {exc}", tail, isolation=isolation)
    except RecursionError:  # the parser recurses once per level of nesting
        return ChildResult(None, "the child's answer was nested too deeply to read", tail, isolation=isolation)
    problem = protocol_problem(answer)
    if problem:
        return ChildResult(None, f"the child's answer does not follow the protocol: {problem}", tail,
                           isolation=isolation)
    return ChildResult(answer, None, tail, isolation=isolation)


def protocol_problem(answer: object) -> str | None:
    """Where the answer departs from protocol.py (the process that wrote it ran the project's code):
    once here, so that everything after may read it as typed. Keys it does not declare are left
    alone: nothing reads them (tests/rules/test_recorded.py keeps the real child's all declared)."""
    expected = FatalAnswer if isinstance(answer, dict) and "fatal" in answer else ReviewAnswer
    try:
        msgspec.convert(answer, expected, strict=True)
    except msgspec.ValidationError as exc:
        return str(exc)[:PROBLEM_CHARS]
    return None


PROBLEM_CHARS = 300  # of msgspec's message, which quotes the answer's own keys


def wait(proc: subprocess.Popen, limits: Limits) -> str | None:
    try:
        proc.wait(timeout=limits.wall_seconds)
        return None
    except subprocess.TimeoutExpired:
        kill_group(proc)
        return f"wall time ({limits.wall_seconds:g} s)"


def kill_group(proc: subprocess.Popen) -> None:
    """bwrap runs with --die-with-parent: killing it takes its whole PID namespace."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def sweep_session(session: int, seconds: float = 5.0) -> None:
    """Without bubblewrap, kill whatever the child left in its session: a process forked while the
    group was being killed escapes one killpg, so repeat until the session is empty."""
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


def child_environment(python: str, home: str = "/tmp") -> dict[str, str]:
    """Built from nothing: the child never inherits the service's secrets."""
    path_dirs = [str(Path(python).parent), "/usr/local/bin", "/usr/bin", "/bin"]
    return {"PATH": os.pathsep.join(path_dirs), "HOME": home, "TMPDIR": home,
            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1"}


def tail_of(file, limit: int) -> str:
    """The end of a file the parent opened itself (never re-opened by name)."""
    file.flush()
    size = os.fstat(file.fileno()).st_size
    file.seek(max(0, size - limit))
    return file.read(limit).decode("utf-8", "replace")

