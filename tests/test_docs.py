"""The README documents every rule, and CI runs the README's test command."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from migration_safe.cli import main
from migration_safe_rules import catalogue

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_rule_is_in_the_readme_table_and_has_a_generated_page():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    for rule in catalogue().values():
        # The pages exist only in the built site: on GitHub the row links to the module they come from.
        [module] = (ROOT / "rules").glob(f"{rule.id.lower()}_*.py")
        row = f"| [{rule.id}](rules/{module.name}) | {rule.severity.value} | {rule.title} |"
        assert row in README, f"README's rule table lacks {row}"
        page = hooks.page(rule)
        assert rule.why in page and rule.safe_alternative in page and rule.example.strip() in page


def test_ci_runs_the_readme_test_command():
    command = re.findall(r"^python3 -m venv .*pytest.*$", README, re.M)[0].split("&& ")[-1]
    assert command in (ROOT / ".ci" / "run").read_text()


def test_rules_and_explain_commands(capsys):
    assert main(["rules"]) == 0
    listing = capsys.readouterr().out
    assert all(rule_id in listing for rule_id in catalogue())
    assert main(["explain", "ms101"]) == 0
    assert "Safe alternative" in capsys.readouterr().out
    assert main(["explain", "MS999"]) == 2
