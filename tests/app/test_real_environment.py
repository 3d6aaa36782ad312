"""The App reviews a project whose settings read the environment, with the values of the head's
`django.environment` (NetBox's NETBOX_CONFIGURATION is one)."""
from __future__ import annotations

import pytest

from .samples import NICKNAME

pytestmark = pytest.mark.slow

SETTINGS = '''
import importlib
import os

SECRET_KEY = os.environ["SHOP_SECRET_KEY"]
DATABASES = importlib.import_module(os.environ["SHOP_CONFIGURATION"]).DATABASES
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "shop"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
'''

CONFIG = '''
django:
  environment:
    SHOP_SECRET_KEY: not-a-secret
    SHOP_CONFIGURATION: mysite.configuration_testing
'''


def test_settings_that_read_the_environment_get_the_configured_values(app_harness):
    h = app_harness
    h.project.git("checkout", "-q", "feature")
    h.project.write("mysite/settings.py", SETTINGS).write(".github/migration-safe.yml", CONFIG)
    h.project.write("mysite/configuration_testing.py",
                    'DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "x"}}\n')
    h.project.migration("shop", "0002_nickname", NICKNAME)
    h.project.commit("settings from the environment, and a migration")
    h.project.git("checkout", "-q", "main")
    h.fake.open_pull("acme", "shop", head="feature", base="main")
    h.deliver("pull_request", "opened", pull=1)
    h.work()
    [run] = h.run()
    assert run["conclusion"] == "success", run["output"]["summary"]
    assert "MS002" not in run["output"]["summary"]
