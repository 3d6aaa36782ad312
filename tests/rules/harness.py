"""Write migrations into the `shop` fixture project, commit, run the real review.

Every review here is the real pipeline: git discovery between the fixture's
base commit and HEAD, libcst parsing, a sandboxed child that runs Django's
sqlmigrate path on a throwaway embedded PostgreSQL, the rule catalogue and the
verdict. The shop project has apps contenttypes, auth and shop (0001_initial:
Customer(email), Product(title, price, legacy_code NULL), Order(customer FK,
product FK, quantity)).
"""
from __future__ import annotations

import json
import textwrap

from migration_safe.engine.model import Finding, MigrationVerdict, Review, Severity
from migration_safe.engine.review import ReviewRequest, run_review

def migration(project, name: str, body: str, app: str = "shop"):
    """Write `{app}/migrations/{name}.py` (body is dedented) and return the project."""
    return project.migration(app, name, body)


def configure(project, yaml_text: str, stats: dict[str, int] | None = None):
    """Write .github/migration-safe.yml and, when given, the stats file it names."""
    if stats is not None:
        project.write(".github/table-stats.json", json.dumps(stats))
    return project.write(".github/migration-safe.yml", yaml_text)


def review(project, **request) -> Review:
    """Commit whatever was written and review HEAD against the fixture's base commit."""
    project.commit("change under review")
    return run_review(ReviewRequest(repo=project.root, base=project.base, **request))


def verdict(result: Review, name: str) -> MigrationVerdict:
    matches = [m for m in result.migrations if m.file.name == name]
    assert matches, f"{name} not reviewed; reviewed: {[m.file.name for m in result.migrations]}"
    return matches[0]


def findings(result: Review, name: str, rule: str | None = None) -> list[Finding]:
    """Findings of one migration, optionally of one rule."""
    return [f for f in verdict(result, name).findings if rule is None or f.rule == rule]


def finding(result: Review, name: str, rule: str) -> Finding:
    """The one finding of `rule` on migration `name` (fails with the full list otherwise)."""
    found = findings(result, name, rule)
    assert len(found) == 1, f"expected one {rule} on {name}, got {describe(result, name)}"
    return found[0]


def rules(result: Review, name: str, severity: Severity | str | None = None) -> set[str]:
    """Rule ids that fired on `name` (optionally only at one severity)."""
    wanted = Severity(severity) if severity else None
    return {f.rule for f in findings(result, name) if wanted is None or f.severity is wanted}


def phase(result: Review, name: str) -> str | None:
    value = verdict(result, name).phase
    return value.value if value else None


def operation_phases(result: Review, name: str) -> list[str | None]:
    return [op.phase.value if op.phase else None for op in verdict(result, name).operations]


def describe(result: Review, name: str) -> str:
    """A readable dump of one migration's verdict, for assertion messages."""
    item = verdict(result, name)
    lines = [f"{name}: phase={item.phase} split={item.needs_split} sql={item.sql_status} "
             f"({item.sql_error})"]
    lines += [f"  op{op.index} {op.type} L{op.line} {op.phase}: {op.sql}" for op in item.operations]
    lines += [f"  {f.rule} {f.severity.value} L{f.line}: {f.message}" for f in item.findings]
    return "\n".join(lines)


def line_of(body: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the `occurrence`-th line containing `needle` in the file written from `body`."""
    text = textwrap.dedent(body).lstrip("\n")
    hits = [number for number, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(hits) >= occurrence, f"{needle!r} not found {occurrence} time(s) in the migration"
    return hits[occurrence - 1]


def source(operations: str, *, after: str | list[str] = "0001_initial", attributes: str = "",
           imports: str = "", app: str = "shop") -> str:
    """The text of a migration of `app`: `operations` (Python source, any indentation) go in the
    operations list; `after` names the migration(s) of the same app it depends on; `attributes`
    are extra class attributes (`atomic = False`, `deploy_phase = "deferred"`)."""
    depends = [after] if isinstance(after, str) else after
    lines = ["from django.db import migrations, models"]
    lines += textwrap.dedent(imports).strip("\n").splitlines() if imports else []
    lines += ["", "", "class Migration(migrations.Migration):"]
    lines += ["    " + line for line in textwrap.dedent(attributes).strip("\n").splitlines()] if attributes else []
    lines += [f"    dependencies = {[(app, d) for d in depends]!r}", "", "    operations = ["]
    lines += ["        " + line if line else "" for line in textwrap.dedent(operations).strip("\n").splitlines()]
    lines += ["    ]", ""]
    return "\n".join(lines)


def establish(project, name: str, text: str, app: str = "shop") -> str:
    """Add a migration to the base branch (as if production already ran it); returns the new base."""
    project.migration(app, name, text)
    project.base = project.commit(f"base: {name}")
    return project.base
