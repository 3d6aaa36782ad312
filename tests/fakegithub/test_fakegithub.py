"""The fake GitHub, driven by the real client: PyGithub over a socket, and git."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from github import Auth, Github, GithubException, GithubIntegration, GithubRetry
from github.GithubException import BadCredentialsException, RateLimitExceededException
from github.PullRequest import ReviewComment

from . import FakeGitHub, sign
from .payloads import DEFAULT_PAYLOADS_DIR

OWNER, NAME = "acme", "shop"
MODELS = "".join(f"# line {n}\n" for n in range(1, 31))
MIGRATION = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        migrations.AddField("product", "sku", models.CharField(max_length=32, null=True)),
    ]
"""
# Fast clients: no throttling between calls, no retries unless a test asks.
CLIENT: dict[str, Any] = dict(
    per_page=100, retry=None, seconds_between_requests=None, seconds_between_writes=None
)


def run_git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Dev",
        "GIT_AUTHOR_EMAIL": "dev@example.com",
        "GIT_COMMITTER_NAME": "Dev",
        "GIT_COMMITTER_EMAIL": "dev@example.com",
        "GIT_CONFIG_GLOBAL": os.devnull,  # no credential helper may answer for us
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
    }
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=check)


def commit_all(repo: Path, message: str) -> str:
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-q", "-m", message)
    return run_git(repo, "rev-parse", "HEAD").stdout.strip()


@pytest.fixture
def local_repo(tmp_path: Path) -> Path:
    """main: models and 0001; feature: 0002 added and models.py line 20 changed."""
    repo = tmp_path / "shop"
    repo.mkdir()
    run_git(repo, "init", "-q", "-b", "main")
    (repo / "shop" / "migrations").mkdir(parents=True)
    (repo / "shop" / "models.py").write_text(MODELS)
    (repo / "shop" / "migrations" / "0001_initial.py").write_text("# initial\n")
    commit_all(repo, "initial")
    run_git(repo, "checkout", "-q", "-b", "feature")
    (repo / "shop" / "migrations" / "0002_add_sku.py").write_text(MIGRATION)
    (repo / "shop" / "models.py").write_text(MODELS.replace("# line 20\n", "sku = 'x'\n"))
    commit_all(repo, "add sku")
    run_git(repo, "checkout", "-q", "main")
    return repo


@pytest.fixture(scope="module")
def app_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture
def fake(app_key: rsa.RSAPrivateKey, local_repo: Path) -> Iterator[FakeGitHub]:
    public = app_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with FakeGitHub(app_public_key=public) as server:
        server.add_repo(OWNER, NAME, local_repo)
        server.open_pull(OWNER, NAME, head="feature", user="dev")
        yield server


@pytest.fixture
def integration(fake: FakeGitHub, app_key: rsa.RSAPrivateKey) -> GithubIntegration:
    return GithubIntegration(auth=Auth.AppAuth(fake.app_id, pem(app_key)), base_url=fake.url, **CLIENT)


@pytest.fixture
def gh(integration: GithubIntegration, fake: FakeGitHub) -> Github:
    """The client the app uses: installation auth obtained from its JWT."""
    return integration.get_github_for_installation(fake.installation_id)


def head_sha(repo: Path, ref: str = "feature") -> str:
    return run_git(repo, "rev-parse", ref).stdout.strip()


# --- app authentication -------------------------------------------------------


def test_app_jwt_gets_installation_tokens(fake: FakeGitHub, integration: GithubIntegration) -> None:
    assert integration.get_app().slug == "migration-safe"
    installation = integration.get_repo_installation(OWNER, NAME)
    assert installation.id == fake.installation_id

    first = integration.get_access_token(installation.id)
    second = integration.get_access_token(installation.id)

    assert first.token.startswith("ghs_") and first.token != second.token
    in_an_hour = datetime.now(timezone.utc) + timedelta(hours=1)
    assert abs((first.expires_at - in_an_hour).total_seconds()) < 60
    assert fake.issued_tokens == [first.token, second.token]
    jwt_call = fake.find_requests("POST", r"/app/installations/\d+/access_tokens$")[0]
    assert jwt_call.headers["authorization"].startswith("Bearer ")


