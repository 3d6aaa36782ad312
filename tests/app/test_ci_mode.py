"""`migration-safe ci` as a GitHub Actions step: a subprocess with the Actions environment, against
the fake GitHub, publishing what the App publishes for the same pull request."""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fakegithub import FakeGitHub

from migration_safe.app.events import ReviewJob
from migration_safe.app.settings import settings_from_environment
from migration_safe.app.worker import Worker

from projects import DEMO, GitProject
from .samples import MIXED

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "migration_safe.cli"]


def make_project(root: Path) -> GitProject:
    """The demo shop on main, and a branch `feature` adding a migration that mixes deploy phases."""
    shutil.copytree(DEMO / "base", root, ignore=shutil.ignore_patterns("__pycache__"))
    project = GitProject(root)
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    project.base = project.commit("base")
    project.git("checkout", "-q", "-b", "feature")
    project.migration("shop", "0002_mixed", MIXED)
    project.commit("add a mixed migration")
    project.git("checkout", "-q", "main")
    return project


@pytest.fixture
def project(tmp_path) -> GitProject:
    return make_project(tmp_path / "shop")


def auth_header(token: str) -> str:
    return "Authorization: Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()


def checkout(fake: FakeGitHub, token: str, where: Path, *, shallow: bool) -> Path:
    """What actions/checkout leaves: origin set, one commit when shallow (its default), and no
    credentials in the config (`persist-credentials: false`)."""
    url = f"{fake.web_url}/acme/shop.git"
    subprocess.run(["git", "init", "-q", str(where)], check=True)
    git = ["git", "-C", str(where)]
    subprocess.run([*git, "remote", "add", "origin", url], check=True)
    depth = ["--depth=1"] if shallow else []
    subprocess.run([*git, "-c", f"http.extraHeader={auth_header(token)}", "fetch", "-q", *depth, "origin",
                    "main"], check=True)
    subprocess.run([*git, "checkout", "-q", "--detach", "FETCH_HEAD"], check=True)
    return where


def run_ci(fake: FakeGitHub, workspace: Path, token: str, tmp_path: Path, event: dict | None = None,
           event_name: str = "pull_request", args: tuple[str, ...] = ()):
    payload = event or fake.webhook_payload("pull_request", "opened", pull=1)
    payload.pop("installation", None)  # a workflow's event has none
    event_path = tmp_path / "event.json"
    event_path.write_text(json.dumps(payload))
    summary = tmp_path / "step_summary.md"
    summary.touch()
    env = {**os.environ, "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": event_name,
           "GITHUB_EVENT_PATH": str(event_path), "GITHUB_REPOSITORY": "acme/shop", "GITHUB_API_URL": fake.url,
           "GITHUB_WORKSPACE": str(workspace), "GITHUB_STEP_SUMMARY": str(summary), "CI_TOKEN": token,
           "MIGRATION_SAFE_PACE_WRITES": "0"}
    env.pop("GITHUB_TOKEN", None)
    done = subprocess.run([*CLI, "ci", "--token-env", "CI_TOKEN", *args], cwd=workspace, env=env, capture_output=True,
                          text=True, timeout=600)
    return done, summary.read_text()


def published(fake: FakeGitHub) -> dict:
    """What a person sees on pull request #1: the latest check run, labels, summary, review comments."""
    head = fake.pull("acme", "shop", 1)["head"]["sha"]
    run = fake.check_runs("acme", "shop", head_sha=head)[-1]
    annotations = [{k: a[k] for k in ("path", "start_line", "end_line", "annotation_level", "title", "message",
                                      "raw_details")} for a in run["output"]["annotations"]]
    summaries = [c["body"] for c in fake.issue_comments("acme", "shop", 1) if "migration-safe:summary" in c["body"]]
    reviews = [{"body": r["body"], "comments": [{k: c.get(k) for k in ("path", "line", "start_line", "side", "body")}
                                                for c in r["comments"]]} for r in fake.reviews("acme", "shop", 1)]
    return {"check": {k: run[k] for k in ("name", "status", "conclusion")},
            "output": {k: run["output"][k] for k in ("title", "summary", "text")}, "annotations": annotations,
            "labels": sorted(fake.labels("acme", "shop", 1)), "summaries": summaries, "reviews": reviews}


