"""`migration-safe check` end to end on the bundled sample project: real git, real child, real PostgreSQL."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from migration_safe.cli import build_demo_repository, main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    repo, base = build_demo_repository(tmp_path_factory.mktemp("demo"))
    out = repo.parent / "report.json"
    code = main(["check", "--repo", str(repo), "--base", base, "--format", "json", "--output", str(out)])
    return code, json.loads(out.read_text())


def by_name(report, name):
    return next(m for m in report["migrations"] if m["name"] == name)


def rules(migration):
    return sorted({f["rule"] for f in migration["findings"] if f["severity"] == "error"})


def test_exit_status_is_blocking(demo_report):
    code, report = demo_report
    assert code == 1 and report["blocking"] is True
    assert [m["name"] for m in report["migrations"]] == [
        "0002_customer_nickname", "0003_product_sku", "0004_rename_title",
        "0005_order_note_and_backfill", "0006_remove_legacy_code"]


def test_nullable_add_field_is_clean_pre_deploy(demo_report):
    migration = by_name(demo_report[1], "0002_customer_nickname")
    assert (migration["phase"], migration["needs_split"], migration["blocking"]) == ("pre-deploy", False, False)
    assert migration["sql_status"] == "ok" and rules(migration) == []
    operation = migration["operations"][0]
    assert operation["sql"] == ['ALTER TABLE "shop_customer" ADD COLUMN "nickname" varchar(50) NULL;']
    assert {"relation": "shop_customer", "mode": "AccessExclusiveLock"} in operation["locks"]
    assert operation["line"] == 8 and operation["end_line"] == 12
    # the deploy must set lock_timeout: a notice, not a block
    assert [f["rule"] for f in migration["findings"]] == ["MS115"]


def test_not_null_field_and_plain_index_block(demo_report):
    migration = by_name(demo_report[1], "0003_product_sku")
    assert rules(migration) == ["MS101", "MS103"]
    assert migration["phase"] == "pre-deploy" and migration["blocking"]
    index_finding = next(f for f in migration["findings"] if f["rule"] == "MS101")
    assert index_finding["line"] == 14 and index_finding["operation_index"] == 1
    assert "AddIndexConcurrently" in index_finding["safe_alternative"]


def test_rename_blocks(demo_report):
    migration = by_name(demo_report[1], "0004_rename_title")
    assert rules(migration) == ["MS108"]
    assert migration["operations"][0]["sql"] == [
        'ALTER TABLE "shop_product" RENAME COLUMN "title" TO "name";']


def test_schema_and_data_mixed_needs_split(demo_report):
    migration = by_name(demo_report[1], "0005_order_note_and_backfill")
    assert migration["needs_split"] is True and migration["phase"] is None and migration["blocking"]
    assert [op["phase"] for op in migration["operations"]] == ["pre-deploy", "deferred"]
    assert migration["operations"][1]["sql"] == []


def test_post_deploy_drop_is_allowed_with_notice(demo_report):
    migration = by_name(demo_report[1], "0006_remove_legacy_code")
    assert (migration["phase"], migration["blocking"]) == ("post-deploy", False)
    assert "MS110" in {f["rule"] for f in migration["findings"] if f["severity"] == "notice"}


def test_demo_prints_the_readme_excerpt_and_names_only_a_repository_it_keeps(tmp_path, capsys):
    assert main(["demo"]) == 1
    printed = capsys.readouterr()
    said = printed.err
    assert "a temporary git repository, removed at the end (--keep DIR keeps it)" in said and "/" not in said
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    excerpt = re.search(r"```text\n(.*?)```", readme, re.S).group(1)
    shown = [line for line in excerpt.splitlines() if line and "…" not in line]
    assert len(shown) > 10 and [line for line in shown if line not in printed.out.splitlines()] == []
    assert main(["demo", "--format", "json", "--keep", str(tmp_path)]) == 1
    kept = tmp_path / "shop-project"
    assert f"Sample project: {kept}; reviewing " in capsys.readouterr().err
    assert (kept / "shop" / "migrations" / "0006_remove_legacy_code.py").is_file()