def test_jwt_signed_by_another_key_is_refused(fake: FakeGitHub) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signed_by_stranger = Auth.AppAuth(fake.app_id, pem(stranger))
    integration = GithubIntegration(auth=signed_by_stranger, base_url=fake.url, **CLIENT)
    with pytest.raises(GithubException) as refused:
        integration.get_access_token(fake.installation_id)
    assert refused.value.status == 401


def test_unknown_expired_and_missing_tokens_get_401(fake: FakeGitHub, gh: Github) -> None:
    unknown = Github(auth=Auth.Token("ghs_" + "x" * 36), base_url=fake.url, **CLIENT)
    with pytest.raises(BadCredentialsException):
        unknown.get_repo(f"{OWNER}/{NAME}")
    with pytest.raises(GithubException) as anonymous:
        Github(base_url=fake.url, **CLIENT).get_repo(f"{OWNER}/{NAME}")
    assert anonymous.value.status == 401

    gh.get_repo(f"{OWNER}/{NAME}")  # the installation token works...
    expired = Github(auth=Auth.Token(fake.issued_tokens[0]), base_url=fake.url, **CLIENT)
    fake.expire_tokens()
    with pytest.raises(BadCredentialsException):
        expired.get_repo(f"{OWNER}/{NAME}")


# --- repositories and pull requests ---------------------------------------------


def test_repo_and_pull_come_from_the_local_git_repository(
    fake: FakeGitHub, gh: Github, local_repo: Path
) -> None:
    repo = gh.get_repo(f"{OWNER}/{NAME}")
    assert repo.default_branch == "main"
    assert repo.clone_url == f"{fake.web_url}/{OWNER}/{NAME}.git"

    pull = repo.get_pull(1)
    assert (pull.state, pull.user.login, pull.base.ref, pull.head.ref) == ("open", "dev", "main", "feature")
    assert pull.head.sha == head_sha(local_repo)
    assert pull.base.sha == head_sha(local_repo, "main")
    assert pull.head.repo.full_name == f"{OWNER}/{NAME}"

    files = {f.filename: f for f in pull.get_files()}
    assert set(files) == {"shop/migrations/0002_add_sku.py", "shop/models.py"}
    added = files["shop/migrations/0002_add_sku.py"]
    assert (added.status, added.additions, added.deletions) == ("added", 9, 0)
    assert added.patch.startswith("@@ -0,0 +1,9 @@\n+from django.db")
    assert files["shop/models.py"].patch.startswith("@@ -17,7 +17,7 @@")


def test_pull_from_a_fork(fake: FakeGitHub, gh: Github, local_repo: Path, tmp_path: Path) -> None:
    fork = tmp_path / "fork"
    run_git(tmp_path, "clone", "-q", str(local_repo), str(fork))
    run_git(fork, "checkout", "-q", "-b", "contrib", "origin/feature")
    (fork / "shop" / "migrations" / "0003_more.py").write_text("# more\n")
    sha = commit_all(fork, "more")
    fake.add_repo("contributor", NAME, fork, fork=True)

    fake.open_pull(OWNER, NAME, head="contrib", head_repo=f"contributor/{NAME}", user="contributor")

    pull = gh.get_repo(f"{OWNER}/{NAME}").get_pull(2)
    assert pull.head.repo.full_name == f"contributor/{NAME}" and pull.head.repo.fork
    assert pull.head.sha == sha and pull.base.repo.full_name == f"{OWNER}/{NAME}"
    assert "shop/migrations/0003_more.py" in [f.filename for f in pull.get_files()]
    # As on GitHub, the base repository has the fork's head under refs/pull/N/head.
    assert head_sha(local_repo, "refs/pull/2/head") == sha


