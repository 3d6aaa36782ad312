"""FakeGitHub: a real HTTP server speaking enough of GitHub for PyGithub and git.

    with FakeGitHub() as fake:
        fake.add_repo("acme", "shop", path_to_git_repo)
        fake.open_pull("acme", "shop", head="feature")
        gi = GithubIntegration(auth=Auth.AppAuth(fake.app_id, fake.app_private_key), base_url=fake.url)

The API lives under /api/v3 (GitHub Enterprise's layout), git under
/{owner}/{name}.git (fetch, and push with write access: a PR follows its
branch), html_url pages nowhere. State is in memory; tests set it
up with the helpers below and read it back as GitHub-shaped JSON.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import uuid
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from . import git, payloads
from .dispatch import API_PREFIX, Dispatcher
from .routes.app import new_token_value
from .routes.issues import add_comment, ensure_label
from .shapes import (
    Urls,
    annotation_json,
    check_run_json,
    comment_json,
    file_json,
    label_json,
    pull_json,
    reaction_json,
    repo_json,
    review_comment_json,
    review_json,
)
from .state import ORGANIZATION, ROLE_PERMISSION, USER, Pull, PullFile, Repo, State, Token, now, random_sha
from .transport import FaultRule, RecordedRequest, Server


class FakeGitHub:
    """A GitHub for tests, served over a socket on 127.0.0.1."""

    def __init__(
        self,
        *,
        app_id: int = 4242,
        app_slug: str = "migration-safe",
        installation_id: int = 7,
        owner: str = "acme",
        app_public_key: str | bytes | None = None,
        payloads_dir: str | Path = payloads.DEFAULT_PAYLOADS_DIR,
    ) -> None:
        """`owner` is the organisation the app is installed on. Give
        `app_public_key` (PEM) to have JWT signatures verified, or use
        `app_private_key`, which generates a key pair the fake verifies with."""
        self._state = State(app_id, app_slug, installation_id, owner)
        self._public_key = app_public_key.decode() if isinstance(app_public_key, bytes) else app_public_key
        self._private_key: str | None = None
        self._payloads_dir = Path(payloads_dir)
        self._dispatcher = Dispatcher(self._state, lambda: self._public_key)
        self._dispatcher.on_push = self._follow_branches
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------

    def start(self) -> FakeGitHub:
        if self._server is None:
            self._server = Server(self._dispatcher)
            web = f"http://127.0.0.1:{self._server.server_address[1]}"
            self._dispatcher.urls = Urls(web=web, api=web + API_PREFIX)
            self._thread = threading.Thread(target=self._serve, name="fakegithub", daemon=True)
            self._thread.start()
        return self

    def _serve(self) -> None:
        assert self._server is not None
        # A short poll makes stop() quick: shutdown() waits for the next poll.
        self._server.serve_forever(poll_interval=0.02)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()
            self._server = None
            if self._thread is not None:
                self._thread.join(timeout=5)

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def urls(self) -> Urls:
        if self._dispatcher.urls is None:
            raise RuntimeError("FakeGitHub is not started: use start() or `with FakeGitHub() as fake`")
        return self._dispatcher.urls

    @property
    def url(self) -> str:
        """The API base URL, for Github(base_url=...) and GithubIntegration(base_url=...)."""
        return self.urls.api

    @property
    def web_url(self) -> str:
        """Where html_url and clone_url point: http://127.0.0.1:PORT."""
        return self.urls.web

    # --- the app -------------------------------------------------------------

    @property
    def app_id(self) -> int:
        return self._state.app.id

    @property
    def app_slug(self) -> str:
        return self._state.app.slug

    @property
    def bot_login(self) -> str:
        """The login the app acts as: "<slug>[bot]", of type "Bot"."""
        return self._state.app.bot.login

    @property
    def actions_app_id(self) -> int:
        """The GitHub Actions app's id: the `app` of the check runs an `actions_token` creates."""
        return self._state.actions_app.id

    @property
    def installation_id(self) -> int:
        return self._state.default_installation_id

    @property
    def app_private_key(self) -> str:
        """A PEM private key for the app, generated on first use; the fake verifies JWTs with it."""
        if self._private_key is None:
            if self._public_key is not None:
                raise RuntimeError("app_public_key was given: sign JWTs with its private key")
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self._private_key = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            ).decode()
            self._public_key = (
                key.public_key()
                .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
                .decode()
            )
        return self._private_key

    # --- setting up state ----------------------------------------------------

    def add_repo(
        self,
        owner: str,
        name: str,
        path: str | Path | None = None,
        *,
        default_branch: str | None = None,
        private: bool = False,
        fork: bool = False,
        installation_id: int | None = None,
        owner_type: str | None = None,
    ) -> dict[str, Any]:
        """Adds a repository, served from the local git repository at `path`
        (bare or not) when given; the default branch is then its HEAD."""
        local = Path(path).resolve() if path is not None else None
        if default_branch is None and local is not None:
            default_branch = git.git(local, "symbolic-ref", "--short", "HEAD").decode().strip()
        with self._state.lock:
            if self._state.repo(owner, name) is not None:
                raise ValueError(f"{owner}/{name} already exists")
            is_org = owner.lower() == self._state.app.owner.login.lower()
            user = self._state.user(owner, owner_type or (ORGANIZATION if is_org else USER))
            repo = Repo(
                id=self._state.new_id(),
                owner=user,
                name=name,
                default_branch=default_branch or "main",
                path=local,
                installation_id=installation_id or self.installation_id,
                private=private,
                fork=fork,
            )
            self._state.installation(repo.installation_id)
            self._state.repos[repo.full_name.lower()] = repo
            return repo_json(self.urls, repo)

    def open_pull(
        self,
        owner: str,
        name: str,
        *,
        head: str,
        base: str | None = None,
        head_repo: str | None = None,
        title: str = "Add a migration",
        body: str = "",
        user: str | None = None,
        files: Iterable[dict[str, Any]] | None = None,
        head_sha: str | None = None,
        base_sha: str | None = None,
        draft: bool = False,
        labels: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Opens PR `head` → `base` (default branch). `head_repo` ("owner/name")
        makes it a PR from a fork. SHAs come from the local git repositories;
        files from `git diff base...head` unless `files` (GitHub-shaped dicts:
        filename, status, patch...) are given. Like GitHub, the base repository
        gets `refs/pull/N/head`."""
        with self._state.lock:
            repo = self._repo(owner, name)
            source = self._repo(*head_repo.split("/", 1)) if head_repo else repo
            number = repo.next_number  # reserved now, git work happens unlocked
            repo.next_number += 1
        base_ref = base or repo.default_branch
        base_sha = base_sha or self._resolve(repo, base_ref)
        head_sha = head_sha or self._resolve(source, head)
        self._publish_pull_ref(repo, source, number, head_sha)
        pull_files = self._pull_files(repo, base_sha, head_sha, files)
        with self._state.lock:
            pull = Pull(
                number=number,
                id=self._state.new_id(),
                issue_id=self._state.new_id(),
                title=title,
                body=body,
                user=self._state.user(user or source.owner.login),
                head_repo=source,
                head_ref=head,
                head_sha=head_sha,
                base_ref=base_ref,
                base_sha=base_sha,
                draft=draft,
            )
            pull.files_by_sha[head_sha] = pull_files
            pull.labels = [ensure_label(self._state, repo, label) for label in labels]
            repo.pulls[number] = pull
            return pull_json(self.urls, repo, pull)

    def synchronize_pull(
        self,
        owner: str,
        name: str,
        number: int,
        *,
        head_sha: str | None = None,
        files: Iterable[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A push to the PR's branch: the head moves to `head_sha` (default:
        the branch's tip in the head repository now) and files are recomputed."""
        with self._state.lock:
            repo = self._repo(owner, name)
            pull = self._pull(repo, number)
        new_sha = head_sha or self._resolve(pull.head_repo, pull.head_ref)
        self._publish_pull_ref(repo, pull.head_repo, number, new_sha)
        pull_files = self._pull_files(repo, pull.base_sha, new_sha, files)
        with self._state.lock:
            pull.files_by_sha.pop(new_sha, None)
            pull.files_by_sha[new_sha] = pull_files
            pull.head_sha, pull.updated_at = new_sha, now()
            return pull_json(self.urls, repo, pull)

    def close_pull(self, owner: str, name: str, number: int, *, merged: bool = False) -> dict[str, Any]:
        with self._state.lock:
            repo = self._repo(owner, name)
            pull = self._pull(repo, number)
            pull.state, pull.merged, pull.closed_at = "closed", merged, now()
            pull.merged_at = pull.closed_at if merged else None
            return pull_json(self.urls, repo, pull)

    def add_comment(
        self, owner: str, name: str, number: int, body: str, *, user: str = "octocat"
    ) -> dict[str, Any]:
        """A comment on the PR written by `user` (a human unless it is bot_login)."""
        with self._state.lock:
            repo = self._repo(owner, name)
            self._pull(repo, number)
            comment = add_comment(self._state, repo, number, body, user)
            comment.via_app = comment.user is self._state.app.bot
            return comment_json(self.urls, self._state, repo, comment)

    def edit_comment(self, owner: str, name: str, comment_id: int, body: str) -> dict[str, Any]:
        """The author edits the comment (an issue_comment.edited delivery then carries the old body)."""
        with self._state.lock:
            repo = self._repo(owner, name)
            comment = repo.comments[comment_id]
            comment.previous_body, comment.body, comment.updated_at = comment.body, body, now()
            return comment_json(self.urls, self._state, repo, comment)

    def delete_comment(self, owner: str, name: str, comment_id: int) -> None:
        """The comment is deleted; an issue_comment.deleted delivery can still be built for it."""
        with self._state.lock:
            repo = self._repo(owner, name)
            repo.deleted_comments[comment_id] = repo.comments.pop(comment_id)

    def add_label(
        self, owner: str, name: str, label: str, *, color: str = "ededed", description: str | None = None
    ) -> dict[str, Any]:
        with self._state.lock:
            repo = self._repo(owner, name)
            return label_json(self.urls, repo, ensure_label(self._state, repo, label, color, description))

    def set_role(self, owner: str, name: str, login: str, role: str) -> None:
        """The user's role on the repository: admin, maintain, write, triage, read or none.
        The permission endpoint reports it as GitHub does (maintain → "write")."""
        if role not in ROLE_PERMISSION:
            raise ValueError(f"role must be one of {sorted(ROLE_PERMISSION)}")
        with self._state.lock:
            self._repo(owner, name).roles[login.lower()] = role
            self._state.user(login)

    def set_installation_permissions(self, installation_id: int | None = None, **permissions: str) -> None:
        """What the installation granted, e.g. contents="read" before the owner accepts the App's
        request for more. Tokens issued from now on carry it; earlier ones keep theirs, as on GitHub."""
        with self._state.lock:
            self._state.installation(installation_id or self.installation_id).permissions.update(permissions)

    def add_user_token(
        self, login: str, *, expires_in: timedelta = timedelta(hours=8), user_type: str = USER
    ) -> str:
        """A personal token acting as `login`, e.g. for a test that plays a human (or, with
        user_type="Bot", another App's bot)."""
        value = "ghp_" + new_token_value()[4:]
        with self._state.lock:
            user = self._state.user(login, user_type)
            self._state.tokens[value] = Token(value, now() + expires_in, user.login, None)
        return value

    def actions_token(self, owner: str, name: str, *, read_only: bool = False, **permissions: str) -> str:
        """The GITHUB_TOKEN of a workflow run in `owner/name`: an installation token acting as
        github-actions[bot], with the permissions a workflow's `permissions:` grants, or all "read"
        (a fork's pull request), when GitHub answers every write with 403; `permissions` (e.g.
        checks="write") overrides some. Its check runs are the GitHub Actions app's."""
        level = "read" if read_only else "write"
        granted = {"checks": level, "issues": level, "pull_requests": level, "contents": "read", "metadata": "read",
                   **permissions}
        value = new_token_value()
        with self._state.lock:
            repo = self._repo(owner, name)
            actions = self._state.actions_app
            self._state.tokens[value] = Token(value, now() + timedelta(hours=1), actions.bot.login,
                                              repo.installation_id, granted, actions.id)
        return value

    def expire_tokens(self) -> None:
        """Every token issued so far stops working (401), as after its hour."""
        with self._state.lock:
            for token in self._state.tokens.values():
                token.expires_at = now() - timedelta(seconds=1)

    # --- reading state back (GitHub-shaped JSON) -----------------------------

    @property
    def issued_tokens(self) -> list[str]:
        """Installation tokens handed out, oldest first."""
        with self._state.lock:
            return [t.value for t in self._state.tokens.values() if t.installation_id is not None]

    def repo(self, owner: str, name: str) -> dict[str, Any]:
        with self._state.lock:
            return repo_json(self.urls, self._repo(owner, name))

    def pull(self, owner: str, name: str, number: int) -> dict[str, Any]:
        with self._state.lock:
            repo = self._repo(owner, name)
            return pull_json(self.urls, repo, self._pull(repo, number))

    def files(self, owner: str, name: str, number: int) -> list[dict[str, Any]]:
        with self._state.lock:
            repo = self._repo(owner, name)
            pull = self._pull(repo, number)
            return [file_json(self.urls, repo, pull, f) for f in pull.files]

    def issue_comments(self, owner: str, name: str, number: int) -> list[dict[str, Any]]:
        with self._state.lock:
            repo = self._repo(owner, name)
            comments = sorted((c for c in repo.comments.values() if c.number == number), key=lambda c: c.id)
            return [comment_json(self.urls, self._state, repo, c) for c in comments]

    def reactions(self, owner: str, name: str, comment_id: int) -> list[dict[str, Any]]:
        with self._state.lock:
            comment = self._repo(owner, name).comments[comment_id]
            return [reaction_json(self.urls, r) for r in comment.reactions]

    def labels(self, owner: str, name: str, number: int) -> list[str]:
        """Names of the labels on the PR, in the order they were added."""
        with self._state.lock:
            return [label.name for label in self._pull(self._repo(owner, name), number).labels]

    def repo_labels(self, owner: str, name: str) -> list[dict[str, Any]]:
        with self._state.lock:
            repo = self._repo(owner, name)
            return [label_json(self.urls, repo, label) for label in repo.labels.values()]

    def check_runs(
        self, owner: str, name: str, head_sha: str | None = None, check_name: str | None = None
    ) -> list[dict[str, Any]]:
        """Check runs, oldest first, with every annotation ever sent under output.annotations."""
        with self._state.lock:
            repo = self._repo(owner, name)
            result = []
            for run in sorted(repo.check_runs.values(), key=lambda r: r.id):
                if head_sha not in (None, run.head_sha) or check_name not in (None, run.name):
                    continue
                data = check_run_json(self.urls, self._state, repo, run)
                data["output"]["annotations"] = [
                    annotation_json(self.urls, repo, run, a) for a in run.annotations
                ]
                data["actions"] = run.actions
                result.append(data)
            return result

    def reviews(self, owner: str, name: str, number: int) -> list[dict[str, Any]]:
        """Reviews, oldest first, each with its inline comments under "comments"."""
        with self._state.lock:
            repo = self._repo(owner, name)
            result = []
            for review in (r for r in repo.reviews.values() if r.number == number):
                data = review_json(self.urls, repo, review)
                comments = [c for c in repo.review_comments.values() if c.review_id == review.id]
                data["comments"] = [review_comment_json(self.urls, repo, c) for c in comments]
                result.append(data)
            return result

    def review_comments(self, owner: str, name: str, number: int) -> list[dict[str, Any]]:
        with self._state.lock:
            repo = self._repo(owner, name)
            comments = [c for c in repo.review_comments.values() if c.number == number]
            return [review_comment_json(self.urls, repo, c) for c in comments]

    # --- recorded traffic and faults -----------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received (API and git), oldest first; a copy."""
        with self._state.lock:
            return list(self._dispatcher.requests)

    def find_requests(self, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        """Requests with that method and whose path matches the regex `path` (re.search)."""
        return [
            r
            for r in self.requests
            if (method is None or r.method == method.upper()) and (path is None or re.search(path, r.path))
        ]

    def clear_requests(self) -> None:
        with self._state.lock:
            self._dispatcher.requests.clear()

    def fail_next(
        self,
        method: str | None,
        path_regex: str,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """The next `times` requests matching `method` (None or "*": any) and
        `path_regex` (re.search on the path, e.g. "/api/v3/repos/acme/shop/pulls/1/files")
        get `status` instead. `body`: None (GitHub's {"message": ...}), a dict
        (JSON) or str/bytes (as is, e.g. an HTML 502 page)."""
        rule = FaultRule(method, re.compile(path_regex), status, body, dict(headers or {}), times)
        self._dispatcher.faults.add(rule)

    @property
    def pending_faults(self) -> int:
        """Injected failures not served yet."""
        return self._dispatcher.faults.pending()

    # --- webhooks ------------------------------------------------------------

    def webhook_payload(
        self,
        event: str,
        action: str | None = None,
        *,
        repo: str | None = None,
        pull: int | None = None,
        comment: int | None = None,
        check_run: int | None = None,
        head_sha: str | None = None,
        sender: str | None = None,
        **overrides: Any,
    ) -> dict[str, Any]:
        """A delivery body of GitHub's shape for `event`/`action`, about the
        fake's objects: `repo` ("owner/name", default: the first repository),
        `pull` (number), `comment` (issue comment id), `check_run` (id).
        `overrides` are merged in last (nested dicts merge)."""
        with self._state.lock:
            target = self._repo(*repo.split("/", 1)) if repo else self._first_repo()
            subject = self._subject(target, pull, comment, check_run, head_sha, sender, event)
            body = payloads.build(self._state, self.urls, self._payloads_dir, event, action, subject)
        return payloads.merge(body, overrides)

    def delivery(
        self, event: str, action: str | None = None, *, secret: str | bytes, **kwargs: Any
    ) -> tuple[bytes, dict[str, str]]:
        """(body, headers) of a signed delivery, ready to POST to the app's webhook URL."""
        body = json.dumps(self.webhook_payload(event, action, **kwargs)).encode()
        key = secret.encode() if isinstance(secret, str) else secret
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/fake",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-GitHub-Hook-ID": "1",
            "X-GitHub-Hook-Installation-Target-Type": "integration",
            "X-GitHub-Hook-Installation-Target-ID": str(self.app_id),
            "X-Hub-Signature": "sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest(),
            "X-Hub-Signature-256": payloads.sign(body, key),
        }
        return body, headers

    # --- internals -----------------------------------------------------------

    def _repo(self, owner: str, name: str) -> Repo:
        repo = self._state.repo(owner, name)
        if repo is None:
            raise KeyError(f"no repository {owner}/{name}: add_repo() it first")
        return repo

    def _first_repo(self) -> Repo:
        if not self._state.repos:
            raise KeyError("no repository: add_repo() one first")
        return next(iter(self._state.repos.values()))

    @staticmethod
    def _pull(repo: Repo, number: int) -> Pull:
        if number not in repo.pulls:
            raise KeyError(f"no pull request #{number} in {repo.full_name}")
        return repo.pulls[number]

    def _subject(
        self,
        repo: Repo,
        pull: int | None,
        comment: int | None,
        check_run: int | None,
        head_sha: str | None,
        sender: str | None,
        event: str,
    ) -> payloads.Subject:
        found_comment = None
        if comment is not None:  # a deleted comment still describes its issue_comment.deleted delivery
            found_comment = repo.comments.get(comment) or repo.deleted_comments[comment]
        run = repo.check_runs[check_run] if check_run is not None else None
        number = pull if pull is not None else found_comment.number if found_comment else None
        found_pull = self._pull(repo, number) if number is not None else None
        if found_pull is None and run is not None:
            found_pull = next((p for p in repo.pulls.values() if p.head_sha == run.head_sha), None)
        if sender is not None:
            who = self._state.user(sender)
        elif found_comment is not None:
            who = found_comment.user
        elif found_pull is not None and event == "pull_request":
            who = found_pull.user
        else:
            who = repo.owner
        return payloads.Subject(repo, who, found_pull, found_comment, run, head_sha)

    def _follow_branches(self, repo: Repo) -> None:
        """After a push to `repo` over git: every open PR whose head branch moved follows it, as on
        GitHub (which then sends pull_request.synchronize; tests deliver it themselves)."""
        with self._state.lock:
            pulls = [(base, pull) for base in self._state.repos.values() for pull in base.pulls.values()
                     if pull.state == "open" and pull.head_repo is repo]
        for base, pull in pulls:
            assert repo.path is not None
            tip = git.rev_parse(repo.path, f"refs/heads/{pull.head_ref}")
            if tip is not None and tip != pull.head_sha:
                self.synchronize_pull(base.owner.login, base.name, pull.number, head_sha=tip)

    @staticmethod
    def _resolve(repo: Repo, ref: str) -> str:
        if repo.path is None:
            return random_sha()  # no git: any SHA will do, tests compare with the PR's
        sha = git.rev_parse(repo.path, ref)
        if sha is None:
            raise ValueError(f"{ref!r} is not a commit of {repo.full_name} ({repo.path})")
        return sha

    @staticmethod
    def _publish_pull_ref(repo: Repo, source: Repo, number: int, head_sha: str) -> None:
        """GitHub keeps every PR head in the base repository as refs/pull/N/head."""
        if repo.path is None or source.path is None:
            return
        ref = f"refs/pull/{number}/head"
        if source is repo:
            if git.rev_parse(repo.path, head_sha):
                git.update_ref(repo.path, ref, head_sha)
        else:
            git.fetch(repo.path, source.path, head_sha, ref)

    @staticmethod
    def _pull_files(
        repo: Repo, base_sha: str, head_sha: str, files: Iterable[dict[str, Any]] | None
    ) -> list[PullFile]:
        if files is not None:
            return [PullFile.from_dict(f) for f in files]
        if repo.path is None:
            return []
        return git.diff_files(repo.path, base_sha, head_sha)
