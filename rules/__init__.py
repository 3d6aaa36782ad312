"""The rule catalogue: one module per rule, each exporting RULE."""
from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from .base import Rule


@lru_cache(maxsize=1)
def catalogue() -> dict[str, Rule]:
    """Every rule, by id, in id order."""
    rules: dict[str, Rule] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("ms"):
            rule = importlib.import_module(f"{__name__}.{info.name}").RULE
            if rule.id in rules:
                raise RuntimeError(f"rule id {rule.id} is used twice")
            rules[rule.id] = rule
    return dict(sorted(rules.items()))
