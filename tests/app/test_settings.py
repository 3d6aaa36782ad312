"""Service settings from the environment: a bad one stops start-up naming the variable, never its secret."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from migration_safe.app.settings import AppSettings, SettingsError, settings_from_environment

CLI = Path(sys.executable).with_name("migration-safe")


@pytest.fixture(scope="module")
def pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.fixture
def env(pem) -> dict[str, str]:
    return {"GITHUB_APP_ID": "4242", "GITHUB_APP_PRIVATE_KEY": pem, "GITHUB_WEBHOOK_SECRET": "s3cret-hook",
            "GITHUB_API_URL": "https://ghe.example.com/api/v3/", "REDIS_URL": "redis://localhost:6379/0"}


def error_for(env: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as caught:
        settings_from_environment(env)
    return str(caught.value)


def test_a_complete_environment_gives_settings(env, pem):
    settings = settings_from_environment(env)
    assert settings.app_id == 4242 and settings.webhook_secret == "s3cret-hook"
    assert settings.private_key.strip() == pem.strip()
    assert settings.api_url == "https://ghe.example.com/api/v3"
    assert settings.redis_url == "redis://localhost:6379/0"
    assert "s3cret-hook" not in repr(settings) and "PRIVATE KEY" not in repr(settings)


def test_defaults_without_optional_variables(env):
    del env["GITHUB_API_URL"], env["REDIS_URL"]
    settings = settings_from_environment(env)
    assert settings.api_url == "https://api.github.com" and settings.redis_url is None


@pytest.mark.parametrize("name", ["GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY", "GITHUB_WEBHOOK_SECRET"])
@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_required_variable_is_named(env, name, value):
    if value is None:
        del env[name]
    else:
        env[name] = value
    assert name in error_for(env)


@pytest.mark.parametrize("value", ["abc", "12.5", "-3", "0x10", "app-42"])
def test_app_id_must_be_a_number(env, value):
    env["GITHUB_APP_ID"] = value
    assert "GITHUB_APP_ID" in error_for(env)


@pytest.mark.parametrize("value", [
    "not a key",
    "-----BEGIN PUBLIC KEY-----\nMIIBIjANBg\n-----END PUBLIC KEY-----",
    "-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END RSA PRIVATE KEY-----",
])
def test_private_key_that_is_not_a_usable_pem_key_is_refused(env, value):
    env["GITHUB_APP_PRIVATE_KEY"] = value
    message = error_for(env)
    assert "GITHUB_APP_PRIVATE_KEY" in message and "bm90IGEga2V5" not in message


def test_install_hosts_that_are_not_host_and_port_stop_start_up(env):
    env["MIGRATION_SAFE_INSTALL_HOSTS"] = "pypi.org, https://index.internal/simple"
    assert error_for(env) == ("MIGRATION_SAFE_INSTALL_HOSTS: 'https://index.internal/simple' is not host[:port]")
    env["MIGRATION_SAFE_INSTALL_HOSTS"] = "pypi.org, index.internal:8443"
    assert settings_from_environment(env).app_id == 4242


def test_private_key_with_escaped_newlines_is_accepted(env, pem):
    env["GITHUB_APP_PRIVATE_KEY"] = pem.strip().replace("\n", "\\n")  # one-line env values
    assert settings_from_environment(env).private_key.strip() == pem.strip()


def test_private_key_from_a_file(env, pem, tmp_path):
    path = tmp_path / "app.pem"
    path.write_text(pem)
    del env["GITHUB_APP_PRIVATE_KEY"]
    env["GITHUB_APP_PRIVATE_KEY_PATH"] = str(path)
    assert settings_from_environment(env).private_key.strip() == pem.strip()

    env["GITHUB_APP_PRIVATE_KEY_PATH"] = str(tmp_path / "missing.pem")
    assert "GITHUB_APP_PRIVATE_KEY_PATH" in error_for(env)

    path.write_text("garbage")
    env["GITHUB_APP_PRIVATE_KEY_PATH"] = str(path)
    assert "GITHUB_APP_PRIVATE_KEY_PATH" in error_for(env)


@pytest.mark.parametrize("value", ["api.github.com", "ftp://ghe.example.com", "https://", "file:///etc/passwd"])
def test_api_url_must_be_http(env, value):
    env["GITHUB_API_URL"] = value
    assert "GITHUB_API_URL" in error_for(env)


@pytest.mark.parametrize("value", ["http://localhost:6379", "localhost:6379", "postgres://x"])
def test_redis_url_must_be_a_redis_url(env, value):
    env["REDIS_URL"] = value
    assert "REDIS_URL" in error_for(env)


def test_redis_url_password_is_never_echoed(env):
    env["REDIS_URL"] = "http://:hunter2-redis@cache.internal:6379"
    message = error_for(env)
    assert "REDIS_URL" in message and "hunter2-redis" not in message


def test_settings_repr_keeps_secrets_out_of_logs(pem):
    settings = AppSettings(app_id=1, private_key=pem, webhook_secret="hook-secret", redis_url="redis://:pw@h/0")
    assert "hook-secret" not in repr(settings) and "BEGIN" not in repr(settings) and ":pw@" not in repr(settings)


# ---------------------------------------------------------------- the command line


def run_cli(command: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **env}
    return subprocess.run([str(CLI), command, "--port", "0"] if command == "serve" else [str(CLI), command],
                          env=clean, capture_output=True, text=True, timeout=60, cwd=tmp_path)


@pytest.mark.parametrize("name", ["GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY", "GITHUB_WEBHOOK_SECRET"])
def test_serve_with_a_missing_variable_exits_2_naming_it(env, name, tmp_path):
    del env[name]
    done = run_cli("serve", env, tmp_path)
    assert done.returncode == 2, done.stderr
    assert name in done.stderr and "Traceback" not in done.stderr
    assert "s3cret-hook" not in done.stderr + done.stdout


@pytest.mark.parametrize("name, value", [("GITHUB_API_URL", "ghe.example.com"), ("REDIS_URL", "http://x"),
                                         ("GITHUB_APP_ID", "my-app")])
def test_serve_with_a_bad_variable_exits_2_naming_it(env, name, value, tmp_path):
    env[name] = value
    done = run_cli("serve", env, tmp_path)
    assert done.returncode == 2 and name in done.stderr and "Traceback" not in done.stderr


def test_serve_with_an_empty_environment_exits_2(tmp_path):
    done = run_cli("serve", {}, tmp_path)
    assert done.returncode == 2 and "GITHUB_APP_ID" in done.stderr


def test_worker_needs_valid_settings(env, tmp_path):
    del env["GITHUB_WEBHOOK_SECRET"]
    done = run_cli("worker", env, tmp_path)
    assert done.returncode == 2 and "GITHUB_WEBHOOK_SECRET" in done.stderr


@pytest.mark.parametrize("value, refused", [(None, True), ("refuse-unisolated", True), ("review-unisolated", False)])
def test_fork_code_runs_unisolated_only_when_the_operator_says_so(env, value, refused):
    if value:
        env["MIGRATION_SAFE_FORKS"] = value
    assert settings_from_environment(env).refuse_unisolated_forks is refused


def test_an_unknown_fork_policy_stops_start_up(env):
    env["MIGRATION_SAFE_FORKS"] = "review"
    assert "MIGRATION_SAFE_FORKS must be refuse-unisolated (the default) or review-unisolated" in error_for(env)
