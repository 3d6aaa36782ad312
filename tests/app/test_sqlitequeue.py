"""The single-machine queue: its promises across processes, restarts and failures."""
from __future__ import annotations

import multiprocessing
import time
import uuid

import pytest

from migration_safe.app.events import CommandJob, ReviewJob
from migration_safe.app.sqlitequeue import SqliteQueue

PROCESSES = 4


def job(head: int = 1, pr: int = 7) -> ReviewJob:
    return ReviewJob(1, "acme/shop", pr, f"{head:040x}", "pull_request.synchronize")


def enqueue(store: SqliteQueue, work) -> bool:
    """A new delivery for `work`: True when queued, False when merged into the same waiting job."""
    return store.accept(str(uuid.uuid4()), work) == "queued"


def _race(path, barrier, answers, heads: int) -> None:
    store = SqliteQueue(path)  # a connection of its own, as each web process has
    for head in range(heads):
        barrier.wait()  # the same delivery (GitHub's "Redeliver"), then the same head from two events
        answers.put(("delivery", head, store.accept(f"delivery-{head}", None) == "ignored"))
        answers.put(("job", head, enqueue(store, job(head))))


def test_processes_racing_for_one_delivery_and_one_head_win_once(tmp_path):
    path, heads = tmp_path / "queue.sqlite3", 10
    SqliteQueue(path)
    context = multiprocessing.get_context("spawn")
    barrier, answers = context.Barrier(PROCESSES), context.Queue()
    processes = [context.Process(target=_race, args=(path, barrier, answers, heads)) for _ in range(PROCESSES)]
    for process in processes:
        process.start()
    results = [answers.get(timeout=60) for _ in range(PROCESSES * heads * 2)]
    for process in processes:
        process.join(10)
        assert process.exitcode == 0
    for kind in ("delivery", "job"):
        for head in range(heads):
            assert sorted(won for k, h, won in results if (k, h) == (kind, head)) == [False] * 3 + [True]
    assert SqliteQueue(path).health()["queued"] == heads


def test_the_latest_head_is_recorded_whoever_queues_it(tmp_path):
    web_a, web_b = SqliteQueue(tmp_path / "q"), SqliteQueue(tmp_path / "q")
    enqueue(web_a, job(1))
    enqueue(web_b, job(2))
    assert web_a.latest_head("acme/shop", 7) == f"{2:040x}"
    assert enqueue(web_b, job(1)) is False  # still waiting: coalesced
    assert web_a.latest_head("acme/shop", 7) == f"{1:040x}"  # the worker asks GitHub which is current


def test_a_delivery_is_never_recorded_without_its_job(tmp_path):
    store = SqliteQueue(tmp_path / "q")
    broken = ReviewJob(1, "acme/shop", 7, f"{1:040x}", object())  # fails at its last step: not JSON
    with pytest.raises(TypeError):
        store.accept("delivery-1", broken)
    assert store.latest_head("acme/shop", 7) is None
    assert store.accept("delivery-1", job(1)) == "queued"  # GitHub's redelivery is not a duplicate
    assert store.accept("delivery-1", job(1)) == "duplicate"


def test_what_was_acknowledged_survives_a_restart_before_the_review(tmp_path):
    enqueue(SqliteQueue(tmp_path / "q"), job(1))  # the web process that acked is gone
    done = []
    SqliteQueue(tmp_path / "q").work(done.append, lambda *_: None, burst=True)
    assert done == [job(1).to_dict()]
    assert SqliteQueue(tmp_path / "q").health()["queued"] == 0


def test_a_job_whose_worker_died_is_run_again_after_its_lease(tmp_path):
    store = SqliteQueue(tmp_path / "q", lease=0.3)
    enqueue(store, job(1))
    first = store.claim()  # ... and the worker is killed mid-review
    assert first is not None and store.claim() is None
    time.sleep(0.4)
    again = SqliteQueue(tmp_path / "q", lease=0.3).claim()
    assert again is not None and again.job == job(1) and again.attempts == 2


def test_one_review_per_head_at_a_time(tmp_path):
    store = SqliteQueue(tmp_path / "q")
    enqueue(store, job(1))
    running = store.claim()
    assert running is not None
    assert enqueue(store, job(1)) is True  # a redelivery while it runs: queued for after
    assert store.claim() is None  # ... not beside it, even for a second worker
    enqueue(store, job(2))
    other = store.claim()
    assert other is not None and other.job == job(2)
    store.done(running)
    assert store.claim().job == job(1)


def test_a_lease_is_renewed_while_the_job_runs(tmp_path):
    store = SqliteQueue(tmp_path / "q", lease=0.2)
    enqueue(store, job(1))
    claims = []

    def perform(_data):
        time.sleep(0.6)  # three leases long
        claims.append(SqliteQueue(tmp_path / "q", lease=0.2).claim())

    store.work(perform, lambda *_: None, burst=True)
    assert claims == [None]  # nobody could take it meanwhile


def test_a_failing_job_is_retried_then_reported_once(tmp_path):
    store = SqliteQueue(tmp_path / "q", retry_delays=(0, 0, 0))
    enqueue(store, job(1))
    enqueue(store, CommandJob(1, "acme/shop", 7, 99, "alice", "created"))
    attempts, reports = [], []

    def perform(data):
        attempts.append(data["kind"])
        if data["kind"] == "review":
            raise RuntimeError("the engine crashed on purpose")

    store.work(perform, lambda data, reason: reports.append((data, reason)), burst=True)
    assert attempts.count("review") == 4 and attempts.count("command") == 1
    assert reports == [(job(1).to_dict(), "RuntimeError: the engine crashed on purpose")]
    assert store.health()["queued"] == 0


def test_a_job_that_kills_its_worker_every_time_is_reported(tmp_path):
    store = SqliteQueue(tmp_path / "q", lease=0.05)
    enqueue(store, job(1))
    for _ in range(4):  # each attempt's worker dies
        assert store.claim() is not None
        time.sleep(0.1)
    reports = []
    store.work(lambda data: None, lambda data, reason: reports.append(reason), burst=True)
    assert reports == ["the worker stopped during every attempt"]


def test_the_files_are_private_to_the_service(tmp_path):
    store = SqliteQueue(tmp_path / "cache" / "queue.sqlite3")
    enqueue(store, job(1))
    files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert files == ["queue.sqlite3", "queue.sqlite3-shm", "queue.sqlite3-wal"]
    assert all((tmp_path / "cache" / name).stat().st_mode & 0o077 == 0 for name in files)
