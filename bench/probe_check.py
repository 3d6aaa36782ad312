#!/usr/bin/env python3
"""`migration-safe` exactly as the CLI runs it, plus where its time goes (benchmarks only).

    BENCH_TIMINGS=out.json python bench/probe_check.py check --repo R --base B --format json

Wraps a few functions of `migration_safe.engine.review.pipeline` with timers and keeps
the child's own `timings` (graph / schema / total, seconds since the child
started), which the JSON report does not expose. Nothing else changes: same
argv, same exit status, same output.
"""
from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from migration_safe import cli

try:
    from migration_safe.engine.review import pipeline as review
except ImportError:  # a revision from before engine/review/ (bench/run.py --code)
    from migration_safe.engine import review  # type: ignore[no-redef]

spent: dict[str, float] = {}
child: dict[str, Any] = {}


def timed(module: object, name: str, label: str, keep: Callable[[Any], None] | None = None) -> None:
    original = getattr(module, name, None)
    if original is None:  # another revision of migration-safe (bench/run.py --code): time what exists
        return

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            result = original(*args, **kwargs)
        finally:
            spent[label] = spent.get(label, 0.0) + time.monotonic() - started
        if keep is not None:
            keep(result)
        return result

    setattr(module, name, wrapper)


def keep_child(result: Any) -> None:
    answer = getattr(result, "answer", None) or {}
    child["timings"] = answer.get("timings")
    child["migrations"] = len(answer.get("migrations", []))
    child["fatal"] = answer.get("fatal")
    child["error"] = getattr(result, "error", None)
    child["limit"] = getattr(result, "limit", None)


def main() -> int:
    # The pipeline calls these through its module globals, so patching them there is enough.
    timed(review.discover, "python_changes", "git diff")
    timed(review.discover, "changed_python_files", "git diff")  # revisions before python_changes
    timed(review, "parse_migration", "parse (libcst)")
    timed(review, "server_from_environment", "PostgreSQL start (embedded)")
    timed(review, "run_child", "sandboxed child (copy + process)", keep_child)
    timed(review, "analyse", "assemble")
    timed(review, "decide", "rules + verdict")
    started = time.monotonic()
    try:
        return cli.main(sys.argv[1:])
    finally:
        out = os.environ.get("BENCH_TIMINGS")
        if out:
            with open(out, "w", encoding="utf-8") as fh:
                json.dump({"total": round(time.monotonic() - started, 3),
                           "parts": {k: round(v, 3) for k, v in spent.items()}, "child": child}, fh, indent=2)


if __name__ == "__main__":
    sys.exit(main())