def test_files_are_paginated_and_capped_at_3000(fake: FakeGitHub, gh: Github) -> None:
    patch = "@@ -0,0 +1 @@\n+x = 1"
    files = [
        {"filename": f"app{i}/migrations/0001_initial.py", "status": "added", "patch": patch}
        for i in range(3100)
    ]
    fake.open_pull(OWNER, NAME, head="feature", files=files)

    listed = list(gh.get_repo(f"{OWNER}/{NAME}").get_pull(2).get_files())

    assert len(listed) == 3000 and listed[-1].filename == "app2999/migrations/0001_initial.py"
    assert len(fake.find_requests("GET", r"/pulls/2/files$")) == 30
    assert fake.pull(OWNER, NAME, 2)["changed_files"] == 3100


def test_synchronize_moves_the_head(fake: FakeGitHub, gh: Github, local_repo: Path) -> None:
    run_git(local_repo, "checkout", "-q", "feature")
    (local_repo / "shop" / "migrations" / "0003_index.py").write_text("# index\n")
    new_head = commit_all(local_repo, "index")

    fake.synchronize_pull(OWNER, NAME, 1)

    pull = gh.get_repo(f"{OWNER}/{NAME}").get_pull(1)
    assert pull.head.sha == new_head
    assert "shop/migrations/0003_index.py" in [f.filename for f in pull.get_files()]
    payload = fake.webhook_payload("pull_request", "synchronize", pull=1)
    assert payload["after"] == new_head and payload["before"] != new_head


# --- check runs -------------------------------------------------------------------


def make_annotations(count: int, start: int = 1) -> list[dict[str, str | int]]:
    return [
        {
            "path": "shop/migrations/0002_add_sku.py",
            "start_line": n,
            "end_line": n,
            "annotation_level": "failure",
            "message": f"MS102 finding {n}",
        }
        for n in range(start, start + count)
    ]


def test_check_run_keeps_annotations_of_every_batch(fake: FakeGitHub, gh: Github, local_repo: Path) -> None:
    repo = gh.get_repo(f"{OWNER}/{NAME}")
    sha = head_sha(local_repo)
    run = repo.create_check_run(
        name="migration-safe",
        head_sha=sha,
        status="in_progress",
        output={"title": "Reviewing", "summary": "…", "annotations": make_annotations(50)},
    )
    run.edit(
        conclusion="failure",
        output={
            "title": "1 blocking migration",
            "summary": "| phase |",
            "annotations": make_annotations(30, 51),
        },
    )

    stored = fake.check_runs(OWNER, NAME, head_sha=sha)[0]
    assert (stored["status"], stored["conclusion"]) == ("completed", "failure")
    assert stored["output"]["title"] == "1 blocking migration"
    assert [a["start_line"] for a in stored["output"]["annotations"]] == list(range(1, 81))
    assert repo.get_check_run(run.id).output.annotations_count == 80
    assert len(list(run.get_annotations())) == 80
    listed = list(repo.get_commit(sha).get_check_runs(check_name="migration-safe"))
    assert [r.id for r in listed] == [run.id]


def test_check_run_refuses_more_than_50_annotations(gh: Github, local_repo: Path) -> None:
    repo = gh.get_repo(f"{OWNER}/{NAME}")
    with pytest.raises(GithubException) as refused:
        repo.create_check_run(
            name="migration-safe",
            head_sha=head_sha(local_repo),
            output={"title": "t", "summary": "s", "annotations": make_annotations(51)},
        )
    assert refused.value.status == 422
    assert "No more than 50 items are allowed; 51 were supplied." in refused.value.data["message"]


