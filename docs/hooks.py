"""MkDocs hook: one page per rule, written from the rule modules themselves (never twice)."""
from __future__ import annotations

from mkdocs.structure.files import File

from migration_safe_rules import catalogue


def on_files(files, config):
    rules = catalogue().values()
    index = ["# Rules\n", "| id | name | default severity | title |", "|---|---|---|---|"]
    index += [f"| [{r.id}]({r.id}.md) | `{r.name}` | {r.severity.value} | {r.title} |" for r in rules]
    files.append(File.generated(config, "rules/index.md", content="\n".join(index) + "\n"))
    for rule in rules:
        files.append(File.generated(config, f"rules/{rule.id}.md", content=page(rule)))
    return files


def page(rule) -> str:
    return (f"# {rule.id} `{rule.name}`\n\n**{rule.title}** (default severity: {rule.severity.value})\n\n"
            f"## Why it is risky\n\n{rule.why}\n\n## Safe alternative\n\n{rule.safe_alternative}\n\n"
            f"## Example\n\n```python\n{rule.example.strip()}\n```\n")
