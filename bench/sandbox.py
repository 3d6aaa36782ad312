#!/usr/bin/env python3
"""What the sandbox itself costs a review: the same trivial child, run bare and run the way a review runs it.

    python bench/sandbox.py [--runs 30] [--output bench/sandbox-results.json]

"Sandboxed" is everything a review adds around its child: leasing a sandbox user, staging the
binds (as root), bubblewrap's namespaces and mounts, the limits, and the sweep that proves the
sandbox empty afterwards, with a review's binds (a project, child.py, an output folder, a socket
folder, the interpreter). The child is `python -I -c pass` in both: what remains is the sandbox.
Prints medians and the 90th percentile in seconds, and writes them as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from migration_safe.engine.sandbox.isolation import Bind, SandboxPlan, available, lease
from migration_safe.engine.sandbox.run import (
    CHILD, INSIDE, Limits, child_environment, execute, interpreter_paths, sandbox_is_empty,
)


def bare(python: str) -> float:
    started = time.perf_counter()
    subprocess.run([python, "-I", "-c", "pass"], check=True, env=child_environment(python))
    return time.perf_counter() - started


def sandboxed(python: str, project: Path, out: Path, sockets: Path) -> float:
    started = time.perf_counter()
    with lease() as isolation:
        binds = (Bind(str(project), str(project)), Bind(str(CHILD), f"{INSIDE}/child.py"),
                 Bind(str(out), f"{INSIDE}/out", writable=True), Bind(str(sockets), str(sockets)),
                 *(Bind(path, path) for path in interpreter_paths(python)))
        plan = SandboxPlan(binds, cwd=str(project), hidden_dirs=(str(project / ".git"),))
        outcome = execute([python, "-I", "-c", "pass"], plan, child_environment(python), Limits(), isolation)
        assert outcome.returncode == 0, outcome.log_tail
        assert sandbox_is_empty(isolation)
    return time.perf_counter() - started


def summary(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"median": round(statistics.median(ordered), 4),
            "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 4), "runs": len(ordered)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("sandbox-results.json"))
    args = parser.parse_args()
    isolation = available()
    with tempfile.TemporaryDirectory() as scratch:
        project, out, sockets = (Path(scratch) / name for name in ("project", "out", "sockets"))
        for folder in (project, project / ".git", out, sockets):
            folder.mkdir()
        os.chmod(scratch, 0o755)
        os.chmod(out, 0o777)  # stands for the folder a review gives its sandbox user
        bare(args.python), sandboxed(args.python, project, out, sockets)  # warm the page cache
        without = [bare(args.python) for _ in range(args.runs)]
        within = [sandboxed(args.python, project, out, sockets) for _ in range(args.runs)]
    result = {"isolation": isolation.describe(network=False), "complete": isolation.complete,
              "bare": summary(without), "sandboxed": summary(within),
              "cost_median": round(statistics.median(within) - statistics.median(without), 4)}
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