def test_a_check_run_is_the_apps_that_created_it_and_only_that_app_updates_it(
    fake: FakeGitHub, gh: Github, local_repo: Path
) -> None:
    sha = head_sha(local_repo)
    ours = gh.get_repo(f"{OWNER}/{NAME}").create_check_run(name="migration-safe", head_sha=sha)
    workflow = Github(auth=Auth.Token(fake.actions_token(OWNER, NAME)), base_url=fake.url, **CLIENT)
    theirs = workflow.get_repo(f"{OWNER}/{NAME}").create_check_run(name="migration-safe", head_sha=sha)

    assert (ours.app.id, theirs.app.id) == (fake.app_id, fake.actions_app_id)
    assert (theirs.app.slug, theirs.app.name) == ("github-actions", "GitHub Actions")
    assert ours.check_suite.id != theirs.check_suite.id
    # "latest" is per suite: both Apps' runs of the name are listed, newest first; app_id selects.
    listed = gh.get_repo(f"{OWNER}/{NAME}").get_commit(sha).get_check_runs(check_name="migration-safe")
    assert [r.id for r in listed] == [theirs.id, ours.id]
    url = f"{fake.url}/repos/{OWNER}/{NAME}/commits/{sha}/check-runs"
    _, data = gh.requester.requestJsonAndCheck("GET", url, parameters={"app_id": fake.app_id})
    assert [r["id"] for r in data["check_runs"]] == [ours.id]

    with pytest.raises(GithubException) as refused:
        gh.get_repo(f"{OWNER}/{NAME}").get_check_run(theirs.id).edit(status="completed", conclusion="success")
    assert refused.value.status == 403
    assert refused.value.data["message"] == (
        f"Invalid app_id `{fake.actions_app_id}` - check run can only be modified by the GitHub App that created it."
    )
    assert fake.check_runs(OWNER, NAME, head_sha=sha)[1]["status"] == "queued"
    with pytest.raises(GithubException) as person:
        user = Github(auth=Auth.Token(fake.add_user_token("dev")), base_url=fake.url, **CLIENT)
        user.get_repo(f"{OWNER}/{NAME}").create_check_run(name="migration-safe", head_sha=sha)
    assert (person.value.status, person.value.data["message"]) == (403, "You must authenticate via a GitHub App.")


# --- labels, comments, reactions --------------------------------------------------


def test_labels_add_remove_and_replace(fake: FakeGitHub, gh: Github) -> None:
    repo = gh.get_repo(f"{OWNER}/{NAME}")
    repo.create_label("migration: pre-deploy", "0e8a16", "Runs before the deploy")
    assert repo.get_label("Migration: Pre-Deploy").color == "0e8a16"  # names are case-insensitive
    pull = repo.get_pull(1)

    pull.add_to_labels("migration: pre-deploy", "migration: needs-split")
    pull.remove_from_labels("migration: needs-split")
    assert fake.labels(OWNER, NAME, 1) == ["migration: pre-deploy"]

    pull.set_labels("migration: deferred")
    assert [label.name for label in pull.get_labels()] == ["migration: deferred"]
    with pytest.raises(GithubException) as missing:
        pull.remove_from_labels("migration: pre-deploy")
    assert missing.value.status == 404
    with pytest.raises(GithubException) as duplicate:
        repo.create_label("migration: pre-deploy", "ffffff")
    assert duplicate.value.status == 422


def test_issue_comment_create_edit_react_delete(fake: FakeGitHub, gh: Github) -> None:
    fake.add_comment(OWNER, NAME, 1, "/migration-safe recheck", user="alice")
    pull = gh.get_repo(f"{OWNER}/{NAME}").get_pull(1)

    comment = pull.create_issue_comment("<!-- migration-safe -->\nsummary v1")
    assert (comment.user.login, comment.user.type) == (fake.bot_login, "Bot")
    comment.edit("<!-- migration-safe -->\nsummary v2")
    human = pull.get_issue_comments()[0]
    human.create_reaction("eyes")
    human.create_reaction("eyes")  # idempotent, as on GitHub

    stored = fake.issue_comments(OWNER, NAME, 1)
    assert [(c["user"]["login"], c["body"].splitlines()[-1]) for c in stored] == [
        ("alice", "/migration-safe recheck"),
        (fake.bot_login, "summary v2"),
    ]
    assert stored[1]["updated_at"] >= stored[1]["created_at"]
    assert [(r["content"], r["user"]["login"]) for r in fake.reactions(OWNER, NAME, human.id)] == [
        ("eyes", fake.bot_login)
    ]
    comment.delete()
    assert len(fake.issue_comments(OWNER, NAME, 1)) == 1


# --- reviews ----------------------------------------------------------------------


