"""The command line itself: what it says when it cannot run a command."""
from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("command, missing", [("worker", "github"), ("serve", "flask"), ("ci", "github")])
def test_app_commands_without_the_app_extra_say_how_to_install_it(command, missing, tmp_path):
    # A fresh interpreter in which the extra's module cannot be imported, as after `pip install .`.
    blocked = f"import sys; sys.modules[{missing!r}] = None; from migration_safe.cli import main; "
    done = subprocess.run([sys.executable, "-c", blocked + f"sys.exit(main([{command!r}]))"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"migration-safe {command}: needs the [app] extra")
    assert f"'{missing}'" in done.stderr and "pip install './migration-safe[app]'" in done.stderr
    assert "Traceback" not in done.stderr
