"""When the sandbox may show the project as it is (a read-only mount) and when it must copy it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from migration_safe.engine.isolation import project_view


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A world-readable project: pytest's own tmp_path is 0700, so not that folder itself."""
    root = tmp_path / "project"
    for folder in ("", "shop", "shop/migrations", ".git", "vendor/lib"):
        (root / folder).mkdir(exist_ok=True, parents=True)
        (root / folder).chmod(0o755)
    for name in ("manage.py", "shop/models.py", "shop/migrations/0001_initial.py", "vendor/lib/x.py"):
        (root / name).write_text("x = 1\n")
        (root / name).chmod(0o644)
    (root / ".git" / "config").write_text("[remote]\n")
    (root / ".git" / "config").chmod(0o600)  # hidden anyway: its modes do not matter
    (root / "vendor" / "lib" / ".git").write_text("gitdir: /elsewhere/.git/modules/lib\n")
    return root


def test_a_readable_tree_gets_a_view_with_every_git_entry_hidden(tree):
    view = project_view(str(tree), "/review/project")
    assert view is not None and view.source == str(tree) and view.target == "/review/project"
    assert view.git_dirs == (".git",) and view.git_files == ("vendor/lib/.git",)
    info = os.stat(tree)
    assert view.identity == (info.st_dev, info.st_ino)


def test_symlinks_are_judged_like_the_copy_keeps_them(tree):
    (tree / "link").symlink_to("/root/.secret-nowhere")
    assert project_view(str(tree), "/review/project") is not None


@pytest.mark.parametrize("path, mode", [
    ("shop/models.py", 0o640),  # no o+r: the sandbox user could not import it
    ("shop/migrations", 0o750),  # no o+rx
    ("shop/migrations", 0o751),  # traversable but not listable: imports list folders
    ("", 0o700),  # the project folder itself
])
def test_what_the_sandbox_user_cannot_read_is_copied(tree, path, mode):
    (tree / path).chmod(mode)
    assert project_view(str(tree), "/review/project") is None


def test_a_git_symlink_is_copied_without_it(tree):
    """A link could lead the mount over something outside the tree: the copy simply leaves it out."""
    (tree / "vendor" / "lib" / ".git").unlink()
    (tree / "vendor" / "lib" / ".git").symlink_to("../../.git")
    assert project_view(str(tree), "/review/project") is None


def test_a_missing_tree_is_left_to_the_copy_to_report(tmp_path):
    assert project_view(str(tmp_path / "absent"), "/review/project") is None
