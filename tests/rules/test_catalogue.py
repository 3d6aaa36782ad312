"""Every rule of the catalogue has its test module here, and documents itself."""
from __future__ import annotations

from pathlib import Path

import migration_safe_rules
from migration_safe_rules import catalogue

HERE = Path(__file__).parent
RULES = Path(migration_safe_rules.__file__).parent


def test_every_rule_module_has_a_test_module():
    modules = sorted(p.stem for p in RULES.glob("ms[0-9][0-9][0-9]_*.py"))
    assert modules, "no rule modules found"
    missing = [m for m in modules if not (HERE / f"test_{m}.py").exists()]
    assert missing == []


def test_every_rule_is_documented():
    for rule_id, rule in catalogue().items():
        assert rule.id == rule_id and len(rule_id) == 5 and rule_id.startswith("MS")
        assert rule.why and rule.safe_alternative and rule.example and rule.title
        assert rule_id in rule.docs
