"""Ingest under concurrency: one job per work item, however many deliveries race for it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from redis import Redis
from rq import Queue

from migration_safe.app.events import ReviewJob
from migration_safe.app.queue import QUEUE_NAME, RedisDispatcher

BENCH = Path(__file__).resolve().parents[2] / "bench" / "ingest.py"


def test_deliveries_racing_for_one_head_queue_it_once(redis_url):
    """GitHub sends pull_request.synchronize and check_suite.requested together: two web
    processes enqueue the same head at the same instant, and only one may queue it."""
    dispatchers = [RedisDispatcher(redis_url) for _ in range(4)]  # a connection each, as processes have
    for head in range(20):
        job = ReviewJob(1, "acme/shop", 7, f"{head:040x}", "pull_request.synchronize")
        start, answers = threading.Barrier(len(dispatchers)), []

        def enqueue(dispatcher: RedisDispatcher) -> None:
            start.wait()
            answers.append(dispatcher.enqueue(job))

        threads = [threading.Thread(target=enqueue, args=(d,)) for d in dispatchers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(answers) == [False, False, False, True], job.key
    job_ids = Queue(QUEUE_NAME, connection=Redis.from_url(redis_url)).get_job_ids()
    assert len(job_ids) == len(set(job_ids)) == 20


def test_ingest_benchmark_proves_exactly_once(redis_url, tmp_path):
    """bench/ingest.py at a tiny scale: real gunicorn, real Redis. Its proof only, not its timings."""
    results = tmp_path / "ingest.json"
    run = subprocess.run([sys.executable, str(BENCH), "--count", "60", "--rate", "50", "--redis-url", redis_url,
                          "--results", str(results), "--p99-budget-ms", "60000"],
                         capture_output=True, text=True, timeout=120, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(results.read_text())["60@50/s"]
    proof = result["proof"]
    assert result["errors"] == 0
    assert proof["expected_jobs"] > 0 and proof["redeliveries_sent"] > 0
    assert proof["lost"] == proof["duplicated"] == proof["unexpected"] == 0, proof["examples"]
    assert proof["queue_entries"] == proof["expected_jobs"]
    assert proof["duplicate_answers"] == proof["redeliveries_sent"]
    assert Redis.from_url(redis_url).keys("rq:*") == []  # the bench cleaned up after itself
