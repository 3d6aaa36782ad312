"""Write migrations into the `shop` fixture project, commit, run the real review.

Every review here is the real pipeline: git discovery between the fixture's
base commit and HEAD, libcst parsing, a sandboxed child that runs Django's
sqlmigrate path on a throwaway embedded PostgreSQL, the rule catalogue and the
verdict. The shop project has apps contenttypes, auth and shop (0001_initial:
Customer(email), Product(title varchar(100), price integer, legacy_code
varchar(20) NULL), Order(customer FK, product FK, quantity integer)); its
tables start empty, as the sandbox's always do.

Typical use::

    text = migration(shop, "0002_price_idx", source('migrations.AddIndex(...),'))
    result = review(shop)
    found = finding(result, "0002_price_idx", "MS101")
    assert found.line == line_of(text, "AddIndex(")
"""
from __future__ import annotations

import json
import textwrap

from migration_safe.engine.model import Finding, MigrationVerdict, Review, Severity
from migration_safe.engine.review.pipeline import ReviewRequest, run_review

# The import a migration needs for the PostgreSQL concurrent index operations.
CONCURRENT = ("from django.contrib.postgres.operations import AddIndexConcurrently, "
              "RemoveIndexConcurrently")
# A data migration's function, to pass as `imports=` (it goes above the Migration class).
BACKFILL_NOOP = '''
def backfill(apps, schema_editor):
    Customer = apps.get_model("shop", "Customer")
    Customer.objects.filter(email="").update(email="unknown@example.invalid")
'''
CONFIG_PATH = ".github/migration-safe.yml"
STATS_PATH = ".github/table-stats.json"  # name it in the config as `tables: {stats: ...}`


# ------------------------------------------------------------------ writing


def source(operations: str, *, after: str | list[str] = "0001_initial", attributes: str = "",
           imports: str = "", app: str = "shop") -> str:
    """The text of a migration of `app`.

    `operations` (Python source, any indentation) goes into the operations list; `after` names
    the migration(s) of the same app it depends on; `attributes` are extra class attributes
    (`atomic = False`, `deploy_phase = "deferred"`); `imports` extra import lines.
    """
    depends = [after] if isinstance(after, str) else after
    lines = ["from django.db import migrations, models"]
    lines += textwrap.dedent(imports).strip("\n").splitlines() if imports else []
    lines += ["", "", "class Migration(migrations.Migration):"]
    if attributes:
        lines += ["    " + line for line in textwrap.dedent(attributes).strip("\n").splitlines()]
    lines += [f"    dependencies = {[(app, d) for d in depends]!r}", "", "    operations = ["]
    lines += ["        " + line if line else ""
              for line in textwrap.dedent(operations).strip("\n").splitlines()]
    lines += ["    ]", ""]
    return "\n".join(lines)


def migration(project, name: str, text: str, app: str = "shop") -> str:
    """Write `{app}/migrations/{name}.py` into the working tree; returns the text as written."""
    project.migration(app, name, text)
    return (project.root / app / "migrations" / f"{name}.py").read_text()


def establish(project, name: str, text: str, app: str = "shop") -> str:
    """Commit a migration to the base branch, as one production already ran; returns the new base."""
    project.migration(app, name, text)
    project.base = project.commit(f"base: {name}")
    return project.base


def configure(project, yaml_text: str, stats: dict[str, int] | None = None) -> None:
    """Write .github/migration-safe.yml and, when given, the stats file at STATS_PATH."""
    if stats is not None:
        project.write(STATS_PATH, json.dumps(stats))
    project.write(CONFIG_PATH, yaml_text)


def review(project, expect_sql: bool = True, **request) -> Review:
    """Commit what was written and review HEAD against the base commit: real child, real PostgreSQL.

    With `expect_sql` (the default) every migration must have got its SQL from the sandbox, so a
    sandbox failure shows up as itself, not as a rule that mysteriously did not fire.
    """
    project.commit("change under review")
    result = run_review(ReviewRequest(repo=project.root, base=project.base, **request))
    if expect_sql:
        missing = [f"{m.file.name}: {m.sql_error}" for m in result.migrations
                   if m.sql_status != "ok" and m.file.status == "added" and not m.file.parse_error]
        assert not missing, "the sandbox gave no SQL for " + "; ".join(missing)
    return result


# ------------------------------------------------------------------ reading


def verdict(result: Review, name: str) -> MigrationVerdict:
    matches = [m for m in result.migrations if m.file.name == name]
    assert matches, f"{name} was not reviewed; reviewed: {[m.file.name for m in result.migrations]}"
    return matches[0]


def findings(result: Review, name: str, rule: str | None = None) -> list[Finding]:
    """Findings on one migration, optionally only those of one rule."""
    return [f for f in verdict(result, name).findings if rule is None or f.rule == rule]


def finding(result: Review, name: str, rule: str) -> Finding:
    """The single finding of `rule` on migration `name` (the assertion shows the whole verdict)."""
    found = findings(result, name, rule)
    assert len(found) == 1, f"expected exactly one {rule}, got {len(found)}:\n{describe(result, name)}"
    return found[0]


def rules(result: Review, name: str, severity: Severity | str | None = None) -> set[str]:
    """Ids of the rules that fired on `name`, optionally only at one severity."""
    wanted = Severity(severity) if severity else None
    return {f.rule for f in findings(result, name) if wanted is None or f.severity is wanted}


def fired(result: Review, name: str, rule: str) -> bool:
    return bool(findings(result, name, rule))


def phase(result: Review, name: str) -> str | None:
    """The migration's phase ("pre-deploy", …), None when it needs a split."""
    value = verdict(result, name).phase
    return value.value if value else None


def operation_phases(result: Review, name: str) -> list[str | None]:
    return [op.phase.value if op.phase else None for op in verdict(result, name).operations]


def describe(result: Review, name: str) -> str:
    """A readable dump of one migration's verdict, for assertion messages."""
    item = verdict(result, name)
    lines = [f"{name}: phase={item.phase} needs_split={item.needs_split} sql={item.sql_status} "
             f"({item.sql_error})"]
    lines += [f"  op{op.index} {op.type} L{op.line} {op.phase}: {op.sql}" for op in item.operations]
    lines += [f"  {f.rule} {f.severity.value} L{f.line}: {f.message}" for f in item.findings]
    return "\n".join(lines)


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based number of the `occurrence`-th line of `text` that contains `needle`."""
    hits = [number for number, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(hits) >= occurrence, f"{needle!r} is not in the migration {occurrence} time(s)"
    return hits[occurrence - 1]
