"""A check run named `migration-safe` that the App did not create is never taken for the App's.

Any workflow of the repository (its GITHUB_TOKEN acts as the GitHub Actions app) or another
installed App can make one on a pull request's head. Real App, real worker, the fake GitHub,
which keeps who created each run and refuses another App's edit with 403, as GitHub does.
"""
from __future__ import annotations

import pytest
from fakegithub import FakeGitHub
from github import Auth, Github, GithubIntegration

from migration_safe.app import autopush

from .test_autofix_push import INDEX, MIGRATION, PUSH, open_pr, review_and_work, tip
from .test_ci_mode import checkout, make_project, run_ci

pytestmark = pytest.mark.slow


def workflow_repo(fake: FakeGitHub):
    """The repository as a workflow of its own sees it, with `checks: write`."""
    gh = Github(auth=Auth.Token(fake.actions_token("acme", "shop")), base_url=fake.url)
    return gh.get_repo("acme/shop")


def ours(fake: FakeGitHub, head: str) -> list[dict]:
    return [r for r in fake.check_runs("acme", "shop", head_sha=head) if r["app"]["id"] == fake.app_id]


def test_a_workflows_unfinished_run_of_the_same_name_is_left_alone_and_the_review_completes(app_harness):
    h = app_harness
    head = open_pr(h, {MIGRATION: INDEX})
    hostile = workflow_repo(h.fake).create_check_run(
        name="migration-safe", head_sha=head, status="in_progress",
        output={"title": "Reviewing migrations…", "summary": "The review has started."})

    review_and_work(h)

    [run] = ours(h.fake, head)
    assert (run["status"], run["conclusion"]) == ("completed", "failure"), run["output"]["summary"]
    assert {a["path"] for a in run["output"]["annotations"]} == {MIGRATION}
    assert h.fake.find_requests("PATCH", rf"/check-runs/{hostile.id}$") == []
    [left] = [r for r in h.fake.check_runs("acme", "shop", head_sha=head) if r["id"] == hostile.id]
    assert (left["status"], left["output"]["summary"]) == ("in_progress", "The review has started.")
    assert [c for c in h.fake.issue_comments("acme", "shop", 1) if "migration-safe:summary" in c["body"]]


def test_a_pushed_marker_in_a_run_the_app_did_not_create_does_not_stop_autofix_push(app_harness):
    h = app_harness
    head = open_pr(h, {".github/migration-safe.yml": PUSH, MIGRATION: INDEX})
    forged = autopush.PUSHED.format("f" * 40)
    workflow_repo(h.fake).create_check_run(
        name="migration-safe", head_sha=head, status="completed", conclusion="success",
        output={"title": "Pushed the safe rewrites", "summary": f"Nothing to see. {forged}"})

    review_and_work(h)

    pushed = tip(h.project)
    assert pushed != head and h.project.git("rev-parse", f"{pushed}^") == head
    [run] = ours(h.fake, head)
    assert "Pushed the safe rewrites" in run["output"]["summary"] and pushed in run["output"]["summary"]
    assert "pushed once already" not in run["output"]["summary"]


def test_ci_mode_leaves_another_apps_unfinished_run_alone_and_publishes_its_own(tmp_path):
    project = make_project(tmp_path / "shop")
    with FakeGitHub() as fake:
        fake.add_repo("acme", "shop", project.root)
        head = fake.open_pull("acme", "shop", head="feature", base="main")["head"]["sha"]
        app = GithubIntegration(auth=Auth.AppAuth(fake.app_id, fake.app_private_key), base_url=fake.url)
        other = app.get_github_for_installation(fake.installation_id).get_repo("acme/shop").create_check_run(
            name="migration-safe", head_sha=head, status="in_progress",
            output={"title": "Reviewing migrations…", "summary": "The review has started."})
        token = fake.actions_token("acme", "shop")
        workspace = checkout(fake, token, tmp_path / "workspace", shallow=True)

        done, _ = run_ci(fake, workspace, token, tmp_path)

        assert done.returncode == 1, done.stderr  # blocking, and published: no refusal to explain
        assert "::warning" not in done.stdout
        runs = {r["id"]: r for r in fake.check_runs("acme", "shop", head_sha=head)}
        assert runs.pop(other.id)["status"] == "in_progress"
        [run] = runs.values()
        assert run["app"]["id"] == fake.actions_app_id
        assert (run["status"], run["conclusion"]) == ("completed", "failure")