def test_review_comment_must_be_inside_a_hunk(fake: FakeGitHub, gh: Github, local_repo: Path) -> None:
    repo = gh.get_repo(f"{OWNER}/{NAME}")
    pull = repo.get_pull(1)
    commit = repo.get_commit(head_sha(local_repo))
    suggestion = "```suggestion\nsku = None\n```"
    inside: ReviewComment = {"path": "shop/models.py", "line": 20, "side": "RIGHT", "body": suggestion}
    outside: ReviewComment = {"path": "shop/models.py", "line": 2, "side": "RIGHT", "body": "nope"}

    review = pull.create_review(commit=commit, body="migration-safe", event="COMMENT", comments=[inside])
    with pytest.raises(GithubException) as refused:
        pull.create_review(commit=commit, body="again", event="COMMENT", comments=[inside, outside])
    with pytest.raises(GithubException) as refused_single:
        pull.create_review_comment("nope", commit, "shop/models.py", line=2, side="RIGHT")

    assert review.state == "COMMENTED"
    assert refused.value.status == 422
    assert "Pull request review thread line must be part of the diff" in refused.value.data["errors"][0]
    assert refused_single.value.status == 422
    assert refused_single.value.data["errors"][0]["message"] == (
        "pull_request_review_thread.line must be part of the diff"
    )
    stored = fake.review_comments(OWNER, NAME, 1)  # all or nothing: only the first review's comment
    assert [(c["path"], c["line"], c["side"]) for c in stored] == [("shop/models.py", 20, "RIGHT")]
    assert stored[0]["diff_hunk"].startswith("@@ -17,7 +17,7 @@")
    assert stored[0]["diff_hunk"].endswith("+sku = 'x'")  # from the hunk header down to the line
    assert [c.body for c in pull.get_review_comments()] == [inside["body"]]


# --- permissions ------------------------------------------------------------------


def test_collaborator_permission(fake: FakeGitHub, gh: Github) -> None:
    fake.set_role(OWNER, NAME, "alice", "write")
    fake.set_role(OWNER, NAME, "bob", "maintain")
    repo = gh.get_repo(f"{OWNER}/{NAME}")

    assert repo.get_collaborator_permission("alice") == "write"
    assert repo.get_collaborator_permission("bob") == "write"
    assert repo.get_collaborator_role_name("bob") == "maintain"
    assert repo.get_collaborator_permission(OWNER) == "admin"
    assert repo.get_collaborator_permission("stranger") == "read"  # public repository


# --- faults and recording ---------------------------------------------------------


def test_fault_injection_then_success(fake: FakeGitHub, gh: Github) -> None:
    repo = gh.get_repo(f"{OWNER}/{NAME}")
    fake.fail_next("GET", r"/pulls/1$", 502, body="<html>Bad Gateway</html>")
    with pytest.raises(GithubException) as bad_gateway:
        repo.get_pull(1)
    assert bad_gateway.value.status == 502
    assert repo.get_pull(1).number == 1

    fake.fail_next(
        "POST",
        r"/issues/1/comments$",
        403,
        body={"message": "You have exceeded a secondary rate limit. Please wait a few minutes."},
        headers={"Retry-After": "0"},
    )
    with pytest.raises(RateLimitExceededException):
        repo.get_pull(1).create_issue_comment("hello")
    assert fake.pending_faults == 0


def test_retrying_client_rides_over_faults(fake: FakeGitHub, integration: GithubIntegration) -> None:
    token = integration.get_access_token(fake.installation_id).token
    retrying = dict(CLIENT, retry=GithubRetry(total=3, backoff_factor=0))
    gh = Github(auth=Auth.Token(token), base_url=fake.url, **retrying)
    fake.fail_next(None, r"/repos/acme/shop$", 502, times=2)

    assert gh.get_repo(f"{OWNER}/{NAME}").name == NAME
    assert [r.status for r in fake.find_requests("GET", r"/repos/acme/shop$")] == [502, 502, 200]