def app_review(fake: FakeGitHub, monkeypatch) -> None:
    """The App's worker reviews pull request #1 (the queue left out: one job, in this process)."""
    for key, value in {"GITHUB_APP_ID": str(fake.app_id), "GITHUB_APP_PRIVATE_KEY": fake.app_private_key,
                       "GITHUB_WEBHOOK_SECRET": "x", "GITHUB_API_URL": fake.url,
                       "GITHUB_APP_BOT_LOGIN": fake.bot_login, "MIGRATION_SAFE_PACE_WRITES": "0"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("REDIS_URL", raising=False)
    head = fake.pull("acme", "shop", 1)["head"]["sha"]
    job = ReviewJob(fake.installation_id, "acme/shop", 1, head, "pull_request.opened")
    Worker(settings_from_environment(), lambda repo, pr: None).run(job.to_dict())


def test_pull_request_publishes_what_the_app_publishes(project, tmp_path, monkeypatch):
    with FakeGitHub() as by_app, FakeGitHub() as by_ci:
        for fake in (by_app, by_ci):
            fake.add_repo("acme", "shop", project.root)
            fake.open_pull("acme", "shop", head="feature", base="main")
        app_review(by_app, monkeypatch)
        token = by_ci.actions_token("acme", "shop")
        workspace = checkout(by_ci, token, tmp_path / "workspace", shallow=False)

        done, summary = run_ci(by_ci, workspace, token, tmp_path)

        assert done.returncode == 1, done.stderr  # blocking, as `check` says it
        expected, got = published(by_app), published(by_ci)
        assert got["check"] == {"name": "migration-safe", "status": "completed", "conclusion": "failure"}
        assert ("shop/migrations/0002_mixed.py", 13) in {(a["path"], a["start_line"]) for a in got["annotations"]}
        assert got["labels"] == ["migration: needs-split"]
        assert len(got["summaries"]) == 1 and len(got["reviews"]) == 1
        assert any("MS101" in c["body"] for c in got["reviews"][0]["comments"])
        assert got == expected
        [comment] = [c for c in by_ci.issue_comments("acme", "shop", 1) if "migration-safe:summary" in c["body"]]
        assert comment["user"]["login"] == "github-actions[bot]"
        assert "needs split" in summary.lower() and "0002_mixed" in summary
        assert "::error" not in done.stdout  # the check run carries the annotations: not twice


def test_shallow_checkout_fetches_what_it_needs_and_a_second_run_duplicates_nothing(project, tmp_path):
    # The fork point lies deeper than a first fetch of the head brings, and main moved on since.
    project.git("checkout", "-q", "feature")
    for n in range(60):
        project.git("commit", "-q", "--allow-empty", "-m", f"work {n}")
    project.git("checkout", "-q", "main")
    project.write("README.txt", "main moved on\n")
    project.commit("main moved on")
    with FakeGitHub() as fake:
        fake.add_repo("acme", "shop", project.root)
        fake.open_pull("acme", "shop", head="feature", base="main")
        token = fake.actions_token("acme", "shop")
        workspace = checkout(fake, token, tmp_path / "workspace", shallow=True)
        head, base = (fake.pull("acme", "shop", 1)[side]["sha"] for side in ("head", "base"))
        shallow = subprocess.run(["git", "-C", str(workspace), "cat-file", "-e", head], capture_output=True)
        assert shallow.returncode != 0  # the head is not in the checkout: ci must fetch it

        first, _ = run_ci(fake, workspace, token, tmp_path)
        assert first.returncode == 1, first.stderr
        assert subprocess.run(["git", "-C", str(workspace), "merge-base", head, base], capture_output=True,
                              text=True).stdout.strip() == project.base
        before = published(fake)
        second, summary = run_ci(fake, workspace, token, tmp_path)

        assert second.returncode == 1, second.stderr
        assert published(fake) == before  # one summary comment, one review, the same labels and check
        assert [c for c in fake.issue_comments("acme", "shop", 1) if "migration-safe:summary" in c["body"]] \
            == [c for c in fake.issue_comments("acme", "shop", 1)]
        assert len(fake.issue_comments("acme", "shop", 1)) == 1
        assert len(fake.reviews("acme", "shop", 1)) == 1
        assert [r["status"] for r in fake.check_runs("acme", "shop", head_sha=head)] == ["completed", "completed"]
        assert "0002_mixed" in summary


def test_fork_pull_request_with_a_read_only_token_annotates_summarises_and_fails_the_job(project, tmp_path):
    fork = tmp_path / "fork"
    subprocess.run(["git", "clone", "-q", str(project.root), str(fork)], check=True)
    subprocess.run(["git", "-C", str(fork), "branch", "-q", "feature", "origin/feature"], check=True)
    with FakeGitHub() as fake:
        fake.add_repo("acme", "shop", project.root)
        fake.add_repo("someone", "shop", fork, fork=True)
        fake.open_pull("acme", "shop", head="feature", base="main", head_repo="someone/shop")
        token = fake.actions_token("acme", "shop", read_only=True)
        workspace = checkout(fake, token, tmp_path / "workspace", shallow=True)

        done, summary = run_ci(fake, workspace, token, tmp_path)

        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr
        assert "::error file=shop/migrations/0002_mixed.py,line=13" in done.stdout
        [warning] = [line for line in done.stdout.splitlines() if line.startswith("::warning")]
        assert "403" in warning and "Resource not accessible by integration" in warning
        assert "comes from a fork" in warning and "read-only token" in warning
        assert "no check run" in warning and "labels" in warning
        assert "0002_mixed" in summary
        head = fake.pull("acme", "shop", 1)["head"]["sha"]
        assert fake.check_runs("acme", "shop", head_sha=head) == []
        assert fake.labels("acme", "shop", 1) == [] and fake.issue_comments("acme", "shop", 1) == []
        assert fake.reviews("acme", "shop", 1) == []
        refused = fake.find_requests("POST", r"/check-runs$")
        assert [r.status for r in refused] == [403]  # asked once, then nothing more was tried


def test_a_token_that_may_write_only_checks_publishes_the_check_run_and_says_what_it_could_not(project, tmp_path):
    with FakeGitHub() as fake:
        fake.add_repo("acme", "shop", project.root)
        fake.open_pull("acme", "shop", head="feature", base="main")
        token = fake.actions_token("acme", "shop", read_only=True, checks="write")
        workspace = checkout(fake, token, tmp_path / "workspace", shallow=True)

        done, _ = run_ci(fake, workspace, token, tmp_path)

        assert done.returncode == 1, done.stderr
        head = fake.pull("acme", "shop", 1)["head"]["sha"]
        [run] = fake.check_runs("acme", "shop", head_sha=head)
        assert (run["status"], run["conclusion"]) == ("completed", "failure")
        assert ("shop/migrations/0002_mixed.py", 13) in {(a["path"], a["start_line"])
                                                          for a in run["output"]["annotations"]}
        assert fake.labels("acme", "shop", 1) == [] and fake.issue_comments("acme", "shop", 1) == []
        assert fake.reviews("acme", "shop", 1) == []
        [warning] = [line for line in done.stdout.splitlines() if line.startswith("::warning")]
        assert "403" in warning and "only the check run was published" in warning


def test_pull_request_target_is_refused(project, tmp_path):
    with FakeGitHub() as fake:
        fake.add_repo("acme", "shop", project.root)
        fake.open_pull("acme", "shop", head="feature", base="main")
        token = fake.actions_token("acme", "shop")
        event = fake.webhook_payload("pull_request", "opened", pull=1)

        done, _ = run_ci(fake, tmp_path, token, tmp_path, event=event, event_name="pull_request_target")

        assert done.returncode == 2 and "pull_request_target" in done.stderr
        assert fake.find_requests("POST") == []


INDEX = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        migrations.AddIndex(model_name="product", index=models.Index(fields=["price"], name="product_price_idx")),
    ]
