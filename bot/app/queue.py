"""Dedupe deliveries and queue jobs: RQ on Redis, or a SQLite file (sqlitequeue) without a queue URL.

A review job is keyed by repo, PR and head SHA, so the same head is queued
once; a newer head of the same PR is recorded as the PR's latest, and the
worker drops (or stops publishing) reviews of any older head.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
from typing import Literal, Protocol

from migration_safe.app.events import Job, ReviewJob

log = logging.getLogger(__name__)

QUEUE_NAME = "migration-safe"
DELIVERY_TTL = 7 * 24 * 3600  # GitHub lets people redeliver for days; the id stays the same
REVIEW_TIMEOUT = 1800
RETRIES = 3
RETRY_DELAYS = (5, 30, 120)  # seconds before each retry


# What became of a delivery: seen before, nothing to do, queued, or merged into the same waiting job.
Accepted = Literal["duplicate", "ignored", "queued", "coalesced"]


class Dispatcher(Protocol):
    def accept(self, delivery_id: str, job: Job | None) -> Accepted:
        """Record the delivery and queue its job; on an error, neither is kept (a redelivery works)."""

    def latest_head(self, repo: str, pr: int) -> str | None: ...
    def health(self) -> dict: ...


def latest_key(repo: str, pr: int) -> str:
    return f"migration-safe:latest:{repo}#{pr}"


class RedisDispatcher:
    def __init__(self, redis_url: str) -> None:
        from redis import Redis
        from rq import Queue

        self.redis = Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self.queue = Queue(QUEUE_NAME, connection=self.redis)

    def accept(self, delivery_id: str, job: Job | None) -> Accepted:
        if not self.first_delivery(delivery_id):
            return "duplicate"
        try:
            if job is None:
                return "ignored"
            return "queued" if self.enqueue(job) else "coalesced"
        except Exception:
            with contextlib.suppress(Exception):
                self.forget_delivery(delivery_id)
            raise

    def first_delivery(self, delivery_id: str) -> bool:
        return bool(self.redis.set(f"migration-safe:delivery:{delivery_id}", 1, nx=True, ex=DELIVERY_TTL))

    def forget_delivery(self, delivery_id: str) -> None:
        self.redis.delete(f"migration-safe:delivery:{delivery_id}")

    def enqueue(self, job: Job) -> bool:
        from redis import WatchError
        from rq import Callback, Retry
        from rq.job import Job as RqJob
        from rq.job import JobStatus

        if isinstance(job, ReviewJob) and job.pr is not None:
            self.redis.set(latest_key(job.repo, job.pr), job.head_sha, ex=DELIVERY_TTL)
        job_id = "ms-" + hashlib.sha256(job.key.encode()).hexdigest()[:40]
        waiting = {s.value for s in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED)}
        # Check and enqueue in one WATCH/MULTI transaction: GitHub sends pull_request.synchronize
        # and check_suite.requested for the same head at the same instant, and two web processes
        # that both read "not waiting" would both queue it (bench/ingest.py saw this).
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(RqJob.key_for(job_id))
                    status = pipe.hget(RqJob.key_for(job_id), "status")
                    if status is not None and status.decode() in waiting:
                        return False  # the same head is already waiting
                    pipe.multi()
                    self.queue.enqueue("migration_safe.app.worker.perform", job.to_dict(), job_id=job_id,
                                       job_timeout=REVIEW_TIMEOUT,
                                       retry=Retry(max=RETRIES, interval=list(RETRY_DELAYS)),
                                       on_failure=Callback("migration_safe.app.worker.on_failure"),
                                       result_ttl=3600, failure_ttl=7 * 24 * 3600, pipeline=pipe)
                    pipe.execute()
                    return True
                except WatchError:
                    continue  # the job changed meanwhile (another delivery queued it): look again

    def latest_head(self, repo: str, pr: int) -> str | None:
        value = self.redis.get(latest_key(repo, pr))
        return value.decode() if value else None

    def health(self) -> dict:
        try:
            self.redis.ping()
            return {"queue": "redis", "ok": True, "queued": len(self.queue)}
        except Exception as exc:  # redis raises many kinds: report, never crash /healthz
            return {"queue": "redis", "ok": False, "error": type(exc).__name__}