def test_requests_are_recorded(fake: FakeGitHub, gh: Github) -> None:
    gh.get_repo(f"{OWNER}/{NAME}").get_pull(1).create_issue_comment("hello")

    sent = fake.find_requests("POST", r"/issues/1/comments$")
    assert len(sent) == 1 and sent[0].json == {"body": "hello"}
    assert sent[0].headers["authorization"] == f"token {fake.issued_tokens[-1]}"
    assert all("BEGIN RSA PRIVATE KEY" not in r.text for r in fake.requests)


# --- git over HTTP ----------------------------------------------------------------


def test_git_clone_needs_an_installation_token(
    fake: FakeGitHub, integration: GithubIntegration, local_repo: Path, tmp_path: Path
) -> None:
    token = integration.get_access_token(fake.installation_id).token
    host = fake.web_url.removeprefix("http://")
    clone_url = f"http://x-access-token:{token}@{host}/{OWNER}/{NAME}.git"

    run_git(tmp_path, "clone", "-q", clone_url, "clone")
    run_git(tmp_path / "clone", "fetch", "-q", "origin", "refs/pull/1/head")

    assert (tmp_path / "clone" / "shop" / "models.py").read_text() == MODELS
    assert head_sha(tmp_path / "clone", "FETCH_HEAD") == head_sha(local_repo)
    anonymous = run_git(tmp_path, "clone", "-q", f"{fake.web_url}/{OWNER}/{NAME}.git", "anon", check=False)
    wrong_url = f"http://x-access-token:ghs_wrong@{host}/{OWNER}/{NAME}.git"
    wrong = run_git(tmp_path, "clone", "-q", wrong_url, "wrong", check=False)
    assert anonymous.returncode != 0 and wrong.returncode != 0
    assert 401 in [r.status for r in fake.find_requests("GET", r"/info/refs$")]


def clone_with(fake: FakeGitHub, token: str, dest: Path) -> Path:
    host = fake.web_url.removeprefix("http://")
    run_git(dest.parent, "clone", "-q", f"http://x-access-token:{token}@{host}/{OWNER}/{NAME}.git", dest.name)
    run_git(dest, "checkout", "-q", "feature")
    (dest / "shop" / "migrations" / "0003_more.py").write_text("# more\n")
    commit_all(dest, "more")
    return dest


def test_push_with_contents_write_moves_the_branch_and_the_pull(
    fake: FakeGitHub, integration: GithubIntegration, gh: Github, local_repo: Path, tmp_path: Path
) -> None:
    old_head = head_sha(local_repo)
    clone = clone_with(fake, integration.get_access_token(fake.installation_id).token, tmp_path / "clone")
    new_head = head_sha(clone, "HEAD")

    # A lease that does not hold (the branch is not where the pusher thinks) is refused.
    stale = run_git(clone, "push", "--porcelain", f"--force-with-lease=refs/heads/feature:{new_head}",
                    "origin", "HEAD:refs/heads/feature", check=False)
    assert stale.returncode != 0 and "[rejected]" in stale.stdout and head_sha(local_repo) == old_head
    # GitHub's own refs cannot be pushed to.
    hidden = run_git(clone, "push", "--porcelain", "origin", "HEAD:refs/pull/1/head", check=False)
    assert hidden.returncode != 0 and "hidden ref" in hidden.stdout

    run_git(clone, "push", "-q", f"--force-with-lease=refs/heads/feature:{old_head}", "origin", "HEAD:feature")

    assert head_sha(local_repo) == new_head
    pull = gh.get_repo(f"{OWNER}/{NAME}").get_pull(1)
    assert pull.head.sha == new_head  # the PR follows its branch
    assert "shop/migrations/0003_more.py" in [f.filename for f in pull.get_files()]
    assert head_sha(local_repo, "refs/pull/1/head") == new_head


def test_push_needs_contents_write(
    fake: FakeGitHub, integration: GithubIntegration, local_repo: Path, tmp_path: Path
) -> None:
    fake.set_installation_permissions(contents="read")
    token = integration.get_access_token(fake.installation_id)
    assert token.permissions["contents"] == "read"
    assert integration.get_app_installation(fake.installation_id).permissions["contents"] == "read"
    clone = clone_with(fake, token.token, tmp_path / "clone")

    denied = run_git(clone, "push", "origin", "HEAD:feature", check=False)

    assert denied.returncode != 0 and "403" in denied.stderr
    assert head_sha(local_repo) != head_sha(clone, "HEAD")
    with pytest.raises(GithubException) as more:  # a token cannot ask for more than was granted
        integration.get_access_token(fake.installation_id, permissions={"contents": "write"})
    assert more.value.status == 422


