"""The single-machine queue: one SQLite file in the cache directory, shared by every process.

Web processes (as many as gunicorn starts) record deliveries, the PR's latest head and
jobs in it; `migration-safe worker` claims and runs the jobs. SQLite does the locking
(`BEGIN IMMEDIATE` takes the database's write lock, WAL lets readers go on meanwhile), so
each promise below is one transaction:

- a delivery id is recorded with its job, once (`INSERT OR IGNORE`): a redelivery to any
  process is a duplicate, and a delivery is never recorded without its job;
- one waiting job per key (a partial unique index): the same head is queued once;
- the PR's latest head is written with the job, and the worker drops older heads;
- a job is claimed with a lease the worker renews while it runs: a job whose worker died
  (a restart, a kill) is claimed again once the lease runs out, and never while another
  worker holds a live lease on the same key, so one head is reviewed once at a time;
- a failed attempt waits and is retried; after the last one, `report` says what failed.
"""
from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from migration_safe.app.events import Job, ReviewJob, job_from_dict
from migration_safe.app.queue import DELIVERY_TTL, RETRIES, RETRY_DELAYS, Accepted

log = logging.getLogger(__name__)

FILENAME = "queue.sqlite3"
LEASE = 60.0  # seconds a claim lasts without renewal: how long a dead worker's job waits to be re-run
POLL = 0.5

# Waiting and due, or claimed by a worker whose lease ran out; and no live claim on the same key.
READY = ("(running = 0 AND due <= :now OR running = 1 AND lease < :now) AND NOT EXISTS "
         "(SELECT 1 FROM job AS r WHERE r.key = j.key AND r.id != j.id AND r.running = 1 AND r.lease >= :now)")

SCHEMA = """
CREATE TABLE IF NOT EXISTS delivery (id TEXT PRIMARY KEY, seen REAL NOT NULL);
CREATE INDEX IF NOT EXISTS delivery_seen ON delivery (seen);
CREATE TABLE IF NOT EXISTS latest (pr TEXT PRIMARY KEY, head TEXT NOT NULL, seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS job (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    data TEXT NOT NULL,
    running INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    due REAL NOT NULL,
    lease REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS job_waiting ON job (key) WHERE running = 0;
CREATE TABLE IF NOT EXISTS worker (name TEXT PRIMARY KEY, seen REAL NOT NULL);
"""


@dataclass(frozen=True)
class Claim:
    id: int
    job: Job
    attempts: int  # this one included