'''
IGNORE = "/migration-safe ignore MS101 shop.0002_x -- product has 40 rows, the lock lasts milliseconds"


def test_ignore_in_a_comment_by_a_writer_turns_the_check_green_and_a_readers_is_refused(tmp_path):
    root = tmp_path / "shop"
    shutil.copytree(DEMO / "base", root, ignore=shutil.ignore_patterns("__pycache__"))
    project = GitProject(root)
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    project.commit("base")
    project.git("checkout", "-q", "-b", "feature")
    project.migration("shop", "0002_x", INDEX)
    project.commit("an index")
    project.git("checkout", "-q", "main")
    with FakeGitHub() as fake:
        fake.add_repo("acme", "shop", root)
        fake.open_pull("acme", "shop", head="feature", base="main")
        fake.set_role("acme", "shop", "alice", "write")
        fake.set_role("acme", "shop", "bob", "read")
        token = fake.actions_token("acme", "shop")
        opened, _ = run_ci(fake, checkout(fake, token, tmp_path / "pr", shallow=True), token, tmp_path)
        assert opened.returncode == 1, opened.stderr
        head = fake.pull("acme", "shop", 1)["head"]["sha"]

        def comment(user: str):
            made = fake.add_comment("acme", "shop", 1, IGNORE, user=user)
            event = fake.webhook_payload("issue_comment", "created", comment=made["id"])
            # an issue_comment workflow runs on the default branch's checkout
            workspace = checkout(fake, token, tmp_path / f"on-{user}", shallow=True)
            done, summary = run_ci(fake, workspace, token, tmp_path, event=event, event_name="issue_comment")
            replies = [c["body"] for c in fake.issue_comments("acme", "shop", 1)
                       if c["user"]["login"] == "github-actions[bot]" and "summary" not in c["body"]]
            reactions = [r["content"] for r in fake.reactions("acme", "shop", made["id"])]
            return done, summary, replies[-1], reactions

        done, _, reply, reactions = comment("bob")
        assert done.returncode == 0, done.stderr
        assert "Sorry @bob, `ignore` changes the verdict and needs write access" in reply
        assert reactions == ["eyes", "confused"]
        assert fake.check_runs("acme", "shop", head_sha=head)[-1]["conclusion"] == "failure"

        done, summary, reply, reactions = comment("alice")
        assert done.returncode == 0, done.stderr
        assert "MS101 acknowledged for shop.0002_x: it no longer blocks" in reply
        assert reactions == ["eyes", "+1"]
        runs = fake.check_runs("acme", "shop", head_sha=head)
        assert runs[-1]["conclusion"] == "success" and "acknowledged by alice" in runs[-1]["output"]["summary"]
        assert "acknowledged by alice" in summary
        summaries = [c for c in fake.issue_comments("acme", "shop", 1) if "migration-safe:summary" in c["body"]]
        assert len(summaries) == 1 and "acknowledged by alice" in summaries[0]["body"]


ROOT = Path(__file__).resolve().parents[2]
LEAST = {"contents": "read", "checks": "write", "pull-requests": "write", "issues": "write"}


def test_the_actions_review_step_runs_ci_with_its_inputs(project, tmp_path):
    import yaml

    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert set(action["inputs"]) == {"config", "base", "token", "python"}
    assert action["runs"]["using"] == "composite"
    [step] = [s for s in action["runs"]["steps"] if "migration_safe.cli ci" in s["run"]]
    inputs = {"python": sys.executable, "config": "", "base": "", "token": ""}
    with FakeGitHub() as fake:
        fake.add_repo("acme", "shop", project.root)
        fake.open_pull("acme", "shop", head="feature", base="main")
        inputs["token"] = fake.actions_token("acme", "shop")
        workspace = checkout(fake, inputs["token"], tmp_path / "workspace", shallow=True)
        step_env = {name: re.sub(r"\$\{\{ inputs\.(\w+) \}\}", lambda m: inputs[m.group(1)], value)
                    for name, value in step["env"].items()}
        payload = fake.webhook_payload("pull_request", "opened", pull=1)
        (tmp_path / "event.json").write_text(json.dumps(payload))
        env = {**os.environ, **step_env, "GITHUB_EVENT_NAME": "pull_request",
               "GITHUB_EVENT_PATH": str(tmp_path / "event.json"), "GITHUB_REPOSITORY": "acme/shop",
               "GITHUB_API_URL": fake.url, "GITHUB_WORKSPACE": str(workspace), "MIGRATION_SAFE_PACE_WRITES": "0"}
        env.pop("GITHUB_TOKEN", None)  # the token comes from the input only
        done = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=workspace, env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 1, done.stderr
        head = fake.pull("acme", "shop", 1)["head"]["sha"]
        assert fake.check_runs("acme", "shop", head_sha=head)[-1]["conclusion"] == "failure"


def test_the_docs_workflows_ask_for_the_least_permissions():
    import yaml

    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "docs" / "ci.md").read_text(), re.S)
    workflows = [yaml.safe_load(block) for block in blocks if block.startswith("name:")]
    events = {next(iter(w[True])) for w in workflows}  # YAML 1.1 reads the key `on` as true
    assert events == {"pull_request", "issue_comment"}
    for workflow in workflows:
        assert workflow["permissions"] == LEAST
        [job] = workflow["jobs"].values()
        assert any(step.get("uses", "").endswith("/migration-safe@v1") for step in job["steps"])
    assert "pull_request_target" in (ROOT / "docs" / "ci.md").read_text()


@pytest.mark.parametrize("event, said", [
    (b"{not json", "GITHUB_EVENT_PATH is not JSON"),
    (json.dumps({"action": "opened", "repository": {"full_name": "acme/shop"}, "pull_request": "#1"}).encode(),
     "$.pull_request"),
    (b" " * (25 * 1024 * 1024 + 1), "more than 25 MB"),
])
def test_an_event_file_of_the_wrong_shape_is_refused_without_a_traceback(tmp_path, event, said):
    (tmp_path / "event.json").write_bytes(event)
    env = {**os.environ, "GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(tmp_path / "event.json"),
           "GITHUB_REPOSITORY": "acme/shop", "GITHUB_API_URL": "http://127.0.0.1:9/api/v3",
           "GITHUB_WORKSPACE": str(tmp_path), "GITHUB_TOKEN": "ghs_unused"}
    done = subprocess.run([*CLI, "ci"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and said in done.stderr and "Traceback" not in done.stderr


def test_a_base_that_would_be_a_git_option_is_refused_and_the_check_says_so(project, tmp_path):
    with FakeGitHub() as fake:
        fake.add_repo("acme", "shop", project.root)
        fake.open_pull("acme", "shop", head="feature", base="main")
        token = fake.actions_token("acme", "shop")
        workspace = checkout(fake, token, tmp_path / "workspace", shallow=True)
        planted = tmp_path / "planted"

        done, _ = run_ci(fake, workspace, token, tmp_path, args=(f"--base=--upload-pack=touch {planted}",))

        assert done.returncode == 2 and "not a revision" in done.stderr
        assert not planted.exists()
        [run] = fake.check_runs("acme", "shop", head_sha=fake.pull("acme", "shop", 1)["head"]["sha"])
        assert run["conclusion"] == "failure" and "not a revision" in run["output"]["summary"]