# --- webhooks ---------------------------------------------------------------------


def test_webhook_payloads_have_githubs_shape(fake: FakeGitHub, local_repo: Path) -> None:
    opened = fake.webhook_payload("pull_request", "opened", pull=1)
    assert opened["action"] == "opened" and opened["number"] == 1
    assert opened["pull_request"]["head"]["sha"] == head_sha(local_repo)
    assert opened["repository"]["full_name"] == f"{OWNER}/{NAME}"
    assert opened["installation"]["id"] == fake.installation_id
    assert opened["sender"]["login"] == "dev"

    comment = fake.add_comment(OWNER, NAME, 1, "/migration-safe help", user="alice")
    created = fake.webhook_payload("issue_comment", "created", comment=comment["id"])
    assert created["issue"]["number"] == 1 and "pull_request" in created["issue"]
    assert created["comment"]["body"] == "/migration-safe help"
    assert created["sender"]["login"] == "alice"

    suite = fake.webhook_payload("check_suite", "requested", pull=1, check_suite={"head_branch": "x"})
    assert suite["check_suite"]["head_sha"] == head_sha(local_repo)
    assert suite["check_suite"]["head_branch"] == "x"  # overrides merge into nested objects

    body, headers = fake.delivery("pull_request", "opened", secret="s3cret", pull=1)
    assert headers["X-Hub-Signature-256"] == sign(body, "s3cret")
    assert json.loads(body)["pull_request"]["number"] == 1


def test_check_run_webhook_lists_the_pull_request(fake: FakeGitHub, gh: Github, local_repo: Path) -> None:
    sha = head_sha(local_repo)
    run = gh.get_repo(f"{OWNER}/{NAME}").create_check_run(name="migration-safe", head_sha=sha)

    payload = fake.webhook_payload("check_run", "rerequested", check_run=run.id, sender="alice")

    assert payload["check_run"]["id"] == run.id and payload["check_run"]["head_sha"] == sha
    assert payload["check_run"]["check_suite"]["head_sha"] == sha
    assert [p["number"] for p in payload["check_run"]["pull_requests"]] == [1]
    assert payload["check_run"]["app"]["id"] == fake.app_id
    assert payload["sender"]["login"] == "alice"


@pytest.mark.skipif(not DEFAULT_PAYLOADS_DIR.is_dir(), reason="no copy of GitHub's example payloads")
@pytest.mark.parametrize(
    "event, action",
    [("pull_request", "opened"), ("pull_request", "synchronize"), ("issue_comment", "created")],
)
def test_webhook_keeps_githubs_top_level_keys(fake: FakeGitHub, event: str, action: str) -> None:
    comment = fake.add_comment(OWNER, NAME, 1, "hi")
    template = json.loads((DEFAULT_PAYLOADS_DIR / f"{event}.{action}.json").read_text())

    payload = fake.webhook_payload(event, action, pull=1, comment=comment["id"])

    # Deliveries to an App always carry the installation; "organization" only for org repositories.
    assert set(payload) == (set(template) | {"installation", "organization"})
    for key in ("repository", "sender"):
        assert set(template[key]) <= set(payload[key])


def test_generated_app_key_is_verified(local_repo: Path) -> None:
    with FakeGitHub() as server:
        server.add_repo(OWNER, NAME, local_repo)
        integration = GithubIntegration(
            auth=Auth.AppAuth(server.app_id, server.app_private_key), base_url=server.url, **CLIENT
        )
        gh = integration.get_github_for_installation(server.installation_id)

        assert gh.get_repo(f"{OWNER}/{NAME}").full_name == f"{OWNER}/{NAME}"
        assert server.find_requests("POST", r"/access_tokens$")[0].status == 201
