"""What the sandbox shows of a project: the tree as it is, read-only, with every `.git` entry hidden;
a tree the sandbox user cannot read is refused, never copied."""
from __future__ import annotations

from pathlib import Path

import pytest

from migration_safe.engine.sandbox.isolation import TreeEntries, UnreadableTree, scan_tree


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


def test_a_readable_tree_has_every_git_entry_found(tree):
    assert scan_tree(str(tree), as_other_user=True) == TreeEntries((".git",), ("vendor/lib/.git",))


def test_symlinks_are_not_followed_nor_judged(tree):
    (tree / "link").symlink_to("/root/.secret-nowhere")
    assert scan_tree(str(tree), as_other_user=True).git_dirs == (".git",)


@pytest.mark.parametrize("path, mode", [
    ("shop/models.py", 0o640),  # no o+r: the sandbox user could not import it
    ("shop/migrations", 0o750),  # no o+rx
    ("shop/migrations", 0o751),  # traversable but not listable: imports list folders
    ("", 0o700),  # the project folder itself
])
def test_what_the_sandbox_user_cannot_read_is_refused(tree, path, mode):
    (tree / path).chmod(mode)
    with pytest.raises(UnreadableTree):
        scan_tree(str(tree), as_other_user=True)
    assert scan_tree(str(tree), as_other_user=False).git_dirs == (".git",)  # the same user reads it


def test_a_git_symlink_is_refused(tree):
    """A link could lead the hiding mount over something outside the tree."""
    (tree / "vendor" / "lib" / ".git").unlink()
    (tree / "vendor" / "lib" / ".git").symlink_to("../../.git")
    with pytest.raises(UnreadableTree, match="neither a folder nor a file"):
        scan_tree(str(tree), as_other_user=True)


def test_a_missing_tree_raises(tmp_path):
    with pytest.raises(OSError):
        scan_tree(str(tmp_path / "absent"), as_other_user=True)
