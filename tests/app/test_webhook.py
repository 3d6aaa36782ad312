"""The webhook endpoint over real HTTP, with the real Redis queue behind it."""
from __future__ import annotations

import json
import subprocess
import uuid

import pytest
import requests
from fakegithub import FakeGitHub, sign
from fakegithub.payloads import DEFAULT_PAYLOADS_DIR, load_template, merge
from redis import Redis
from rq import Queue

from migration_safe.app.queue import QUEUE_NAME, RedisDispatcher
from migration_safe.app.settings import AppSettings
from migration_safe.app.sqlitequeue import SqliteQueue
from migration_safe.app.web import create_app

from .server import serving

SECRET = "webhook-secret-for-tests"


@pytest.fixture
def fake(tmp_path):
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "a.py").write_text("x = 1\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@e.invalid"]
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-qm", "base"], check=True)
    subprocess.run(git + ["checkout", "-qb", "feature"], check=True)
    (repo / "b.py").write_text("y = 2\n")
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-qm", "head"], check=True)
    subprocess.run(git + ["checkout", "-q", "main"], check=True)
    with FakeGitHub() as fake:
        fake.add_repo("acme", "shop", repo)
        fake.open_pull("acme", "shop", head="feature", base="main")
        yield fake


@pytest.fixture
def service(fake, redis_url):
    settings = AppSettings(app_id=fake.app_id, private_key="unused", webhook_secret=SECRET,
                           api_url=fake.url, redis_url=redis_url, bot_login=fake.bot_login)
    with serving(create_app(settings, RedisDispatcher(redis_url))) as url:
        yield url, Queue(QUEUE_NAME, connection=Redis.from_url(redis_url))


def post(url, body: bytes, headers: dict):
    return requests.post(f"{url}/webhook", data=body, headers=headers, timeout=10)


def test_pull_request_opened_becomes_one_queued_review(fake, service):
    url, queue = service
    body, headers = fake.delivery("pull_request", "opened", secret=SECRET, pull=1)
    response = post(url, body, headers)
    assert response.status_code == 202 and response.json()["queued"] is True
    [job] = queue.get_jobs()
    payload = job.args[0]
    assert payload["kind"] == "review" and payload["repo"] == "acme/shop" and payload["pr"] == 1
    assert payload["head_sha"] == fake.pull("acme", "shop", 1)["head"]["sha"]


def test_redelivery_with_the_same_id_is_ignored(fake, service):
    url, queue = service
    body, headers = fake.delivery("pull_request", "synchronize", secret=SECRET, pull=1)
    assert post(url, body, headers).status_code == 202
    again = post(url, body, headers)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert len(queue) == 1


def test_same_head_from_two_deliveries_is_queued_once(fake, service):
    url, queue = service
    for action in ("opened", "reopened"):
        body, headers = fake.delivery("pull_request", action, secret=SECRET, pull=1)
        assert post(url, body, headers).status_code == 202
    assert len(queue) == 1


@pytest.mark.parametrize("signature", [None, "sha256=" + "0" * 64, "sha1=abc"])
def test_unsigned_or_missigned_is_401_and_queues_nothing(fake, service, signature):
    url, queue = service
    body, headers = fake.delivery("pull_request", "opened", secret=SECRET, pull=1)
    headers.pop("X-Hub-Signature-256")
    if signature:
        headers["X-Hub-Signature-256"] = signature
    assert post(url, body, headers).status_code == 401
    assert len(queue) == 0


def test_malformed_json_and_missing_headers_are_400(service):
    url, queue = service
    body = b"{not json"
    headers = {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "d1",
               "X-Hub-Signature-256": sign(body, SECRET.encode())}
    assert post(url, body, headers).status_code == 400
    good = json.dumps({"action": "opened"}).encode()
    assert post(url, good, {"X-Hub-Signature-256": sign(good, SECRET.encode())}).status_code == 400
    truncated = json.dumps({"action": "opened", "pull_request": {}}).encode()
    headers = {**headers, "X-Hub-Signature-256": sign(truncated, SECRET.encode()), "X-GitHub-Delivery": "d2"}
    assert post(url, truncated, headers).status_code == 400
    assert len(queue) == 0


def test_ping_and_unknown_events_are_answered_without_jobs(fake, service):
    url, queue = service
    body, headers = fake.delivery("ping", None, secret=SECRET)
    assert post(url, body, headers).status_code == 200
    body = b'{"action": "created"}'
    headers = {"X-GitHub-Event": "star", "X-GitHub-Delivery": "d3",
               "X-Hub-Signature-256": sign(body, SECRET.encode())}
    assert post(url, body, headers).status_code == 202
    assert len(queue) == 0


