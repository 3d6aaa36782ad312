"""The rules' fast tier: recorded child answers replayed through assemble -> rules -> verdict.

Each scenario is a change to the `shop` fixture (see harness.py) whose child answer is kept in
recorded/<name>.json with the migrations it answered. `replay` feeds both to the real pipeline
(parse, assemble, rules, verdict) with no child process and no PostgreSQL; `record` makes the
recording from the real harness, and test_recorded.py's slow test checks that a fresh run still
answers the same (`MIGRATION_SAFE_RERECORD=1` rewrites the files instead).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

from migration_safe.config import load_config
from migration_safe.engine.model import Review, Severity
from migration_safe.engine.review import discover, pipeline
from migration_safe.engine.sandbox.protocol import ReviewAnswer
from migration_safe.engine.sandbox.run import ChildResult

from projects import DEMO

from .harness import BACKFILL_NOOP, CONCURRENT, establish, migration, review, source
from .squashing import BASE as SQUASHED, squash_text

RECORDED = Path(__file__).with_name("recorded")
RERECORD = os.environ.get("MIGRATION_SAFE_RERECORD") == "1"
VERSIONS = ("django_version", "postgres_version")  # kept, but a new release alone is no drift
CHECKOUT = "<checkout>/"  # stands for the reviewed checkout's folder in recorded paths


@dataclass(frozen=True)
class Expected:
    rule: str
    severity: Severity
    line: str  # text of the line the finding points at, in the migration it is on


@dataclass(frozen=True)
class Scenario:
    name: str  # recorded/<name>.json
    changed: tuple[tuple[str, str], ...]  # (migration name, source) under review, in order
    on: str  # the migration the findings are on
    expected: tuple[Expected, ...]
    base: tuple[tuple[str, str], ...] = ()  # migrations production already ran
    expect_sql: bool = True  # False where Django itself refuses the operation

    def text(self, name: str) -> str:
        return dict(self.changed)[name]


def one(name: str, text: str, *expected: Expected, base: tuple = (), expect_sql: bool = True) -> Scenario:
    migration_name = name.split("-", 1)[1]
    return Scenario(name, ((migration_name, text),), migration_name, expected, base, expect_sql)


ERROR, WARNING, NOTICE = Severity.ERROR, Severity.WARNING, Severity.NOTICE

SCENARIOS = (
    one("ms101-0002_price_idx", source('''
        migrations.AddIndex(
            model_name="product",
            index=models.Index(fields=["price"], name="product_price_idx"),
        ),
    '''), Expected("MS101", ERROR, "migrations.AddIndex(")),
    one("ms102-0002_price_idx", source('''
        AddIndexConcurrently(
            "product",
            models.Index(fields=["price"], name="product_price_idx"),
        ),
    ''', imports=CONCURRENT), Expected("MS102", ERROR, "AddIndexConcurrently("),
        Expected("MS002", ERROR, "class Migration"), expect_sql=False),
    one("ms103-0002_sku", source('''
        migrations.AddField(
            model_name="product",
            name="sku",
            field=models.CharField(default="", max_length=32),
            preserve_default=False,
        ),
    '''), Expected("MS103", ERROR, "migrations.AddField(")),
    one("ms104-0002_token", source(
        'migrations.AddField("order", "token", models.UUIDField(db_default=RandomUUID())),',
        imports="from django.contrib.postgres.functions import RandomUUID"),
        Expected("MS104", ERROR, '"token"')),
    one("ms105-0002_retype", source(
        'migrations.AlterField("product", "price", models.BigIntegerField()),'),
        Expected("MS105", ERROR, "AlterField")),
    one("ms106-0002_legacy_code_required", source(
        'migrations.AlterField("product", "legacy_code", models.CharField(max_length=20)),'),
        Expected("MS106", ERROR, "AlterField")),
    one("ms107-0002_price_check", source('''
        migrations.AddConstraint(
            model_name="product",
            constraint=models.CheckConstraint(condition=models.Q(price__gte=0), name="product_price_gte_0"),
        ),
    '''), Expected("MS107", ERROR, "migrations.AddConstraint(")),
    one("ms108-0002_rename", source('migrations.RenameField("product", "title", "name"),'),
        Expected("MS108", ERROR, "RenameField(")),
    one("ms109-0002_remove_price", source('migrations.RemoveField("product", "price"),'),
        Expected("MS109", ERROR, "RemoveField(")),
    one("ms110-0002_delete_order", source('migrations.DeleteModel("Order"),'),
        Expected("MS110", NOTICE, "DeleteModel(")),
    one("ms111-0002_backfill", source('''
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.RunSQL(
            "UPDATE shop_customer SET email = lower(email) WHERE email <> lower(email)",
            migrations.RunSQL.noop,
        ),
    ''', imports=BACKFILL_NOOP), Expected("MS111", NOTICE, "migrations.RunPython("),
        Expected("MS111", NOTICE, "migrations.RunSQL(")),
    one("ms112-0002_nickname_and_price_idx", source('''
        migrations.AddField("customer", "nickname", models.CharField(max_length=30, null=True)),
        migrations.AddIndex(
            model_name="product",
            index=models.Index(fields=["price"], name="product_price_idx"),
        ),
    '''), Expected("MS112", ERROR, "migrations.AddIndex(")),
    one("ms113-0002_remove_legacy_code", source(
        'migrations.RemoveField("product", "legacy_code"),', attributes='deploy_phase = "pre-deploy"'),
        Expected("MS113", ERROR, "deploy_phase =")),
    Scenario("ms114-0003_nickname", (
        ("0002_backfill", source('migrations.RunSQL("UPDATE shop_customer SET email = lower(email)", '
                                 'migrations.RunSQL.noop),')),
        ("0003_nickname", source('migrations.AddField("customer", "nickname", '
                                 'models.CharField(max_length=30, null=True)),', after="0002_backfill")),
    ), "0003_nickname", (Expected("MS114", ERROR, "class Migration"),)),
    one("ms115-0002_sku", source(
        'migrations.AddField("product", "sku", models.CharField(max_length=32, null=True)),'),
        Expected("MS115", NOTICE, '"sku"')),
    one("ms116-0003_drop_price_idx", source(
        'migrations.RemoveIndex("product", "product_price_idx"),', after="0002_indexes"),
        Expected("MS116", WARNING, "RemoveIndex("),
        base=(("0002_indexes", source(
            'AddIndexConcurrently("product", models.Index(fields=["price"], name="product_price_idx")),',
            attributes="atomic = False", imports=CONCURRENT)),)),
    one("ms117-0002_total", source('''
        migrations.AddField("order", "total", models.GeneratedField(
            expression=models.F("quantity") * 2, output_field=models.IntegerField(), db_persist=True)),
    '''), Expected("MS117", ERROR, '"total"')),
    one("ms118-0002_code", source(
        'migrations.AlterField("product", "legacy_code", models.CharField(max_length=20, default="x")),'),
        Expected("MS118", ERROR, "AlterField")),
    one("ms119-0003_stock", source(
        'migrations.AlterField("product", "stock", models.IntegerField(default=0)),', after="0002_stock"),
        Expected("MS119", NOTICE, "AlterField"),
        base=(("0002_stock", source('migrations.AddField("product", "stock", '
                                    'models.IntegerField(db_default=0)),')),)),
    one("ms120-0002_code", source(
        'migrations.AddField("customer", "code", models.CharField(max_length=10, unique=True, default="x"), '
        'preserve_default=False),'),
        Expected("MS120", ERROR, '"code"')),
    one("ms004-0002_audit", source(
        'migrations.RunSQL("ALTER TABLE shop_audit ADD COLUMN note text", migrations.RunSQL.noop),'),
        Expected("MS004", ERROR, "migrations.RunSQL(")),
    one("ms007-0001_squashed_0003_seed", squash_text(
        SimpleNamespace(root=DEMO / "base"), sku='("sku", models.CharField(max_length=64, null=True)),'),
        Expected("MS007", ERROR, "class Migration"), Expected("MS008", NOTICE, "class Migration"),
        base=SQUASHED),
)


# ------------------------------------------------------------------ replay


def replay(recording: dict, folder: Path) -> Review:
    """The review of the recorded migrations, from the recorded answer: no child, no PostgreSQL."""
    tree = folder / "project"
    for path, text in recording["files"].items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_text(text)
    answer = located(recording["answer"], str(tree.resolve()))
    result = ChildResult(answer, isolated=True)
    sandbox = (result, SimpleNamespace(major=recording["postgres_major"]), pipeline.sandbox_notes(result))
    config = load_config(tree)
    changed = [discover.ChangedFile(path, "added") for path in recording["files"]]
    files = pipeline.read_migrations(tree, changed, config)
    with mock.patch.object(pipeline, "run_sandbox", return_value=sandbox):
        return pipeline.review_files(tree, files, config, pipeline.ReviewRequest(repo=tree, base="recorded"))


def located(answer: ReviewAnswer, root: str) -> ReviewAnswer:
    """A recording's answer with its paths under `root`."""
    return rerooted(answer, (CHECKOUT,), f"{root}/")


