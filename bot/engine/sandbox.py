"""Runs the child (the project's own code) contained: clean environment, limits, no network."""
from __future__ import annotations

import functools
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

CHILD = Path(__file__).with_name("child.py")


@dataclass(frozen=True)
class Limits:
    wall_seconds: float = 600
    cpu_seconds: int = 600
    memory_bytes: int = 4 << 30
    file_bytes: int = 512 << 20
    output_bytes: int = 64 << 20  # the child's answer file
    log_bytes: int = 16 << 10  # what we keep of its stdout/stderr


@dataclass
class ChildResult:
    answer: dict | None
    error: str | None = None  # why there is no answer
    log_tail: str = ""  # the end of what the project's code printed
    limit: str | None = None  # which limit was hit, if any
    isolation: list[str] = field(default_factory=list)


def run_child(python: str, request: dict, limits: Limits = Limits(),
              network: bool = False) -> ChildResult:
    """Run child.py under `python` with `request`; never raises for the child's failures."""
    with tempfile.TemporaryDirectory(prefix="migration-safe-") as tmp:
        request_path, answer_path = Path(tmp, "request.json"), Path(tmp, "answer.json")
        request_path.write_text(json.dumps(request))
        log_path = Path(tmp, "child.log")
        command = [python, "-I", "-B", str(CHILD), str(request_path), str(answer_path)]
        isolation = []
        if not network and netns_available():
            command = ["unshare", "--net", "--"] + command
            isolation.append("network namespace")
        env = child_environment(python, tmp)
        with open(log_path, "wb") as log:
            try:
                proc = subprocess.Popen(command, env=env, cwd=request["root"], stdin=subprocess.DEVNULL,
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                        preexec_fn=functools.partial(apply_limits, limits))
            except OSError as exc:
                return ChildResult(None, f"could not start {python}: {exc}")
            limit = wait(proc, limits)
        tail = read_tail(log_path, limits.log_bytes)
        return finish(proc.returncode, answer_path, limits, limit, tail, isolation)


def finish(code: int, answer_path: Path, limits: Limits, limit: str | None, tail: str,
           isolation: list[str]) -> ChildResult:
    if limit is None and code < 0:
        limit = {signal.SIGXCPU: "cpu time", signal.SIGXFSZ: "file size",
                 signal.SIGKILL: "memory (killed)"}.get(-code)
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


def apply_limits(limits: Limits) -> None:
    """Runs in the child between fork and exec."""
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def child_environment(python: str, tmp: str) -> dict[str, str]:
    """Built from nothing: the child never inherits the service's secrets."""
    path_dirs = [str(Path(python).parent), "/usr/local/bin", "/usr/bin", "/bin"]
    return {"PATH": os.pathsep.join(path_dirs), "HOME": tmp, "TMPDIR": tmp,
            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1"}


@functools.lru_cache(maxsize=1)
def netns_available() -> bool:
    """A new network namespace needs unshare(1) and the right to use it (root or user ns)."""
    if not shutil.which("unshare") or not sys.platform.startswith("linux"):
        return False
    try:
        return subprocess.run(["unshare", "--net", "--", "true"], capture_output=True,
                              timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def read_tail(path: Path, limit: int) -> str:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - limit))
        return fh.read().decode("utf-8", "replace")
