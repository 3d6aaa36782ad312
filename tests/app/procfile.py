"""The Procfile's web line, started as written (gunicorn in a shell, $PORT and $WEB_CONCURRENCY set)."""
from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import requests

PROCFILE = Path(__file__).resolve().parents[2] / "Procfile"
# Added through gunicorn's own variable, so that the line itself runs as written: which process
# answered each request, and the delivery it carried.
ACCESS_FORMAT = '--access-logformat "%(p)s %({x-github-delivery}i)s %(s)s"'


def procfile_line(name: str) -> str:
    for line in PROCFILE.read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise KeyError(f"no {name} line in {PROCFILE}")


@dataclass
class Web:
    url: str
    log: Path
    process: subprocess.Popen

    def served(self, delivery: str) -> list[int]:
        """The pid of the process that answered each request carrying this delivery id."""
        return [int(pid) for pid in re.findall(rf"^<(\d+)> {re.escape(delivery)} \d+$", self.log.read_text(), re.M)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def web(env: dict[str, str], where: Path, workers: int | None = None) -> Iterator[Web]:
    """Start the web line with only `env` for the App's settings; stop it gracefully after."""
    port = free_port()
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("GITHUB_", "MIGRATION_SAFE_", "GUNICORN_")) and k not in ("REDIS_URL", "PORT")}
    full = {**keep, **env, "PORT": str(port), "GUNICORN_CMD_ARGS": ACCESS_FORMAT,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    if workers is not None:
        full["WEB_CONCURRENCY"] = str(workers)
    log = where / "web.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(["sh", "-c", procfile_line("web")], env=full, cwd=where, stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    served = Web(f"http://127.0.0.1:{port}", log, process)
    try:
        wait_ready(served, workers or 2)
        yield served
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_ready(served: Web, workers: int, timeout: float = 60) -> None:
    """Until every web process has answered /healthz: booted is not yet serving (the app loads after)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            raise AssertionError(f"the web line exited:\n{served.log.read_text()[-3000:]}")
        with contextlib.suppress(requests.RequestException), ThreadPoolExecutor(workers * 2) as pool:
            list(pool.map(lambda _: requests.get(f"{served.url}/healthz", timeout=2), range(workers * 2)))
        if len(set(served.served("-"))) >= workers:
            return
        time.sleep(0.1)
    raise AssertionError(f"the web line not ready after {timeout:g} s:\n{served.log.read_text()[-3000:]}")
