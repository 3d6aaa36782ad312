"""The child's faster swappable-model lookup answers exactly as Django's own, swapped models included."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = Path(__file__).resolve().parents[3] / "bot" / "engine" / "sandbox" / "child.py"

SCRIPT = '''
import importlib.util, json, sys
import django
from django.conf import settings

settings.configure(INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"],
                   AUTH_USER_MODEL=sys.argv[2])
django.setup()
from django.apps import apps

names = ["auth.User", "auth.user", "auth.Group", "AUTH.GROUP", "contenttypes.ContentType", "nope.Nothing"]
django_answers = [apps.get_swappable_settings_name(n) for n in names]
spec = importlib.util.spec_from_file_location("child", sys.argv[1])
child = importlib.util.module_from_spec(spec)
sys.modules["child"] = child
spec.loader.exec_module(child)
child.memoize_swappable_names()
ours = [apps.get_swappable_settings_name(n) for n in names]
apps.clear_cache()  # what every rendered migration state does
again = [apps.get_swappable_settings_name(n) for n in names]
print(json.dumps([django_answers, ours, again]))
'''


@pytest.mark.parametrize("user_model", ["auth.User", "auth.Group"], ids=["default", "swapped"])
def test_same_answers_as_django(user_model):
    done = subprocess.run([sys.executable, "-I", "-c", SCRIPT, str(CHILD), user_model],
                          capture_output=True, text=True, check=True)
    django_answers, ours, again = json.loads(done.stdout)
    assert ours == django_answers == again
    assert "AUTH_USER_MODEL" in django_answers  # the case that matters is exercised
    if user_model == "auth.Group":
        assert django_answers[2] == "AUTH_USER_MODEL"  # the model swapped in
