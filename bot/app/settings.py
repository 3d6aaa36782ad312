"""The service's settings, from the environment; a bad one stops start-up naming the variable."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping
from urllib.parse import urlparse

from migration_safe.engine.sandbox.egress import allowlist

DEFAULT_API_URL = "https://api.github.com"
MB = 1_000_000


class SettingsError(ValueError):
    """A missing or malformed environment variable."""


@dataclass(frozen=True)
class CheckoutLimits:
    """What fetching and checking out one pull request may cost, per repository: past a limit the
    review fails naming it, and nothing fetched for it is kept."""
    fetch_bytes: int = 500 * MB  # MIGRATION_SAFE_MAX_FETCH_MB: what one review may download
    files: int = 100_000  # MIGRATION_SAFE_MAX_FILES: files in the head's tree
    mirror_bytes: int = 2000 * MB  # MIGRATION_SAFE_MAX_MIRROR_MB: the repository's cached mirror


@dataclass(frozen=True)
class AppSettings:
    app_id: int
    private_key: str = ""
    webhook_secret: str = ""
    api_url: str = DEFAULT_API_URL
    redis_url: str | None = None
    cache_dir: Path = Path.home() / ".cache" / "migration-safe"  # git mirrors (and the embedded server)
    bot_login: str | None = None  # "<app-slug>[bot]": the App's own comments are never commands
    pace_writes: bool = True  # space out GitHub writes (secondary rate limits)
    refuse_unisolated_forks: bool = True  # no fork PR code runs when the sandbox cannot isolate it
    checkout_limits: CheckoutLimits = CheckoutLimits()

    def __repr__(self) -> str:  # never print secrets in logs or tracebacks
        return f"AppSettings(app_id={self.app_id}, api_url={self.api_url!r}, redis={bool(self.redis_url)})"


def settings_from_environment(env: Mapping[str, str] | None = None) -> AppSettings:
    env = os.environ if env is None else env
    app_id = required(env, "GITHUB_APP_ID")
    if not app_id.isdigit():
        raise SettingsError(f"GITHUB_APP_ID must be the App's numeric id, not {app_id!r}")
    install_hosts(env)
    return AppSettings(
        app_id=int(app_id),
        private_key=private_key(env),
        webhook_secret=required(env, "GITHUB_WEBHOOK_SECRET"),
        api_url=api_url(env.get("GITHUB_API_URL") or DEFAULT_API_URL),
        redis_url=redis_url(env.get("REDIS_URL")),
        cache_dir=Path(env.get("MIGRATION_SAFE_CACHE") or Path.home() / ".cache" / "migration-safe"),
        bot_login=env.get("GITHUB_APP_BOT_LOGIN") or None,
        pace_writes=env.get("MIGRATION_SAFE_PACE_WRITES", "1") != "0",
        refuse_unisolated_forks=forks_policy(env.get("MIGRATION_SAFE_FORKS")),
        checkout_limits=CheckoutLimits(
            fetch_bytes=positive(env, "MIGRATION_SAFE_MAX_FETCH_MB", CheckoutLimits.fetch_bytes // MB) * MB,
            files=positive(env, "MIGRATION_SAFE_MAX_FILES", CheckoutLimits.files),
            mirror_bytes=positive(env, "MIGRATION_SAFE_MAX_MIRROR_MB", CheckoutLimits.mirror_bytes // MB) * MB),
    )


def positive(env: Mapping[str, str], name: str, default: int) -> int:
    value = (env.get(name) or "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise SettingsError(f"{name} must be a positive whole number, not {value!r}")
    return int(value)


def install_hosts(env: Mapping[str, str]) -> None:
    """Read by each install itself (engine/sandbox/egress.py); checked here too, so that a typo stops
    start-up rather than every install."""
    try:
        allowlist(env)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def forks_policy(value: str | None) -> bool:
    """Fork PRs run only in a complete sandbox unless the operator says otherwise, explicitly."""
    if value in (None, "", "refuse-unisolated"):
        return True
    if value == "review-unisolated":
        return False
    raise SettingsError(f"MIGRATION_SAFE_FORKS must be refuse-unisolated (the default) or review-unisolated, "
                        f"not {value!r}")


def required(env: Mapping[str, str], name: str) -> str:
    value = (env.get(name) or "").strip()
    if not value:
        raise SettingsError(f"{name} is not set")
    return value


def private_key(env: Mapping[str, str]) -> str:
    text = (env.get("GITHUB_APP_PRIVATE_KEY") or "").strip()
    path = (env.get("GITHUB_APP_PRIVATE_KEY_PATH") or "").strip()
    name = "GITHUB_APP_PRIVATE_KEY"
    if not text and path:
        name = "GITHUB_APP_PRIVATE_KEY_PATH"
        try:
            text = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(f"GITHUB_APP_PRIVATE_KEY_PATH: cannot read {path}: {exc.strerror}") from None
    if not text:
        raise SettingsError("GITHUB_APP_PRIVATE_KEY (PEM text) or GITHUB_APP_PRIVATE_KEY_PATH is not set")
    text = text.replace("\\n", "\n")  # platforms that keep one-line env values
    if "-----BEGIN" not in text or "PRIVATE KEY-----" not in text:
        raise SettingsError(f"{name} is not a PEM private key")
    # Load it now: a garbled, truncated or passphrase-protected key would otherwise pass start-up
    # and fail every job when the first JWT is signed.
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise SettingsError(f"{name} is not a readable, unencrypted PEM private key") from None
    return text + "\n"


def api_url(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise SettingsError(f"GITHUB_API_URL must be an http(s) URL, not {value!r}")
    return value.rstrip("/")


def redis_url(value: str | None) -> str | None:
    if not value:
        return None
    if urlparse(value).scheme not in ("redis", "rediss", "unix"):
        raise SettingsError("REDIS_URL must start with redis://, rediss:// or unix://")
    return value
