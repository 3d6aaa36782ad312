"""Small real Django projects as git repositories, for the tests."""
from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

DEMO = Path(__file__).resolve().parents[1] / "bot" / "demo"
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}


class GitProject:
    """A Django project in a git repository: write files, commit, review."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, path: str, text: str) -> "GitProject":
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip("\n"))
        return self

    def migration(self, app: str, name: str, body: str) -> "GitProject":
        return self.write(f"{app}/migrations/{name}.py", body)

    def git(self, *args: str) -> str:
        done = subprocess.run(["git", "-C", str(self.root), *args], capture_output=True, text=True,
                              env={**os.environ, **GIT_ENV}, check=True)
        return done.stdout.strip()

    def commit(self, message: str = "change") -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")


# A field type of the app's own, which migrations import by module path (shop/fields.py).
SKU_FIELD = '''
from django.db import models


class SkuField(models.CharField):
    """A stock keeping unit: a field type of the app's own, which migrations import by module path."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 32)
        super().__init__(*args, **kwargs)
'''