class SqliteQueue:
    """Implements app.queue.Dispatcher for the web processes, and the worker's side."""

    def __init__(self, path: Path, retry_delays: tuple[float, ...] = RETRY_DELAYS, lease: float = LEASE) -> None:
        self.path = path
        self.retry_delays = retry_delays
        self.lease = lease
        self.local = threading.local()  # a connection per thread (gthread serves from several)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Private to the service, as the mirrors are, before SQLite opens it: the -wal and -shm
        # files it creates beside it take the same mode.
        os.close(os.open(path, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o600))
        os.chmod(path, 0o600)
        self.db().executescript(f"BEGIN IMMEDIATE; {SCHEMA} COMMIT;")

    # ------------------------------------------------------------ connections

    def db(self) -> sqlite3.Connection:
        connection = getattr(self.local, "connection", None)
        if connection is None:
            # autocommit mode: every transaction below is explicit; waits up to 30 s for the lock
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")  # acknowledged means on disk
            self.local.connection = connection
        return connection

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        db = self.db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # ------------------------------------------------------------ web side (Dispatcher)

    def accept(self, delivery_id: str, job: Job | None) -> Accepted:
        now = time.time()
        with self.write() as db:  # the delivery, the latest head and the job: all or nothing
            if not db.execute("INSERT OR IGNORE INTO delivery VALUES (?, ?)", (delivery_id, now)).rowcount:
                return "duplicate"
            if job is None:
                return "ignored"
            if isinstance(job, ReviewJob) and job.pr is not None:
                db.execute("INSERT INTO latest VALUES (?, ?, ?) ON CONFLICT (pr) DO UPDATE SET "
                           "head = excluded.head, seen = excluded.seen", (pr_key(job.repo, job.pr), job.head_sha, now))
            inserted = db.execute("INSERT OR IGNORE INTO job (key, data, due) VALUES (?, ?, ?)",
                                  (job.key, json.dumps(job.to_dict()), now)).rowcount
            return "queued" if inserted else "coalesced"

    def latest_head(self, repo: str, pr: int) -> str | None:
        row = self.db().execute("SELECT head FROM latest WHERE pr = ?", (pr_key(repo, pr),)).fetchone()
        return row[0] if row else None

    def health(self) -> dict:
        try:
            db = self.db()
            queued = db.execute("SELECT count(*) FROM job WHERE running = 0").fetchone()[0]
            workers = db.execute("SELECT count(*) FROM worker WHERE seen > ?",
                                 (time.time() - 2 * self.lease,)).fetchone()[0]
        except sqlite3.Error as exc:
            return {"queue": "sqlite", "ok": False, "error": type(exc).__name__}
        return {"queue": "sqlite", "ok": True, "queued": queued, "workers": workers}

    # ------------------------------------------------------------ worker side

    def claim(self) -> Claim | None:
        now = time.time()
        if self.db().execute(f"SELECT 1 FROM job AS j WHERE {READY}", {"now": now}).fetchone() is None:
            return None  # idle: no write lock taken
        with self.write() as db:
            row = db.execute(f"SELECT id, data, attempts FROM job AS j WHERE {READY} ORDER BY due, id LIMIT 1",
                             {"now": now}).fetchone()
            if row is None:  # another worker took it
                return None
            db.execute("UPDATE job SET running = 1, attempts = attempts + 1, lease = ? WHERE id = ?",
                       (now + self.lease, row[0]))
        return Claim(row[0], job_from_dict(json.loads(row[1])), row[2] + 1)

    def beat(self, worker: str) -> None:
        with self.write() as db:
            db.execute("INSERT INTO worker VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET seen = excluded.seen",
                       (worker, time.time()))

    def renew(self, claim: Claim) -> None:
        with self.write() as db:
            db.execute("UPDATE job SET lease = ? WHERE id = ?", (time.time() + self.lease, claim.id))

    def done(self, claim: Claim) -> None:
        with self.write() as db:
            db.execute("DELETE FROM job WHERE id = ?", (claim.id,))

    def retry(self, claim: Claim) -> bool:
        """Back to waiting after its delay; False when no attempt is left (the job is dropped)."""
        with self.write() as db:
            if claim.attempts > RETRIES:
                db.execute("DELETE FROM job WHERE id = ?", (claim.id,))
                return False
            delay = self.retry_delays[min(claim.attempts, len(self.retry_delays)) - 1]
            moved = db.execute("UPDATE OR IGNORE job SET running = 0, lease = NULL, due = ? WHERE id = ?",
                               (time.time() + delay, claim.id)).rowcount
            if not moved:  # the same key was queued again meanwhile: that job runs it
                db.execute("DELETE FROM job WHERE id = ?", (claim.id,))
            return True

    def prune(self) -> None:
        """Forget deliveries and heads older than GitHub lets anyone redeliver."""
        with self.write() as db:
            db.execute("DELETE FROM delivery WHERE seen < ?", (time.time() - DELIVERY_TTL,))
            db.execute("DELETE FROM latest WHERE seen < ?", (time.time() - DELIVERY_TTL,))
            db.execute("DELETE FROM worker WHERE seen < ?", (time.time() - DELIVERY_TTL,))

    def work(self, perform: Callable[[dict], None], report: Callable[[dict, str], None],
             burst: bool = False) -> None:
        """Run jobs one at a time; with burst, return once none is ready."""
        worker, beaten = f"{os.uname().nodename}:{os.getpid()}", 0.0
        self.prune()
        while True:
            if time.time() - beaten > self.lease / 4:
                self.beat(worker)
                beaten = time.time()
            claim = self.claim()
            if claim is not None:
                self.run(claim, perform, report)
            elif burst:
                return
            else:
                time.sleep(POLL)

    def run(self, claim: Claim, perform: Callable[[dict], None], report: Callable[[dict, str], None]) -> None:
        if claim.attempts > RETRIES + 1:  # its worker died in every attempt: do not try again
            self.done(claim)
            report(claim.job.to_dict(), "the worker stopped during every attempt")
            return
        try:
            with self.leased(claim):
                perform(claim.job.to_dict())
        except Exception as exc:
            log.exception("job %s failed (attempt %d)", claim.job.key, claim.attempts)
            if not self.retry(claim):
                report(claim.job.to_dict(), f"{type(exc).__name__}: {exc}")
            return
        self.done(claim)

    @contextmanager
    def leased(self, claim: Claim) -> Iterator[None]:
        """Renew the claim's lease while the job runs: it lapses only if this process dies."""
        stop = threading.Event()

        def keep() -> None:
            while not stop.wait(self.lease / 4):
                try:
                    self.renew(claim)
                except sqlite3.Error:
                    log.exception("could not renew the lease of %s", claim.job.key)

        keeper = threading.Thread(target=keep, name="migration-safe-lease", daemon=True)
        keeper.start()
        try:
            yield
        finally:
            stop.set()
            keeper.join()


def pr_key(repo: str, pr: int) -> str:
    return f"{repo}#{pr}"


def queue_path(cache_dir: Path) -> Path:
    return cache_dir / FILENAME
