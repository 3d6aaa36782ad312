"""GitHub's JSON shapes, rendered from the state.

Field names and nesting follow GitHub's REST responses and webhook bodies;
URLs point at the fake so that PyGithub can follow them (it calls
`pull.issue_url + "/labels"`, a check run's `url`, a comment's `url`...).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .state import (
    BOT,
    App,
    CheckRun,
    Installation,
    IssueComment,
    Label,
    Pull,
    PullFile,
    Reaction,
    Repo,
    Review,
    ReviewComment,
    State,
    User,
    iso,
)

REACTIONS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")


@dataclass(frozen=True)
class Urls:
    web: str  # http://127.0.0.1:PORT, where html_url and clone_url live
    api: str  # web + "/api/v3", GitHub Enterprise's layout

    def repo_api(self, repo: Repo) -> str:
        return f"{self.api}/repos/{repo.full_name}"

    def repo_web(self, repo: Repo) -> str:
        return f"{self.web}/{repo.full_name}"


def node_id(kind: str, ident: int | str) -> str:
    return base64.b64encode(f"{kind}:{ident}".encode()).decode()


def user_json(urls: Urls, user: User) -> dict[str, Any]:
    api = f"{urls.api}/users/{quote(user.login)}"
    return {
        "login": user.login,
        "id": user.id,
        "node_id": node_id(user.type, user.id),
        "avatar_url": f"{urls.web}/avatars/u/{user.id}",
        "gravatar_id": "",
        "url": api,
        "html_url": f"{urls.web}/{quote(user.login)}",
        "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}",
        "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events",
        "type": user.type,
        "site_admin": False,
    }


def app_json(urls: Urls, app: App) -> dict[str, Any]:
    return {
        "id": app.id,
        "slug": app.slug,
        "node_id": node_id("App", app.id),
        "client_id": f"Iv1.{app.id:016x}",
        "owner": user_json(urls, app.owner),
        "name": app.name,
        "description": app.description,
        "external_url": f"{urls.web}/apps/{app.slug}/home",
        "html_url": f"{urls.web}/apps/{app.slug}",
        "created_at": iso(app.created_at),
        "updated_at": iso(app.created_at),
        "permissions": dict(app.permissions),
        "events": list(app.events),
        "installations_count": 1,
    }


def installation_json(urls: Urls, state: State, inst: Installation) -> dict[str, Any]:
    return {
        "id": inst.id,
        "node_id": node_id("Installation", inst.id),
        "account": user_json(urls, inst.account),
        "repository_selection": "selected",
        "access_tokens_url": f"{urls.api}/app/installations/{inst.id}/access_tokens",
        "repositories_url": f"{urls.api}/installation/repositories",
        "html_url": f"{urls.web}/settings/installations/{inst.id}",
        "app_id": state.app.id,
        "app_slug": state.app.slug,
        "target_id": inst.account.id,
        "target_type": inst.account.type,
        "permissions": dict(inst.permissions),
        "events": app_json(urls, state.app)["events"],
        "created_at": iso(inst.created_at),
        "updated_at": iso(inst.created_at),
        "single_file_name": None,
        "suspended_at": None,
        "suspended_by": None,
    }


_REPO_URL_TEMPLATES = {
    "forks_url": "/forks",
    "keys_url": "/keys{/key_id}",
    "collaborators_url": "/collaborators{/collaborator}",
    "teams_url": "/teams",
    "hooks_url": "/hooks",
    "issue_events_url": "/issues/events{/number}",
    "events_url": "/events",
    "assignees_url": "/assignees{/user}",
    "branches_url": "/branches{/branch}",
    "tags_url": "/tags",
    "blobs_url": "/git/blobs{/sha}",
    "git_tags_url": "/git/tags{/sha}",
    "git_refs_url": "/git/refs{/sha}",
    "trees_url": "/git/trees{/sha}",
    "statuses_url": "/statuses/{sha}",
    "languages_url": "/languages",
    "stargazers_url": "/stargazers",
    "contributors_url": "/contributors",
    "subscribers_url": "/subscribers",
    "subscription_url": "/subscription",
    "commits_url": "/commits{/sha}",
    "git_commits_url": "/git/commits{/sha}",
    "comments_url": "/comments{/number}",
    "issue_comment_url": "/issues/comments{/number}",
    "contents_url": "/contents/{+path}",
    "compare_url": "/compare/{base}...{head}",
    "merges_url": "/merges",
    "archive_url": "/{archive_format}{/ref}",
    "downloads_url": "/downloads",
    "issues_url": "/issues{/number}",
    "pulls_url": "/pulls{/number}",
    "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}",
    "labels_url": "/labels{/name}",
    "releases_url": "/releases{/id}",
    "deployments_url": "/deployments",
}


def repo_json(urls: Urls, repo: Repo) -> dict[str, Any]:
    api, web = urls.repo_api(repo), urls.repo_web(repo)
    host = urls.web.split("://", 1)[1]
    open_pulls = sum(p.state == "open" for p in repo.pulls.values())
    data: dict[str, Any] = {
        "id": repo.id,
        "node_id": node_id("Repository", repo.id),
        "name": repo.name,
        "full_name": repo.full_name,
        "private": repo.private,
        "owner": user_json(urls, repo.owner),
        "html_url": web,
        "description": None,
        "fork": repo.fork,
        "url": api,
    }
    data.update({key: api + suffix for key, suffix in _REPO_URL_TEMPLATES.items()})
    data.update(
        {
            "created_at": iso(repo.created_at),
            "updated_at": iso(repo.created_at),
            "pushed_at": iso(repo.created_at),
            "git_url": f"git://{host}/{repo.full_name}.git",
            "ssh_url": f"git@{host.split(':')[0]}:{repo.full_name}.git",
            "clone_url": f"{web}.git",
            "svn_url": web,
            "homepage": None,
            "size": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "language": "Python",
            "has_issues": True,
            "has_projects": True,
            "has_downloads": True,
            "has_wiki": True,
            "has_pages": False,
            "forks_count": 0,
            "mirror_url": None,
            "archived": False,
            "disabled": False,
            "open_issues_count": open_pulls,
            "license": None,
            "forks": 0,
            "open_issues": open_pulls,
            "watchers": 0,
            "default_branch": repo.default_branch,
            "is_template": False,
            "topics": [],
            "visibility": "private" if repo.private else "public",
            "web_commit_signoff_required": False,
            "custom_properties": {},
        }
    )
    return data


def label_json(urls: Urls, repo: Repo, label: Label) -> dict[str, Any]:
    return {
        "id": label.id,
        "node_id": node_id("Label", label.id),
        "url": f"{urls.repo_api(repo)}/labels/{quote(label.name, safe='')}",
        "name": label.name,
        "color": label.color,
        "default": label.default,
        "description": label.description,
    }


def author_association(repo: Repo, user: User) -> str:
    if user.login.lower() == repo.owner.login.lower():
        return "OWNER"
    if user.type != BOT and repo.roles.get(user.login.lower(), "none") != "none":
        return "COLLABORATOR"
    if any(p.user is user for p in repo.pulls.values()):
        return "CONTRIBUTOR"
    return "NONE"


def _branch_json(urls: Urls, repo: Repo, ref: str, sha: str) -> dict[str, Any]:
    return {
        "label": f"{repo.owner.login}:{ref}",
        "ref": ref,
        "sha": sha,
        "user": user_json(urls, repo.owner),
        "repo": repo_json(urls, repo),
    }


def pull_json(urls: Urls, repo: Repo, pull: Pull) -> dict[str, Any]:
    api = f"{urls.repo_api(repo)}/pulls/{pull.number}"
    issue_api = f"{urls.repo_api(repo)}/issues/{pull.number}"
    web = f"{urls.repo_web(repo)}/pull/{pull.number}"
    statuses = f"{urls.repo_api(repo)}/statuses/{pull.head_sha}"
    files = pull.files
    return {
        "url": api,
        "id": pull.id,
        "node_id": node_id("PullRequest", pull.id),
        "html_url": web,
        "diff_url": f"{web}.diff",
        "patch_url": f"{web}.patch",
        "issue_url": issue_api,
        "number": pull.number,
        "state": pull.state,
        "locked": False,
        "title": pull.title,
        "user": user_json(urls, pull.user),
        "body": pull.body,
        "created_at": iso(pull.created_at),
        "updated_at": iso(pull.updated_at),
        "closed_at": iso(pull.closed_at),
        "merged_at": iso(pull.merged_at),
        "merge_commit_sha": None,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "labels": [label_json(urls, repo, label) for label in pull.labels],
        "milestone": None,
        "draft": pull.draft,
        "commits_url": f"{api}/commits",
        "review_comments_url": f"{api}/comments",
        "review_comment_url": f"{urls.repo_api(repo)}/pulls/comments{{/number}}",
        "comments_url": f"{issue_api}/comments",
        "statuses_url": statuses,
        "head": _branch_json(urls, pull.head_repo, pull.head_ref, pull.head_sha),
        "base": _branch_json(urls, repo, pull.base_ref, pull.base_sha),
        "_links": {
            "self": {"href": api},
            "html": {"href": web},
            "issue": {"href": issue_api},
            "comments": {"href": f"{issue_api}/comments"},
            "review_comments": {"href": f"{api}/comments"},
            "review_comment": {"href": f"{urls.repo_api(repo)}/pulls/comments{{/number}}"},
            "commits": {"href": f"{api}/commits"},
            "statuses": {"href": statuses},
        },
        "author_association": author_association(repo, pull.user),
        "auto_merge": None,
        "active_lock_reason": None,
        "merged": pull.merged,
        "mergeable": None,
        "rebaseable": None,
        "mergeable_state": "unknown",
        "merged_by": None,
        "comments": sum(c.number == pull.number for c in repo.comments.values()),
        "review_comments": sum(c.number == pull.number for c in repo.review_comments.values()),
        "maintainer_can_modify": False,
        "commits": len(pull.files_by_sha),
        "additions": sum(f.additions for f in files),
        "deletions": sum(f.deletions for f in files),
        "changed_files": len(files),
    }


def issue_json(urls: Urls, repo: Repo, pull: Pull) -> dict[str, Any]:
    """A pull request seen through the issues API (every PR is an issue)."""
    api = f"{urls.repo_api(repo)}/issues/{pull.number}"
    web = f"{urls.repo_web(repo)}/pull/{pull.number}"
    return {
        "url": api,
        "repository_url": urls.repo_api(repo),
        "labels_url": f"{api}/labels{{/name}}",
        "comments_url": f"{api}/comments",
        "events_url": f"{api}/events",
        "html_url": web,
        "id": pull.issue_id,
        "node_id": node_id("Issue", pull.issue_id),
        "number": pull.number,
        "title": pull.title,
        "user": user_json(urls, pull.user),
        "labels": [label_json(urls, repo, label) for label in pull.labels],
        "state": pull.state,
        "locked": False,
        "assignee": None,
        "assignees": [],
        "milestone": None,
        "comments": sum(c.number == pull.number for c in repo.comments.values()),
        "created_at": iso(pull.created_at),
        "updated_at": iso(pull.updated_at),
        "closed_at": iso(pull.closed_at),
        "author_association": author_association(repo, pull.user),
        "active_lock_reason": None,
        "draft": pull.draft,
        "pull_request": {
            "url": f"{urls.repo_api(repo)}/pulls/{pull.number}",
            "html_url": web,
            "diff_url": f"{web}.diff",
            "patch_url": f"{web}.patch",
            "merged_at": iso(pull.merged_at),
        },
        "body": pull.body,
        "reactions": reaction_summary(f"{api}/reactions", []),
        "state_reason": None,
    }


def reaction_summary(url: str, reactions: list[Reaction]) -> dict[str, Any]:
    summary: dict[str, Any] = {"url": url, "total_count": len(reactions)}
    summary.update({content: sum(r.content == content for r in reactions) for content in REACTIONS})
    return summary


def comment_json(urls: Urls, state: State, repo: Repo, comment: IssueComment) -> dict[str, Any]:
    api = f"{urls.repo_api(repo)}/issues/comments/{comment.id}"
    return {
        "url": api,
        "html_url": f"{urls.repo_web(repo)}/pull/{comment.number}#issuecomment-{comment.id}",
        "issue_url": f"{urls.repo_api(repo)}/issues/{comment.number}",
        "id": comment.id,
        "node_id": node_id("IssueComment", comment.id),
        "user": user_json(urls, comment.user),
        "created_at": iso(comment.created_at),
        "updated_at": iso(comment.updated_at),
        "author_association": author_association(repo, comment.user),
        "body": comment.body,
        "reactions": reaction_summary(f"{api}/reactions", comment.reactions),
        "performed_via_github_app": app_json(urls, state.app) if comment.via_app else None,
    }


def reaction_json(urls: Urls, reaction: Reaction) -> dict[str, Any]:
    return {
        "id": reaction.id,
        "node_id": node_id("Reaction", reaction.id),
        "user": user_json(urls, reaction.user),
        "content": reaction.content,
        "created_at": iso(reaction.created_at),
    }


def file_json(urls: Urls, repo: Repo, pull: Pull, file: PullFile) -> dict[str, Any]:
    path = quote(file.filename)
    data: dict[str, Any] = {
        "sha": file.sha,
        "filename": file.filename,
        "status": file.status,
        "additions": file.additions,
        "deletions": file.deletions,
        "changes": file.additions + file.deletions,
        "blob_url": f"{urls.repo_web(repo)}/blob/{pull.head_sha}/{path}",
        "raw_url": f"{urls.repo_web(repo)}/raw/{pull.head_sha}/{path}",
        "contents_url": f"{urls.repo_api(repo)}/contents/{path}?ref={pull.head_sha}",
    }
    if file.patch is not None:  # GitHub leaves it out for binary and huge diffs
        data["patch"] = file.patch
    if file.previous_filename is not None:
        data["previous_filename"] = file.previous_filename
    return data


def check_suite_json(
    urls: Urls, state: State, repo: Repo, head_sha: str, head_branch: str | None, app: App
) -> dict[str, Any]:
    suite_id = state.suite_id(repo, head_sha, app)
    runs = [r for r in repo.check_runs.values() if r.suite_id == suite_id]
    api = f"{urls.repo_api(repo)}/check-suites/{suite_id}"
    return {
        "id": suite_id,
        "node_id": node_id("CheckSuite", suite_id),
        "head_branch": head_branch,
        "head_sha": head_sha,
        "status": "completed" if runs and all(r.status == "completed" for r in runs) else "queued",
        "conclusion": None,
        "url": api,
        "before": None,
        "after": head_sha,
        "pull_requests": pulls_for_sha(urls, repo, head_sha),
        "app": app_json(urls, app),
        "created_at": iso(app.created_at),
        "updated_at": iso(app.created_at),
        "latest_check_runs_count": len(runs),
        "check_runs_url": f"{api}/check-runs",
    }


def pulls_for_sha(urls: Urls, repo: Repo, head_sha: str) -> list[dict[str, Any]]:
    """Check runs and suites list open PRs of the same repository only (never forks)."""

    def mini_repo(r: Repo) -> dict[str, Any]:
        return {"id": r.id, "url": urls.repo_api(r), "name": r.name}

    return [
        {
            "url": f"{urls.repo_api(repo)}/pulls/{p.number}",
            "id": p.id,
            "number": p.number,
            "head": {"ref": p.head_ref, "sha": p.head_sha, "repo": mini_repo(p.head_repo)},
            "base": {"ref": p.base_ref, "sha": p.base_sha, "repo": mini_repo(repo)},
        }
        for p in repo.pulls.values()
        if p.head_sha == head_sha and p.head_repo is repo and p.state == "open"
    ]


def check_run_json(urls: Urls, state: State, repo: Repo, run: CheckRun) -> dict[str, Any]:
    api = f"{urls.repo_api(repo)}/check-runs/{run.id}"
    app = state.app_by_id(run.app_id)
    suite = check_suite_json(urls, state, repo, run.head_sha, None, app)
    return {
        "id": run.id,
        "head_sha": run.head_sha,
        "node_id": node_id("CheckRun", run.id),
        "external_id": run.external_id,
        "url": api,
        "html_url": f"{urls.repo_web(repo)}/runs/{run.id}",
        "details_url": run.details_url or f"{urls.repo_web(repo)}/runs/{run.id}",
        "status": run.status,
        "conclusion": run.conclusion,
        "started_at": iso(run.started_at),
        "completed_at": iso(run.completed_at),
        "output": {
            "title": run.title,
            "summary": run.summary,
            "text": run.text,
            "annotations_count": len(run.annotations),
            "annotations_url": f"{api}/annotations",
        },
        "name": run.name,
        "check_suite": {"id": suite["id"]},
        "app": app_json(urls, app),
        "pull_requests": suite["pull_requests"],
    }


def annotation_json(urls: Urls, repo: Repo, run: CheckRun, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "path": data["path"],
        "blob_href": f"{urls.repo_web(repo)}/blob/{run.head_sha}/{quote(data['path'])}",
        "start_line": data["start_line"],
        "end_line": data["end_line"],
        "start_column": data.get("start_column"),
        "end_column": data.get("end_column"),
        "annotation_level": data["annotation_level"],
        "title": data.get("title"),
        "message": data["message"],
        "raw_details": data.get("raw_details"),
    }


def review_json(urls: Urls, repo: Repo, review: Review) -> dict[str, Any]:
    pull_api = f"{urls.repo_api(repo)}/pulls/{review.number}"
    web = f"{urls.repo_web(repo)}/pull/{review.number}#pullrequestreview-{review.id}"
    data = {
        "id": review.id,
        "node_id": node_id("PullRequestReview", review.id),
        "user": user_json(urls, review.user),
        "body": review.body,
        "state": review.state,
        "html_url": web,
        "pull_request_url": pull_api,
        "author_association": author_association(repo, review.user),
        "_links": {"html": {"href": web}, "pull_request": {"href": pull_api}},
        "commit_id": review.commit_id,
    }
    if review.submitted_at is not None:  # pending reviews have no submitted_at
        data["submitted_at"] = iso(review.submitted_at)
    return data


def review_comment_json(urls: Urls, repo: Repo, comment: ReviewComment) -> dict[str, Any]:
    api = f"{urls.repo_api(repo)}/pulls/comments/{comment.id}"
    pull_api = f"{urls.repo_api(repo)}/pulls/{comment.number}"
    web = f"{urls.repo_web(repo)}/pull/{comment.number}#discussion_r{comment.id}"
    data: dict[str, Any] = {
        "url": api,
        "pull_request_review_id": comment.review_id,
        "id": comment.id,
        "node_id": node_id("PullRequestReviewComment", comment.id),
        "diff_hunk": comment.diff_hunk,
        "path": comment.path,
        "position": comment.position,
        "original_position": comment.position,
        "commit_id": comment.commit_id,
        "original_commit_id": comment.commit_id,
        "user": user_json(urls, comment.user),
        "body": comment.body,
        "created_at": iso(comment.created_at),
        "updated_at": iso(comment.updated_at),
        "html_url": web,
        "pull_request_url": pull_api,
        "author_association": author_association(repo, comment.user),
        "_links": {
            "self": {"href": api},
            "html": {"href": web},
            "pull_request": {"href": pull_api},
        },
        "reactions": reaction_summary(f"{api}/reactions", []),
        "start_line": comment.start_line,
        "original_start_line": comment.start_line,
        "start_side": comment.start_side,
        "line": comment.line,
        "original_line": comment.line,
        "side": comment.side,
        "subject_type": "line",
    }
    if comment.in_reply_to_id is not None:
        data["in_reply_to_id"] = comment.in_reply_to_id
    return data
