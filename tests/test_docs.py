"""The README documents every rule, and CI runs the README's test command."""
from __future__ import annotations

import re
from pathlib import Path

from migration_safe.cli import main
from migration_safe_rules import catalogue

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_rule_has_a_section_in_the_readme():
    for rule in catalogue().values():
        section = re.search(rf"^### {rule.id}\n(.*?)(?=^### |^## )", README, re.S | re.M)
        assert section, f"README lacks a section for {rule.id}"
        assert rule.title in section.group(1) and rule.safe_alternative[:40] in section.group(1)


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
