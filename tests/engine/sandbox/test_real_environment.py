"""`django.environment`: non-secret values for settings that read the environment (NetBox's
NETBOX_CONFIGURATION, a DJANGO_SECRET_KEY), from the config file only, never the service's own."""
from __future__ import annotations

import json

import pytest
from migration_safe.cli import main
from migration_safe.config import ConfigError, load_config

SETTINGS = '''
import importlib
import os

if "MS_TEST_SERVICE_ONLY" in os.environ:
    raise RuntimeError("the service's own environment reached the sandbox")
SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
configuration = importlib.import_module(os.environ["SITE_CONFIGURATION"])
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "shop"]
DATABASES = configuration.DATABASES
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
'''

CONFIG = '''
django:
  settings: portal.settings
  root: portal
  environment:
    DJANGO_SECRET_KEY: not-a-secret
    SITE_CONFIGURATION: portal.configuration_testing
'''


def write_config(tmp_path, environment: str) -> None:
    (tmp_path / ".github").mkdir(exist_ok=True)
    (tmp_path / ".github" / "migration-safe.yml").write_text(f"django:\n  environment: {environment}\n")


@pytest.mark.parametrize("environment, key", [
    ("{PYTHONPATH: /tmp}", "django.environment.PYTHONPATH"),
    ("{PYTHONSTARTUP: x.py}", "django.environment.PYTHONSTARTUP"),
    ("{LD_PRELOAD: /tmp/evil.so}", "django.environment.LD_PRELOAD"),
    ("{PATH: /tmp}", "django.environment.PATH"),
    ("{HOME: /root}", "django.environment.HOME"),
    ("{PGHOST: evil.example}", "django.environment.PGHOST"),
    ("{DJANGO_SETTINGS_MODULE: evil}", "django.environment.DJANGO_SETTINGS_MODULE"),
    ("{ld_library_path: /tmp}", "django.environment.ld_library_path"),
    ("{'A=B': x}", "django.environment"),
    ("{'A\\nB': x}", "django.environment"),
    ("{A: {nested: 1}}", "django.environment.A"),
    ("{A: [1]}", "django.environment.A"),
    ("{A: true}", "django.environment.A"),
    ("[A, B]", "django.environment"),
])
def test_names_that_change_the_interpreter_or_loader_are_refused(tmp_path, environment, key):
    write_config(tmp_path, environment)
    with pytest.raises(ConfigError, match=f": {key}: "):
        load_config(tmp_path)


def test_values_are_read_as_strings(tmp_path):
    write_config(tmp_path, "{NETBOX_CONFIGURATION: netbox.configuration_testing, WORKERS: 4}")
    assert load_config(tmp_path).django_environment == {
        "NETBOX_CONFIGURATION": "netbox.configuration_testing", "WORKERS": "4"}


@pytest.fixture
def site(shop):
    """The shop, moved under portal/ (like NetBox's netbox/ folder) with settings that read the environment."""
    (shop.root / "portal").mkdir()
    shop.git("mv", "shop", "manage.py", "mysite", "portal")
    shop.write("portal/portal/__init__.py", "").write("portal/portal/settings.py", SETTINGS)
    shop.write("portal/portal/configuration_testing.py",
               'DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "x"}}\n')
    shop.base = shop.commit("settings that read the environment")
    shop.migration("portal/shop", "0002_note", '''
        from django.db import migrations, models


        class Migration(migrations.Migration):
            dependencies = [("shop", "0001_initial")]
            operations = [migrations.AddField("product", "note", models.TextField(null=True))]
    ''')
    return shop


def review(project):
    out = project.root.parent / "report.json"
    code = main(["check", "--repo", str(project.root), "--base", project.base, "--format", "json",
                 "--output", str(out), "--no-state-cache"])
    return code, json.loads(out.read_text())


@pytest.mark.slow
def test_settings_that_read_the_environment_are_reviewed_with_the_configured_values(site, monkeypatch):
    monkeypatch.setenv("MS_TEST_SERVICE_ONLY", "1")  # the service's environment stays out
    site.write(".github/migration-safe.yml", CONFIG).commit("config")
    code, report = review(site)
    [migration] = report["migrations"]
    assert (migration["sql_status"], code) == ("ok", 0), report["notes"]
    assert migration["operations"][0]["sql"] == ['ALTER TABLE "shop_product" ADD COLUMN "note" text NULL;']


@pytest.mark.slow
def test_without_the_values_the_review_says_what_to_set(site):
    site.write(".github/migration-safe.yml", CONFIG.split("  environment:")[0]).commit("config")
    _code, report = review(site)
    [migration] = report["migrations"]
    assert migration["sql_status"] == "unavailable"
    assert "KeyError: 'DJANGO_SECRET_KEY'" in migration["sql_error"]
    [ms002] = [f for f in migration["findings"] if f["rule"] == "MS002"]
    assert "django.environment" in ms002["safe_alternative"]