def test_comments_by_the_bot_and_on_plain_issues_are_ignored(fake, service):
    url, queue = service
    fake.add_comment("acme", "shop", 1, "/migration-safe recheck", user=fake.bot_login)
    body, headers = fake.delivery("issue_comment", "created", secret=SECRET, pull=1,
                                  comment=fake.issue_comments("acme", "shop", 1)[-1]["id"])
    assert post(url, body, headers).status_code == 202
    assert len(queue) == 0


def test_command_comment_on_a_pr_is_queued(fake, service):
    url, queue = service
    comment = fake.add_comment("acme", "shop", 1, "/migration-safe help", user="alice")
    body, headers = fake.delivery("issue_comment", "created", secret=SECRET, pull=1, comment=comment["id"])
    assert post(url, body, headers).status_code == 202
    [job] = queue.get_jobs()
    assert job.args[0]["kind"] == "command" and job.args[0]["comment_id"] == comment["id"]


def test_healthz_reports_queue(service):
    url, _queue = service
    health = requests.get(f"{url}/healthz", timeout=5).json()
    assert health["ok"] and health["queue"]["queue"] == "redis" and health["queue"]["ok"]


# ---------------------------------------------------------------- payload shapes

# Every example body GitHub documents for the events the App reads (the fake's loader finds them).
EXAMPLES = [("check_run", "requested_action"), ("check_run", "rerequested"), ("check_suite", "requested"),
            ("check_suite", "rerequested"), ("installation", "created"), ("installation_repositories", "added"),
            ("issue_comment", "created"), ("issue_comment", "created.with-installation"),
            ("issue_comment", "edited"), ("ping", None), ("pull_request", "closed"), ("pull_request", "opened"),
            ("pull_request", "ready_for_review"), ("pull_request", "reopened"), ("pull_request", "synchronize")]


def example(event: str, action: str | None) -> dict:
    name = f"{event}.{action}.json" if action else f"{event}.json"
    assert (DEFAULT_PAYLOADS_DIR / name).is_file(), f"GitHub's example {name} is missing"
    return load_template(DEFAULT_PAYLOADS_DIR, event, action)


@pytest.fixture
def local(tmp_path):
    """The App with the single-machine queue: no Redis needed to see what was queued."""
    store = SqliteQueue(tmp_path / "queue.sqlite3")
    app = create_app(AppSettings(app_id=1, webhook_secret=SECRET, cache_dir=tmp_path), store)
    return app.test_client(), store


