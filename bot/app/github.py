"""PyGithub facade: App authentication with cached installation tokens, and clients.

Automatic retries cover reads and idempotent writes only: a POST retried by
the HTTP layer after a 5xx can create a duplicate comment. Whole jobs are
retried instead, and every publishing step finds what an earlier attempt
already created.
"""
from __future__ import annotations

import threading
import time
from datetime import timezone

from github import Auth, Github, GithubIntegration, GithubRetry

from migration_safe.app.settings import AppSettings

TOKEN_MARGIN = 300  # renew five minutes before GitHub expires the token


def retry_policy() -> GithubRetry:
    return GithubRetry(total=4, backoff_factor=0.5,
                       allowed_methods=frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"}))


class GitHubApp:
    def __init__(self, settings: AppSettings) -> None:
        self.settings = settings
        self.integration = GithubIntegration(auth=Auth.AppAuth(settings.app_id, settings.private_key),
                                             base_url=settings.api_url)
        self._tokens: dict[int, tuple[str, float, dict[str, str]]] = {}  # token, expiry, permissions
        self._lock = threading.Lock()
        self._bot_login: str | None = None

    def token(self, installation_id: int) -> str:
        return self._access(installation_id)[0]

    def permissions(self, installation_id: int) -> dict[str, str]:
        """What the installation's token may do ({"contents": "write", …}): what the App asks for
        and the account accepted, so a permission added to the App counts only once approved."""
        return self._access(installation_id)[2]

    def _access(self, installation_id: int) -> tuple[str, float, dict[str, str]]:
        with self._lock:
            cached = self._tokens.get(installation_id)
            if cached and cached[1] - TOKEN_MARGIN > time.time():
                return cached
        access = self.integration.get_access_token(installation_id)
        expires = access.expires_at
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=timezone.utc)
        fresh = (access.token, expires.timestamp(), dict(access.permissions or {}))
        with self._lock:
            self._tokens[installation_id] = fresh
        return fresh

    def bot_login(self) -> str:
        """The login the App writes as ("<slug>[bot]"): the only author whose comments, markers and
        reactions are the App's own. GITHUB_APP_BOT_LOGIN, else asked of GitHub once."""
        if self._bot_login is None:
            self._bot_login = self.settings.bot_login or f"{self.integration.get_app().slug}[bot]"
        return self._bot_login

    def bot_user(self, installation_id: int) -> tuple[str, int]:
        """(login, id) of the App's bot user, whom its commits are attributed to."""
        login = self.bot_login()
        return login, self.client(installation_id).get_user(login).id

    def client(self, installation_id: int) -> Github:
        # PyGithub paces writes (1 s) to stay under GitHub's secondary rate limits; tests turn it off.
        pacing = {} if self.settings.pace_writes else {"seconds_between_requests": None,
                                                       "seconds_between_writes": None}
        return Github(auth=Auth.Token(self.token(installation_id)), base_url=self.settings.api_url,
                      retry=retry_policy(), per_page=100, **pacing)
