"""Flask: /webhook verifies, dedupes and enqueues (never reviews); /healthz reports readiness."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging

from flask import Flask, jsonify, request

from migration_safe.app.events import PayloadError, route
from migration_safe.app.queue import Dispatcher, RedisDispatcher
from migration_safe.app.settings import AppSettings, settings_from_environment
from migration_safe.app.sqlitequeue import SqliteQueue, queue_path
from migration_safe.engine.sandbox.isolation import available as isolation_available

log = logging.getLogger(__name__)


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    if not header or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


def create_app(settings: AppSettings | None = None, dispatcher: Dispatcher | None = None) -> Flask:
    settings = settings or settings_from_environment()
    dispatcher = dispatcher or default_dispatcher(settings)
    if not isolation_available().complete:
        log.warning("SANDBOX NOT ISOLATED: %s. Fork PRs %s.", "; ".join(isolation_available().describe(network=False)),
                    "are refused" if settings.refuse_unisolated_forks else "ARE REVIEWED ANYWAY (MIGRATION_SAFE_FORKS)")
    app = Flask("migration_safe")
    app.config["MAX_CONTENT_LENGTH"] = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB

    @app.post("/webhook")
    def webhook():
        body = request.get_data(cache=False)
        if not signature_ok(settings.webhook_secret, body, request.headers.get("X-Hub-Signature-256")):
            return jsonify(error="bad or missing X-Hub-Signature-256"), 401
        event = request.headers.get("X-GitHub-Event")
        delivery = request.headers.get("X-GitHub-Delivery")
        if not event or not delivery:
            return refuse(delivery, event, "missing X-GitHub-Event or X-GitHub-Delivery")
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
            return refuse(delivery, event, "body is not JSON")
        if not isinstance(payload, dict):
            return refuse(delivery, event, "body is not a JSON object")
        try:
            job = route(event, payload, settings.bot_login)
        except PayloadError as exc:
            return refuse(delivery, event, str(exc))
        if event == "ping":
            return jsonify(ok=True, zen=payload.get("zen")), 200
        try:
            accepted = dispatcher.accept(delivery, job)
        except Exception as exc:  # the queue is down: nothing was kept, GitHub's redelivery will work
            log.error("delivery %s not queued: %s", delivery, exc)
            return jsonify(error="queue unavailable, redeliver later"), 503
        if accepted == "duplicate":
            return jsonify(ok=True, duplicate=True), 200
        if job is None:
            return jsonify(ok=True, ignored=f"{event}.{payload.get('action')}"), 202
        log.info("delivery %s: %s %s (%s)", delivery, job.kind, job.key, accepted)
        return jsonify(ok=True, job=job.key, queued=accepted == "queued"), 202

    @app.get("/healthz")
    def healthz():
        queue = dispatcher.health()
        credentials = {"app_id": settings.app_id, "private_key": bool(settings.private_key),
                       "webhook_secret": bool(settings.webhook_secret), "api_url": settings.api_url}
        ok = queue.get("ok", False)
        isolation = isolation_available()
        sandbox = {"isolated": isolation.complete, "measures": isolation.describe(network=False),
                   "fork_pull_requests": "reviewed" if isolation.complete or not settings.refuse_unisolated_forks
                   else "refused: the sandbox cannot isolate their code"}
        return jsonify(ok=ok, web=True, queue=queue, github=credentials, sandbox=sandbox), 200 if ok else 503

    return app


def refuse(delivery: str | None, event: str | None, reason: str):
    """400, and a log line: a signed delivery GitHub sent and we refuse is worth a look."""
    # Header values are the sender's: only their repr reaches the log, never raw control characters.
    log.warning("delivery %r (%r) refused: %s", delivery, event, reason)
    return jsonify(error=reason), 400


def default_dispatcher(settings: AppSettings) -> Dispatcher:
    if settings.redis_url:
        return RedisDispatcher(settings.redis_url)
    # Every web process opens the same file: dedupe and coalescing hold across all of them.
    return SqliteQueue(queue_path(settings.cache_dir))