def deliver(client, event: str, payload, delivery: str | None = None):
    body = json.dumps(payload).encode()
    return client.post("/webhook", data=body, headers={
        "X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(body, SECRET.encode())})


@pytest.mark.parametrize("event, action", EXAMPLES)
def test_github_example_bodies_are_accepted(local, event, action):
    client, store = local
    payload = example(event, action)
    if event != "ping":
        payload.setdefault("installation", {"id": 1})  # deliveries to an App always carry it
    answer = deliver(client, event, payload)
    assert answer.status_code in (200, 202), answer.json
    queued = answer.json.get("queued")
    assert queued is (True if (event, action) in REVIEWED else None)
    assert store.health()["queued"] == (1 if queued else 0)


# Examples that ask for a review: the others are closed PRs, plain issues, forks' suites, a button.
REVIEWED = {("check_run", "rerequested"), ("check_suite", "rerequested"), ("pull_request", "opened"),
            ("pull_request", "reopened"), ("pull_request", "synchronize"), ("pull_request", "ready_for_review")}


def test_an_example_without_installation_is_refused(local, caplog):
    client, store = local
    answer = deliver(client, "pull_request", example("pull_request", "ready_for_review"), "no-installation")
    assert answer.status_code == 400 and "$.installation: missing" in answer.json["error"]
    assert "'no-installation'" in caplog.text and "$.installation: missing" in caplog.text
    assert store.health()["queued"] == 0


def put(payload: dict, path: str, value) -> dict:
    """A copy with the value at a dotted path replaced (DELETE: removed)."""
    copy = json.loads(json.dumps(payload))
    *parents, last = path.split(".")
    target = copy
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    index = int(last) if isinstance(target, list) else last
    if value is DELETE:
        del target[index]
    else:
        target[index] = value
    return copy


DELETE = object()
COMMAND = {"issue": {"pull_request": {"url": "x"}}, "comment": {"body": "/migration-safe recheck"}}
WRONG_SHAPES = [
    ("pull_request", "opened", {}, "pull_request", "a string"),
    ("pull_request", "opened", {}, "pull_request", DELETE),
    ("pull_request", "opened", {}, "pull_request.head", "ec26c3e"),
    ("pull_request", "opened", {}, "pull_request.head.sha", None),
    ("pull_request", "opened", {}, "pull_request.number", "2"),
    ("pull_request", "opened", {}, "pull_request.number", True),
    ("pull_request", "opened", {}, "pull_request.state", DELETE),
    ("pull_request", "opened", {}, "repository", ["acme/shop"]),
    ("pull_request", "opened", {}, "repository.full_name", 7),
    ("pull_request", "opened", {}, "installation", 1),
    ("pull_request", "opened", {}, "installation.id", "1"),
    ("pull_request", "opened", {}, "action", None),
    ("pull_request", "opened", {"action": "edited"}, "changes", "base"),
    ("check_run", "rerequested", {}, "check_run", "x"),
    ("check_run", "rerequested", {}, "check_run.pull_requests", {"number": 1}),
    ("check_run", "rerequested", {"check_run": {"pull_requests": [{"number": 1}]}}, "check_run.pull_requests.0",
     "1"),
    ("check_run", "rerequested", {}, "check_run.head_sha", DELETE),
    ("check_suite", "rerequested", {}, "check_suite", None),
    ("check_suite", "rerequested", {}, "check_suite.pull_requests.0.number", "2"),
    ("check_suite", "requested", {}, "check_suite.pull_requests", DELETE),
    ("issue_comment", "created.with-installation", COMMAND, "comment", "/migration-safe recheck"),
    ("issue_comment", "created.with-installation", COMMAND, "comment.body", ["/migration-safe recheck"]),
    ("issue_comment", "created.with-installation", COMMAND, "comment.user", "alice"),
    ("issue_comment", "created.with-installation", COMMAND, "comment.user.login", DELETE),
    ("issue_comment", "created.with-installation", COMMAND, "comment.id", 1.5),
    ("issue_comment", "created.with-installation", COMMAND, "issue", []),
    ("issue_comment", "created.with-installation", COMMAND, "issue.number", None),
    ("issue_comment", "created.with-installation", COMMAND, "issue.pull_request", "yes"),
    ("issue_comment", "created.with-installation", {**COMMAND, "action": "edited"}, "changes", {"body": "old"}),
    ("issue_comment", "created.with-installation", {**COMMAND, "action": "edited"}, "changes.body", {"from": 1}),
    ("installation", "created", {}, "installation", "x"),
    ("installation", "created", {}, "installation.account", "octocat"),
    ("installation_repositories", "added", {}, "installation.account.login", 1),
    ("ping", None, {}, "zen", {"text": "x"}),
]


@pytest.mark.parametrize("event, action, base, path, value", WRONG_SHAPES,
                         ids=[f"{e}-{p}-{'deleted' if v is DELETE else type(v).__name__}"
                              for e, _a, _b, p, v in WRONG_SHAPES])
def test_a_payload_of_the_wrong_shape_is_400_with_a_log_line(local, caplog, event, action, base, path, value):
    client, store = local
    valid = merge(example(event, action), base)
    if "changes" in path:
        valid.setdefault("changes", {"body": {"from": ""}} if event == "issue_comment" else {"base": {}})
    assert deliver(client, event, valid).status_code in (200, 202)  # the same payload, right, is accepted
    queued_before = store.health()["queued"]
    answer = deliver(client, event, put(valid, path, value), "wrong-shape")
    assert answer.status_code == 400, answer.json
    where = "$." + ".".join(f"[{part}]" if part.isdigit() else part for part in path.split(".")).replace(".[", "[")
    assert answer.json["error"].split(": ", 1)[1].startswith(where), answer.json["error"]
    assert "'wrong-shape'" in caplog.text and where in caplog.text
    assert store.health()["queued"] == queued_before


def paths(value, prefix: str = "", depth: int = 3):
    """Every dotted path inside the objects and lists of a payload, to `depth` levels."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        path = f"{prefix}{key}"
        yield path
        if depth > 1:
            yield from paths(child, f"{path}.", depth - 1)


@pytest.mark.parametrize("event, action", [("pull_request", "synchronize"), ("check_run", "rerequested"),
                                           ("check_suite", "rerequested"),
                                           ("issue_comment", "created.with-installation")])
def test_no_field_of_any_type_makes_a_500(local, event, action):
    """Each field of a real body replaced by every JSON kind in turn, or removed: never a 500."""
    client, _store = local
    payload = merge(example(event, action), COMMAND if event == "issue_comment" else {})
    answers = set()
    for path in paths(payload):
        for value in (DELETE, None, True, 1, "x", [], {}):
            answers.add(deliver(client, event, put(payload, path, value)).status_code)
    assert answers <= {200, 202, 400} and 400 in answers


def test_nesting_deeper_than_the_parser_goes_is_400(local):
    client, store = local
    body = b'{"pull_request": ' * 100_000 + b"{}" + b"}" * 100_000
    answer = client.post("/webhook", data=body, headers={
        "X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "deep", "X-Hub-Signature-256": sign(body, SECRET)})
    assert answer.status_code == 400 and answer.json["error"] == "body is not JSON"
    assert store.health()["queued"] == 0
