"""The project's dependencies (`install:` in the config), in a virtualenv of their own.

Installing runs the project's own commands, so it is sandboxed like the review
(bubblewrap, another user, no secrets, limits, no network); its one way out is the egress
proxy (egress.py), to the package index's hosts only. The result is cached by
the hash of the commands, the interpreter and the dependency files, so a
repository pays for it once per change of its requirements.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from migration_safe.engine.sandbox import confined, egress
from migration_safe.engine.sandbox.database import cache_dir
from migration_safe.engine.sandbox.isolation import Bind, Isolation, SandboxPlan, lease
from migration_safe.engine.sandbox.run import (
    INSIDE, Limits, child_environment, execute, interpreter_paths, sandbox_root,
)

DEPENDENCY_FILES = ("requirements*.txt", "requirements/*.txt", "requirements/*.in", "constraints*.txt",
                    "pyproject.toml", "poetry.lock", "Pipfile", "Pipfile.lock", "uv.lock", "setup.py",
                    "setup.cfg")
INSTALL_LIMITS = Limits(wall_seconds=1200, cpu_seconds=1200, file_bytes=1 << 30)
TUNNEL = Path(__file__).with_name("tunnel.py")
REFUSALS_SHOWN = 5
DRIVER_CHECK = "import importlib.util as u, sys; sys.exit(0 if u.find_spec('psycopg') or u.find_spec('psycopg2') else 1)"


@dataclass
class Environment:
    python: str | None  # the virtualenv's interpreter, None when the install failed
    cached: bool = False
    error: str | None = None


def environment_key(root: Path, commands: list[str], python: str) -> str:
    digest = hashlib.sha256()
    digest.update(sys.version.encode() + python.encode())
    for command in commands:
        digest.update(b"cmd\0" + command.encode())
    for pattern in DEPENDENCY_FILES:
        for path in sorted(root.glob(pattern)):
            relative = path.relative_to(root)
            try:
                content = confined.read_bytes(root, relative)
            except (OSError, confined.Refused) as exc:  # a link out of the checkout, a device: never read
                content = f"unreadable: {exc}".encode()
            digest.update(b"file\0" + str(relative).encode() + b"\0" + content)
    return digest.hexdigest()[:24]


def prepare(root: Path, commands: list[str], python: str = sys.executable,
            limits: Limits = INSTALL_LIMITS) -> Environment:
    """A virtualenv with the project's dependencies, built once per key."""
    venvs = cache_dir() / "venvs"
    venvs.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = venvs / environment_key(root, commands, python)
    with _locked(target.with_suffix(".lock")):
        if (target / ".ready").exists():
            return Environment(str(target / "bin" / "python"), cached=True)
        error = build(root, commands, python, target, limits)
    return Environment(None if error else str(target / "bin" / "python"), error=error)


def build(root: Path, commands: list[str], python: str, target: Path, limits: Limits) -> str | None:
    try:
        allowed = egress.allowlist()
    except ValueError as exc:
        return str(exc)
    workdir = Path(tempfile.mkdtemp(prefix="install-", dir=target.parent))
    try:
        # Same path as the final one: scripts in a venv remember where they were made.
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run([python, "-m", "venv", str(target)], check=True, capture_output=True, timeout=300)
        # A copy, once per change of the requirements: builds write into the project (egg-info, build/).
        shutil.copytree(root, workdir / "project", symlinks=True, ignore=shutil.ignore_patterns(".git"))
        with lease() as isolation, egress.gate(sandbox_root(), isolation.uid, isolation.gid, allowed) as way_out:
            give_tree(workdir / "project", isolation)
            give_tree(target, isolation)
            error = run_steps(commands, workdir / "project", target, python, limits, isolation, way_out)
        if error:
            return error
        _seal(target)
        (target / ".ready").touch()
        return None
    except (OSError, subprocess.SubprocessError) as exc:
        return f"could not create the virtualenv: {exc}"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if not (target / ".ready").exists():
            shutil.rmtree(target, ignore_errors=True)


def run_steps(commands: list[str], project: Path, target: Path, python: str, limits: Limits,
              isolation: Isolation, way_out: egress.Gate) -> str | None:
    """Each command in the sandbox, without network: tunnel.py, started first on our interpreter,
    hands its proxy connections to the egress proxy's socket."""
    venv_python = str(target / "bin" / "python")
    env = {**child_environment(venv_python), "VIRTUAL_ENV": str(target), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    tunnel = Bind(str(TUNNEL), f"{INSIDE}/tunnel.py" if isolation.bwrap else str(TUNNEL))
    proxy = Bind(way_out.folder, f"{INSIDE}/egress" if isolation.bwrap else way_out.folder)
    binds = (Bind(str(project), str(project), writable=True), Bind(str(target), str(target), writable=True),
             *(Bind(path, path) for path in interpreter_paths(python)), tunnel, proxy)
    plan = SandboxPlan(binds, cwd=str(project))
    relayed = [python, "-I", "-B", tunnel.dest, f"{proxy.dest}/{egress.SOCKET}", "/bin/sh", "-c"]
    steps = [*commands, f"python -c \"{DRIVER_CHECK}\" || pip install 'psycopg[binary]>=3.1'"]
    for command in steps:
        outcome = execute([*relayed, command], plan, env, limits, isolation)
        if outcome.start_error or outcome.limit or outcome.returncode != 0:
            reason = outcome.start_error or (f"{outcome.limit} limit" if outcome.limit
                                             else f"exit status {outcome.returncode}")
            return f"`{command}` failed ({reason}): {summary(outcome.log_tail)}".strip() + refused(way_out)
    return None


def refused(way_out: egress.Gate) -> str:
    """What the proxy turned away: most often why a step failed (a git+https dependency, another index)."""
    found = list(way_out.refusals.items())
    if not found:
        return ""
    shown = "; ".join(f"{target} ({why})" for target, why in found[:REFUSALS_SHOWN])
    return (f". The install's network proxy refused: {shown}. The install reaches only the hosts of the "
            f"operator's {egress.HOSTS_ENV} (by default pypi.org and files.pythonhosted.org, port 443); "
            "a git+https dependency or another index needs its host listed there")


def give_tree(path: Path, isolation: Isolation) -> None:
    """The install's own copy and virtualenv become the sandbox user's while it builds them."""
    if isolation.uid is None:
        return
    for folder, _dirs, files in os.walk(path):
        os.chown(folder, isolation.uid, isolation.gid)
        for name in files:
            os.chown(os.path.join(folder, name), isolation.uid, isolation.gid, follow_symlinks=False)


def summary(log: str) -> str:
    """pip ends with hints; the ERROR line says what failed."""
    lines = [line.strip() for line in log.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR") or line.startswith("error:")]
    return " ".join((errors or lines)[-3:])[:1000]


def _seal(target: Path) -> None:
    """Owned by us again, readable by every later review's user, writable by none."""
    for directory, _dirs, files in os.walk(target):
        for name in [directory, *(os.path.join(directory, f) for f in files)]:
            with contextlib.suppress(OSError):
                os.chown(name, os.geteuid(), os.getegid(), follow_symlinks=False)
                if not os.path.islink(name):
                    mode = os.stat(name).st_mode
                    os.chmod(name, (mode | 0o444 | (0o111 if mode & 0o100 else 0)) & ~0o022)


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