def rerooted(value, roots: tuple[str, ...], new_root: str):
    """`value` with every string that starts with one of `roots` starting with `new_root` instead."""
    if isinstance(value, str):
        return next((new_root + value[len(r):] for r in roots if value.startswith(r)), value)
    if isinstance(value, list):
        return [rerooted(item, roots, new_root) for item in value]
    if isinstance(value, dict):
        return {key: rerooted(item, roots, new_root) for key, item in value.items()}
    return value


def load(scenario: Scenario) -> dict:
    return json.loads((RECORDED / f"{scenario.name}.json").read_text())


# ------------------------------------------------------------------ recording


def record(shop, scenario: Scenario) -> tuple[dict, Review]:
    """The scenario run for real (child, PostgreSQL): its recording and the real review."""
    for name, text in scenario.base:
        establish(shop, name, text)
    for name, text in scenario.changed:
        migration(shop, name, text)
    seen = {}
    run_sandbox = pipeline.run_sandbox

    def recording_sandbox(tree, files, config, request):
        seen["tree"] = tree
        seen["result"], seen["server"], notes = run_sandbox(tree, files, config, request)
        return seen["result"], seen["server"], notes

    with mock.patch.object(pipeline, "run_sandbox", recording_sandbox):
        real = review(shop, expect_sql=scenario.expect_sql, state_cache=False)
    answer = seen["result"].answer
    assert answer and "fatal" not in answer, seen["result"].error or answer
    recording = {"scenario": scenario.name, "postgres_major": seen["server"].major,
                 "files": {f"shop/migrations/{name}.py": text for name, text in scenario.changed},
                 "answer": relative(answer, seen["tree"])}
    return recording, real


def relative(answer: ReviewAnswer, tree: Path) -> dict:
    """The answer without what only this run had: the checkout's folder, timings."""
    answer = rerooted(answer, (f"{tree.resolve()}/", f"{tree}/"), CHECKOUT)
    return {**answer, "timings": {key: 0.0 for key in answer["timings"]}}


def save(recording: dict) -> None:
    RECORDED.mkdir(exist_ok=True)
    text = json.dumps(recording, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    (RECORDED / f"{recording['scenario']}.json").write_text(text)


def comparable(recording: dict) -> dict:
    answer = {k: v for k, v in recording["answer"].items() if k not in VERSIONS}
    return {**recording, "answer": answer}


def outcome(result: Review) -> list:
    """What a user sees of a review, per migration: phase, SQL status and every finding."""
    return [(m.file.name, m.phase, m.needs_split, m.sql_status,
             sorted((f.rule, f.severity.value, f.line, f.end_line, f.operation_index, f.message)
                    for f in m.findings))
            for m in result.migrations]
